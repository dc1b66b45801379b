package vm_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/skb"
)

// The packet helpers as the engine describes them (engine/pkthelpers.go)
// and wraps them (engine/helpers_skb.go), on skb.Packet, with a count of
// the calls that reached Go.
const plainCsum = 1<<skb.ChecksumNone | 1<<skb.ChecksumUnnecessary

var testPacketHelpers = map[int32]vm.PacketHelper{
	int32(asm.FnL3CsumReplace): {Op: vm.PacketCsumReplace},
	int32(asm.FnL4CsumReplace): {Op: vm.PacketCsumReplace,
		Flags:    skb.FMarkMangled0 | skb.FMarkEnforce | skb.FPseudoHdr | skb.FIPv6,
		GuardAll: true, Plain: plainCsum, Mangled0: skb.FMarkMangled0, Enforce: skb.FMarkEnforce, Wide2: true},
	int32(asm.FnSkbStoreBytes): {Op: vm.PacketStore, Flags: skb.FRecomputeCsum, Guarded: skb.FRecomputeCsum, Plain: plainCsum},
	int32(asm.FnSkbLoadBytes):  {Op: vm.PacketLoad},
	int32(asm.FnRedirect): {Op: vm.PacketRecord, Flags: skb.FIngress, Shift: skb.RedirectIngressShift,
		Tag: skb.RedirectWord(skb.RedirectDev, 0, false), Ret: skb.ActRedirect},
	int32(asm.FnRedirectPeer): {Op: vm.PacketRecord, Tag: skb.RedirectWord(skb.RedirectPeer, 0, false), Ret: skb.ActRedirect},
}

type pktEnv struct {
	p     *skb.Packet
	calls int
}

func (e *pktEnv) helpers() []vm.HelperFunc {
	mem := func(m *vm.Machine, a, n uint64, w bool) ([]byte, error) { return m.Mem(a, uint64(uint32(n)), w) }
	return helperTable(map[asm.BuiltinFunc]vm.HelperFunc{
		asm.FnL3CsumReplace: func(_ *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
			e.calls++
			return uint64(e.p.L3CsumReplace(uint32(r2), r3, r4, r5)), nil
		},
		asm.FnL4CsumReplace: func(_ *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
			e.calls++
			return uint64(e.p.L4CsumReplace(uint32(r2), r3, r4, r5)), nil
		},
		asm.FnSkbStoreBytes: func(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
			e.calls++
			b, err := mem(m, r3, r4, false)
			if err != nil {
				return 0, err
			}
			return uint64(e.p.StoreBytes(uint32(r2), b, r5)), nil
		},
		asm.FnSkbLoadBytes: func(m *vm.Machine, _, r2, r3, r4, _ uint64) (uint64, error) {
			e.calls++
			b, err := mem(m, r3, r4, true)
			if err != nil {
				return 0, err
			}
			return uint64(e.p.LoadBytes(uint32(r2), b)), nil
		},
		asm.FnRedirect: func(_ *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
			e.calls++
			return uint64(e.p.Redirect(uint32(r1), r2)), nil
		},
		asm.FnRedirectPeer: func(_ *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
			e.calls++
			return uint64(e.p.RedirectPeer(uint32(r1), r2)), nil
		},
	})
}

// pktCase is one call: the helper, its arguments (r1-r5; r3 of the copy
// helpers is replaced by where src says), the copy size as a constant in
// the program (-1: r4 from the arguments), the packet's state.
type pktCase struct {
	fn       asm.BuiltinFunc
	r        [5]uint64
	size     int
	where    int // copy helpers: 0 stack, 1 the packet, 2 NULL, 3 past the stack
	ipSummed skb.CsumState
	frame    int // frame length
}

