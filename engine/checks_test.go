package engine_test

import (
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/checkprogs"
	"github.com/tcxgo/tcx/skb"
)

// findings are the warnings of c other than CheckSkipped.
func findings(c *engine.Collection) []engine.Warning {
	var out []engine.Warning
	for _, w := range c.Warnings {
		if w.Check != engine.CheckSkipped {
			out = append(out, w)
		}
	}
	return out
}

// checkCase loads insns by default (want: one warning of check, at insn)
// and strictly (want: EACCES naming it); want == "" expects neither.
func checkCase(t *testing.T, insns asm.Instructions, check string, insn int) {
	t.Helper()
	c, err := engine.NewCollection(handSpec(insns), engine.Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ws := findings(c)
	_, serr := engine.NewCollection(handSpec(insns), engine.Options{NumCPU: 1, Strict: true})
	if check == "" {
		if len(ws) != 0 || serr != nil {
			t.Errorf("warnings %v, strict %v; want none", ws, serr)
		}
		return
	}
	if len(ws) != 1 || ws[0].Check != check || ws[0].Insn != insn || ws[0].Program != "prog" {
		t.Errorf("warnings %v; want one %s at insn %d", ws, check, insn)
	}
	if !errors.Is(serr, syscall.EACCES) || !strings.Contains(serr.Error(), "strict") {
		t.Errorf("strict: %v; want EACCES", serr)
	}
}

// frame uses n bytes of stack and calls next (if any).
func frame(sym string, n int16, next string) asm.Instructions {
	insns := asm.Instructions{asm.StoreMem(asm.R10, -n, asm.R1, asm.DWord).WithSymbol(sym)}
	if next != "" {
		insns = append(insns, asm.Call.Label(next))
	}
	return append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
}

func TestChecks_StackDepth(t *testing.T) {
	// 16 + 256 + 240 = 512 bytes in three frames: the kernel's limit.
	ok := append(append(frame("main", 16, "f1"), frame("f1", 256, "f2")...), frame("f2", 240, "")...)
	checkCase(t, ok, "", 0)
	// 16 + 256 + 256 = 528: refused at f2's entry, as the kernel reports
	// "combined stack size of 3 calls is 528".
	tooDeep := append(append(frame("main", 16, "f1"), frame("f1", 256, "f2")...), frame("f2", 256, "")...)
	checkCase(t, tooDeep, engine.CheckStackDepth, 8)
}

func TestChecks_PacketBound(t *testing.T) {
	prog := func(size asm.Size) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, skb.CtxDataEnd, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R3, "out"),
			asm.LoadMem(asm.R0, asm.R2, 12, size), // the ethertype: 14 bytes checked
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		}
	}
	checkCase(t, prog(asm.Half), "", 0)
	checkCase(t, prog(asm.Word), engine.CheckPacketBound, 5) // 12+4 > 14
	// Without the check: r=0.
	unchecked := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),
		asm.Return(),
	}
	checkCase(t, unchecked, engine.CheckPacketBound, 1)
	// The taken branch of the check is where the packet is too short: a
	// read there is refused, however the branch is reached.
	outside := func(join bool) asm.Instructions {
		insns := asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, skb.CtxDataEnd, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R3, "short"),
			asm.Mov.Imm(asm.R0, 0),
		}
		if !join {
			insns = append(insns, asm.Return())
		}
		return append(insns, asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte).WithSymbol("short"), asm.Return())
	}
	checkCase(t, outside(false), engine.CheckPacketBound, 7)
	// Two ways in, one of them too short: the kernel refuses the load on
	// that way, and the join keeps no bound.
	checkCase(t, outside(true), engine.CheckPacketBound, 6)
}

