// Package amd64 is the machine-code layer of the VM's compiler: an x86-64 instruction encoder and executable memory mapped W^X, entered through a small assembly trampoline.
package amd64