// program builds the call: the stack's 64 bytes below r10 hold a
// pattern, the copy helpers point r3 at where, and after the call r0-r5
// and the stack are folded into r0.
func (c pktCase) program() asm.Instructions {
	var in asm.Instructions
	for i := range 8 {
		in = append(in, imm64(asm.R0, 0x0102030405060708*uint64(i+1)^0xa5a5a5a5a5a5a5a5), asm.StoreMem(asm.RFP, int16(-64+8*i), asm.R0, asm.DWord))
	}
	if c.fn == asm.FnSkbStoreBytes || c.fn == asm.FnSkbLoadBytes {
		switch c.where {
		case 0:
			in = append(in, asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -64+int32(c.r[2]%16)))
		case 1:
			in = append(in, imm64(asm.R3, vm.PacketBase+c.r[2]%24))
		case 2:
			in = append(in, asm.Mov.Imm(asm.R3, 0))
		case 3:
			in = append(in, asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -4))
		}
		if c.size >= 0 {
			in = append(in, asm.Mov.Imm(asm.R4, int32(c.size)))
		}
	}
	in = append(in, c.fn.Call(), asm.Mov.Reg(asm.R6, asm.R0))
	for _, r := range []asm.Register{asm.R1, asm.R2, asm.R3, asm.R4, asm.R5} {
		in = append(in, asm.Mul.Imm(asm.R6, 0x3f1), asm.Xor.Reg(asm.R6, r))
	}
	for i := range 8 {
		in = append(in, asm.LoadMem(asm.R7, asm.RFP, int16(-64+8*i), asm.DWord), asm.Mul.Imm(asm.R6, 0x3f1), asm.Xor.Reg(asm.R6, asm.R7))
	}
	return append(in, asm.Mov.Reg(asm.R0, asm.R6), asm.Return())
}

