// Package conformance proves that every tcx.Backend behaves like the Linux kernel,
// by replaying the kernel's own tc_opts and tc_links selftests and a seeded
// differential fuzzer against both the userspace runtime and the real kernel.
//
// A scenario drives an Env (a backend plus the devices, qdiscs, probe programs
// and loopback traffic the selftests need) and asserts the kernel's results:
// errnos, chain order, program and link IDs by position, revisions, counts and
// which probe programs ran when traffic crossed the hook.
package conformance
