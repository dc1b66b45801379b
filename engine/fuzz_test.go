package engine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// fuzzEnv is every corpus program plus a canary map no program references.
type fuzzEnv struct {
	progs  []*engine.Program
	rodata map[*engine.Collection][]byte
	canary maps.Map
	x      map[*engine.Collection]*engine.Executor
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	env := &fuzzEnv{rodata: map[*engine.Collection][]byte{}, x: map[*engine.Collection]*engine.Executor{}}
	objs, _ := filepath.Glob(filepath.Join(corpusDir, "*.o"))
	for _, obj := range objs {
		spec, err := engine.LoadCollectionSpec(obj)
		if err != nil {
			f.Fatal(err)
		}
		c := newCollection(f, spec, engine.Options{NumCPU: 1, InstructionLimit: 1 << 20})
		for _, name := range sortedNames(c.Programs) {
			env.progs = append(env.progs, c.Programs[name])
		}
		if ro := c.Maps[".rodata"]; ro != nil {
			env.rodata[c] = lookup0(f, ro)
		}
		if env.x[c], err = c.NewExecutor(0); err != nil {
			f.Fatal(err)
		}
	}
	canary := newCollection(f, handSpec(asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		&ebpf.MapSpec{Name: "canary", Type: ebpf.Array, KeySize: 4, ValueSize: 4096, MaxEntries: 1}), engine.Options{NumCPU: 1})
	env.canary = canary.Maps["canary"]
	return env
}

func sortedNames[V any](m map[string]V) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookup0(t testing.TB, m maps.Map) []byte {
	v := make([]byte, m.Info().ValueSize)
	if err := m.Lookup(make([]byte, 4), v); err != nil {
		t.Fatal(err)
	}
	return v
}

// check asserts what must hold after any run: no Go panic, only the typed
// run errors, and nothing written outside what the program holds: the
// caller's frame, the frozen .rodata and an unrelated map are untouched.
func (env *fuzzEnv) check(t *testing.T, p *engine.Program, err error, frame, orig []byte) {
	if err != nil {
		var f *engine.Fault
		var le *engine.LimitError
		var he *engine.HelperError
		switch {
		case errors.As(err, &f) && f.Kind == engine.FaultPanic:
			t.Fatalf("%s: Go panic inside the engine: %v", p.Name(), err)
		case errors.As(err, &f), errors.As(err, &le), errors.As(err, &he):
		default:
			t.Fatalf("%s: untyped run error %v", p.Name(), err)
		}
	}
	if !bytes.Equal(frame, orig) {
		t.Fatalf("%s: the input frame was modified", p.Name())
	}
	c := p.Collection()
	if want, ok := env.rodata[c]; ok && !bytes.Equal(lookup0(t, c.Maps[".rodata"]), want) {
		t.Fatalf("%s: .rodata changed", p.Name())
	}
	if got := lookup0(t, env.canary); !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatalf("%s: a map of another collection changed", p.Name())
	}
}

// fuzzSeeds adds generated frames for every program.
func fuzzSeeds(f *testing.F, n int, add func(i int, frame []byte)) {
	g := pktgen.New(77)
	for i := range n {
		add(i, g.Next())
	}
}

// FuzzProgram_Run runs corpus programs on arbitrary frames (any length
// from 14 to 64 KiB, no test_run limits) with arbitrary metadata, at
// ingress or egress.
func FuzzProgram_Run(f *testing.F) {
	env := newFuzzEnv(f)
	fuzzSeeds(f, 2*len(env.progs), func(i int, frame []byte) {
		f.Add(uint8(i), frame, uint64(i)*0x9e3779b97f4a7c15, i%3 == 0)
	})
	pkt := new(skb.Packet)
	f.Fuzz(func(t *testing.T, which uint8, frame []byte, meta uint64, ingress bool) {
		p := env.progs[int(which)%len(env.progs)]
		orig := bytes.Clone(frame)
		if err := pkt.Reset(frame, skb.Device{Ifindex: 1, Addr: [6]byte{2, 0, 0, 0, 0, 1}}); err != nil {
			return // shorter than an Ethernet header or longer than 64 KiB
		}
		pkt.Mark = uint32(meta)
		pkt.Priority = uint32(meta >> 32)
		binary.LittleEndian.PutUint64(pkt.CB[:], meta)
		binary.LittleEndian.PutUint64(pkt.CB[8:], ^meta)
		pkt.AtIngress = ingress
		if meta&7 == 0 {
			pkt.GSOSize, pkt.GSOSegs = uint16(meta>>8), uint16(meta>>24)
		}
		if meta&0x18 == 0x18 {
			pkt.VlanPresent, pkt.VlanProto, pkt.VlanTCI = true, skb.EthP8021Q, uint16(meta>>40)
		}
		_, err := env.x[p.Collection()].Run(p, pkt)
		env.check(t, p, err, frame, orig)
		if pkt.Len() > skb.MaxFrame+skb.MaxLen {
			t.Fatalf("%s: packet grew to %d bytes", p.Name(), pkt.Len())
		}
	})
}

// FuzzProgram_TestRun feeds arbitrary data_in and ctx_in through the
// test-run API: inputs the kernel refuses fail with its errno, everything
// else runs.
func FuzzProgram_TestRun(f *testing.F) {
	env := newFuzzEnv(f)
	fuzzSeeds(f, len(env.progs), func(i int, frame []byte) {
		ctx := make([]byte, skb.CtxSize)
		binary.LittleEndian.PutUint32(ctx[skb.CtxMark:], uint32(i))
		if i%4 == 0 {
			ctx = nil
		}
		f.Add(uint8(i), frame, ctx)
	})
	f.Fuzz(func(t *testing.T, which uint8, data, ctx []byte) {
		p := env.progs[int(which)%len(env.progs)]
		orig := bytes.Clone(data)
		_, out, ctxOut, err := env.x[p.Collection()].TestRun(p, data, ctx)
		var f *engine.Fault
		var le *engine.LimitError
		var he *engine.HelperError
		switch {
		case err == nil, errors.As(err, &f), errors.As(err, &le), errors.As(err, &he):
			env.check(t, p, err, data, orig)
		case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.E2BIG), errors.Is(err, syscall.ENODEV):
			return // refused input, as the kernel refuses it
		default:
			t.Fatalf("%s: unexpected error %v", p.Name(), err)
		}
		if out == nil || (ctx != nil) != (ctxOut != nil) {
			t.Fatalf("%s: data_out %d bytes, ctx_out %d bytes for ctx_in %d bytes", p.Name(), len(out), len(ctxOut), len(ctx))
		}
	})
}
