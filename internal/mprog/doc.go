// Package mprog is the kernel's bpf_mprog engine in Go: an ordered bundle of up
// to 63 (program, link) entries per hook with the kernel's attach, detach,
// replace and query rules, check for check and errno for errno, and a
// lock-free reader side built from an a/b pair of fixed fast-path arrays.
//
// The package knows nothing about packets, devices, handles or IDs: programs
// and links are opaque pointers (*P, *L) compared by identity, and everything
// that needs a handle table (resolving a relative object, naming IDs) is done
// by the caller and handed in already resolved.
//
// Concurrency: writers (Attach, Detach, Clear) must be serialised by the
// caller (the runtime's RTNL analogue). Readers (Acquire, View) may run on any
// goroutine at any time, take no lock and never allocate; they see either the
// chain before or the chain after a write, never a torn one.
package mprog
