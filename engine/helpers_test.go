package engine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// run runs prog of c once on frame on a fresh executor of cpu.
func run(t testing.TB, c *engine.Collection, cpu int, frame []byte) (engine.Result, *skb.Packet, error) {
	t.Helper()
	x, err := c.NewExecutor(cpu)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := skb.New(frame, skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Run(c.Programs["prog"], pkt)
	return res, pkt, err
}

func imm64(dst asm.Register, v uint64) asm.Instruction { return asm.LoadImm(dst, int64(v), asm.DWord) }

func TestHelpers_TimeRandomCPU(t *testing.T) {
	spec := handSpec(asm.Instructions{
		asm.FnKtimeGetNs.Call(), asm.Mov.Reg(asm.R6, asm.R0),
		asm.FnKtimeGetBootNs.Call(), asm.Add.Reg(asm.R6, asm.R0),
		asm.FnGetPrandomU32.Call(), asm.Add.Reg(asm.R6, asm.R0),
		asm.FnGetSmpProcessorId.Call(), asm.Add.Reg(asm.R6, asm.R0),
		asm.Mov.Reg(asm.R0, asm.R6), asm.Return(),
	})
	c := newCollection(t, spec, engine.Options{NumCPU: 4, Clock: func() uint64 { return 1000 }, Rand: func() uint32 { return 20 }})
	res, _, err := run(t, c, 3, etherFrame(0x88b5, 60))
	if err != nil || res.Retval != 2023 {
		t.Errorf("retval %d, %v; want 1000+1000+20+3", res.Retval, err)
	}
	// Defaults: a monotonic clock, a per-executor generator.
	c = newCollection(t, handSpec(asm.Instructions{asm.FnKtimeGetNs.Call(), asm.Return()}), engine.Options{NumCPU: 1})
	a, _, _ := run(t, c, 0, etherFrame(0x88b5, 60))
	time.Sleep(time.Millisecond)
	b, _, _ := run(t, c, 0, etherFrame(0x88b5, 60))
	if b.Retval == a.Retval || a.Retval == 0 {
		t.Errorf("ktime %d then %d", a.Retval, b.Retval)
	}
}

// TestHelpers_KtimeGetTaiNs: bpf_ktime_get_tai_ns is its own clock (TAI,
// nanoseconds since the epoch), following Clock only when TAI is unset.
func TestHelpers_KtimeGetTaiNs(t *testing.T) {
	spec := handSpec(asm.Instructions{asm.FnKtimeGetTaiNs.Call(), asm.RSh.Imm(asm.R0, 30), asm.Return()})
	for _, c := range []struct {
		name string
		opts engine.Options
		want func(uint32) bool
	}{
		{"TAI", engine.Options{NumCPU: 1, TAI: func() uint64 { return 5 << 30 }, Clock: func() uint64 { return 0 }}, func(v uint32) bool { return v == 5 }},
		{"Clock", engine.Options{NumCPU: 1, Clock: func() uint64 { return 7 << 30 }}, func(v uint32) bool { return v == 7 }},
		// The host's TAI is within a minute of the real-time clock at
		// least (a 2^30 ns unit is about a second).
		{"host", engine.Options{NumCPU: 1}, func(v uint32) bool {
			now := uint32(time.Now().UnixNano() >> 30)
			return v+64 > now && v < now+64
		}},
	} {
		res, _, err := run(t, newCollection(t, spec, c.opts), 0, etherFrame(0x88b5, 60))
		if err != nil || !c.want(res.Retval) {
			t.Errorf("%s: tai>>30 = %d, %v", c.name, res.Retval, err)
		}
	}
}

// TestHelpers_CloneRedirectGSOFirst: a GSO packet without gso_type gets
// EBADMSG before the device lookup, so also for a device that does not
// exist.
func TestHelpers_CloneRedirectGSOFirst(t *testing.T) {
	spec := handSpec(asm.Instructions{asm.Mov.Imm(asm.R2, 9999), asm.Mov.Imm(asm.R3, 0), asm.FnCloneRedirect.Call(), asm.Return()})
	c := newCollection(t, spec, engine.Options{NumCPU: 1})
	x, _ := c.NewExecutor(0)
	pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
	pkt.GSOSize = 1400
	if res, err := x.Run(c.Programs["prog"], pkt); err != nil || int32(res.Retval) != -linuxerr.EBADMSG {
		t.Errorf("clone of a type-less GSO packet to a missing device: %d, %v; want -EBADMSG", int32(res.Retval), err)
	}
}

func TestExecutor_Run_Faults(t *testing.T) {
	c := newCollection(t, handSpec(asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, skb.CtxMark, asm.Word),
		asm.JNE.Imm(asm.R0, 1, "loop"),
		asm.Mov.Imm(asm.R2, 0),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Word), // NULL
		asm.Return(),
		asm.Ja.Label("loop").WithSymbol("loop"),
	}), engine.Options{NumCPU: 1, InstructionLimit: 1000})
	p := c.Programs["prog"]
	x, _ := c.NewExecutor(0)
	pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
	pkt.Mark = 1
	res, err := x.Run(p, pkt)
	var f *engine.Fault
	if !errors.As(err, &f) || f.Kind != engine.FaultUnmapped || f.PC != 3 || res.Retval != skb.ActShot || !errors.Is(err, syscall.EFAULT) {
		t.Errorf("NULL load: %+v, %v", res, err)
	}
	pkt.Mark = 0
	res, err = x.Run(p, pkt)
	var le *engine.LimitError
	if !errors.As(err, &le) || !errors.Is(err, engine.ErrInstructionLimit) || res.Retval != skb.ActShot || res.Executed < 1000 {
		t.Errorf("endless loop: %+v, %v", res, err)
	}
	if p.Faults() != 2 {
		t.Errorf("Faults() = %d, want 2", p.Faults())
	}
	// Context stores the kernel refuses fault too.
	c = newCollection(t, handSpec(asm.Instructions{asm.StoreImm(asm.R1, skb.CtxLen, 1, asm.Word), asm.Mov.Imm(asm.R0, 0), asm.Return()}), engine.Options{NumCPU: 1})
	if _, _, err := run(t, c, 0, etherFrame(0x88b5, 60)); !errors.As(err, &f) || f.Kind != engine.FaultCtxAccess {
		t.Errorf("store to __sk_buff.len: %v", err)
	}
}

