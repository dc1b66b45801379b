// Package isaconf runs the bpf_conformance ISA corpus (uBPF-syntax .data files) against package vm, with its own assembler for that syntax.
package isaconf
