package skb_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

var asmSize = map[int]asm.Size{1: asm.Byte, 2: asm.Half, 4: asm.Word, 8: asm.DWord}

// kernelRunner loads one SCHED_CLS program; a verifier rejection is an error.
func kernelRunner(t *testing.T, insns asm.Instructions) (*kernel.TestRunner, error) {
	r, err := kernel.NewTestRunner(&ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"p": {Name: "p", Type: ebpf.SchedCLS, License: "GPL", Instructions: insns},
	}})
	if err == nil {
		t.Cleanup(func() { r.Close() })
	}
	return r, err
}

// TestCtxAccess_Kernel asks the verifier about every access to
// struct __sk_buff and its surroundings.
func TestCtxAccess_Kernel(t *testing.T) {
	kerneltest.RequireKernel(t)
	allowed := 0
	for off := -8; off < skb.CtxSize+8; off++ {
		for _, size := range []int{1, 2, 4, 8} {
			for _, write := range []bool{false, true} {
				insns := asm.Instructions{asm.LoadMem(asm.R0, asm.R1, int16(off), asmSize[size])}
				if write {
					insns = asm.Instructions{asm.Mov.Imm(asm.R2, 0), asm.StoreMem(asm.R1, int16(off), asm.R2, asmSize[size])}
				}
				insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
				_, err := kernelRunner(t, insns)
				if got := skb.CtxAccess(off, size, write); got != (err == nil) {
					t.Errorf("off %d size %d write %v: verifier accepts %v, CtxAccess %v", off, size, write, err == nil, got)
				}
				if err == nil {
					allowed++
				}
			}
		}
	}
	if allowed < 100 {
		t.Fatalf("the verifier accepted only %d accesses; the probe is broken", allowed)
	}
}

// TestCtxLoad_Kernel compares every allowed load (data pointers and sk
// aside) with CtxLoad on the image of the same packet, after helpers and
// stores made every field non-zero.
func TestCtxLoad_Kernel(t *testing.T) {
	kerneltest.RequireKernel(t)
	data := testFrame(skb.EthPIP, 80)
	ctx := make([]byte, skb.CtxSize)
	le := binary.LittleEndian
	le.PutUint32(ctx[skb.CtxMark:], 0x11223344)
	le.PutUint32(ctx[skb.CtxPriority:], 0x55667788)
	le.PutUint32(ctx[skb.CtxIngressIfindex:], 0x0a0b0c0d)
	for i := range 20 {
		ctx[skb.CtxCB+i] = byte(0x90 + i)
	}
	le.PutUint64(ctx[skb.CtxTstamp:], 0x0102030405060708)
	le.PutUint32(ctx[skb.CtxWireLen:], 0x1234)
	le.PutUint32(ctx[skb.CtxGSOSegs:], 0xabcd)
	le.PutUint32(ctx[skb.CtxGSOSize:], 0x4321)
	le.PutUint64(ctx[skb.CtxHWTstamp:], 0x1112131415161718)
	prologue := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R2, 0xa888), asm.Mov.Imm(asm.R3, 0xbeef), asm.FnSkbVlanPush.Call(),
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm32(asm.R2, -0x6543210f), asm.FnSetHash.Call(),
		asm.Mov.Imm(asm.R2, 0x1a5a5), asm.StoreMem(asm.R6, skb.CtxTCIndex, asm.R2, asm.Word),
		asm.Mov.Imm(asm.R2, 0x2b6b6), asm.StoreMem(asm.R6, skb.CtxTCClassid, asm.R2, asm.Word),
		asm.Mov.Imm(asm.R2, 0x0302), asm.StoreMem(asm.R6, skb.CtxQueueMapping, asm.R2, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, skb.PacketMulticast), asm.FnSkbChangeType.Call(),
	}
	var p skb.Packet
	if err := p.ResetTestRun(data, ctx, nil); err != nil {
		t.Fatal(err)
	}
	var img [skb.CtxSize]byte
	p.VlanPush(0xa888, 0xbeef)
	p.SetHash(0x9abcdef1)
	p.WriteCtx(img[:], 0)
	p.StoreCtx(img[:], skb.CtxTCIndex, 4, 0x1a5a5)
	p.StoreCtx(img[:], skb.CtxTCClassid, 4, 0x2b6b6)
	p.StoreCtx(img[:], skb.CtxQueueMapping, 4, 0x0302)
	p.ChangeType(skb.PacketMulticast)
	p.WriteCtx(img[:], 0)
	for off := 0; off < skb.CtxSize; off++ {
		for _, size := range []int{1, 2, 4, 8} {
			switch {
			case !skb.CtxAccess(off, size, false), off == skb.CtxData, off == skb.CtxDataEnd,
				off == skb.CtxDataMeta, off == skb.CtxSk:
				continue
			}
			for _, shift := range []int32{0, 32} {
				if shift == 32 && size != 8 {
					continue
				}
				insns := append(append(asm.Instructions{}, prologue...),
					asm.LoadMem(asm.R0, asm.R6, int16(off), asmSize[size]), asm.RSh.Imm(asm.R0, shift), asm.Return())
				r, err := kernelRunner(t, insns)
				if err != nil {
					t.Fatalf("off %d size %d: %v", off, size, err)
				}
				out, err := r.Run("p", kernel.RunInput{Data: data, Ctx: ctx})
				if err != nil {
					t.Fatal(err)
				}
				if want := uint32(skb.CtxLoad(img[:], off, size) >> shift); out.Retval != want {
					t.Errorf("load off %d size %d (>>%d): kernel %#x, CtxLoad %#x", off, size, shift, out.Retval, want)
				}
			}
		}
	}
}

// TestPacket_StoreCtx_Kernel stores values around every truncation and
// drop rule and reads the field back.
func TestPacket_StoreCtx_Kernel(t *testing.T) {
	kerneltest.RequireKernel(t)
	data := testFrame(skb.EthPIP, 60)
	for off := 0; off < skb.CtxSize; off++ {
		for _, size := range []int{1, 2, 4, 8} {
			if !skb.CtxAccess(off, size, true) {
				continue
			}
			roff, rsize := off, size
			if off < skb.CtxCB || off >= skb.CtxCB+20 {
				roff, rsize = off&^3, max(4, size)
			}
			for _, v := range []uint64{0, 5, 0xfffe, 0xffff, 0x10000, 0x12345, 0x1_0000_0005, 0xffffffff, 0xfedcba9876543210} {
				r, err := kernelRunner(t, asm.Instructions{
					asm.LoadImm(asm.R2, int64(v), asm.DWord),
					asm.StoreMem(asm.R1, int16(off), asm.R2, asmSize[size]),
					asm.LoadMem(asm.R0, asm.R1, int16(roff), asmSize[rsize]),
					asm.Return(),
				})
				if err != nil {
					t.Fatalf("off %d size %d: %v", off, size, err)
				}
				out, err := r.Run("p", kernel.RunInput{Data: data})
				if err != nil {
					t.Fatal(err)
				}
				var p skb.Packet
				if err := p.ResetTestRun(data, nil, nil); err != nil {
					t.Fatal(err)
				}
				var img [skb.CtxSize]byte
				p.WriteCtx(img[:], 0)
				if !p.StoreCtx(img[:], off, size, v) {
					t.Fatalf("StoreCtx refused off %d size %d", off, size)
				}
				if want := uint32(skb.CtxLoad(img[:], roff, rsize)); out.Retval != want {
					t.Errorf("store off %d size %d value %#x: kernel reads back %#x, go %#x", off, size, v, out.Retval, want)
				}
			}
		}
	}
}
