// Package kernel is the tcx.Backend over the real Linux kernel: it issues the
// bpf(2) and netlink requests itself, inside a network namespace it owns.
package kernel
