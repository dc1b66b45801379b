package vm_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// faultEnv is the memory every fault case runs against.
type faultEnv struct {
	as                 *vm.AddressSpace
	vals, ro, gone     uint64
	handle             uint64
	pkt, ctx           []byte
	policy             *vm.CtxPolicy
	helpers            []vm.HelperFunc
	resolve            vm.MapResolver
	dynamic, dynamicRO uint64
}

func newFaultEnv(t *testing.T) *faultEnv {
	e := &faultEnv{as: vm.NewAddressSpace(), pkt: make([]byte, 16), ctx: make([]byte, 16)}
	var err error
	if e.vals, err = e.as.Map(vm.Region{Data: make([]byte, 32), Stride: 16, SlotSize: 12}); err != nil {
		t.Fatal(err)
	}
	if e.ro, err = e.as.Map(vm.Region{Data: make([]byte, 8), ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if e.gone, err = e.as.Map(vm.Region{Data: make([]byte, 8)}); err != nil {
		t.Fatal(err)
	}
	if err := e.as.Unmap(e.gone); err != nil {
		t.Fatal(err)
	}
	e.handle = e.as.NewHandle("a map")
	e.policy = vm.NewCtxPolicy(16)
	e.policy.AllowField(0, 4, false, false)
	e.policy.AllowField(4, 4, false, false)
	e.policy.AllowField(4, 4, true, false)
	e.resolve = func(ref vm.MapRef) (uint64, error) {
		switch ref.Name {
		case "vals":
			if ref.Value() {
				return e.vals + uint64(ref.Offset), nil
			}
			return e.handle, nil
		case "ro":
			return e.ro + uint64(ref.Offset), nil
		}
		return 0, errors.New("unknown map")
	}
	e.helpers = helperTable(map[asm.BuiltinFunc]vm.HelperFunc{
		// r1 = Mem(r1, r2, write=r3)
		1: func(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
			_, err := m.Mem(r1, r2, r3 != 0)
			return 0, err
		},
		2: func(*vm.Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { panic("helper bug") },
		// returns the address of a region mapped and revoked again
		3: func(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
			a, err := m.MapDynamic(make([]byte, 8), false)
			if err != nil {
				return 0, err
			}
			return a, m.UnmapDynamic(a)
		},
		// returns the address of a live read-only dynamic region
		4: func(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
			return m.MapDynamic(make([]byte, 8), true)
		},
		// calls back r1
		5: func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) { return m.Call(r1, 0, 0, 0, 0, 0) },
	})
	return e
}

type faultCase struct {
	name  string
	insns asm.Instructions // exit appended
	ctx   bool             // run with the context (r1 = CtxAddr), else r1 = packet data
	pc    int
	addr  uint64
	size  int
	write bool
	kind  vm.FaultKind
}

// dynamic is the address of the first region a run maps with MapDynamic.
const dynamic = uint64(4) << 32

func faultCases(e *faultEnv) []faultCase {
	ld := func(off int16) asm.Instruction { return asm.LoadMem(asm.R0, asm.R1, off, asm.Word) }
	return []faultCase{
		{"NULL", asm.Instructions{asm.Mov.Imm(asm.R1, 0), ld(0)}, false, 1, 0, 4, false, vm.FaultUnmapped},
		{"small address", asm.Instructions{asm.Mov.Imm(asm.R1, 0x100), ld(0)}, false, 1, 0x100, 4, false, vm.FaultUnmapped},
		{"before data_meta", asm.Instructions{ld(-3)}, false, 0, vm.PacketAddr(1), 4, false, vm.FaultOutOfBounds},
		{"meta is accessible, one byte earlier is not", asm.Instructions{asm.LoadMem(asm.R0, asm.R1, -2, asm.Byte), ld(-3)}, false, 1, vm.PacketAddr(1), 4, false, vm.FaultOutOfBounds},
		{"crosses data_end", asm.Instructions{ld(6)}, false, 0, vm.PacketAddr(10), 4, false, vm.FaultOutOfBounds},
		{"tailroom", asm.Instructions{asm.StoreImm(asm.R1, 9, 1, asm.Byte)}, false, 0, vm.PacketAddr(13), 1, true, vm.FaultOutOfBounds},
		{"packet pointer wraps below 0", asm.Instructions{asm.LoadMem(asm.R0, asm.R1, -0x8000, asm.DWord), asm.LoadMem(asm.R0, asm.R0, -0x8000, asm.DWord)}, false, 0, vm.PacketAddr(4) - 0x8000, 8, false, vm.FaultUnmapped},
		{"garbage region", asm.Instructions{imm64(asm.R1, 0x7fff_0000_0000_0010), ld(0)}, false, 2, 0x7fff_0000_0000_0010, 4, false, vm.FaultUnmapped},
		{"stack above the frame", asm.Instructions{asm.LoadMem(asm.R0, asm.RFP, 0, asm.Byte)}, false, 0, vm.StackAddr(512), 1, false, vm.FaultOutOfBounds},
		{"stack below frame 0", asm.Instructions{asm.LoadMem(asm.R0, asm.RFP, -513, asm.Byte)}, false, 0, vm.StackAddr(0) - 1, 1, false, vm.FaultOutOfBounds},
		{"stack store across the top", asm.Instructions{asm.StoreMem(asm.RFP, -4, asm.R1, asm.DWord)}, false, 0, vm.StackAddr(508), 8, true, vm.FaultOutOfBounds},
		{"ctx past its end", asm.Instructions{ld(16)}, true, 0, vm.CtxAddr + 16, 4, false, vm.FaultOutOfBounds},
		{"ctx misaligned field read", asm.Instructions{ld(1)}, true, 0, vm.CtxAddr + 1, 4, false, vm.FaultCtxAccess},
		{"ctx narrow read not allowed", asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 0, asm.Byte)}, true, 0, vm.CtxAddr, 1, false, vm.FaultCtxAccess},
		{"ctx read-only field", asm.Instructions{asm.StoreImm(asm.R1, 0, 1, asm.Word)}, true, 0, vm.CtxAddr, 4, true, vm.FaultCtxAccess},
		{"ctx unlisted bytes", asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 8, asm.DWord)}, true, 0, vm.CtxAddr + 8, 8, false, vm.FaultCtxAccess},
		{"map value crosses its slot", asm.Instructions{asm.LoadMapValue(asm.R1, 0, 16).WithReference("vals"), asm.LoadMem(asm.R0, asm.R1, 8, asm.DWord)}, false, 2, e.vals + 24, 8, false, vm.FaultSlot},
		{"map value padding", asm.Instructions{asm.LoadMapValue(asm.R1, 0, 12).WithReference("vals"), asm.LoadMem(asm.R0, asm.R1, 0, asm.Byte)}, false, 2, e.vals + 12, 1, false, vm.FaultSlot},
		{"past the last map value", asm.Instructions{asm.LoadMapValue(asm.R1, 0, 16).WithReference("vals"), asm.LoadMem(asm.R0, asm.R1, 16, asm.Byte)}, false, 2, e.vals + 32, 1, false, vm.FaultOutOfBounds},
		{"read-only map", asm.Instructions{asm.LoadMapValue(asm.R1, 0, 0).WithReference("ro"), asm.StoreImm(asm.R1, 0, 1, asm.Byte)}, false, 2, e.ro, 1, true, vm.FaultReadOnly},
		{"map handle is not memory", asm.Instructions{asm.LoadMapPtr(asm.R1, 0).WithReference("vals"), ld(0)}, false, 2, e.handle, 4, false, vm.FaultUnmapped},
		{"function address is not memory", asm.Instructions{
			{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R1, Src: asm.PseudoFunc, Constant: 3},
			ld(0), asm.Return(), asm.Return(),
		}, false, 2, vm.FuncAddr(4), 4, false, vm.FaultUnmapped},
		{"atomic on the packet", asm.Instructions{asm.AddAtomic.Mem(asm.R1, asm.R0, asm.Word, 0)}, false, 0, vm.PacketAddr(4), 4, true, vm.FaultNoAtomic},
		{"atomic on the context", asm.Instructions{asm.AddAtomic.Mem(asm.R1, asm.R0, asm.Word, 4)}, true, 0, vm.CtxAddr + 4, 4, true, vm.FaultNoAtomic},
		{"atomic on a read-only map", asm.Instructions{asm.LoadMapValue(asm.R1, 0, 0).WithReference("ro"), asm.AddAtomic.Mem(asm.R1, asm.R0, asm.Word, 0)}, false, 2, e.ro, 4, true, vm.FaultReadOnly},
		{"misaligned atomic", asm.Instructions{asm.AddAtomic.Mem(asm.RFP, asm.R0, asm.DWord, -12)}, false, 0, vm.StackAddr(500), 8, true, vm.FaultMisaligned},
		{"helper Mem out of bounds", asm.Instructions{asm.Mov.Imm(asm.R2, 13), asm.Mov.Imm(asm.R3, 0), asm.Mov.Imm(asm.R9, 0), asm.FnMapLookupElem.Call()}, false, 3, vm.PacketAddr(4), 13, false, vm.FaultOutOfBounds},
		{"helper Mem write to read-only", asm.Instructions{asm.LoadMapValue(asm.R1, 0, 0).WithReference("ro"), asm.Mov.Imm(asm.R2, 8), asm.Mov.Imm(asm.R3, 1), asm.FnMapLookupElem.Call()}, false, 4, e.ro, 8, true, vm.FaultReadOnly},
		{"revoked dynamic region", asm.Instructions{asm.BuiltinFunc(3).Call(), asm.Mov.Reg(asm.R1, asm.R0), ld(0)}, false, 2, dynamic, 4, false, vm.FaultUnmapped},
		{"read-only dynamic region", asm.Instructions{asm.BuiltinFunc(4).Call(), asm.StoreImm(asm.R0, 0, 1, asm.Byte)}, false, 1, dynamic, 1, true, vm.FaultReadOnly},
		{"unmapped map", asm.Instructions{imm64(asm.R1, e.gone), ld(0)}, false, 2, e.gone, 4, false, vm.FaultUnmapped},
		{"callback to a non-function", asm.Instructions{asm.Mov.Imm(asm.R1, 0), asm.Mov.Imm(asm.R9, 0), asm.BuiltinFunc(5).Call()}, false, 2, 0, 0, false, vm.FaultBadCall},
	}
}

