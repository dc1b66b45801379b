// Package skb is the project's one packet model: a Go model of the sk_buff
// fields a SCHED_CLS program can see, its struct __sk_buff context image,
// the kernel's skb helpers with their exact return codes, and what the
// kernel does to an sk_buff between two tc hooks (hop.go), so that one
// Packet carries a frame through a whole trip. It knows nothing about
// devices beyond their ifindex and addresses, nor about programs.
package skb
