// Package port moves Ethernet frames between a userspace datapath and the
// outside world: pcap/pcapng files in, pcap files out, TAP devices and
// AF_PACKET sockets on existing interfaces (recvmmsg/sendmmsg batches).
// Ports know nothing about programs, hooks or devices of a runtime: they
// read batches of frames into caller-owned buffers and write batches out.
//
// AF_XDP is left out: on the veth and virtio devices the project runs on it
// works in copy mode only, where it measured no faster than the TPACKET
// ring and recvmmsg batching (see RATIONALE.md), and it needs a UMEM, fill
// and completion rings and per-queue binding that plain packet sockets do
// not.
package port
