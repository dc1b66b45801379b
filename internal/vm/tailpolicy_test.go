package vm

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestTailCall_PolicySwitch checks that a tail call into a program whose
// context policy differs enforces the target's policy, on both engines and
// with the context as plain bytes and as an image compiled code reads
// itself: the permissive program reads the word at 4, the restricted one
// may not, and going back grants it again. Programs whose policies have
// the same content share one (what lets a tail call keep compiled code's
// context window).
func TestTailCall_PolicySwitch(t *testing.T) {
	policy := func(word4 bool) *CtxPolicy {
		p := NewCtxPolicy(32)
		p.Allow(0, 4, false)
		p.Allow(0, 4, true)
		if word4 {
			p.Allow(4, 4, false)
		}
		return p
	}
	plain := CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
		return off, size, 0, size == 4 && off%4 == 0
	})
	for _, engine := range []Engine{EngineInterp, EngineJIT} {
		as := NewAddressSpace()
		progs := map[uint64]*Program{}
		tail := func(m *Machine, _, _, idx, _, _ uint64) (uint64, error) {
			if p := progs[idx]; p != nil && m.TailCall(p) {
				return 0, nil
			}
			return 1000, nil
		}
		helpers := make([]HelperFunc, asm.FnTailCall+1)
		helpers[asm.FnTailCall] = tail
		load := func(pol *CtxPolicy, insns ...asm.Instruction) *Program {
			return loadOn(t, insns, Options{AddressSpace: as, Engine: engine, Helpers: helpers, Ctx: pol})
		}
		// callTo tail-calls prog idx, keeping r1 the context; 1000 if it fails.
		callTo := func(idx int32) asm.Instructions {
			return asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R3, idx), asm.FnTailCall.Call(), asm.Return()}
		}
		// wide reads the word at 4 (and marks word 0), then tail-calls 1.
		wide := load(policy(true), append(asm.Instructions{
			asm.LoadMem(asm.R7, asm.R1, 4, asm.Word),
			asm.StoreImm(asm.R1, 0, 1, asm.Word),
		}, callTo(1)...)...)
		// narrow reads word 0, then the word at 4, which it may not.
		narrow := load(policy(false),
			asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, 4, asm.Word),
			asm.Return())
		// back reads word 0 under the narrow policy and tail-calls 2.
		back := load(policy(false), append(asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 0, asm.Word)}, callTo(2)...)...)
		// reader reads the word at 4 under the wide policy.
		reader := load(policy(true), asm.LoadMem(asm.R0, asm.R1, 4, asm.Word), asm.Return())
		progs[1], progs[2] = narrow, reader
		if wide.ctx != reader.ctx || narrow.ctx != back.ctx || wide.ctx == narrow.ctx {
			t.Errorf("%v: equal policies not shared or different ones shared", engine)
		}
		for _, image := range []bool{false, true} {
			img := make(ctxBytes, 32)
			img[4] = 0x44
			fresh, dirty := CtxAllWords, uint64(0)
			m := NewMachine()
			if image {
				m.SetContextAccessor(&ctxBytesImage{ctxBytes: img, fresh: &fresh, dirty: &dirty, plain: plain}, 32)
			} else {
				m.SetContext(img)
			}
			for round := range 3 { // later rounds find the windows published
				if r0, err := m.Run(reader); err != nil || r0 != 0x44 {
					t.Fatalf("%v image %v round %d: reader: r0 = %#x, %v", engine, image, round, r0, err)
				}
				var f *Fault
				if _, err := m.Run(wide); !errors.As(err, &f) || f.Kind != FaultCtxAccess || f.Off != 4 || f.PC != 1 {
					t.Fatalf("%v image %v round %d: wide -> narrow: %v; want narrow's read at 4 to fault", engine, image, round, err)
				}
				if r0, err := m.Run(back); err != nil || r0 != 0x44 {
					t.Fatalf("%v image %v round %d: back -> reader: r0 = %#x, %v; want the read at 4 allowed again", engine, image, round, r0, err)
				}
			}
		}
	}
}

// BenchmarkTailCall_PolicySwitch is a tail call between compiled programs
// whose context policies differ, with a packet and a context image: what
// the switch republishes for compiled code.
func BenchmarkTailCall_PolicySwitch(b *testing.B) {
	as := NewAddressSpace()
	var target *Program
	helpers := make([]HelperFunc, asm.FnTailCall+1)
	helpers[asm.FnTailCall] = func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		m.TailCall(target)
		return 0, nil
	}
	load := func(word4 bool, insns ...asm.Instruction) *Program {
		pol := NewCtxPolicy(32)
		pol.Allow(0, 4, false)
		if word4 {
			pol.Allow(4, 4, false)
		}
		return loadOn(b, insns, Options{AddressSpace: as, Engine: EngineJIT, Helpers: helpers, Ctx: pol})
	}
	entry := load(false, asm.LoadMem(asm.R0, asm.R1, 0, asm.Word), asm.FnTailCall.Call(), asm.Return())
	target = load(true, asm.LoadMem(asm.R0, asm.R1, 4, asm.Word), asm.Return())
	plain := CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
		return off, size, 0, size == 4 && off%4 == 0
	})
	img := make(ctxBytes, 32)
	fresh, dirty := CtxAllWords, uint64(0)
	m := NewMachine()
	m.SetContextAccessor(&ctxBytesImage{ctxBytes: img, fresh: &fresh, dirty: &dirty, plain: plain}, 32)
	if err := m.SetPacket(make([]byte, 64), 0, 0, 64); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.RunCtx(entry); err != nil {
			b.Fatal(err)
		}
	}
}

// loadOn loads insns on opts.Engine, skipping the test where the JIT
// cannot compile them.
func loadOn(tb testing.TB, insns asm.Instructions, opts Options) *Program {
	tb.Helper()
	p, err := Load(insns, opts)
	if err != nil {
		tb.Fatal(err)
	}
	if ok, why := p.Compiled(); opts.Engine == EngineJIT && !ok {
		tb.Skipf("not compiled: %s", why)
	}
	return p
}