// TestExecutor_Run_FaultsReadLikeADebugger: a fault names the instruction,
// its source line and the access as an offset into the packet, the stack,
// the context or a named map's value, never a VM address.
func TestExecutor_Run_FaultsReadLikeADebugger(t *testing.T) {
	vals := &ebpf.MapSpec{Name: "vals", Type: ebpf.Array, KeySize: 4, ValueSize: 12, MaxEntries: 4}
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		want  string
	}{
		{"packet", asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
			asm.LoadMem(asm.R0, asm.R2, 100, asm.Word).WithSource(asm.Comment("x = data[100];")),
			asm.Return(),
		}, "insn 1 (x = data[100];): read of 4 bytes at packet offset 100 (the packet is 60 bytes): out of bounds"},
		{"map value", asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 2, asm.Word),
			asm.LoadMapPtr(asm.R1, 0).WithReference("vals"),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.StoreImm(asm.R0, 12, 1, asm.Word).WithSource(asm.Comment("v->next = 1;")),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		}, `insn 7 (v->next = 1;): write of 4 bytes at offset 12 of value 2 of map "vals" (values are 12 bytes): crosses map value slot`},
		{"stack", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.LoadMem(asm.R0, asm.R2, 16, asm.DWord),
			asm.Return(),
		}, "insn 1: read of 8 bytes at stack fp+16: out of bounds"},
		{"context", asm.Instructions{
			asm.LoadMem(asm.R0, asm.R1, 196, asm.Word),
			asm.Return(),
		}, "read of 4 bytes at context offset 196"},
	} {
		for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineAuto} {
			// The faults are what a run meets, so the programs must
			// load: a load-time refusal would hide the run's message.
			coll, err := engine.NewCollection(handSpec(c.insns, vals), engine.Options{NumCPU: 1, Engine: e})
			if err != nil {
				t.Errorf("%s (engine %d): refused at load: %v", c.name, e, err)
				continue
			}
			t.Cleanup(func() { coll.Close() })
			_, _, err = run(t, coll, 0, etherFrame(0x88b5, 60))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s (engine %d): %v\nwant ...%s", c.name, e, err, c.want)
			}
		}
	}
}

