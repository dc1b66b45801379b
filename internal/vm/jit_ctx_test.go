package vm

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// countingImage is a context image whose accessor calls are counted and
// answer what the image does not hold, so a test can tell a load served
// from the image from one that went to the accessor.
type countingImage struct {
	ctxBytesImage
	loads int
}

func (c *countingImage) LoadCtx(off, size int) (uint64, bool) {
	c.loads++
	*c.fresh = CtxAllWords // the accessor lays the image out again
	return 0xacce55, true
}

// TestJIT_CtxShortPath checks compiled code's short path for context
// accesses at constant offsets (jitc.ctxShort): taken with no exit when
// the image is fresh and the site allowed; decided per program, so that
// a program whose policy forbids the same site faults on the Machine the
// other ran on, in either order, and a program whose site of the same
// index the image does not hold goes to the accessor; and never taken once Go has made the
// image stale, before the run or during it (a helper).
func TestJIT_CtxShortPath(t *testing.T) {
	allow := func(off int) *CtxPolicy {
		p := NewCtxPolicy(32)
		p.Allow(off, 4, false)
		return p
	}
	const helper = 5
	var img *countingImage
	helpers := make([]HelperFunc, helper+1)
	helpers[helper] = func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		*img.fresh = 0 // as a helper that changed the packet does
		return 0, nil
	}
	load := asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, 8, asm.Word),
		asm.Return(),
	}
	aroundCall := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, 8, asm.Word), // the image's value
		asm.BuiltinFunc(helper).Call(),
		asm.LoadMem(asm.R0, asm.R6, 8, asm.Word), // stale: the accessor's
		asm.ALUOp(asm.Add).Reg(asm.R0, asm.R7),
		asm.Return(),
	}
	as := NewAddressSpace() // shared, as a collection's programs share one
	mustLoad := func(insns asm.Instructions, pol *CtxPolicy) *Program {
		t.Helper()
		return loadOn(t, insns, Options{Engine: EngineJIT, Ctx: pol, Helpers: helpers, AddressSpace: as})
	}
	allowed, forbidden := mustLoad(load, allow(8)), mustLoad(load, allow(12))
	// Without a policy, at offset 8 and at an offset the image does not
	// hold: the same site index, whose verdict other must not inherit.
	open := mustLoad(load, nil)
	other := mustLoad(asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, 12, asm.Word),
		asm.Return(),
	}, nil)
	calling := mustLoad(aroundCall, allow(8))

	fresh, dirty := CtxAllWords, uint64(0)
	bytes := make(ctxBytes, 32)
	bytes[8], bytes[9] = 0x34, 0x12
	img = &countingImage{ctxBytesImage: ctxBytesImage{ctxBytes: bytes, fresh: &fresh, dirty: &dirty,
		plain: CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
			return off, size, 0, !write && off == 8
		})}}
	m := NewMachine()
	m.SetContextAccessor(img, 32)

	for i, p := range []*Program{allowed, forbidden, allowed, forbidden, open, other, open, other, forbidden, other, allowed} {
		img.loads, m.jit.memExits = 0, 0
		r0, err := m.Run(p)
		switch p {
		case other:
			if err != nil || r0 != 0xacce55 || img.loads != 1 {
				t.Fatalf("run %d: a site the image does not hold: r0 = %#x, %v, %d accessor loads; want the accessor's 0xacce55 once", i, r0, err, img.loads)
			}
			continue
		case forbidden:
			var f *Fault
			if !errors.As(err, &f) || f.Kind != FaultCtxAccess {
				t.Fatalf("run %d: the program whose policy forbids offset 8 got r0 %#x, %v; want a context access fault", i, r0, err)
			}
			continue
		}
		if err != nil || r0 != 0x1234 {
			t.Fatalf("run %d: r0 = %#x, %v; want the image's 0x1234", i, r0, err)
		}
		if img.loads != 0 || m.jit.memExits != 0 {
			t.Errorf("run %d: %d accessor loads, %d memory exits; want the short path's none", i, img.loads, m.jit.memExits)
		}
	}

	img.loads, fresh = 0, 0
	if r0, err := m.Run(allowed); err != nil || r0 != 0xacce55 || img.loads != 1 {
		t.Errorf("stale image before the run: r0 = %#x, %v, %d accessor loads; want the accessor's 0xacce55 once", r0, err, img.loads)
	}

	img.loads = 0
	fresh = CtxAllWords
	if r0, err := m.Run(calling); err != nil || r0 != 0x1234+0xacce55 || img.loads != 1 {
		t.Errorf("image made stale by a helper: r0 = %#x, %v, %d accessor loads; want 0x1234 + 0xacce55 and one", r0, err, img.loads)
	}
}

