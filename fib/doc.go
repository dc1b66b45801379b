// Package fib is a network namespace's routing tables, devices and
// neighbour cache as bpf_fib_lookup sees them, and the helper's lookup
// with the kernel's result codes.
package fib