// TestExecutor_Run_FaultNamesBTFSourceLine: a fault in a clang-built
// object names the instruction, the source line from the object's BTF
// line info (file:line: text) and the access as a packet offset. The
// object is l4_classify with one packet load moved past the frame's end:
// insn 8 reads the Ethernet type at data+12 after checking data+14 <=
// data_end; at data+100 it reads beyond a 60-byte frame.
func TestExecutor_Run_FaultNamesBTFSourceLine(t *testing.T) {
	const insn = 8
	for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineAuto} {
		spec := corpusSpec(t, "l4_classify")
		insns := spec.Programs["l4_classify"].Instructions
		ins := &insns[insn]
		if ins.OpCode.Class() != asm.LdXClass || ins.Offset != 12 {
			t.Fatalf("insn %d is %v: l4_classify changed, pick the Ethernet type load again", insn, ins)
		}
		ins.Offset = 100
		var line *btf.Line
		for i := insn; i >= 0 && line == nil; i-- {
			line, _ = insns[i].Source().(*btf.Line)
		}
		if line == nil {
			t.Fatal("l4_classify has no BTF line info before insn 8")
		}
		coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Engine: e})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { coll.Close() })
		x, err := coll.NewExecutor(0)
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := skb.New(etherFrame(0x0800, 60), skb.Loopback())
		if err != nil {
			t.Fatal(err)
		}
		_, err = x.Run(coll.Programs["l4_classify"], pkt)
		want := fmt.Sprintf("insn %d (%s:%d: %s): read of 2 bytes at packet offset 100 (the packet is 60 bytes): out of bounds",
			insn, path.Base(line.FileName()), line.LineNumber(), strings.TrimSpace(line.Line()))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("engine %d: %v\nwant ...%s", e, err, want)
		}
		t.Logf("engine %d: %v", e, err)
		var f *engine.Fault
		if !errors.As(err, &f) || f.PC != insn || f.Space != vm.SpacePacket || f.Off != 100 {
			t.Errorf("engine %d: fault %+v; want a packet fault at insn %d, offset 100", e, f, insn)
		}
	}
}

// rodataSpec is handSpec with a frozen .rodata array holding data.
func rodataSpec(insns asm.Instructions, data []byte, ms ...*ebpf.MapSpec) *ebpf.CollectionSpec {
	rodata := &ebpf.MapSpec{Name: ".rodata", Type: ebpf.Array, KeySize: 4, ValueSize: uint32(len(data)), MaxEntries: 1,
		Flags: maps.FlagRdonlyProg, Contents: []ebpf.MapKV{{Key: uint32(0), Value: data}}}
	return handSpec(insns, append(ms, rodata)...)
}

