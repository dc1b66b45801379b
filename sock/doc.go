// Package sock is a network namespace's sockets as the BPF socket helpers
// see them: TCP listeners and established sockets and UDP sockets, IPv4
// and IPv6, each with the struct bpf_sock image a program reads through
// the pointer a lookup returns, and the lookups of bpf_sk_lookup_tcp/udp
// and bpf_skc_lookup_tcp with the kernel's matching and scoring. A nil or
// empty Table is a namespace without sockets: every lookup misses.
package sock
