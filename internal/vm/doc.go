// Package vm validates eBPF programs, lowers them to a flat operation slice and runs them in an interpreter whose every memory access is checked against the regions the program legitimately holds.
package vm