func TestHelpers_TracePrintk(t *testing.T) {
	for _, c := range []struct {
		format     string
		args       [3]uint64
		want       string
		wantErrno  bool
		extraBytes string // appended after the format's NUL, addressed by %s as .rodata+len(format)+1
	}{
		{format: "plain\n", want: "plain\n"},
		{format: "%d %u %x", args: [3]uint64{0xffffffff, 0xffffffff, 255}, want: "-1 4294967295 ff"},
		{format: "%ld %llu %lX", args: [3]uint64{^uint64(0), 1 << 40, 0xabc}, want: "-1 1099511627776 ABC"},
		{format: "[%5d|%-4u|%03x]", args: [3]uint64{42, 7, 10}, want: "[   42|7   |00a]"},
		{format: "100%% %c", args: [3]uint64{'z'}, want: "100% z"},
		{format: "%s!", extraBytes: "hello", want: "hello!"},
		{format: "%pI4", extraBytes: "\xc0\x00\x02\x01", want: "192.0.2.1"},
		{format: "%d %d %d %d", wantErrno: true},
		{format: "%q", wantErrno: true},
		{format: "%sx", extraBytes: "a", wantErrno: true},
		{format: "tab\tok\x01", wantErrno: true},
	} {
		t.Run(c.format, func(t *testing.T) {
			data := append([]byte(c.format), 0)
			strOff := len(data)
			data = append(data, c.extraBytes...)
			data = append(data, 0)
			args := c.args
			if c.extraBytes != "" {
				args[0] = 0 // replaced by the address below
			}
			insns := asm.Instructions{
				asm.LoadMapValue(asm.R1, 0, 0).WithReference(".rodata"),
				asm.Mov.Imm(asm.R2, int32(len(c.format)+1)),
				imm64(asm.R3, args[0]), imm64(asm.R4, args[1]), imm64(asm.R5, args[2]),
			}
			if c.extraBytes != "" {
				insns = append(insns, asm.LoadMapValue(asm.R3, 0, uint32(strOff)).WithReference(".rodata"))
			}
			insns = append(insns, asm.FnTracePrintk.Call(), asm.Return())
			var out bytes.Buffer
			coll := newCollection(t, rodataSpec(insns, data), engine.Options{NumCPU: 1, Trace: &out})
			res, _, err := run(t, coll, 0, etherFrame(0x88b5, 60))
			if err != nil {
				t.Fatal(err)
			}
			if c.wantErrno {
				if int32(res.Retval) != -linuxerr.EINVAL || out.Len() != 0 {
					t.Errorf("retval %d, output %q; want -EINVAL and nothing", int32(res.Retval), out.String())
				}
				return
			}
			if out.String() != c.want || int(res.Retval) != len(c.want) {
				t.Errorf("output %q (retval %d), want %q", out.String(), res.Retval, c.want)
			}
		})
	}
}

func TestHelpers_Loop(t *testing.T) {
	for _, c := range []struct {
		n, flags uint64
		want     int32
	}{{5, 0, 5}, {0, 0, 0}, {1 << 23, 1, -linuxerr.EINVAL}, {1<<23 + 1, 0, -linuxerr.E2BIG}} {
		spec := handSpec(asm.Instructions{
			imm64(asm.R1, c.n),
			{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1},
			asm.Mov.Imm(asm.R3, 0),
			imm64(asm.R4, c.flags),
			asm.FnLoop.Call(),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("cb"),
			asm.Return(),
		})
		spec.Programs["prog"].Instructions[1] = spec.Programs["prog"].Instructions[1].WithReference("cb")
		res, _, err := run(t, newCollection(t, spec, engine.Options{NumCPU: 1}), 0, etherFrame(0x88b5, 60))
		if err != nil || int32(res.Retval) != c.want {
			t.Errorf("bpf_loop(%d, flags %d) = %d, %v; want %d", c.n, c.flags, int32(res.Retval), err, c.want)
		}
	}
}

