// Package kerneltest holds test helpers for the kernel backend: a gate that
// skips (or, in CI, fails) when the kernel cannot run tcx, and a ready backend
// in a private network namespace.
package kerneltest
