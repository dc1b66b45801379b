package vm_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// packetProgram exercises most of the machine: a context field, direct
// packet access in a loop, the stack, a bpf-to-bpf call, LD_ABS, a helper
// returning a map value and an atomic add into it. It returns the sum of
// the packet's bytes plus the ctx field.
func packetProgram(t testing.TB) (*vm.Program, *vm.CtxPolicy, []byte) {
	t.Helper()
	as := vm.NewAddressSpace()
	counters := make([]byte, 8)
	base, err := as.Map(vm.Region{Data: counters, Stride: 8})
	if err != nil {
		t.Fatal(err)
	}
	pol := vm.NewCtxPolicy(16)
	pol.AllowField(0, 4, false, false) // data
	pol.AllowField(4, 4, false, false) // data_end
	pol.AllowField(8, 4, false, true)  // a value field
	tbl := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{
		asm.FnMapLookupElem: func(m *vm.Machine, _, key, _, _, _ uint64) (uint64, error) {
			k, err := m.Mem(key, 4, false)
			if err != nil {
				return 0, err
			}
			return base + 8*uint64(binary.LittleEndian.Uint32(k)), nil
		},
	})
	p := load(t, asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Imm(asm.R7, 0),
		asm.JGE.Reg(asm.R2, asm.R3, "done").WithSymbol("loop"),
		asm.LoadMem(asm.R4, asm.R2, 0, asm.Byte),
		asm.Add.Reg(asm.R7, asm.R4),
		asm.Add.Imm(asm.R2, 1),
		asm.Ja.Label("loop"),
		asm.LoadMem(asm.R4, asm.R6, 8, asm.Half).WithSymbol("done"),
		asm.Add.Reg(asm.R7, asm.R4),
		asm.LoadAbs(0, asm.Byte), // packet[0] again, the legacy way
		asm.Sub.Reg(asm.R7, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Call.Label("twice"),
		asm.Add.Reg(asm.R7, asm.R0),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word), // key 0
		asm.LoadMapPtr(asm.R1, 0),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Mov.Reg(asm.R0, asm.R7),
		asm.Return(),
		// twice(x) = x + x - x: keeps r7's sum intact.
		asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("twice"),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord),
		asm.Add.Reg(asm.R0, asm.R2),
		asm.Sub.Reg(asm.R0, asm.R1),
		asm.Return(),
	}, vm.Options{
		AddressSpace: as,
		Ctx:          pol,
		Helpers:      tbl,
		Maps:         func(vm.MapRef) (uint64, error) { return as.NewHandle("counters"), nil },
	})
	return p, pol, counters
}

// setup gives m a packet and a context describing it.
func setup(t testing.TB, m *vm.Machine, pkt, ctx []byte, field uint16) {
	t.Helper()
	if err := m.SetPacket(pkt, 0, 0, len(pkt)); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(ctx[0:], uint32(vm.PacketAddr(0)))
	binary.LittleEndian.PutUint32(ctx[4:], uint32(vm.PacketAddr(len(pkt))))
	binary.LittleEndian.PutUint32(ctx[8:], uint32(field))
	m.SetContext(ctx)
}

func packetSum(pkt []byte, field uint16) uint64 {
	s := uint64(field)
	for _, b := range pkt {
		s += uint64(b)
	}
	return s
}

// TestProgram_ConcurrentMachines runs one Program on several Machines at
// once (run it with -race): per-Machine state must stay private, shared
// map values must only be touched atomically.
func TestProgram_ConcurrentMachines(t *testing.T) {
	p, _, counters := packetProgram(t)
	const workers, runs = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			m := vm.NewMachine()
			pkt := make([]byte, 64+w)
			ctx := make([]byte, 16)
			for i := range runs {
				for j := range pkt {
					pkt[j] = byte(w*31 + i + j)
				}
				setup(t, m, pkt, ctx, uint16(i))
				v, err := m.Run(p)
				if want := packetSum(pkt, uint16(i)); err != nil || v != want {
					t.Errorf("worker %d run %d: r0 = %d, %v; want %d", w, i, v, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := binary.LittleEndian.Uint64(counters); got != workers*runs {
		t.Errorf("shared counter = %d, want %d", got, workers*runs)
	}
	if p.Faults() != 0 {
		t.Errorf("Faults() = %d", p.Faults())
	}
}

// TestMachine_Run_NoAllocs proves the packet path allocation-free.
func TestMachine_Run_NoAllocs(t *testing.T) {
	p, _, _ := packetProgram(t)
	m := vm.NewMachine()
	pkt, ctx := make([]byte, 100), make([]byte, 16)
	setup(t, m, pkt, ctx, 3)
	if _, err := m.Run(p); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := m.Run(p); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Run allocates %v times per run", n)
	}
}