func TestMachine_Run_Faults(t *testing.T) {
	for i := range faultCases(newFaultEnv(t)) {
		e := newFaultEnv(t)
		tc := faultCases(e)[i]
		t.Run(tc.name, func(t *testing.T) {
			insns := append(append(asm.Instructions{}, tc.insns...), asm.Return())
			p := load(t, insns, vm.Options{AddressSpace: e.as, Maps: e.resolve, Helpers: e.helpers, Ctx: e.policy})
			m := vm.NewMachine()
			if err := m.SetPacket(e.pkt, 2, 4, 12); err != nil {
				t.Fatal(err)
			}
			var v uint64
			var err error
			if tc.ctx {
				m.SetContext(e.ctx)
				v, err = m.Run(p)
			} else {
				v, err = m.Run(p, vm.PacketAddr(4))
			}
			var f *vm.Fault
			if !errors.As(err, &f) {
				t.Fatalf("r0 = %#x, err = %v; want a *vm.Fault", v, err)
			}
			if !errors.Is(err, syscall.EFAULT) || v != 0 {
				t.Errorf("r0 = %d, errors.Is(EFAULT) = %v", v, errors.Is(err, syscall.EFAULT))
			}
			// The location fields are TestFault_Where's.
			type core struct {
				PC    int
				Addr  uint64
				Size  int
				Write bool
				Kind  vm.FaultKind
			}
			got, want := core{f.PC, f.Addr, f.Size, f.Write, f.Kind}, core{tc.pc, tc.addr, tc.size, tc.write, tc.kind}
			if got != want {
				t.Errorf("fault %+v\nwant  %+v (%v)", got, want, err)
			}
			if f.Program() != p {
				t.Errorf("Program() = %p, want %p", f.Program(), p)
			}
			if p.Faults() != 1 {
				t.Errorf("Faults() = %d, want 1", p.Faults())
			}
			// The Machine is fit for the next run.
			ok := load(t, asm.Instructions{asm.StoreImm(asm.RFP, -4, 3, asm.Word), asm.LoadMem(asm.R0, asm.RFP, -4, asm.Word), asm.Return()}, vm.Options{AddressSpace: e.as})
			if v, err := m.Run(ok); v != 3 || err != nil {
				t.Errorf("next run: r0 = %d, %v", v, err)
			}
		})
	}
}

