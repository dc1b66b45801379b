// Command tcx drives tcx-go without root: a demo of the userspace tcx runtime
// and test-run, which runs a tc program of an ELF object on packets.
package main