// TestMachine_ContextChangeBetweenRuns runs one program on one Machine
// while its context changes between runs, from an accessor to plain
// bytes and back: every run follows the context it was given, with the
// program's policy (setPolicy skips a run of the program that ran last,
// which must not keep the permissions of the context before).
func TestMachine_ContextChangeBetweenRuns(t *testing.T) {
	pol := NewCtxPolicy(32)
	pol.Allow(8, 4, false)
	load := func(off int16) *Program {
		p, err := Load(asm.Instructions{asm.LoadMem(asm.R0, asm.R1, off, asm.Word), asm.Return()}, Options{Ctx: pol})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowed, forbidden := load(8), load(12)
	fresh, dirty := uint64(0), uint64(0)
	acc := &countingImage{ctxBytesImage: ctxBytesImage{ctxBytes: make(ctxBytes, 32), fresh: &fresh, dirty: &dirty,
		plain: CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) { return 0, 0, 0, false })}}
	plain := make([]byte, 32)
	plain[8] = 0x22
	m := NewMachine()
	for i, step := range []struct {
		accessor bool
		want     uint64
	}{{true, 0xacce55}, {false, 0x22}, {false, 0x22}, {true, 0xacce55}, {false, 0x22}} {
		if step.accessor {
			m.SetContextAccessor(acc, 32)
		} else {
			m.SetContext(plain)
		}
		if r0, err := m.Run(allowed); err != nil || r0 != step.want {
			t.Fatalf("step %d: r0 = %#x, %v; want %#x", i, r0, err, step.want)
		}
		var f *Fault
		if _, err := m.Run(forbidden); !errors.As(err, &f) || f.Kind != FaultCtxAccess {
			t.Fatalf("step %d: a load the policy forbids: %v; want a context access fault", i, err)
		}
	}

	// During a run: a helper gives the Machine plain bytes.
	helpers := make([]HelperFunc, 2)
	helpers[1] = func(m *Machine, _, _, _, _, _ uint64) (uint64, error) {
		m.SetContext(plain)
		return 0, nil
	}
	p, err := Load(asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.BuiltinFunc(1).Call(),
		asm.LoadMem(asm.R0, asm.R6, 8, asm.Word),
		asm.Return(),
	}, Options{Ctx: pol, Helpers: helpers})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m.SetContextAccessor(acc, 32)
		if r0, err := m.Run(p); err != nil || r0 != 0x22 {
			t.Fatalf("run %d: context replaced by a helper: r0 = %#x, %v; want the new context's 0x22", i, r0, err)
		}
	}
}

// TestJIT_CtxPartialFresh checks that an owner may vouch for only the
// words a compiled program's context sites access (ContextImage,
// CtxSiteWords): with those words fresh the sites read the image with no
// exit; with one of them stale they go to the accessor, as does every
// access that is not a site (an offset in a register) unless the whole
// image is fresh.
func TestJIT_CtxPartialFresh(t *testing.T) {
	load := func(insns asm.Instructions) *Program {
		t.Helper()
		p, err := Load(insns, Options{Engine: EngineJIT})
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := p.Compiled(); !ok {
			t.Skipf("not compiled: %s", why)
		}
		return p
	}
	sites := load(asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R2, asm.R1, 8, asm.Word),
		asm.ALUOp(asm.Add).Reg(asm.R0, asm.R2),
		asm.Return(),
	})
	// The second load's address is r1 plus a loaded value: no site.
	indirect := load(asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 8, asm.Word),
		asm.And.Imm(asm.R2, 4),
		asm.Mov.Reg(asm.R3, asm.R1),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.LoadMem(asm.R0, asm.R3, 8, asm.Word),
		asm.Return(),
	})
	const w1, w2 = 1 << 1, 1 << 2 // the words at 4 and 8
	if got := sites.CtxSiteWords(); got != w1|w2 {
		t.Fatalf("CtxSiteWords = %#x, want %#x", got, w1|w2)
	}
	if got := indirect.CtxSiteWords(); got&w2 == 0 || got&(1<<3) != 0 {
		t.Fatalf("CtxSiteWords of the indirect program = %#x, want the word at 8 and not the one at 12", got)
	}
	bytes := make(ctxBytes, 32)
	bytes[4], bytes[8], bytes[12] = 0x10, 0x04, 0x77
	var fresh, dirty uint64
	img := &countingImage{ctxBytesImage: ctxBytesImage{ctxBytes: bytes, fresh: &fresh, dirty: &dirty,
		plain: CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
			return off, size, 0, !write
		})}}
	m := NewMachine()
	m.SetContextAccessor(img, 32)
	for _, c := range []struct {
		name  string
		p     *Program
		fresh uint64
		r0    uint64
		loads int
	}{
		{"sites, their words fresh", sites, w1 | w2, 0x14, 0},
		{"sites, all fresh", sites, CtxAllWords, 0x14, 0},
		{"sites, one word stale", sites, w2, 0xacce55 + 0x04, 1},
		{"sites, none fresh", sites, 0, 0xacce55 + 0x04, 1},
		{"indirect, its site's word fresh", indirect, w2, 0xacce55, 1},
		{"indirect, all fresh", indirect, CtxAllWords, 0x77, 0},
	} {
		fresh, img.loads = c.fresh, 0
		r0, err := m.Run(c.p)
		if err != nil || r0 != c.r0 || img.loads != c.loads {
			t.Errorf("%s: r0 = %#x, %v, %d accessor loads; want %#x and %d", c.name, r0, err, img.loads, c.r0, c.loads)
		}
	}
}

