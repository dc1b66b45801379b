// Package maps implements BPF maps in pure Go with the kernel's semantics, a byte-oriented bpf(2)-like API for userspace and an allocation-free, lock-free slot API for the packet path.
//
// Hash maps are walked (NextKey, Hash.NextSlot) in the kernel's bucket
// order: exactly the kernel's for a map made with BPF_F_ZERO_SEED, and for
// any other map, like the kernel's, an order that depends on a random
// per-map seed, which no program can rely on.
package maps
