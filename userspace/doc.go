// Package userspace is a tcx runtime in plain Go that needs no root and no
// kernel support: network devices with ifindexes (loopback, veth pairs,
// plain devices), an ingress and an egress hook per device with the kernel's
// tcx chains, plain attachments, links, pins, classic tc (clsact or ingress
// qdisc with direct-action cls_bpf filters) after tcx, and a packet pipeline
// to push frames through all of it.
//
// A frame travels as one sk_buff (Packet, which embeds skb.Packet) through
// every hook and every program of every chain on its way: what one program
// writes the next one reads, and between hooks (veth crossing, redirects,
// bpf_redirect_peer, classic tc) the packet changes only as the kernel's
// does (see RATIONALE.md). A Runtime is one network namespace; a veth pair
// may join two of them (AddVethPairTo).
//
// Runtime implements tcx.Backend and behaves like Linux 6.18, including the
// order in which checks fail: the same request gives the same errno on both
// backends. Program and link handles play the role of file descriptors: each
// holds one reference, Close drops it, and a closed handle fails with EBADF
// wherever the kernel would report a bad fd.
//
// Every control operation takes one runtime-wide mutex (the RTNL analogue).
// The packet path (Transmit, Receive) takes no lock and does not allocate;
// it sees each hook's chain either before or after a concurrent change.
// Programs run on the caller's goroutine and must not call back into the
// runtime's control operations.
package userspace
