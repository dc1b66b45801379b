package kerneldiff_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// cryptoRequest is one struct bpf_crypto_params for crypto_probes' create.
type cryptoRequest struct {
	typ, algo        string
	keyLen, authsize uint32
	reserved         byte
}

// TestKernel_CryptoProbes compares the crypto kfuncs with the kernel's
// through testdata/crypto_probes.c: context requests covering each of
// bpf_crypto_ctx_create's checks (then acquire, release and the kptr
// exchange), and after each successful one CRYPTO_RUNS (default 300)
// random bpf_crypto_encrypt/decrypt calls: ecb and cbc of AES, with and
// without an IV of random length, from the packet or a local buffer,
// into a local buffer or the packet itself, over dynptrs adjusted in and
// out of range. .bss (status, the bytes written, the IV afterwards) and
// the packet must match the kernel's after every call, and every outcome
// the test aims at must occur.
func TestKernel_CryptoProbes(t *testing.T) {
	kerneltest.RequireKernel(t)
	kerneldiff.PinCPU0(t)
	runs := 300
	if v := envInt(t, "CRYPTO_RUNS", 0); v > 0 {
		runs = v
	}
	for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
		t.Run(e.String(), func(t *testing.T) { cryptoProbes(t, e, runs) })
	}
}

func cryptoProbes(t *testing.T, e engine.Engine, runs int) {
	spec, err := engine.LoadCollectionSpec(filepath.Join("testdata", "crypto_probes.o"))
	if err != nil {
		t.Fatal(err)
	}
	kern, err := kernel.NewTestRunner(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer kern.Close()
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Strict: true, Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	rng := rand.New(rand.NewPCG(uint64(runs), 7))
	seen := map[string]int{}
	bss := make([]byte, spec.Maps[".bss"].ValueSize)
	at := func(name string) []byte { return bss[spec.Variables[name].Offset:] }
	kernelInt := func(name string) int32 {
		kv, err := kern.MapContents(".bss")
		if err != nil {
			t.Fatal(err)
		}
		return int32(binary.NativeEndian.Uint32(kv[0].Values[0][spec.Variables[name].Offset:]))
	}
	requests := []cryptoRequest{
		{"skcipher", "ecb(aes)", 16, 0, 0}, {"skcipher", "ecb(aes)", 16, 0, 1}, {"aead", "ecb(aes)", 16, 0, 0},
		{"", "ecb(aes)", 16, 0, 0}, {"skcipher", "gcm(aes)", 16, 0, 0}, {"skcipher", "ecb(aes)", 16, 8, 0},
		{"skcipher", "ecb(aes)", 0, 0, 0}, {"skcipher", "ecb(aes)", 300, 0, 0}, {"skcipher", "ecb(aes)", 20, 0, 0},
		{"skcipher", "ctr(aes)", 16, 0, 0},
		{"skcipher", "cbc(aes)", 16, 0, 0}, {"skcipher", "ecb(aes)", 32, 0, 0}, {"skcipher", "cbc(aes)", 24, 0, 0},
	}
	for _, r := range requests {
		id := fmt.Sprintf("%+v", r)
		clear(bss)
		p := at("params_in")
		copy(p[0:14], r.typ)
		p[15] = r.reserved
		copy(p[16:144], r.algo)
		for i := range 256 {
			p[144+i] = byte(rng.IntN(256))
		}
		binary.NativeEndian.PutUint32(p[400:], r.keyLen)
		binary.NativeEndian.PutUint32(p[404:], r.authsize)
		if err := s.SetMap(".bss", []byte{0, 0, 0, 0}, bss); err != nil {
			t.Fatal(err)
		}
		if d, err := s.CompareSyscall("create"); err != nil || d != "" {
			t.Fatalf("%s: create: %v %s", id, err, d)
		}
		cerr := kernelInt("create_err")
		seen[fmt.Sprintf("create %d", cerr)]++
		if cerr != 0 {
			continue
		}
		if kernelInt("acquired") != 1 {
			t.Errorf("%s: the kernel's acquire failed", id)
		}
		for i := range runs {
			frame := make([]byte, 60+rng.IntN(140))
			for j := range frame {
				frame[j] = byte(rng.IntN(256))
			}
			for j := range 64 {
				at("src_buf")[j] = byte(rng.IntN(256))
			}
			for j := range 32 {
				at("iv_buf")[j] = byte(rng.IntN(256))
			}
			clear(at("dst_buf")[:128])
			if err := s.SetMap(".bss", []byte{0, 0, 0, 0}, bss); err != nil {
				t.Fatal(err)
			}
			lens := []uint32{0, 1, 15, 16, 17, 32, 33, 48, 64, uint32(rng.IntN(200))}
			mode := rng.Uint32N(16)
			off := rng.Uint32N(uint32(len(frame)) + 8)
			n := lens[rng.IntN(len(lens))]
			dlen := n
			if rng.IntN(3) == 0 {
				dlen = lens[rng.IntN(len(lens))]
			}
			ivlen := []uint32{0, 16, 16, 16, 8, 31}[rng.IntN(6)]
			ctx := make([]byte, kernel.SkbCtxSize)
			for j, v := range []uint32{mode, off, n, dlen, ivlen} {
				binary.NativeEndian.PutUint32(ctx[skb.CtxCB+4*j:], v)
			}
			d, err := s.Compare("crypt", frame, ctx, map[uint32]int{})
			if err != nil || d != "" {
				t.Fatalf("%s run %d: mode %d off %d len %d dlen %d ivlen %d on % x: %v %s", id, i, mode, off, n, dlen, ivlen, frame, err, d)
			}
			st := kernelInt("status")
			what := "local"
			if mode&2 != 0 {
				what = "in place"
			}
			if mode&4 != 0 && ivlen != 0 {
				what += " with IV"
			}
			seen[fmt.Sprintf("%s %s: %d", r.algo, what, st)]++
		}
	}
	t.Logf("crypto probes: %v", seen)
	for _, want := range []string{
		"create 0", "create -22", "create -2", "create -95",
		"ecb(aes) local: 0", "ecb(aes) in place: 0", "ecb(aes) local: -22",
		"cbc(aes) local with IV: 0", "cbc(aes) in place with IV: 0", "cbc(aes) local: -22",
	} {
		if seen[want] == 0 {
			t.Errorf("no %q: the probe misses a path", want)
		}
	}
}