// lockSpec: bpf_spin_lock(&value->lock); value->count++ (times, then
// unlock unless leak).
func lockSpec(lockTwice, leak bool) *ebpf.CollectionSpec {
	insns := asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("locked"),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R6), asm.FnSpinLock.Call(),
	}
	if lockTwice {
		insns = append(insns, asm.Mov.Reg(asm.R1, asm.R6), asm.FnSpinLock.Call())
	}
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord), asm.Add.Imm(asm.R1, 1), asm.StoreMem(asm.R6, 8, asm.R1, asm.DWord))
	if !leak {
		insns = append(insns, asm.Mov.Reg(asm.R1, asm.R6), asm.FnSpinUnlock.Call())
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return())
	return handSpec(insns, &ebpf.MapSpec{Name: "locked", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
}

func TestHelpers_SpinLock(t *testing.T) {
	c := newCollection(t, lockSpec(false, false), engine.Options{NumCPU: 2})
	const workers, runs = 2, 2000
	done := make(chan error, workers)
	for w := range workers {
		go func() {
			x, _ := c.NewExecutor(w)
			pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
			for range runs {
				if _, err := x.Run(c.Programs["prog"], pkt); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range workers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	val := make([]byte, 16)
	if err := c.Maps["locked"].Lookup(make([]byte, 4), val); err != nil || binary.NativeEndian.Uint64(val[8:]) != workers*runs {
		t.Errorf("counter %d, %v; want %d", binary.NativeEndian.Uint64(val[8:]), err, workers*runs)
	}
	// Taking a second lock aborts; a leaked lock is released at the end.
	if _, _, err := run(t, newCollection(t, lockSpec(true, false), engine.Options{NumCPU: 1}), 0, etherFrame(0x88b5, 60)); !errors.Is(err, syscall.EDEADLK) {
		t.Errorf("double lock: %v", err)
	}
	leak := newCollection(t, lockSpec(false, true), engine.Options{NumCPU: 1})
	for range 2 {
		if _, _, err := run(t, leak, 0, etherFrame(0x88b5, 60)); err != nil {
			t.Fatal(err)
		}
	}
}

// ringSpec reserves 16 bytes, writes the packet length at 0 and commits
// with commit (or leaves the record if commit is 0).
func ringSpec(commit asm.BuiltinFunc) *ebpf.CollectionSpec {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R7, asm.R1),
		asm.LoadMapPtr(asm.R1, 0).WithReference("events"),
		asm.Mov.Imm(asm.R2, 16), asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.LoadMem(asm.R1, asm.R7, skb.CtxLen, asm.Word),
		asm.StoreMem(asm.R6, 0, asm.R1, asm.Word),
	}
	if commit != 0 {
		insns = append(insns, asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, 0), commit.Call())
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return())
	return handSpec(insns, &ebpf.MapSpec{Name: "events", Type: ebpf.RingBuf, MaxEntries: 4096})
}

func TestHelpers_RingBuf(t *testing.T) {
	read := func(c *engine.Collection) [][]byte {
		r, err := c.Maps["events"].(*maps.RingBuf).NewReader()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var recs [][]byte
		for {
			r.SetDeadline(time.Now())
			rec, err := r.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return recs
			}
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec.RawSample)
		}
	}
	c := newCollection(t, ringSpec(asm.FnRingbufSubmit), engine.Options{NumCPU: 1})
	for n := range 3 {
		if _, _, err := run(t, c, 0, etherFrame(0x88b5, 60+n)); err != nil {
			t.Fatal(err)
		}
	}
	recs := read(c)
	if len(recs) != 3 || len(recs[2]) != 16 || binary.NativeEndian.Uint32(recs[2]) != 62 {
		t.Errorf("records %x", recs)
	}
	// Discarded and forgotten records reach no reader and block nothing:
	// more runs than the ring holds records.
	for _, commit := range []asm.BuiltinFunc{asm.FnRingbufDiscard, 0} {
		c := newCollection(t, ringSpec(commit), engine.Options{NumCPU: 1})
		for range 4096 / 16 * 2 {
			if _, _, err := run(t, c, 0, etherFrame(0x88b5, 60)); err != nil {
				t.Fatal(err)
			}
		}
		if recs := read(c); len(recs) != 0 {
			t.Errorf("commit %v: %d records", commit, len(recs))
		}
	}
	// Submitting something that is no record aborts the run.
	bad := handSpec(asm.Instructions{asm.Mov.Reg(asm.R1, asm.RFP), asm.Mov.Imm(asm.R2, 0), asm.FnRingbufSubmit.Call(), asm.Return()})
	var he *engine.HelperError
	if _, _, err := run(t, newCollection(t, bad, engine.Options{NumCPU: 1}), 0, etherFrame(0x88b5, 60)); !errors.As(err, &he) || he.Helper != asm.FnRingbufSubmit {
		t.Errorf("submit of the stack pointer: %v", err)
	}
}

