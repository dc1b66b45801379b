package engine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// TestCORE_RelocatesContextAccesses loads core_skb, whose every context
// access goes through its own reordered view of struct __sk_buff, against
// the built-in UAPI types and against the running kernel's BTF, and checks
// what it writes: the accesses reached the UAPI fields and the type size,
// enum value, field size, signedness and existence relocations took the
// target's values.
func TestCORE_RelocatesContextAccesses(t *testing.T) {
	uapi, err := engine.UAPITypes()
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]*btf.Spec{"built-in": uapi}
	if kern, err := btf.LoadKernelSpec(); err == nil {
		targets["kernel"] = kern
	} else {
		t.Logf("no kernel BTF (%v): built-in target only", err)
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			spec, err := engine.LoadCollectionSpec(corpusDir + "/core_skb.o")
			if err != nil {
				t.Fatal(err)
			}
			c, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, KernelTypes: target, Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			frame := make([]byte, 60)
			binary.BigEndian.PutUint16(frame[12:], 0x88b5)
			rv, _, ctx, err := c.Programs["core_skb"].TestRun(frame, make([]byte, skb.CtxSize))
			if err != nil || rv != 0 {
				t.Fatalf("TestRun = %d, %v", rv, err)
			}
			u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(ctx[off:]) }
			want := map[string][2]uint32{
				"mark":     {u32(skb.CtxMark), 61},
				"priority": {u32(skb.CtxPriority), 0x88b5},
				"cb[0]":    {u32(skb.CtxCB), 60},
				"cb[1]":    {u32(skb.CtxCB + 4), 14},
				"cb[2]":    {u32(skb.CtxCB + 8), 1},
				"cb[3]":    {u32(skb.CtxCB + 12), 1},
				"cb[4]":    {u32(skb.CtxCB + 16), 0},
			}
			bss := make([]byte, c.Maps[".bss"].Info().ValueSize)
			if err := c.Maps[".bss"].Lookup(make([]byte, 4), bss); err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				name string
				want uint32
			}{{"gso_size_bytes", 4}, {"len_signed", 0}} {
				off := spec.Variables[v.name].Offset
				want[v.name] = [2]uint32{binary.LittleEndian.Uint32(bss[off:]), v.want}
			}
			for field, gw := range want {
				if gw[0] != gw[1] {
					t.Errorf("%s = %#x, want %#x", field, gw[0], gw[1])
				}
			}
		})
	}
}

// TestCORE_KernelInternalType shows the refusal of a field relocation on a
// kernel-internal type: decap_sanity (a kernel selftest) reads struct
// sk_buff through bpf_cast_to_kern_ctx.
func TestCORE_KernelInternalType(t *testing.T) {
	kern, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF to relocate against: %v", err)
	}
	spec, err := engine.LoadCollectionSpec("../testdata/thirdparty/selftests/progs/decap_sanity.o")
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.NewCollection(spec, engine.Options{NumCPU: 1, KernelTypes: kern})
	for _, want := range []string{`program "decap_sanity"`, "insn 28", "struct sk_buff.ip_summed", "kernel-internal type"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to name %q", err, want)
		}
	}
	if !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("err = %v; want ENOTSUP", err)
	}
}

// TestUAPITypes holds the context and the headers the engine models, and
// no kernel-internal type.
func TestUAPITypes(t *testing.T) {
	spec, err := engine.UAPITypes()
	if err != nil {
		t.Fatal(err)
	}
	var sk *btf.Struct
	if err := spec.TypeByName("__sk_buff", &sk); err != nil {
		t.Fatal(err)
	}
	if sk.Size != skb.CtxSize {
		t.Errorf("struct __sk_buff is %d bytes, want %d", sk.Size, skb.CtxSize)
	}
	for _, name := range []string{"ethhdr", "vlan_hdr", "iphdr", "ipv6hdr", "tcphdr", "udphdr", "icmphdr", "bpf_tunnel_key", "bpf_sock_tuple"} {
		if _, err := spec.AnyTypeByName(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"sk_buff", "sock", "task_struct"} {
		if _, err := spec.AnyTypeByName(name); err == nil {
			t.Errorf("%s is kernel-internal but in the built-in BTF", name)
		}
	}
}

// TestUAPITypes_UpToDate rebuilds the built-in BTF from uapibtf/uapi.c and
// compares it with the committed object (skipped without clang-19).
func TestUAPITypes_UpToDate(t *testing.T) {
	for _, tool := range []string{"make", "clang-19", "llvm-strip-19"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot rebuild uapibtf/uapi.o to compare", tool)
		}
	}
	// The headers are the system's: rebuild only with the ones uapi.c was
	// generated from.
	src, err := os.ReadFile("uapibtf/uapi.c")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "linux-libc-dev").Output()
	if err != nil || !bytes.Contains(src, []byte("(linux-libc-dev "+string(ver)+")")) {
		t.Skipf("linux-libc-dev %q is not the version uapi.c was generated from (%v)", ver, err)
	}
	tmp := t.TempDir()
	if out, err := exec.Command("make", "-s", "-B", "-C", "uapibtf", "OUT="+tmp).CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(tmp, "uapi.o"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("uapibtf/uapi.o")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("uapibtf/uapi.o is stale: run make -C engine/uapibtf")
	}
}

// BenchmarkNewCollection_CORE loads core_skb (29 instructions, 13 CO-RE
// relocations) against the built-in UAPI BTF and the kernel's, beside the
// baseline of ctx_fields (86 instructions, no relocation), to show what
// relocation adds to a load.
func BenchmarkNewCollection_CORE(b *testing.B) {
	uapi, err := engine.UAPITypes()
	if err != nil {
		b.Fatal(err)
	}
	load := func(b *testing.B, obj string, target *btf.Spec) {
		spec, err := engine.LoadCollectionSpec(corpusDir + "/" + obj)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			c, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, KernelTypes: target, Engine: engine.EngineInterp})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	}
	b.Run("baseline-no-core", func(b *testing.B) { load(b, "ctx_fields.o", uapi) })
	b.Run("builtin-btf", func(b *testing.B) { load(b, "core_skb.o", uapi) })
	if kern, err := btf.LoadKernelSpec(); err == nil {
		b.Run("kernel-btf", func(b *testing.B) { load(b, "core_skb.o", kern) })
		b.Run("default", func(b *testing.B) { load(b, "core_skb.o", nil) }) // reads /sys/kernel/btf/vmlinux per load
	}
}