// runPkt runs c on engine e and describes everything the call may
// change; calls is how many calls reached the Go helper.
func runPkt(t *testing.T, c pktCase, e vm.Engine) (string, int) {
	frame := make([]byte, c.frame)
	rng := rand.New(rand.NewPCG(c.r[0], c.r[1]))
	for i := range frame {
		frame[i] = byte(rng.Uint32())
	}
	for i := 0; i+1 < len(frame) && i < 40; i += 7 {
		frame[i], frame[i+1] = 0, 0 // zero checksums for MANGLED_0
	}
	p, err := skb.New(frame, skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	p.IPSummed, p.Csum = c.ipSummed, uint32(c.r[4])
	env := &pktEnv{p: p}
	prog, err := vm.Load(c.program(), vm.Options{Helpers: env.helpers(), Engine: e, PacketHelpers: testPacketHelpers})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := prog.Compiled(); e == vm.EngineJIT && !ok {
		t.Fatalf("not compiled: %s", why)
	}
	m := vm.NewMachine()
	d := p.Data()
	if err := m.SetPacket(d, 0, 0, len(d)); err != nil {
		t.Fatal(err)
	}
	m.SetPacketState(p.HelperState())
	r0, err := m.Run(prog, c.r[:]...)
	return fmt.Sprintf("r0 %#x err %v executed %d packet %x ip_summed %d csum %#x redirect %+v",
		r0, err, m.Executed(), p.Data(), p.IPSummed, p.Csum, p.PendingRedirect()), env.calls
}

// native says whether compiled code should perform c itself.
func (c pktCase) native() bool {
	off, n := uint64(uint32(c.r[1])), uint64(c.size)
	plain := c.ipSummed <= skb.ChecksumUnnecessary
	switch c.fn {
	case asm.FnL3CsumReplace, asm.FnL4CsumReplace:
		fl := c.r[4]
		sz := fl & 0xf
		if off&1 != 0 || off > 0xffff || off+2 > uint64(c.frame) || (sz != 0 && sz != 2 && sz != 4) || (sz == 0 && c.r[2] != 0) {
			return false
		}
		if c.fn == asm.FnL3CsumReplace {
			return fl&^0xf == 0
		}
		return plain && fl&^uint64(0xf|skb.FMarkMangled0|skb.FMarkEnforce|skb.FPseudoHdr|skb.FIPv6) == 0
	case asm.FnSkbStoreBytes, asm.FnSkbLoadBytes:
		if c.size <= 0 || c.where != 0 || off > 1<<31-1 || off+n > uint64(c.frame) {
			return false
		}
		if c.fn == asm.FnSkbLoadBytes {
			return true
		}
		fl := c.r[4]
		return fl&^uint64(skb.FRecomputeCsum) == 0 && (fl == 0 || plain)
	case asm.FnRedirect:
		return c.r[1]&^1 == 0
	case asm.FnRedirectPeer:
		return c.r[1] == 0
	}
	return false
}

func randPktCase(rng *rand.Rand) pktCase {
	fns := []asm.BuiltinFunc{asm.FnL3CsumReplace, asm.FnL4CsumReplace, asm.FnSkbStoreBytes, asm.FnSkbLoadBytes, asm.FnRedirect, asm.FnRedirectPeer}
	c := pktCase{fn: fns[rng.IntN(len(fns))], frame: 14 + rng.IntN(60), ipSummed: skb.CsumState(rng.IntN(4)), size: -1}
	for i := range c.r {
		c.r[i] = rng.Uint64()
		if rng.IntN(2) == 0 {
			c.r[i] = uint64(rng.IntN(80))
		}
	}
	if rng.IntN(3) != 0 {
		c.r[1] = uint64(rng.IntN(c.frame)) &^ 1
	}
	switch c.fn {
	case asm.FnL3CsumReplace, asm.FnL4CsumReplace:
		c.r[4] = []uint64{0, 2, 4, 3, 8}[rng.IntN(5)]
		if rng.IntN(2) == 0 {
			c.r[4] |= []uint64{skb.FPseudoHdr, skb.FMarkMangled0, skb.FMarkMangled0 | skb.FMarkEnforce, skb.FIPv6, skb.FMarkEnforce, 1 << 8, skb.FPseudoHdr | skb.FMarkMangled0}[rng.IntN(7)]
		}
		if c.r[4]&0xf == 0 && rng.IntN(3) != 0 {
			c.r[2] = 0
		}
		if rng.IntN(4) == 0 {
			c.r[2], c.r[3] = c.r[2]&0xffff, 0 // to 0: results of 0 and 0xffff
		}
	case asm.FnSkbStoreBytes, asm.FnSkbLoadBytes:
		c.size = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 20, 24, 40, 48, 2, 4, 6}[rng.IntN(21)]
		if rng.IntN(8) == 0 {
			c.size = -1
		}
		c.where = []int{0, 0, 0, 0, 1, 2, 3}[rng.IntN(7)]
		c.r[4] = []uint64{0, 0, skb.FRecomputeCsum, skb.FInvalidateHash, 4}[rng.IntN(5)]
	case asm.FnRedirect, asm.FnRedirectPeer:
		c.r[1] = []uint64{0, 1, 2, 1 << 40, c.r[1]}[rng.IntN(5)]
	}
	return c
}

// TestPacketHelpers_BothEngines: compiled code performs the helpers of
// Options.PacketHelpers itself, and everything a call can change
// (r0-r5, the stack, the packet's bytes, ip_summed, csum, the pending
// redirect, the instruction count, faults) is what the Go helper gives
// in the interpreter; the cases it should perform never reach Go.
func TestPacketHelpers_BothEngines(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	nativeCalls, jitCalls, interpCalls := 0, 0, 0
	for i := range 4000 {
		c := randPktCase(rng)
		want, ci := runPkt(t, c, vm.EngineInterp)
		got, cj := runPkt(t, c, vm.EngineJIT)
		if got != want {
			t.Fatalf("case %d %+v:\ninterpreter %s\njit         %s", i, c, want, got)
		}
		if c.native() {
			nativeCalls++
			if cj != 0 {
				t.Errorf("case %d %+v: %d calls reached Go, want none", i, c, cj)
			}
		}
		jitCalls += cj
		interpCalls += ci
	}
	if nativeCalls < 800 {
		t.Errorf("only %d of 4000 cases compiled", nativeCalls)
	}
	t.Logf("%d cases performed in compiled code; Go helper calls: interpreter %d, jit %d", nativeCalls, interpCalls, jitCalls)
}

