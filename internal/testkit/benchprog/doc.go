// Package benchprog holds assembler-built benchmark programs as pure data
// (cilium/ebpf specs), so the kernel and the userspace engine can time the
// very same instructions in one run.
package benchprog
