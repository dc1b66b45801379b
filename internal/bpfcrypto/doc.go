// Package bpfcrypto is the kernel's BPF crypto context (kernel/bpf/crypto.c
// with the "skcipher" type of crypto/bpf_crypto_skcipher.c) as a tc program
// sees it through the bpf_crypto_* kfuncs: parameter checks and errnos,
// the algorithms a Linux 6.18 kernel offers there, keys, IVs and the
// context's reference count. It knows nothing about programs or memory
// addresses: the engine hands it bytes.
package bpfcrypto