// TestPacketHelpers_NoAllocs: a compiled csum replace and redirect
// allocate nothing.
func TestPacketHelpers_NoAllocs(t *testing.T) {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R2, 24), asm.Mov.Imm(asm.R3, 0x1234), asm.Mov.Imm(asm.R4, 0x4321), asm.Mov.Imm(asm.R5, 2),
		asm.FnL3CsumReplace.Call(),
		asm.Mov.Imm(asm.R1, 5), asm.Mov.Imm(asm.R2, 0), asm.FnRedirect.Call(),
		asm.Return(),
	}
	p, _ := skb.New(make([]byte, 60), skb.Loopback())
	env := &pktEnv{p: p}
	prog, err := vm.Load(insns, vm.Options{Helpers: env.helpers(), Engine: vm.EngineJIT, PacketHelpers: testPacketHelpers})
	if err != nil {
		t.Fatal(err)
	}
	m := vm.NewMachine()
	d := p.Data()
	if err := m.SetPacket(d, 0, 0, len(d)); err != nil {
		t.Fatal(err)
	}
	m.SetPacketState(p.HelperState())
	if n := testing.AllocsPerRun(100, func() { m.Run(prog) }); n != 0 { //nolint:errcheck
		t.Errorf("%v allocations a run", n)
	}
	if binary.LittleEndian.Uint16(d[24:]) == 0 || env.calls != 0 || p.PendingRedirect().Ifindex != 5 {
		t.Errorf("checksum %#x, %d Go calls, redirect %+v", binary.LittleEndian.Uint16(d[24:]), env.calls, p.PendingRedirect())
	}
}

// BenchmarkPacketHelpers: a run of l3_csum_replace, l4_csum_replace
// (pseudo header), store_bytes of 4 bytes from the stack, load_bytes of 2
// and redirect, compiled (native) and with every call leaving to Go.
func BenchmarkPacketHelpers(b *testing.B) {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R2, 24), asm.Mov.Imm(asm.R3, 0x1234), asm.Mov.Imm(asm.R4, 0x4321), asm.Mov.Imm(asm.R5, 2),
		asm.FnL3CsumReplace.Call(),
		asm.Mov.Imm(asm.R2, 50), asm.Mov.Imm(asm.R3, 0x1234), asm.Mov.Imm(asm.R4, 0x4321), asm.Mov.Imm(asm.R5, 4|skb.FPseudoHdr),
		asm.FnL4CsumReplace.Call(),
		asm.StoreImm(asm.RFP, -8, 0x0a000001, asm.Word),
		asm.Mov.Imm(asm.R2, 26), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -8), asm.Mov.Imm(asm.R4, 4), asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		asm.Mov.Imm(asm.R2, 12), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -16), asm.Mov.Imm(asm.R4, 2),
		asm.FnSkbLoadBytes.Call(),
		asm.Mov.Imm(asm.R1, 5), asm.Mov.Imm(asm.R2, 0), asm.FnRedirect.Call(),
		asm.Return(),
	}
	for _, c := range []struct {
		name string
		ph   map[int32]vm.PacketHelper
	}{{"native", testPacketHelpers}, {"go", nil}} {
		b.Run(c.name, func(b *testing.B) {
			p, _ := skb.New(make([]byte, 80), skb.Loopback())
			env := &pktEnv{p: p}
			prog, err := vm.Load(insns, vm.Options{Helpers: env.helpers(), Engine: vm.EngineJIT, PacketHelpers: c.ph})
			if err != nil {
				b.Fatal(err)
			}
			m := vm.NewMachine()
			d := p.Data()
			if err := m.SetPacket(d, 0, 0, len(d)); err != nil {
				b.Fatal(err)
			}
			m.SetPacketState(p.HelperState())
			for b.Loop() {
				if _, err := m.Run(prog); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(env.calls)/float64(b.N), "go-calls/run")
		})
	}
}
