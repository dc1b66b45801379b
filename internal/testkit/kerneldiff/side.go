package kerneldiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// Side is one collection loaded twice, into the kernel (BPF_PROG_TEST_RUN)
// and into the engine, whose programs are compared packet by packet.
type Side struct {
	// NS, if set, is the network namespace the kernel's runs happen in.
	NS   *kernel.NetNS
	Kern *kernel.TestRunner
	Coll *engine.Collection
	X    *engine.Executor // simulates CPU 0
	// Rewritten counts the compared packets the kernel changed (data_out
	// differs from the frame): how often a program took a path that
	// rewrites, encapsulates or strips.
	Rewritten int
	// Sockets, if set, are the sockets open in NS, mirrored in the
	// engine's socket table (NSSockets).
	Sockets *NSSockets
	rings   map[string]*maps.RingBufReader
}

// NewSide pairs a kernel runner and an engine collection made from the same
// spec. Close releases what NewSide opened, not kern or coll.
func NewSide(kern *kernel.TestRunner, coll *engine.Collection) (*Side, error) {
	x, err := coll.NewExecutor(0)
	if err != nil {
		return nil, err
	}
	s := &Side{Kern: kern, Coll: coll, X: x, rings: map[string]*maps.RingBufReader{}}
	for name, m := range coll.Maps {
		if rb, ok := m.(*maps.RingBuf); ok {
			r, err := rb.NewReader()
			if err != nil {
				s.Close()
				return nil, err
			}
			s.rings[name] = r
		}
	}
	return s, nil
}

