package thirdparty_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/thirdparty"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// TestCrypto_AgainstKernel drives crypto_bench.o's setup program through
// the requests bpf_crypto_ctx_create answers differently (algorithm names
// the kernel has, lacks or has only as an skcipher, key lengths, an auth
// size) and, after each, its tc programs on frames around the dst length
// (len set to 16 and 48 at load, as the benchmark's --crypto-len does):
// every status, every byte written and the ctx map must match the
// kernel's.
func TestCrypto_AgainstKernel(t *testing.T) {
	kerneltest.RequireKernel(t)
	kerneldiff.PinCPU0(t)
	requests := []struct {
		cipher           string
		keyLen, authsize uint32
	}{
		{"ecb(aes)", 16, 0}, {"ecb(aes)", 24, 0}, {"ecb(aes)", 32, 0}, {"ecb(aes)", 17, 0}, {"ecb(aes)", 64, 0},
		{"ecb(aes)", 256, 0}, {"ecb(aes)", 16, 16}, {"cbc(aes)", 16, 0}, {"cbc(aes)", 33, 0},
		{"ecb(aes-generic)", 32, 0}, {"cbc(aes-fixed-time)", 24, 0},
		{"ctr(aes)", 16, 0}, {"xts(aes)", 32, 0}, {"cts(cbc(aes))", 16, 0}, {"ecb(cipher_null)", 16, 0},
		{"arc4", 16, 0}, {"ecb(arc4)", 16, 0}, {"ECB(AES)", 16, 0}, {"aes", 16, 0}, {"ecb(des)", 8, 0},
		{"ecb(aes)", 16, 0},
	}
	path := filepath.Join(thirdparty.Dir, "crypto_bench.o")
	var nreq, nrun, nok int
	setupStatus := map[int32]int{}
	for _, dstLen := range []uint32{16, 48} {
		full, tcOnly, err := thirdparty.Specs(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range []*ebpf.CollectionSpec{full, tcOnly} {
			if err := spec.Variables["len"].Set(dstLen); err != nil {
				t.Fatal(err)
			}
		}
		kern, err := kernel.NewTestRunner(tcOnly)
		if err != nil {
			t.Fatal(err)
		}
		coll, err := engine.NewCollection(full, engine.Options{NumCPU: 1, Strict: true})
		if err != nil {
			kern.Close()
			t.Fatal(err)
		}
		s, err := kerneldiff.NewSide(kern, coll)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(dstLen), 1))
		for _, r := range requests {
			id := fmt.Sprintf("len %d, %q key_len %d authsize %d", dstLen, r.cipher, r.keyLen, r.authsize)
			bss := make([]byte, full.Maps[".bss"].ValueSize)
			put := func(name string, v []byte) { copy(bss[full.Variables[name].Offset:], v) }
			put("cipher", []byte(r.cipher))
			put("key_len", binary.NativeEndian.AppendUint32(nil, r.keyLen))
			put("authsize", binary.NativeEndian.AppendUint32(nil, r.authsize))
			key := make([]byte, 256)
			for i := range key {
				key[i] = byte(rng.IntN(256))
			}
			put("key", key)
			if err := s.SetMap(".bss", []byte{0, 0, 0, 0}, bss); err != nil {
				t.Fatal(err)
			}
			nreq++
			if d, err := s.CompareSyscall("crypto_setup"); err != nil || d != "" {
				t.Fatalf("%s: crypto_setup: %v %s", id, err, d)
			}
			st, err := kernelStatus(s, full)
			if err != nil {
				t.Fatal(err)
			}
			setupStatus[st]++
			for _, prog := range []string{"crypto_encrypt", "crypto_decrypt"} {
				for range 12 {
					frame := make([]byte, 14+rng.IntN(50))
					if rng.IntN(2) == 0 {
						frame = make([]byte, []int{16, 32, 48}[rng.IntN(3)])
					}
					for i := range frame {
						frame[i] = byte(rng.IntN(256))
					}
					nrun++
					d, err := s.Compare(prog, frame, nil, map[uint32]int{})
					if err != nil || d != "" {
						t.Fatalf("%s: %s on % x: %v %s", id, prog, frame, err, d)
					}
					if st, err := kernelStatus(s, full); err != nil {
						t.Fatal(err)
					} else if st == 0 {
						nok++
					}
				}
			}
		}
		s.Close()
		coll.Close()
		kern.Close()
	}
	t.Logf("crypto against the kernel: %d ctx requests (statuses %v), %d runs (%d encrypted or decrypted), 0 divergences", nreq, setupStatus, nrun, nok)
	for _, st := range []int32{0, -22, -95} {
		if setupStatus[st] == 0 {
			t.Errorf("no ctx request got status %d from the kernel: the table misses a path", st)
		}
	}
	if nok == 0 {
		t.Error("no run encrypted or decrypted anything")
	}
}