func TestHelpers_PerfEventOutput(t *testing.T) {
	spec := handSpec(asm.Instructions{
		asm.StoreImm(asm.RFP, -8, 0x11223344, asm.Word),
		asm.LoadMapPtr(asm.R2, 0).WithReference("perf"),
		imm64(asm.R3, 14<<32|0xffffffff), // BPF_F_CURRENT_CPU, 14 bytes of packet
		asm.Mov.Reg(asm.R4, asm.RFP), asm.Add.Imm(asm.R4, -8),
		asm.Mov.Imm(asm.R5, 4),
		asm.FnPerfEventOutput.Call(),
		asm.Return(),
	}, &ebpf.MapSpec{Name: "perf", Type: ebpf.PerfEventArray})
	c := newCollection(t, spec, engine.Options{NumCPU: 2})
	if res, _, err := run(t, c, 1, etherFrame(0x88b5, 60)); err != nil || int32(res.Retval) != -linuxerr.ENOENT {
		t.Errorf("without a reader: %d, %v; want -ENOENT", int32(res.Retval), err)
	}
	r, err := c.Maps["perf"].(*maps.PerfEventArray).NewReader(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	frame := etherFrame(0x88b5, 60)
	if res, _, err := run(t, c, 1, frame); err != nil || res.Retval != 0 {
		t.Fatalf("retval %d, %v", int32(res.Retval), err)
	}
	r.SetDeadline(time.Now().Add(time.Second))
	rec, err := r.Read()
	want := append(binary.NativeEndian.AppendUint32(nil, 0x11223344), frame[:14]...)
	if err != nil || rec.CPU != 1 || !bytes.Equal(rec.RawSample[:len(want)], want) {
		t.Errorf("record %+v, %v; want cpu 1, % x", rec, err, want)
	}
}

func TestHelpers_Redirect(t *testing.T) {
	c := newCollection(t, handSpec(asm.Instructions{
		asm.Mov.Imm(asm.R1, 42), asm.Mov.Imm(asm.R2, skb.FIngress), asm.FnRedirect.Call(), asm.Return(),
	}), engine.Options{NumCPU: 1})
	res, _, err := run(t, c, 0, etherFrame(0x88b5, 60))
	if err != nil || res.Retval != skb.ActRedirect || res.Redirect != (engine.Redirect{Kind: skb.RedirectDev, Ifindex: 42, Ingress: true}) {
		t.Errorf("%+v, %v", res, err)
	}
}

func TestHelpers_CloneRedirectDevice(t *testing.T) {
	spec := handSpec(asm.Instructions{asm.LoadMem(asm.R2, asm.R1, skb.CtxMark, asm.Word), asm.Mov.Imm(asm.R3, 0), asm.FnCloneRedirect.Call(), asm.Return()})
	devices := func(ifindex uint32) (skb.Device, bool) { return skb.Device{Ifindex: ifindex}, ifindex == 7 }
	c := newCollection(t, spec, engine.Options{NumCPU: 1, Devices: devices})
	x, _ := c.NewExecutor(0)
	for _, tc := range []struct {
		ifindex uint32
		want    int32
	}{{1, 0}, {7, 0}, {8, -linuxerr.EINVAL}} {
		pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
		pkt.Mark = tc.ifindex
		res, err := x.Run(c.Programs["prog"], pkt)
		if err != nil || int32(res.Retval) != tc.want {
			t.Errorf("clone to %d: %d, %v; want %d", tc.ifindex, int32(res.Retval), err, tc.want)
		}
		if tc.want == 0 && (len(pkt.Clones()) != 1 || pkt.Clones()[0].Ifindex != tc.ifindex) {
			t.Errorf("clone to %d: clones %+v", tc.ifindex, pkt.Clones())
		}
	}
}

// TestHelpers_PerCPU checks that an executor's CPU selects the per-CPU
// value that lookups return and updates write.
func TestHelpers_PerCPU(t *testing.T) {
	spec := handSpec(asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("pc"),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord), asm.Add.Imm(asm.R1, 1), asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return(),
	}, &ebpf.MapSpec{Name: "pc", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	c := newCollection(t, spec, engine.Options{NumCPU: 3})
	for cpu, n := range []int{1, 0, 4} {
		for range n {
			if _, _, err := run(t, c, cpu, etherFrame(0x88b5, 60)); err != nil {
				t.Fatal(err)
			}
		}
	}
	vals := make([]byte, 3*8)
	if err := c.Maps["pc"].Lookup(make([]byte, 4), vals); err != nil {
		t.Fatal(err)
	}
	for cpu, want := range []uint64{1, 0, 4} {
		if got := binary.NativeEndian.Uint64(vals[cpu*8:]); got != want {
			t.Errorf("cpu %d: %d, want %d", cpu, got, want)
		}
	}
	if _, err := c.NewExecutor(3); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("executor for cpu 3 of 3: %v", err)
	}
}