// TestChecks_Joins: a bound survives a join only if it holds on every
// incoming edge, and a loop's back edge is one of them.
func TestChecks_Joins(t *testing.T) {
	checkCase(t, checkprogs.Join(14, 14), "", 0)                                          // on both edges: kept
	checkCase(t, checkprogs.Join(20, 14), "", 0)                                          // the least is enough
	checkCase(t, checkprogs.Join(14, 12), engine.CheckPacketBound, checkprogs.JoinAccess) // on one edge only
	checkCase(t, checkprogs.Join(12, 14), engine.CheckPacketBound, checkprogs.JoinAccess)
	checkCase(t, checkprogs.Loop(false), "", 0)                                         // kept around the loop
	checkCase(t, checkprogs.Loop(true), engine.CheckPacketBound, checkprogs.LoopAccess) // lost on the back edge
}

// TestChecks_VarOffset: a check through a pointer with a variable part
// counts only while that part cannot take it past 0xffff.
func TestChecks_VarOffset(t *testing.T) {
	checkCase(t, checkprogs.VarOffset(0xff), "", 0)
	checkCase(t, checkprogs.VarOffset(0xffff), engine.CheckPacketBound, checkprogs.VarOffsetAccess)
}

// TestNewCollection_LeavesOutUnused: a map type the engine lacks and a
// program of another type do not stop the load when no tc program uses
// them; both are named in Warnings.
func TestNewCollection_LeavesOutUnused(t *testing.T) {
	spec := handSpec(asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		&ebpf.MapSpec{Name: "q", Type: ebpf.Queue, ValueSize: 4, MaxEntries: 1},
		&ebpf.MapSpec{Name: "a", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	spec.Programs["x"] = &ebpf.ProgramSpec{Name: "x", Type: ebpf.XDP, SectionName: "xdp", License: "GPL",
		Instructions: asm.Instructions{asm.FnGetCurrentPidTgid.Call(), asm.Return()}}
	c, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Programs["prog"] == nil || c.Programs["x"] != nil || c.Maps["a"] == nil || c.Maps["q"] != nil {
		t.Errorf("programs %v, maps %v; want prog and a only", c.Programs, c.Maps)
	}
	var msgs []string
	for _, w := range c.Warnings {
		if w.Check == engine.CheckSkipped {
			msgs = append(msgs, w.String())
		}
	}
	if got := strings.Join(msgs, "\n"); len(msgs) != 2 || !strings.Contains(got, `program x (XDP`) || !strings.Contains(got, `map "q"`) {
		t.Errorf("skipped warnings:\n%s", got)
	}
}

func TestChecks_TailCallUnderDeepStack(t *testing.T) {
	// main (256 bytes) calls f, which tail-calls: the kernel refuses a tail
	// call with 256 bytes or more of callers' stack below it.
	prog := func(mainStack int16) asm.Instructions {
		return asm.Instructions{
			asm.StoreMem(asm.R10, -mainStack, asm.R1, asm.DWord).WithSymbol("main"),
			asm.Call.Label("f"),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
			asm.Mov.Imm(asm.R3, 0).WithSymbol("f"),
			asm.LoadMapPtr(asm.R2, 0).WithReference("jmp"),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}
	}
	jmp := &ebpf.MapSpec{Name: "jmp", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	for _, c := range []struct {
		stack int16
		warn  bool
	}{{240, false}, {256, true}} {
		coll, err := engine.NewCollection(handSpec(prog(c.stack), jmp), engine.Options{NumCPU: 1})
		if err != nil {
			t.Fatal(err)
		}
		ws := findings(coll)
		coll.Close()
		if got := len(ws) == 1 && ws[0].Check == engine.CheckStackDepth && strings.Contains(ws[0].Msg, "tail_calls"); got != c.warn {
			t.Errorf("main stack %d: warnings %v; want a tail-call warning: %v", c.stack, ws, c.warn)
		}
	}
}

// TestChecks_Logger: every warning also goes to Options.Logger.
func TestChecks_Logger(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	unchecked := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),
		asm.Return(),
	}
	c, err := engine.NewCollection(handSpec(unchecked), engine.Options{NumCPU: 1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, want := range []string{"level=WARN", "program=prog", "check=packet-bound", "insn=1"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}
