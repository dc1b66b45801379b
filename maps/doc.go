// Package maps implements BPF maps in pure Go with the kernel's semantics, a byte-oriented bpf(2)-like API for userspace and an allocation-free, lock-free slot API for the packet path.
package maps
