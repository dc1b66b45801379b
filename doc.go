// Package tcx is the backend-neutral API of tcx-go: the Linux tcx attach layer
// (ordered multi-program chains on the ingress and egress hook of every network
// device, owned through BPF links) as a Go interface with two implementations,
// the userspace runtime (package userspace) and the real kernel (package kernel).
//
// Every operation fails exactly as the kernel's bpf(2) call would: errors wrap
// a syscall.Errno (golang.org/x/sys/unix values), so errors.Is(err, unix.ESTALE)
// holds on both backends, and messages read "op: cause".
package tcx