// TestJIT_CtxSiteInSubprogram: a subprogram's r1 is probably the context
// too, so its constant-offset context loads are sites (CtxSiteWords), and
// they still read whatever r1 holds when it is not the context.
func TestJIT_CtxSiteInSubprogram(t *testing.T) {
	insns := asm.Instructions{
		asm.Call.Label("f"),
		asm.Return(),
		asm.LoadMem(asm.R0, asm.R1, 8, asm.Word).WithSymbol("f"),
		asm.Return(),
	}
	p, err := Load(insns, Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := p.Compiled(); !ok {
		t.Skipf("not compiled: %s", why)
	}
	if got := p.CtxSiteWords(); got != 1<<2 {
		t.Errorf("CtxSiteWords = %#x, want the word at 8", got)
	}
	m := NewMachine()
	ctx := make([]byte, 16)
	ctx[8] = 0x42
	m.SetContext(ctx)
	if r0, err := m.Run(p); err != nil || r0 != 0x42 {
		t.Errorf("r0 = %#x, %v; want 0x42", r0, err)
	}
	// r1 is not the context: the guess fails and the load faults as the
	// interpreter's does.
	q, err := Load(append(asm.Instructions{asm.Mov.Imm(asm.R1, 64)}, insns...), Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	var f *Fault
	if _, err := m.Run(q); !errors.As(err, &f) {
		t.Errorf("a load through 64+8: %v, want a fault", err)
	}
}

// TestJIT_CtxGuessWrong: r1 at op 0 is only probably the context, and a
// site through it checks the register against the address it should hold
// before the image path (jitc.mem, hintAddr); a run whose r1 is a map
// value while the image is live must load and store the map value, at
// the sites' offsets, not the image.
func TestJIT_CtxGuessWrong(t *testing.T) {
	as := NewAddressSpace()
	val := make([]byte, 16)
	val[8] = 0x77
	addr, err := as.Map(Region{Data: val, Stride: 16, SlotSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, 8, asm.Word),
		asm.StoreMem(asm.R1, 12, asm.R0, asm.Word),
		asm.Return(),
	}, Options{Engine: EngineJIT, AddressSpace: as})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := p.Compiled(); !ok {
		t.Skipf("not compiled: %s", why)
	}
	fresh, dirty := CtxAllWords, uint64(0)
	img := make(ctxBytes, 32)
	img[8] = 0x34
	m := NewMachine()
	m.SetContextAccessor(&ctxBytesImage{ctxBytes: img, fresh: &fresh, dirty: &dirty,
		plain: CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) { return off, size, 0, true })}, 32)
	if r0, err := m.Run(p); err != nil || r0 != 0x34 || img[12] != 0x34 || dirty == 0 {
		t.Fatalf("through the context: r0 = %#x, %v, image[12] %#x, dirty %#x; want 0x34 stored at 12", r0, err, img[12], dirty)
	}
	img[12], dirty = 0, 0
	if r0, err := m.Run(p, addr); err != nil || r0 != 0x77 || val[12] != 0x77 || img[12] != 0 || dirty != 0 {
		t.Fatalf("through a map value: r0 = %#x, %v, value[12] %#x, image[12] %#x, dirty %#x; want 0x77 stored in the value only",
			r0, err, val[12], img[12], dirty)
	}
}