// kernelStatus is the kernel's .bss status.
func kernelStatus(s *kerneldiff.Side, spec *ebpf.CollectionSpec) (int32, error) {
	kv, err := s.Kern.MapContents(".bss")
	if err != nil {
		return 0, err
	}
	off := spec.Variables["status"].Offset
	return int32(binary.NativeEndian.Uint32(kv[0].Values[0][off:])), nil
}

// BenchmarkCrypto is bench_bpf_crypto.c beside the kernel: crypto_bench's
// crypto_encrypt and crypto_decrypt on a frame of --crypto-len bytes (16
// and 256), the engine (compiled where the compiler runs) for b.N runs on
// one executor and the kernel's own mean over BPF_PROG_TEST_RUN's repeat,
// in the same run. ns/op is the engine's time per run.
func BenchmarkCrypto(b *testing.B) {
	for _, n := range []uint32{16, 256} {
		for _, prog := range []string{"crypto_encrypt", "crypto_decrypt"} {
			b.Run(fmt.Sprintf("%s/len=%d", prog, n), func(b *testing.B) { benchCrypto(b, prog, n) })
		}
	}
}

func benchCrypto(b *testing.B, prog string, n uint32) {
	kerneltest.RequireKernel(b)
	full, tcOnly, err := thirdparty.Specs(filepath.Join(thirdparty.Dir, "crypto_bench.o"))
	if err != nil {
		b.Fatal(err)
	}
	for _, spec := range []*ebpf.CollectionSpec{full, tcOnly} {
		if err := errors.Join(cryptoBenchPrepare(spec), spec.Variables["len"].Set(n)); err != nil {
			b.Fatal(err)
		}
	}
	kern, err := kernel.NewTestRunner(tcOnly)
	if err != nil {
		b.Fatal(err)
	}
	defer kern.Close()
	coll, err := engine.NewCollection(full, engine.Options{NumCPU: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer coll.Close()
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if d, err := s.CompareSyscall("crypto_setup"); err != nil || d != "" {
		b.Fatalf("crypto_setup: %v %s", err, d)
	}
	frame := make([]byte, n)
	for i := range frame {
		frame[i] = byte('1' + i%9)
	}
	if d, err := s.Compare(prog, frame, nil, map[uint32]int{}); err != nil || d != "" {
		b.Fatalf("%s: %v %s", prog, err, d)
	}
	if st, err := kernelStatus(s, full); err != nil || st != 0 {
		b.Fatalf("status %d, %v: the run did not encrypt", st, err)
	}
	pkt, err := skb.New(frame, skb.Loopback())
	if err != nil {
		b.Fatal(err)
	}
	p := coll.Programs[prog]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.X.Run(p, pkt); err != nil {
			b.Fatal(err)
		}
	}
	engineNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	d, err := kern.Benchmark(prog, kernel.RunInput{Data: frame}, 20000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(d.Nanoseconds()), "kernel-ns/run")
	b.ReportMetric(engineNs/float64(d.Nanoseconds()), "engine/kernel")
}
