// Package chaindiff holds the kernel differential test for the state a
// frame carries through tcx chains and hops: generated tc programs (cilium
// asm, no clang) that read every readable __sk_buff field, write the
// writable ones, call the state-changing helpers and record what they saw
// in an array map, run in random chains on both hooks of veth pairs in one
// and two network namespaces, with redirects, through the kernel's tcx and
// through the userspace runtime with the engine; every record, the fate
// and the delivered frame must be equal.
package chaindiff
