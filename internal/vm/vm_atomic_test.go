package vm_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// atomicCase stores init at [r10-8], runs the atomic with r1 = operand (and
// r0 = cmp for cmpxchg), then returns mem, r1 (fetched) and r0.
func TestMachine_Run_Atomic(t *testing.T) {
	init, v := uint64(0x00ff_00ff_f0f0_f0f0), uint64(0x0f0f_0f0f_ffff_0001)
	for _, tc := range []struct {
		name             string
		op               asm.AtomicOp
		size             asm.Size
		r0in             uint64 // r0 before (cmpxchg's expected value)
		mem, fetched, r0 uint64 // expected afterwards
	}{
		{"add64", asm.AddAtomic, asm.DWord, 0, init + v, v, 0},
		{"add32", asm.AddAtomic, asm.Word, 0, init&^0xffff_ffff | uint64(uint32(init)+uint32(v)), v, 0},
		{"fetch add64", asm.FetchAdd, asm.DWord, 0, init + v, init, 0},
		{"fetch add32 zero-extends", asm.FetchAdd, asm.Word, 0, init&^0xffff_ffff | uint64(uint32(init)+uint32(v)), uint64(uint32(init)), 0},
		{"or64", asm.OrAtomic, asm.DWord, 0, init | v, v, 0},
		{"fetch or32", asm.FetchOr, asm.Word, 0, init | uint64(uint32(v)), uint64(uint32(init)), 0},
		{"and64", asm.AndAtomic, asm.DWord, 0, init & v, v, 0},
		{"fetch and64", asm.FetchAnd, asm.DWord, 0, init & v, init, 0},
		{"and32 keeps high half", asm.AndAtomic, asm.Word, 0, init&^0xffff_ffff | uint64(uint32(init)&uint32(v)), v, 0},
		{"xor64", asm.XorAtomic, asm.DWord, 0, init ^ v, v, 0},
		{"fetch xor32", asm.FetchXor, asm.Word, 0, init ^ uint64(uint32(v)), uint64(uint32(init)), 0},
		{"xchg64", asm.Xchg, asm.DWord, 0, v, init, 0},
		{"xchg32", asm.Xchg, asm.Word, 0, init&^0xffff_ffff | uint64(uint32(v)), uint64(uint32(init)), 0},
		{"cmpxchg64 match", asm.CmpXchg, asm.DWord, init, v, v, init},
		{"cmpxchg64 mismatch", asm.CmpXchg, asm.DWord, 1, init, v, init},
		{"cmpxchg32 match ignores r0 high half", asm.CmpXchg, asm.Word, 0xdead_0000_0000_0000 | uint64(uint32(init)), init&^0xffff_ffff | uint64(uint32(v)), v, uint64(uint32(init))},
		{"cmpxchg32 mismatch", asm.CmpXchg, asm.Word, 5, init, v, uint64(uint32(init))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, 24)
			m := vm.NewMachine()
			if err := m.SetPacket(out, 0, 0, len(out)); err != nil {
				t.Fatal(err)
			}
			p := load(t, asm.Instructions{
				imm64(asm.R2, init),
				asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord),
				imm64(asm.R1, v),
				imm64(asm.R0, tc.r0in),
				tc.op.Mem(asm.RFP, asm.R1, tc.size, -8),
				imm64(asm.R9, vm.PacketAddr(0)),
				asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord),
				asm.StoreMem(asm.R9, 0, asm.R2, asm.DWord),
				asm.StoreMem(asm.R9, 8, asm.R1, asm.DWord),
				asm.StoreMem(asm.R9, 16, asm.R0, asm.DWord),
				asm.Return(),
			}, vm.Options{})
			if _, err := m.Run(p); err != nil {
				t.Fatal(err)
			}
			got := [3]uint64{binary.LittleEndian.Uint64(out), binary.LittleEndian.Uint64(out[8:]), binary.LittleEndian.Uint64(out[16:])}
			if want := [3]uint64{tc.mem, tc.fetched, tc.r0}; got != want {
				t.Errorf("mem, r1, r0 = %#x\nwant          %#x", got, want)
			}
		})
	}
}

// TestLoad_AtomicEncoding pins the workaround for asm's Marshal, which
// drops the operation of DSL-built atomics: a raw-decoded and a DSL-built
// fetch-add must behave the same.
func TestLoad_AtomicEncoding(t *testing.T) {
	raw := []byte{
		0xb7, 0x01, 0, 0, 5, 0, 0, 0, // r1 = 5
		0x7a, 0x0a, 0xf8, 0xff, 2, 0, 0, 0, // *(u64 *)(r10-8) = 2
		0xdb, 0x1a, 0xf8, 0xff, 0x01, 0, 0, 0, // r1 = atomic_fetch_add((u64 *)(r10-8), r1)
		0xbf, 0x10, 0, 0, 0, 0, 0, 0, // r0 = r1
		0x95, 0, 0, 0, 0, 0, 0, 0,
	}
	p, err := vm.LoadRaw(raw, engineOpts(vm.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	fromRaw, err := vm.NewMachine().Run(p)
	if err != nil {
		t.Fatal(err)
	}
	fromDSL := r0(t,
		asm.Mov.Imm(asm.R1, 5),
		stdw(asm.RFP, -8, 2),
		asm.FetchAdd.Mem(asm.RFP, asm.R1, asm.DWord, -8),
		asm.Mov.Reg(asm.R0, asm.R1),
	)
	if fromRaw != 2 || fromDSL != 2 {
		t.Errorf("fetch-add returned %d (raw) and %d (asm DSL), want 2", fromRaw, fromDSL)
	}
}

// TestMachine_Run_AtomicSharedMap increments one map value from many
// goroutines, each with its own Machine: atomics must really be atomic.
func TestMachine_Run_AtomicSharedMap(t *testing.T) {
	as := vm.NewAddressSpace()
	vals := make([]byte, 16)
	base, err := as.Map(vm.Region{Data: vals, Stride: 16})
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, asm.Instructions{
		asm.LoadMapValue(asm.R6, 0, 0).WithReference("counters"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R6, asm.R1, asm.DWord, 0),
		asm.Mov.Imm(asm.R1, 3),
		asm.FetchAdd.Mem(asm.R6, asm.R1, asm.Word, 8),
		asm.Mov.Reg(asm.R0, asm.R1),
		asm.Return(),
	}, vm.Options{AddressSpace: as, Maps: func(ref vm.MapRef) (uint64, error) { return base + uint64(ref.Offset), nil }})
	const workers, runs = 4, 2000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			m := vm.NewMachine()
			for range runs {
				if _, err := m.Run(p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := binary.LittleEndian.Uint64(vals); got != workers*runs {
		t.Errorf("counter = %d, want %d", got, workers*runs)
	}
	if got := binary.LittleEndian.Uint32(vals[8:]); got != 3*workers*runs {
		t.Errorf("fetch-add counter = %d, want %d", got, 3*workers*runs)
	}
}