// Close closes the ring buffer readers.
func (s *Side) Close() error {
	var errs []error
	for _, r := range s.rings {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// Compare runs one packet through prog on both sides and returns the first
// difference in the return value, data_out, ctx_out, any map's contents
// or ring buffer records, "" if none. verdicts counts the kernel's return
// values (0xfffffffe: the input was refused, by both with the same errno).
// Maps the engine left out (a type it lacks, used by no program it loaded)
// are not compared.
func (s *Side) Compare(prog string, frame, ctx []byte, verdicts map[uint32]int) (string, error) {
	kout, kerr := s.KernRun(prog, frame, ctx)
	rv, data, ctxOut, eerr := s.X.TestRun(s.Coll.Programs[prog], frame, ctx)
	if kerr != nil || eerr != nil {
		verdicts[^uint32(0)-1]++
		var kno syscall.Errno
		if kerr == nil || eerr == nil || !errors.As(kerr, &kno) || !errors.Is(eerr, kno) {
			return fmt.Sprintf("error: kernel %v, engine %v", kerr, eerr), nil
		}
		return "", nil
	}
	verdicts[kout.Retval]++
	if !bytes.Equal(kout.Data, frame) {
		s.Rewritten++
	}
	if rv != kout.Retval {
		return fmt.Sprintf("retval: kernel %#x, engine %#x", kout.Retval, rv), nil
	}
	if d := DiffData(kout.Data, data); d != "" {
		return d, nil
	}
	if d := DiffCtx(kout.Ctx, ctxOut); d != "" {
		return d, nil
	}
	return s.diffMaps()
}

// diffMaps is the first difference between the two sides' maps and ring
// buffer records, "" if none.
func (s *Side) diffMaps() (string, error) {
	for _, name := range s.Kern.Maps() {
		m := s.Coll.Maps[name]
		if m == nil {
			continue
		}
		if r := s.rings[name]; r != nil {
			krec, err := s.Kern.ReadRing(name)
			if err != nil {
				return "", err
			}
			erec, err := DrainRing(r)
			if err != nil {
				return "", err
			}
			if d := DiffRecords(krec, erec); d != "" {
				return "ring " + name + ": " + d, nil
			}
			continue
		}
		if !Comparable(m) {
			continue
		}
		kkv, err := s.Kern.MapContents(name)
		if err != nil {
			return "", err
		}
		ekv, err := Contents(m)
		if err != nil {
			return "", err
		}
		if d := DiffKVs(kkv, ekv); d != "" {
			return "map " + name + ": " + d, nil
		}
	}
	return "", nil
}

// CompareSyscall runs the syscall program prog once on both sides (as
// userspace runs the program that sets up what the tc programs use) and
// returns the first difference in its return value or any map, "" if none.
func (s *Side) CompareSyscall(prog string) (string, error) {
	p := s.Coll.Syscalls[prog]
	if p == nil {
		return "", fmt.Errorf("compare %s: the engine has no syscall program %q: %w", prog, prog, syscall.ENOENT)
	}
	kret, kerr := s.Kern.RunSyscall(prog)
	eret, eerr := s.X.RunSyscall(p)
	if kerr != nil || eerr != nil {
		return fmt.Sprintf("error: kernel %v, engine %v", kerr, eerr), nil
	}
	if kret != eret {
		return fmt.Sprintf("retval: kernel %#x, engine %#x", kret, eret), nil
	}
	return s.diffMaps()
}

// KernRun is one BPF_PROG_TEST_RUN of prog, in NS if set.
func (s *Side) KernRun(prog string, frame, ctx []byte) (kernel.RunOutput, error) {
	if s.NS == nil {
		return s.Kern.Run(prog, kernel.RunInput{Data: frame, Ctx: ctx})
	}
	var out kernel.RunOutput
	err := s.NS.Do(func() error {
		var err error
		out, err = s.Kern.Run(prog, kernel.RunInput{Data: frame, Ctx: ctx})
		return err
	})
	return out, err
}

// Summary lists the engine maps' entry counts and ring records.
func (s *Side) Summary() string {
	var parts []string
	for _, name := range s.Kern.Maps() {
		m := s.Coll.Maps[name]
		if m == nil || !Comparable(m) {
			continue
		}
		kv, err := Contents(m)
		if err != nil {
			return err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s: %d entries", name, len(kv)))
	}
	for name, rb := range s.Coll.Maps {
		if rb, ok := rb.(*maps.RingBuf); ok {
			parts = append(parts, fmt.Sprintf("%s: %d bytes produced", name, rb.Query(maps.RingProdPos)))
		}
	}
	return strings.Join(parts, ", ")
}

// Ctx returns a ctx_in for a frame of frameLen bytes: none for a quarter
// of the calls, otherwise a __sk_buff with a random selection of the fields
// test_run accepts (gso_size makes the skb a GSO packet for the helpers).
func Ctx(rng *rand.Rand, frameLen int) []byte {
	if rng.IntN(4) == 0 {
		return nil
	}
	c := make([]byte, skb.CtxSize)
	le := binary.LittleEndian
	put32 := func(off int, v uint32) { le.PutUint32(c[off:], v) }
	if rng.IntN(2) == 0 {
		put32(skb.CtxMark, rng.Uint32())
	}
	if rng.IntN(2) == 0 {
		put32(skb.CtxPriority, rng.Uint32N(8))
	}
	if rng.IntN(3) == 0 {
		put32(skb.CtxIngressIfindex, rng.Uint32N(16))
	}
	if rng.IntN(4) == 0 {
		put32(skb.CtxIfindex, 1)
	}
	for i := range 5 {
		if rng.IntN(2) == 0 {
			put32(skb.CtxCB+4*i, rng.Uint32())
		}
	}
	if rng.IntN(4) == 0 {
		le.PutUint64(c[skb.CtxTstamp:], rng.Uint64())
	}
	if rng.IntN(4) == 0 {
		put32(skb.CtxWireLen, uint32(frameLen)+rng.Uint32N(1500))
	}
	if rng.IntN(10) == 0 {
		put32(skb.CtxGSOSegs, rng.Uint32N(64))
	}
	if rng.IntN(10) == 0 {
		put32(skb.CtxGSOSize, 1+rng.Uint32N(1500))
	}
	if rng.IntN(4) == 0 {
		le.PutUint64(c[skb.CtxHWTstamp:], rng.Uint64())
	}
	return c
}

// SetMap stores value under key in map name on both sides (for a per-CPU
// map, the same value on every CPU), as a test's setup does before traffic.
func (s *Side) SetMap(name string, key, value []byte) error {
	m := s.Coll.Maps[name]
	if m == nil {
		return fmt.Errorf("set map %s: no such map in the engine: %w", name, syscall.ENOENT)
	}
	if err := s.Kern.SetMap(name, key, value); err != nil {
		return err
	}
	v := value
	if sm, ok := m.(maps.SlotMap); ok && sm.NumCPU() > 1 {
		per := int(m.Info().ValueSize+7) &^ 7 // the syscall's per-CPU layout
		v = make([]byte, sm.NumCPU()*per)
		for cpu := range sm.NumCPU() {
			copy(v[cpu*per:], value)
		}
	}
	if err := m.Update(key, v, 0); err != nil {
		return fmt.Errorf("set map %s in the engine: %w", name, err)
	}
	return nil
}
