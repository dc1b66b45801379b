package vm

import (
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestJIT_CtxStoreBelowInline checks that compiled code performs the
// conditional image store (CtxPolicy.AllowStoreBelow, queue_mapping's)
// itself, written or dropped, without leaving to Go, through a register
// and through the context hint's constant offset alike, and an aliased
// load (AllowAlias) through the hint too.
func TestJIT_CtxStoreBelowInline(t *testing.T) {
	plain := CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
		switch {
		case write && off == 20 && size == 4:
			return 20, 4, 0xffff, true
		case !write && off == 24 && size == 4:
			return 24, 2, 0, true
		}
		return 0, 0, 0, false
	})
	for _, c := range []struct {
		v    int32
		want uint32
	}{{0x1234, 0x1234}, {0xffff, 0x5555}, {-1, 0x5555}} {
		insns := asm.Instructions{
			asm.Mov.Imm(asm.R2, c.v),
			asm.StoreMem(asm.R1, 20, asm.R2, asm.Word), // r1: the hint's constant path
			// Through the stack, which the analysis does not follow:
			// the generic path's image check.
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
			asm.StoreMem(asm.R3, 20, asm.R2, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, 24, asm.Word), // aliased: 16 bits
			asm.Return(),
		}
		p, err := Load(insns, Options{Engine: EngineJIT})
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := p.Compiled(); !ok {
			t.Skipf("not compiled: %s", why)
		}
		img := make(ctxBytes, 32)
		img[20], img[21] = 0x55, 0x55
		img[24], img[25], img[26] = 0x34, 0x12, 0xee
		fresh, dirty := CtxAllWords, uint64(0)
		m := NewMachine()
		m.SetContextAccessor(&ctxBytesImage{ctxBytes: img, fresh: &fresh, dirty: &dirty, plain: plain}, 32)
		if r0, err := m.Run(p); err != nil || r0 != 0x1234 {
			t.Fatalf("r0 = %#x, %v; want the aliased load's 0x1234", r0, err)
		}
		if got := uint32(img[20]) | uint32(img[21])<<8 | uint32(img[22])<<16 | uint32(img[23])<<24; got != c.want || dirty != 1<<5 {
			t.Errorf("store of %#x: image %#x dirty %#x, want %#x and word 5 dirty", c.v, got, dirty, c.want)
		}
		if m.jit.memExits != 0 {
			t.Errorf("store of %#x: %d memory exits to Go, want none", c.v, m.jit.memExits)
		}
	}
}

type ctxBytes []byte

func (c ctxBytes) LoadCtx(off, size int) (uint64, bool)  { return 0, false }
func (c ctxBytes) StoreCtx(off, size int, v uint64) bool { return false }

type ctxBytesImage struct {
	ctxBytes
	fresh *uint64
	dirty *uint64
	plain *CtxPolicy
}

var _ ContextImage = (*ctxBytesImage)(nil)

func (c *ctxBytesImage) CtxImage() ([]byte, *uint64, *uint64, *CtxPolicy) {
	return c.ctxBytes, c.fresh, c.dirty, c.plain
}
