// Package kerneldiff holds the differential test that runs every program of
// testdata/progs through the kernel's BPF_PROG_TEST_RUN and through package
// engine on the same generated frames, and compares everything the kernel
// reports, plus the benchmarks that set the engine beside the kernel's own
// figures measured in the same run.
package kerneldiff
