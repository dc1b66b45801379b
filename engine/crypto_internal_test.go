package engine

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/bpfcrypto"
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// cryptoBench is the kernel selftests' crypto_bench.o (third-party corpus):
// a syscall program creating an "ecb(aes)" context into __crypto_ctx_map
// and tc programs encrypting and decrypting the packet into .bss.
const cryptoBench = "../testdata/thirdparty/selftests/progs/crypto_bench.o"

func cryptoSpec(t *testing.T) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := LoadCollectionSpec(cryptoBench)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 256)
	copy(key, "12345678testtest")
	cipher := make([]byte, 128)
	copy(cipher, "ecb(aes)")
	for name, v := range map[string]any{"key_len": uint32(16), "key": key, "cipher": cipher} {
		if err := spec.Variables[name].Set(v); err != nil {
			t.Fatal(err)
		}
	}
	return spec
}

// bssStatus reads the programs' status variable.
func bssStatus(t *testing.T, c *Collection, spec *ebpf.CollectionSpec) int32 {
	t.Helper()
	v := make([]byte, c.Maps[".bss"].Info().ValueSize)
	if err := c.Maps[".bss"].Lookup([]byte{0, 0, 0, 0}, v); err != nil {
		t.Fatal(err)
	}
	return int32(binary.NativeEndian.Uint32(v[spec.Variables["status"].Offset:]))
}

// storedCtx is the kptr in __crypto_ctx_map's value as programs see it
// (userspace reads zero there) and the context it stands for.
func storedCtx(t *testing.T, c *Collection) (uint64, *bpfcrypto.Ctx) {
	t.Helper()
	a := c.Maps["__crypto_ctx_map"].(*maps.Array)
	ptr := binary.NativeEndian.Uint64(a.Slots(0))
	obj, _ := c.as.Object(ptr)
	ctx, _ := obj.(*bpfcrypto.Ctx)
	return ptr, ctx
}

