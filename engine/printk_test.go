package engine_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// printkSpec is a program calling bpf_trace_printk(format, ...) with
// args; extra bytes follow the format's NUL in .rodata and, when given,
// their address is the first argument (the first two with both).
func printkSpec(format, extra string, args [3]uint64, both bool) *ebpf.CollectionSpec {
	data := append([]byte(format), 0)
	strOff := len(data)
	data = append(append(data, extra...), 0)
	insns := asm.Instructions{
		asm.LoadMapValue(asm.R1, 0, 0).WithReference(".rodata"),
		asm.Mov.Imm(asm.R2, int32(len(format)+1)),
		imm64(asm.R3, args[0]), imm64(asm.R4, args[1]), imm64(asm.R5, args[2]),
	}
	if extra != "" {
		insns = append(insns, asm.LoadMapValue(asm.R3, 0, uint32(strOff)).WithReference(".rodata"))
		if both {
			insns = append(insns, asm.Mov.Reg(asm.R4, asm.R3))
		}
	}
	insns = append(insns, asm.FnTracePrintk.Call(), asm.Return())
	return rodataSpec(insns, data)
}

// TestHelpers_TracePrintk_Conversions: the conversions formatted without
// fmt (zero-padded and full forms of the address conversions, signs,
// widths), as the kernel's vsprintf prints them.
func TestHelpers_TracePrintk_Conversions(t *testing.T) {
	v6 := "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	for _, c := range []struct {
		format, extra string
		args          [3]uint64
		want          string
	}{
		{format: "%pi4", extra: "\xc0\x00\x02\x01", want: "192.000.002.001"},
		{format: "%pI6", extra: v6, want: "2001:0db8:0000:0000:0000:0000:0000:0001"},
		{format: "%pi6", extra: v6, want: "20010db8000000000000000000000001"},
		{format: "%+d|% d|%05d", args: [3]uint64{5, 5, uint64(0xffffffd6)}, want: "+5| 5|-0042"},
		{format: "%-6ld|%+4u|% x", args: [3]uint64{^uint64(6), 3, 0xbeef}, want: "-7    |   3|beef"},
		{format: "%p %px", args: [3]uint64{0xabc, 1 << 63}, want: "0000000000000abc 8000000000000000"},
		{format: "%8s|%-3c|", extra: "ab", args: [3]uint64{0, 'q'}, want: "      ab|q  |"},
	} {
		var out bytes.Buffer
		coll := newCollection(t, printkSpec(c.format, c.extra, c.args, false), engine.Options{NumCPU: 1, Trace: &out})
		res, _, err := run(t, coll, 0, etherFrame(0x88b5, 60))
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want || int(res.Retval) != len(c.want) {
			t.Errorf("%q: output %q (retval %d), want %q", c.format, out.String(), res.Retval, c.want)
		}
	}
}

// TestHelpers_TracePrintk_ZeroAllocs: after the first call a bpf_printk
// with a string, an address and a padded number allocates nothing (the
// message is formatted in the executor's buffers).
func TestHelpers_TracePrintk_ZeroAllocs(t *testing.T) {
	var n countWriter
	coll := newCollection(t, printkSpec("drop %s from %pI4 port %05d\n", "tcp", [3]uint64{0, 0, 80}, true), engine.Options{NumCPU: 1, Trace: &n})
	// %pI4 reads the string's bytes, "tcp\0".
	x, err := coll.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	frame := etherFrame(0x88b5, 60)
	pkt := new(skb.Packet)
	p := coll.Programs["prog"]
	allocs := testing.AllocsPerRun(1000, func() {
		if err := pkt.Reset(frame, skb.Loopback()); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Run(p, pkt); err != nil {
			t.Fatal(err)
		}
	})
	want := "drop tcp from 116.99.112.0 port 00080\n"
	if allocs != 0 || n.calls < 1000 || string(n.last) != want {
		t.Fatalf("%v allocations per bpf_printk run, %d writes, last %q; want 0 allocations and %q", allocs, n.calls, n.last, want)
	}
	t.Logf("bpf_printk: %v allocations per run over %d runs", allocs, n.calls)
}

// countWriter counts writes and keeps a copy of the last in its own buffer.
type countWriter struct {
	calls int
	last  []byte
}

func (w *countWriter) Write(b []byte) (int, error) {
	w.calls++
	w.last = append(w.last[:0], b...)
	return len(b), nil
}

var _ io.Writer = (*countWriter)(nil)
