// Package datapath runs a userspace tcx runtime on real frames: it binds
// runtime devices to ports (a wire port and a host side each), reads their
// frames with one worker per port, pushes each through the runtime
// (Receive for the wire, Transmit for the host side) and sends the frame
// where its fate puts it: a transmitted frame out of the device's wire
// port, a delivered one to its host side, optionally recorded in pcaps.
// Bound devices may belong to several runtimes (network namespaces) joined
// by veth pairs, as bpf_redirect_peer needs. It counts per device and, through Counted, per program; it knows no ELF
// and no YAML.
package datapath
