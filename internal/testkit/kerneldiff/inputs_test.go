package kerneldiff_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// TestKernelDifferential_TestRunInputs compares how the kernel and the
// engine's TestRun judge inputs at and beyond BPF_PROG_TEST_RUN's limits:
// the same errno, or both accepted with equal results.
func TestKernelDifferential_TestRunInputs(t *testing.T) {
	kerneltest.RequireKernel(t)
	pinCPU0(t)
	s := load(t, filepath.Join(corpusDir, "ctx_fields.o"), 2)
	frame := func(ethertype uint16, n int) []byte {
		f := make([]byte, max(n, 14))
		f[0] = 2
		binary.BigEndian.PutUint16(f[12:], ethertype)
		return f[:n]
	}
	ctx := func(off, size int, v uint64, n int) []byte {
		c := make([]byte, n)
		if size == 8 {
			binary.LittleEndian.PutUint64(c[off:], v)
		} else {
			binary.LittleEndian.PutUint32(c[off:], uint32(v))
		}
		return c
	}
	type in struct {
		name        string
		data, ctxIn []byte
	}
	cases := []in{
		{"13 bytes", frame(0x88b5, 13), nil},
		{"14 bytes", frame(0x88b5, 14), nil},
		{"3712 bytes", frame(0x88b5, 3712), nil},
		{"3713 bytes", frame(0x88b5, 3713), nil},
		{"ipv4 33 bytes", frame(0x0800, 33), nil},
		{"ipv4 34 bytes", frame(0x0800, 34), nil},
		{"ipv6 53 bytes", frame(0x86dd, 53), nil},
		{"ipv6 54 bytes", frame(0x86dd, 54), nil},
		{"empty ctx", frame(0x88b5, 60), []byte{}},
		{"short ctx", frame(0x88b5, 60), ctx(skb.CtxMark, 4, 7, 12)},
		{"long zero ctx", frame(0x88b5, 60), make([]byte, 300)},
		{"long ctx", frame(0x88b5, 60), ctx(250, 4, 1, 300)},
		{"wire_len below len", frame(0x88b5, 60), ctx(skb.CtxWireLen, 4, 59, 192)},
		{"wire_len 65536", frame(0x88b5, 60), ctx(skb.CtxWireLen, 4, 65536, 192)},
		{"wire_len 65537", frame(0x88b5, 60), ctx(skb.CtxWireLen, 4, 65537, 192)},
		{"gso_segs 65535", frame(0x88b5, 60), ctx(skb.CtxGSOSegs, 4, 65535, 192)},
		{"gso_segs 65536", frame(0x88b5, 60), ctx(skb.CtxGSOSegs, 4, 65536, 192)},
		{"ifindex 1", frame(0x88b5, 60), ctx(skb.CtxIfindex, 4, 1, 192)},
		{"ifindex 1000000", frame(0x88b5, 60), ctx(skb.CtxIfindex, 4, 1000000, 192)},
	}
	for off := 0; off < skb.CtxSize; off += 4 {
		cases = append(cases, in{name: fmt.Sprintf("ctx word %d", off), data: frame(0x88b5, 60), ctxIn: ctx(off, 4, 1, 192)})
	}
	refused := map[string]int{}
	for _, c := range cases {
		kout, kerr := s.kern.Run("ctx_fields", kernel.RunInput{Data: c.data, Ctx: c.ctxIn})
		rv, data, ctxOut, eerr := s.x.TestRun(s.coll.Programs["ctx_fields"], c.data, c.ctxIn)
		var kno syscall.Errno
		switch {
		case kerr != nil && errors.As(kerr, &kno):
			refused[kno.Error()]++
			if !errors.Is(eerr, kno) {
				t.Errorf("%s: kernel %v, engine %v", c.name, kerr, eerr)
			}
		case kerr != nil:
			t.Fatalf("%s: kernel %v", c.name, kerr)
		case eerr != nil:
			t.Errorf("%s: kernel accepted, engine %v", c.name, eerr)
		case rv != kout.Retval || string(data) != string(kout.Data):
			t.Errorf("%s: retval/data differ", c.name)
		default:
			if d := kerneldiff.DiffCtx(kout.Ctx, ctxOut); d != "" {
				t.Errorf("%s: %s", c.name, d)
			}
		}
	}
	t.Logf("%d inputs, refused by both: %v", len(cases), refused)
	if len(refused) < 3 {
		t.Errorf("only %v refused; the cases should hit EINVAL, E2BIG and ENODEV", refused)
	}
}