// The context's lifetime: the map holds the only reference; a second
// setup's map update drops it (bpf_obj_free_fields) before the new one is
// stored, so the first context is gone; a userspace update drops the
// second; Close drops a third. Userspace never sees the pointer.
func TestCrypto_ContextLifetime(t *testing.T) {
	spec := cryptoSpec(t)
	c, err := NewCollection(spec, Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	setup := c.Syscalls["crypto_setup"]
	if setup == nil || c.Programs["crypto_setup"] != nil {
		t.Fatalf("crypto_setup: Syscalls %v, Programs %v", c.Syscalls, c.Programs)
	}
	if r, err := setup.RunSyscall(); err != nil || r != 0 || bssStatus(t, c, spec) != 0 {
		t.Fatalf("setup: %d, %v, status %d", r, err, bssStatus(t, c, spec))
	}
	first, ctx := storedCtx(t, c)
	if ctx == nil || ctx.Refs() != 1 {
		t.Fatalf("after setup the map holds %#x (%v)", first, ctx)
	}
	v := make([]byte, 8)
	if err := c.Maps["__crypto_ctx_map"].Lookup([]byte{0, 0, 0, 0}, v); err != nil || binary.NativeEndian.Uint64(v) != 0 {
		t.Errorf("userspace lookup: % x, %v; the kernel shows a kptr as zero", v, err)
	}

	if _, err := setup.RunSyscall(); err != nil || bssStatus(t, c, spec) != 0 {
		t.Fatalf("second setup: %v, status %d", err, bssStatus(t, c, spec))
	}
	second, ctx2 := storedCtx(t, c)
	if ctx.Refs() != 0 || ctx2 == nil || ctx2 == ctx {
		t.Fatalf("second setup: old ctx refs %d, map holds %#x", ctx.Refs(), second)
	}
	if obj, ok := c.as.Object(first); ok && obj == any(ctx) {
		t.Error("the released context's handle still resolves")
	}

	junk := binary.NativeEndian.AppendUint64(nil, 0xdeadbeef00000000)
	if err := c.Maps["__crypto_ctx_map"].Update([]byte{0, 0, 0, 0}, junk, 0); err != nil {
		t.Fatal(err)
	}
	if ptr, _ := storedCtx(t, c); ptr != 0 || ctx2.Refs() != 0 {
		t.Fatalf("after a userspace update the kptr is %#x, the ctx has %d refs", ptr, ctx2.Refs())
	}
	frame := []byte("0123456789abcdef")
	if _, _, _, err := c.Programs["crypto_encrypt"].TestRun(frame, nil); err != nil || bssStatus(t, c, spec) != -linuxerr.ENOENT {
		t.Fatalf("encrypt without a ctx: %v, status %d, want -ENOENT", err, bssStatus(t, c, spec))
	}

	if _, err := setup.RunSyscall(); err != nil {
		t.Fatal(err)
	}
	_, ctx3 := storedCtx(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if ctx3 == nil || ctx3.Refs() != 0 {
		t.Errorf("Close left the map's reference: %v", ctx3)
	}
}

// The kernel registers bpf_crypto_ctx_create for syscall programs only and
// bpf_crypto_encrypt (and bpf_dynptr_from_skb) for tc ones; a program of
// the other type calling one is refused at load, naming it.
func TestCrypto_KfuncsByProgramType(t *testing.T) {
	for prog, want := range map[string]string{
		"crypto_setup":   "calling kernel function bpf_crypto_ctx_create is not allowed in a SchedCLS program",
		"crypto_encrypt": "calling kernel function bpf_dynptr_from_skb is not allowed in a Syscall program",
	} {
		spec := cryptoSpec(t)
		if spec.Programs[prog].Type == ebpf.Syscall {
			spec.Programs[prog].Type = ebpf.SchedCLS
		} else {
			spec.Programs[prog].Type = ebpf.Syscall
		}
		_, err := NewCollection(spec, Options{NumCPU: 1})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s as the other type: %v, want %q", prog, err, want)
		}
	}
}

// RunSyscall refuses a tc program, and the packet helpers stay out of a
// syscall program's reach.
func TestRunSyscall_Refusals(t *testing.T) {
	c, err := NewCollection(cryptoSpec(t), Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Programs["crypto_encrypt"].RunSyscall(); err == nil || !strings.Contains(err.Error(), "not a syscall program") {
		t.Errorf("RunSyscall of a tc program: %v", err)
	}
	sys := syscallHelpers(addKfuncs(helperTable()))
	for _, id := range []asm.BuiltinFunc{asm.FnSkbStoreBytes, asm.FnRedirect, asm.FnTailCall} {
		if sys[id] != nil {
			t.Errorf("%s is callable from a syscall program", id)
		}
	}
	if sys[asm.FnKptrXchg] == nil || sys[asm.FnMapUpdateElem] == nil {
		t.Error("a syscall program cannot call bpf_kptr_xchg or bpf_map_update_elem")
	}
}

// bpf_crypto_encrypt on the packet path allocates nothing.
func TestCrypto_Encrypt_ZeroAllocs(t *testing.T) {
	spec := cryptoSpec(t)
	c, err := NewCollection(spec, Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x, err := c.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.RunSyscall(c.Syscalls["crypto_setup"]); err != nil {
		t.Fatal(err)
	}
	pkt := new(skb.Packet)
	frame := []byte("0123456789abcdef")
	step := func() {
		if err := pkt.Reset(frame, skb.Loopback()); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Run(c.Programs["crypto_encrypt"], pkt); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if st := bssStatus(t, c, spec); st != 0 {
		t.Fatalf("status %d", st)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("AllocsPerRun = %v", n)
	}
}

// A syscall program has no packet: an skb dynptr forged on its stack is an
// error of the run, not a crash.
func TestRunSyscall_ForgedSKBDynptr(t *testing.T) {
	insns := asm.Instructions{
		asm.LoadImm(asm.R1, dynptrSKB, asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		asm.StoreImm(asm.RFP, -8, dynptrTypeSKB<<28|16, asm.Word),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -32),
		asm.Mov.Imm(asm.R2, 4),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnDynptrRead.Call(),
		asm.Return(),
	}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"forge": {Name: "forge", Type: ebpf.Syscall, Instructions: insns, License: "GPL"},
	}}
	c, err := NewCollection(spec, Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Syscalls["forge"].RunSyscall()
	if err == nil || !strings.Contains(err.Error(), "not a local dynptr or an skb one in a packet run") {
		t.Errorf("RunSyscall = %v, want the forged dynptr refused", err)
	}
}
