// Package skb is the tc program's view of a packet: a Go model of the sk_buff
// fields a SCHED_CLS program can see, its struct __sk_buff context image and
// the kernel's skb helpers with their exact return codes.
package skb