func TestHelpers_TailCallAcrossCollections(t *testing.T) {
	pa := &ebpf.MapSpec{Name: "jmp", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	caller := handSpec(asm.Instructions{
		asm.LoadMapPtr(asm.R2, 0).WithReference("jmp"), asm.Mov.Imm(asm.R3, 0), asm.FnTailCall.Call(), asm.Return(),
	}, pa)
	callee := handSpec(asm.Instructions{asm.Mov.Imm(asm.R0, 99), asm.Return()})
	c1 := newCollection(t, caller, engine.Options{NumCPU: 1})
	c2 := newCollection(t, callee, engine.Options{NumCPU: 1})
	jmp := c1.Maps["jmp"].(*maps.ProgramArray)
	if res, _, _ := run(t, c1, 0, etherFrame(0x88b5, 60)); int32(res.Retval) != -linuxerr.ENOENT {
		t.Errorf("empty slot: %d", int32(res.Retval))
	}
	if err := jmp.Set(0, c2.Programs["prog"]); err != nil {
		t.Fatal(err)
	}
	if res, _, _ := run(t, c1, 0, etherFrame(0x88b5, 60)); int32(res.Retval) != -linuxerr.ENOENT {
		t.Errorf("program of another collection: %d, want the failed tail call's -ENOENT", int32(res.Retval))
	}
	if err := jmp.Set(0, c1.Programs["prog"]); err != nil {
		t.Fatal(err)
	}
	res, _, err := run(t, c1, 0, etherFrame(0x88b5, 60))
	if err != nil || int32(res.Retval) != -linuxerr.ENOENT || !strings.Contains(c1.String(), "prog") {
		t.Errorf("self tail call chain: %d, %v; want -ENOENT after 33 tail calls", int32(res.Retval), err)
	}
	if res.Executed != 33*3+4 { // ld_imm64, mov, call per tail call; the last one fails and exits
		t.Errorf("executed %d instructions, want 33*3+4", res.Executed)
	}
}

// TestExecutor_Run_ContextLaidOutEachRun: a program that has read its
// context once gets the image laid out before later runs start; each run
// still sees its own packet's fields, on both engines.
func TestExecutor_Run_ContextLaidOutEachRun(t *testing.T) {
	for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
		c := newCollection(t, handSpec(asm.Instructions{
			asm.LoadMem(asm.R0, asm.R1, skb.CtxMark, asm.Word),
			asm.LoadMem(asm.R2, asm.R1, skb.CtxLen, asm.Word),
			asm.Add.Reg(asm.R0, asm.R2),
			asm.Return(),
		}), engine.Options{NumCPU: 1, Engine: e})
		x, _ := c.NewExecutor(0)
		for i, n := range []int{60, 60, 90, 61} {
			pkt, _ := skb.New(etherFrame(0x88b5, n), skb.Loopback())
			pkt.Mark = uint32(1000 * i)
			res, err := x.Run(c.Programs["prog"], pkt)
			if want := uint32(1000*i + pkt.Len()); err != nil || res.Retval != want {
				t.Errorf("%s run %d: %d, %v; want mark+len = %d", e, i, res.Retval, err, want)
			}
		}
	}
}
