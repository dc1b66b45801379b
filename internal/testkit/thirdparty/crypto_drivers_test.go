package thirdparty_test

import (
	"crypto/aes"
	"fmt"
	"math/rand/v2"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
)

// The BPF crypto selftests: crypto_sanity.o (prog_tests/crypto_sanity.c)
// and crypto_bench.o (benchs/bench_bpf_crypto.c). Each sets the key and
// algorithm in .bss, runs its syscall program to create an "ecb(aes)"
// context and store it in __crypto_ctx_map as a kptr, then runs its tc
// programs on packets: their .bss holds the status of
// bpf_crypto_encrypt/decrypt and the bytes they wrote.

// Keys and the plain text of the selftest and the benchmark.
const (
	cryptoSanityKey  = "testtest12345678"
	cryptoSanityText = "stringtoencrypt0"
	cryptoBenchKey   = "12345678testtest"
	cryptoUDPPort    = 7777 // udp_test_port
)

// setVars sets global variables of spec, as a skeleton does before load.
func setVars(spec *ebpf.CollectionSpec, vars map[string]any) error {
	for name, v := range vars {
		vs := spec.Variables[name]
		if vs == nil {
			return fmt.Errorf("no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// cstr is s in a zeroed char array of n bytes.
func cstr(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

func cryptoSanityPrepare(spec *ebpf.CollectionSpec) error {
	return setVars(spec, map[string]any{
		"key_len": uint32(16), "authsize": uint32(0),
		"key": cstr(cryptoSanityKey, 256), "algo": cstr("ecb(aes)", 128),
	})
}

func cryptoBenchPrepare(spec *ebpf.CollectionSpec) error {
	return setVars(spec, map[string]any{
		"key_len": uint32(16), "authsize": uint32(0),
		"key": cstr(cryptoBenchKey, 256), "cipher": cstr("ecb(aes)", 128),
	})
}

// cryptoSetup runs the object's syscall program on both sides, which
// must agree on its return value and on every map afterwards.
func cryptoSetup(prog string) func(s *kerneldiff.Side) error {
	return func(s *kerneldiff.Side) error {
		d, err := s.CompareSyscall(prog)
		if err != nil {
			return err
		}
		if d != "" {
			return fmt.Errorf("%s: %s", prog, d)
		}
		return nil
	}
}

// cryptoSanityFrame is what crypto_sanity sends: IPv6/UDP to port 7777,
// the plain text (with its NUL) for encrypt_sanity and its ciphertext for
// decrypt_sanity, else 16 to 64 random bytes; some frames go to another
// port, carry fewer than 16 bytes or are IPv4.
func cryptoSanityFrame(_ *kerneldiff.Side, prog string, rng *rand.Rand) []byte {
	if rng.IntN(6) == 0 {
		return nil
	}
	f := flow{v6: rng.IntN(10) != 0, proto: layers.IPProtocolUDP, sport: uint16(1024 + rng.IntN(60000)), dport: cryptoUDPPort}
	if f.v6 {
		f.src, f.dst = ip6(rng), ip6(rng)
	} else {
		f.src, f.dst = ip4(rng), ip4(rng)
	}
	switch rng.IntN(8) {
	case 0:
		f.dport = uint16(rng.IntN(65536))
		f.payload = rng.IntN(40)
	case 1:
		f.payload = rng.IntN(16)
	case 2, 3:
		f.extraBytes = []byte(cryptoSanityText + "\x00")
		if prog == "decrypt_sanity" {
			f.extraBytes = ecbAES(cryptoSanityKey, cryptoSanityText)
		}
	default:
		f.payload = 16 + rng.IntN(49)
	}
	return f.frame(rng)
}

// ecbAES is the AF_ALG "ecb(aes)" encryption the selftest compares with.
func ecbAES(key, text string) []byte {
	b, err := aes.NewCipher([]byte(key))
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(text))
	for i := 0; i+16 <= len(text); i += 16 {
		b.Encrypt(out[i:], []byte(text[i:]))
	}
	return out
}

// cryptoBenchFrame is the benchmark's input: 16 bytes ('1'..'9' and a
// NUL, as bench_bpf_crypto.c makes them) for the 16-byte dst, sometimes
// random bytes of 14 to 48.
func cryptoBenchFrame(_ *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	if rng.IntN(4) == 0 {
		b := make([]byte, 14+rng.IntN(35))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	b := make([]byte, 16)
	for i := range 15 {
		b[i] = byte('1' + rng.IntN(9))
	}
	return b
}

// cryptoTook reads the kernel's status: 0 after a successful
// bpf_crypto_encrypt or decrypt.
func cryptoTook(s *kerneldiff.Side, spec *ebpf.CollectionSpec, _ string) (bool, error) {
	st, err := kernelStatus(s, spec)
	return st == 0, err
}
