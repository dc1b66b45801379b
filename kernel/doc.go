// Package kernel is the tcx.Backend over the real Linux kernel: it issues the
// bpf(2) and netlink requests itself, inside a network namespace it creates
// (for tests) or opens as it is (the host's, a named one, a path), and reads
// back what the kernel holds: devices, programs, links, pins, cls_bpf filters.
package kernel
