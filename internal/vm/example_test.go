package vm_test

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// The wiring a runtime does: one AddressSpace for its maps, programs
// loaded with a helper table and a map resolver, one Machine per goroutine
// fed a packet and a context per run.
func Example() {
	as := vm.NewAddressSpace()

	// A one-value array map: its value lives in a region; the program gets
	// an opaque handle for the map itself.
	counter := make([]byte, 8)
	valueAddr, _ := as.Map(vm.Region{Data: counter, Stride: 8})
	handle := as.NewHandle("counter map")

	helpers := make([]vm.HelperFunc, asm.FnMapLookupElem+1)
	helpers[asm.FnMapLookupElem] = func(m *vm.Machine, mapHandle, keyPtr, _, _, _ uint64) (uint64, error) {
		if obj, _ := m.AddressSpace().Object(mapHandle); obj != "counter map" {
			return 0, nil // NULL
		}
		if _, err := m.Mem(keyPtr, 4, false); err != nil {
			return 0, err
		}
		return valueAddr, nil
	}

	// __sk_buff-like context: u32 data at 0, u32 data_end at 4, read-only.
	ctxPolicy := vm.NewCtxPolicy(8)
	ctxPolicy.AllowField(0, 4, false, false)
	ctxPolicy.AllowField(4, 4, false, false)

	prog, err := vm.Load(asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"), // shorter than an Ethernet header
		asm.LoadMem(asm.R6, asm.R2, 12, asm.Half),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("counter"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Mov.Reg(asm.R0, asm.R6),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("drop"),
		asm.Return(),
	}, vm.Options{
		AddressSpace: as,
		Helpers:      helpers,
		Ctx:          ctxPolicy,
		Maps: func(ref vm.MapRef) (uint64, error) {
			if ref.Name != "counter" {
				return 0, fmt.Errorf("no map %q", ref.Name)
			}
			return handle, nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	m := vm.NewMachine()
	m.SetLimit(1 << 20)
	frame := make([]byte, 60)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	ctx := make([]byte, 8)
	for _, n := range []int{60, 10} {
		_ = m.SetPacket(frame, 0, 0, n)
		binary.LittleEndian.PutUint32(ctx[0:], uint32(vm.PacketAddr(0)))
		binary.LittleEndian.PutUint32(ctx[4:], uint32(vm.PacketAddr(n)))
		m.SetContext(ctx)
		r0, err := m.Run(prog)
		fmt.Printf("%d bytes: r0=%#x err=%v\n", n, r0, err)
	}
	fmt.Println("counter:", binary.LittleEndian.Uint64(counter))
	// Output:
	// 60 bytes: r0=0x8 err=<nil>
	// 10 bytes: r0=0x2 err=<nil>
	// counter: 1
}