func TestMachine_Run_PanicRecovered(t *testing.T) {
	e := newFaultEnv(t)
	p := load(t, asm.Instructions{asm.BuiltinFunc(2).Call(), asm.Return()}, vm.Options{Helpers: e.helpers})
	m := vm.NewMachine()
	v, err := m.Run(p)
	var f *vm.Fault
	if !errors.As(err, &f) || f.Kind != vm.FaultPanic || f.Panic != "helper bug" || v != 0 {
		t.Fatalf("r0 = %d, err = %v; want a FaultPanic", v, err)
	}
	if p.Faults() != 1 {
		t.Errorf("Faults() = %d, want 1", p.Faults())
	}
	for range 3 {
		m.Run(p) //nolint:errcheck // counted below
	}
	if p.Faults() != 4 {
		t.Errorf("Faults() = %d after four panics", p.Faults())
	}
}

func TestMachine_Run_CallxBadHelper(t *testing.T) {
	p, err := vm.LoadRaw(raw(
		[5]int64{0xb7, 2, 0, 0, 77}, // r2 = 77
		[5]int64{0x8d, 2, 0, 0, 0},  // callx r2
		exitInsn), engineOpts(vm.Options{AllowCallx: true, Helpers: make([]vm.HelperFunc, 8)}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = vm.NewMachine().Run(p)
	var f *vm.Fault
	if !errors.As(err, &f) || f.Kind != vm.FaultBadCall || f.PC != 1 || f.Addr != 77 {
		t.Errorf("err = %v", err)
	}
}

// TestFault_Where: a fault says where the access went in the program's
// terms: a packet offset from data, a stack offset from the frame pointer,
// a context offset, a map value and offset, or NULL.
func TestFault_Where(t *testing.T) {
	e := newFaultEnv(t)
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		ctx   bool
		want  string
	}{
		{"packet past data_end", asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 6, asm.Word)}, false,
			"read of 4 bytes at packet offset 6 (the packet is 8 bytes): out of bounds"},
		{"packet metadata", asm.Instructions{asm.StoreImm(asm.R1, -4, 1, asm.Byte)}, false,
			"write of 1 bytes at packet offset -4 (the packet is 8 bytes): out of bounds"},
		{"context", asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 8, asm.Word)}, true,
			"read of 4 bytes at context offset 8 (of 16 bytes): context access denied"},
		{"map value", asm.Instructions{asm.LoadMapValue(asm.R2, 0, 16).WithReference("vals"), asm.LoadMem(asm.R0, asm.R2, 10, asm.Word)}, false,
			"read of 4 bytes at offset 10 of value 1 of a map (values are 12 bytes): crosses map value slot"},
		{"NULL", asm.Instructions{asm.Mov.Imm(asm.R2, 0), asm.LoadMem(asm.R0, asm.R2, 16, asm.DWord)}, false,
			"read of 8 bytes at NULL+16: unmapped address"},
		{"stack above the frame", asm.Instructions{asm.Mov.Reg(asm.R2, asm.RFP), asm.LoadMem(asm.R0, asm.R2, 8, asm.DWord)}, false,
			"read of 8 bytes at stack fp+8: out of bounds"},
	} {
		p := load(t, append(c.insns, asm.Return()), vm.Options{AddressSpace: e.as, Maps: e.resolve, Helpers: e.helpers, Ctx: e.policy})
		m := vm.NewMachine()
		if err := m.SetPacket(e.pkt, 2, 4, 12); err != nil {
			t.Fatal(err)
		}
		var err error
		if c.ctx {
			m.SetContext(e.ctx)
			_, err = m.Run(p)
		} else {
			_, err = m.Run(p, vm.PacketAddr(4))
		}
		if err == nil || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant ...%s", c.name, err, c.want)
		}
	}
}
