package kernel_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/internal/testkit/benchprog"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/kernel"
)

const corpusDir = "../testdata/progs"

// corpus lists the object files of the program corpus, by name.
func corpus(t testing.TB) []string {
	t.Helper()
	objs, err := filepath.Glob(filepath.Join(corpusDir, "*.o"))
	if err != nil || len(objs) == 0 {
		t.Fatalf("no corpus objects in %s: %v", corpusDir, err)
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = strings.TrimSuffix(filepath.Base(o), ".o")
	}
	return names
}

func corpusSpec(t testing.TB, name string) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(filepath.Join(corpusDir, name+".o"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// newRunner is the kernel gate plus a runner for spec, closed with t.
func newRunner(t testing.TB, spec *ebpf.CollectionSpec) *kernel.TestRunner {
	t.Helper()
	kerneltest.RequireKernel(t)
	r, err := kernel.NewTestRunner(spec)
	if err != nil {
		t.Fatalf("load: %+v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func run(t testing.TB, r *kernel.TestRunner, prog string, frame []byte) kernel.RunOutput {
	t.Helper()
	out, err := r.Run(prog, kernel.RunInput{Data: frame})
	if err != nil {
		t.Fatalf("%s on % x: %v", prog, frame, err)
	}
	return out
}

func TestCorpus_ObjectsUpToDate(t *testing.T) {
	if _, err := exec.LookPath("clang-19"); err != nil {
		t.Skip("clang-19 not installed: cannot rebuild the corpus to compare")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed: cannot rebuild the corpus to compare")
	}
	srcs, _ := filepath.Glob(filepath.Join(corpusDir, "*.c"))
	if len(srcs) < 22 {
		t.Fatalf("%d programs in the corpus, want at least 22", len(srcs))
	}
	tmp := t.TempDir()
	cmd := exec.Command("make", "-s", "-B", "-C", corpusDir, "OUT="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		want, err := os.ReadFile(filepath.Join(tmp, name+".o"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(corpusDir, name+".o"))
		if err != nil {
			t.Errorf("%s.o not committed: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s.o is stale: run make -C testdata/progs", name)
		}
	}
	if objs := corpus(t); len(objs) != len(srcs) {
		t.Errorf("%d objects for %d sources", len(objs), len(srcs))
	}
}

// v4Features names the ISA v4 instructions in insns.
func v4Features(insns asm.Instructions) map[string]bool {
	f := map[string]bool{}
	for _, ins := range insns {
		op := ins.OpCode
		alu := op.Class() == asm.ALUClass || op.Class() == asm.ALU64Class
		switch {
		case op.Class() == asm.LdXClass && op.Mode() == asm.MemSXMode:
			f["ldsx"] = true
		case alu && (op.ALUOp() == asm.SDiv || op.ALUOp() == asm.SMod):
			f["sdiv/smod"] = true
		case alu && (op.ALUOp() == asm.MovSX8 || op.ALUOp() == asm.MovSX16 || op.ALUOp() == asm.MovSX32):
			f["movsx"] = true
		case op.Class() == asm.ALU64Class && op.ALUOp() == asm.Swap:
			f["bswap"] = true
		case op.Class() == asm.Jump32Class && op.JumpOp() == asm.Ja:
			f["gotol"] = true
		}
	}
	return f
}

func TestCorpus_V4Instructions(t *testing.T) {
	all := map[string]bool{}
	for _, name := range corpus(t) {
		for pname, p := range corpusSpec(t, name).Programs {
			f := v4Features(p.Instructions)
			if v4 := strings.HasPrefix(name, "v4_"); !v4 && len(f) > 0 {
				t.Errorf("%s/%s is built for v3 but has %v", name, pname, f)
			} else if v4 && len(f) == 0 {
				t.Errorf("%s/%s is built for v4 but has no v4 instruction", name, pname)
			}
			for k := range f {
				all[k] = true
			}
		}
	}
	for _, want := range []string{"ldsx", "sdiv/smod", "movsx", "bswap", "gotol"} {
		if !all[want] {
			t.Errorf("no corpus program uses %s", want)
		}
	}
}

// verdicts are the tc verdicts a corpus program may return on generated
// traffic (must: seen at least once in the run; may: allowed).
type verdicts struct{ must, may []uint32 }

const (
	ok, shot, redirect, unspec = 0, 2, 7, 0xffffffff
)

var corpusVerdicts = map[string]verdicts{
	"atomic_stats":  {must: []uint32{ok}},
	"config_filter": {must: []uint32{ok, shot}},
	"conntrack_lru": {must: []uint32{ok, shot}},
	"ctx_fields":    {must: []uint32{ok}},
	"core_skb":      {must: []uint32{ok}},
	"dns_guard":     {must: []uint32{ok, shot}},
	"dp_acl":        {must: []uint32{unspec}, may: []uint32{shot}},
	"dp_count":      {must: []uint32{unspec}},
	"dp_fib_fwd":    {must: []uint32{ok}, may: []uint32{shot}},
	"dp_dnat":       {must: []uint32{unspec}},
	"dp_redirect":   {must: []uint32{unspec}},
	"dp_peer":       {must: []uint32{unspec}},
	"dp_peer_seen":  {must: []uint32{unspec}},
	"dp_snat":       {must: []uint32{unspec}},
	"flow_events":   {must: []uint32{ok}},
	// Tail-call targets also run on their own, with cb[0] = 0: the
	// "TCP header" is then the Ethernet header.
	"handle_tcp":     {must: []uint32{ok}, may: []uint32{shot}},
	"handle_tcp_syn": {must: []uint32{shot}, may: []uint32{ok}},
	"handle_udp":     {must: []uint32{ok}, may: []uint32{shot}},
	"icmp_echo":      {must: []uint32{ok, redirect}},
	"ipip_decap":     {must: []uint32{ok}, may: []uint32{shot}},
	"ipip_encap":     {must: []uint32{ok}, may: []uint32{shot}},
	"ipv6_exthdr":    {must: []uint32{ok, shot}},
	"l3_forward":     {must: []uint32{ok, shot, redirect}},
	"l4_classify":    {must: []uint32{ok, shot, unspec}},
	"lpm_acl":        {must: []uint32{ok, shot}},
	"mpls_push":      {must: []uint32{ok}},
	"mss_clamp":      {must: []uint32{ok}},
	"nat44":          {must: []uint32{ok}},
	"nptv6":          {must: []uint32{ok}},
	"proto_counters": {must: []uint32{ok}},
	"qos_mark":       {must: []uint32{ok}},
	"subprog_csum":   {must: []uint32{ok, shot}},
	"tail_dispatch":  {must: []uint32{ok, shot}},
	"trim_tail":      {must: []uint32{ok}},
	"tunnel_md":      {must: []uint32{ok, redirect}},
	"v4_long_jump":   {must: []uint32{ok, shot}},
	"v4_signed_math": {must: []uint32{ok}},
	"vlan_pop":       {must: []uint32{ok}, may: []uint32{shot}},
	"vlan_push":      {must: []uint32{ok}},
}

// TestTestRunner_Run_Corpus loads every corpus object and runs each of its
// programs on generated traffic: every frame must be accepted by the
// kernel (so pktgen respects the test-run limits) and every verdict must be
// one the program can give.
func TestTestRunner_Run_Corpus(t *testing.T) {
	const frames = 2000
	for _, name := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			r := newRunner(t, corpusSpec(t, name))
			for _, prog := range r.Programs() {
				want, known := corpusVerdicts[prog]
				if !known {
					t.Fatalf("no expected verdicts for %s", prog)
				}
				seen := map[uint32]int{}
				g := pktgen.New(int64(len(prog)))
				for range frames {
					seen[run(t, r, prog, g.Next()).Retval]++
				}
				for v, n := range seen {
					if !slices.Contains(want.must, v) && !slices.Contains(want.may, v) {
						t.Errorf("%s returned %#x on %d frames", prog, v, n)
					}
				}
				for _, v := range want.must {
					if seen[v] == 0 {
						t.Errorf("%s never returned %#x in %d frames (saw %v)", prog, v, frames, seen)
					}
				}
			}
		})
	}
}

func etherFrame(ethertype uint16, n int) []byte {
	f := make([]byte, max(n, 14))
	f[0] = 0x02
	binary.BigEndian.PutUint16(f[12:], ethertype)
	return f[:n]
}

func TestTestRunner_Run_SizeLimits(t *testing.T) {
	r := newRunner(t, benchprog.Spec())
	for _, c := range []struct {
		ethertype uint16
		n         int
		ok        bool
	}{
		{0x88b5, pktgen.MinLen - 1, false}, {0x88b5, pktgen.MinLen, true},
		{0x88b5, pktgen.MaxLen, true}, {0x88b5, pktgen.MaxLen + 1, false},
		{0x0800, pktgen.MinLenIPv4 - 1, false}, {0x0800, pktgen.MinLenIPv4, true},
		{0x86dd, pktgen.MinLenIPv6 - 1, false}, {0x86dd, pktgen.MinLenIPv6, true},
		{0x8100, pktgen.MinLen, true},
	} {
		_, err := r.Run(benchprog.Floor, kernel.RunInput{Data: etherFrame(c.ethertype, c.n)})
		if c.ok && err != nil {
			t.Errorf("ethertype %#04x, %d bytes: %v", c.ethertype, c.n, err)
		}
		if !c.ok && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ethertype %#04x, %d bytes: err = %v, want EINVAL", c.ethertype, c.n, err)
		}
	}
}

func TestTestRunner_Run_ALULoopResult(t *testing.T) {
	r := newRunner(t, benchprog.Spec())
	out := run(t, r, benchprog.ALULoop, etherFrame(0x88b5, 64))
	if out.Retval != benchprog.ALULoopResult() {
		t.Errorf("retval %#x, want %#x", out.Retval, benchprog.ALULoopResult())
	}
}

// BenchmarkTestRunner_ALULoop reports the kernel's own figures (JIT) for
// the ALU anchor and the trivial program, so an interpreter benchmark in the
// same run can be compared per instruction.
func BenchmarkTestRunner_ALULoop(b *testing.B) {
	r := newRunner(b, benchprog.Spec())
	in := kernel.RunInput{Data: etherFrame(0x88b5, 64)}
	for _, prog := range []string{benchprog.Floor, benchprog.ALULoop} {
		b.Run(prog, func(b *testing.B) {
			d, err := r.Benchmark(prog, in, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "kernel-ns/run")
			if prog == benchprog.ALULoop {
				b.ReportMetric(float64(d.Nanoseconds())/benchprog.ALULoopExecuted, "kernel-ns/insn")
			}
		})
	}
}

// skbCtx builds a struct __sk_buff with the given 32-bit fields set.
func skbCtx(fields map[int]uint32) []byte {
	c := make([]byte, kernel.SkbCtxSize)
	for off, v := range fields {
		binary.LittleEndian.PutUint32(c[off:], v)
	}
	return c
}

// __sk_buff offsets.
const (
	offLen, offMark, offPriority, offIfindex, offTCIndex, offCB, offWireLen = 0, 8, 32, 40, 44, 48, 160
)

func cb(ctx []byte, i int) uint32 { return binary.LittleEndian.Uint32(ctx[offCB+4*i:]) }

func TestTestRunner_Run_ContextRules(t *testing.T) {
	r := newRunner(t, benchprog.Spec())
	frame := etherFrame(0x88b5, 60)
	for _, off := range []int{offLen, offTCIndex} {
		_, err := r.Run(benchprog.Floor, kernel.RunInput{Data: frame, Ctx: skbCtx(map[int]uint32{off: 1})})
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ctx field at %d set: err = %v, want EINVAL", off, err)
		}
	}
	in := skbCtx(map[int]uint32{offMark: 0xabc, offPriority: 3, offCB: 7, offCB + 16: 9})
	out, err := r.Run(benchprog.Floor, kernel.RunInput{Data: frame, Ctx: in})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(out.Ctx[offMark:]) != 0xabc || le.Uint32(out.Ctx[offPriority:]) != 3 ||
		cb(out.Ctx, 0) != 7 || cb(out.Ctx, 4) != 9 {
		t.Errorf("ctx_out does not carry ctx_in's fields: % x", out.Ctx[:68])
	}
	if got := le.Uint32(out.Ctx[offIfindex:]); got != 1 {
		t.Errorf("ctx_out ifindex = %d, want 1 (loopback)", got)
	}
	if got := le.Uint32(out.Ctx[offWireLen:]); got != uint32(len(frame)) {
		t.Errorf("ctx_out wire_len = %d, want %d", got, len(frame))
	}
}

// framesWhere returns n well-formed generated frames that satisfy keep.
func framesWhere(t testing.TB, n int, keep func(gopacket.Packet) bool) [][]byte {
	t.Helper()
	g := pktgen.New(11)
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		if i > 200*n {
			t.Fatalf("only %d of %d frames found", len(out), n)
		}
		f := g.NextFrame()
		if !f.Malformed && keep(decode(f.Data)) {
			out = append(out, f.Data)
		}
	}
	return out
}

func decode(b []byte) gopacket.Packet {
	return gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
}

// build serializes ls with lengths and checksums computed; transport
// checksums use the closest network layer before them.
func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	var nl gopacket.NetworkLayer
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			nl = l
		case *layers.IPv6:
			nl = l
		case interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}:
			if nl != nil {
				l.SetNetworkLayerForChecksum(nl)
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ipv4Of(p gopacket.Packet) *layers.IPv4 {
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	return ip
}

func untagged(p gopacket.Packet) bool { return p.Layer(layers.LayerTypeDot1Q) == nil }

func isFragment(ip *layers.IPv4) bool {
	return ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0
}

func TestTestRunner_Run_NAT44(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "nat44"))
	private := func(a []byte) bool {
		return a[0] == 10 || (a[0] == 172 && a[1]&0xf0 == 16) || (a[0] == 192 && a[1] == 168)
	}
	frames := framesWhere(t, 300, func(p gopacket.Packet) bool {
		ip := ipv4Of(p)
		return ip != nil && !isFragment(ip) && p.TransportLayer() != nil && ip.Protocol != layers.IPProtocolIPv4 &&
			pktgen.CheckChecksums(p.Data()) == nil
	})
	translated := 0
	for _, f := range frames {
		in := ipv4Of(decode(f))
		out := run(t, r, "nat44", f)
		p := decode(out.Data)
		ip := ipv4Of(p)
		if out.Retval != ok || ip == nil {
			t.Fatalf("retval %d, output % x", out.Retval, out.Data)
		}
		if err := pktgen.CheckChecksums(out.Data); err != nil {
			t.Errorf("checksums broken after NAT: %v\nin  % x\nout % x", err, f, out.Data)
		}
		if !private(in.SrcIP.To4()) {
			if !bytes.Equal(out.Data, f) {
				t.Errorf("public source %v was rewritten", in.SrcIP)
			}
			continue
		}
		translated++
		port := binary.BigEndian.Uint16(p.TransportLayer().LayerContents()[0:2])
		if !ip.SrcIP.Equal([]byte{192, 0, 2, 1}) || port < 20000 || port >= 20000+8192 {
			t.Errorf("translated to %v:%d, want 192.0.2.1:20000..28191", ip.SrcIP, port)
		}
		// The conntrack keeps the flow's port.
		if again := run(t, r, "nat44", f); !bytes.Equal(again.Data, out.Data) {
			t.Errorf("same flow translated differently")
		}
	}
	if translated < 50 {
		t.Errorf("only %d private-source frames translated", translated)
	}
}

func TestTestRunner_Run_NPTv6(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "nptv6"))
	frames := framesWhere(t, 100, func(p gopacket.Packet) bool {
		ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		return ip6 != nil && ip6.SrcIP[0] == 0xfd && pktgen.CheckChecksums(p.Data()) == nil &&
			(ip6.NextHeader == layers.IPProtocolTCP || ip6.NextHeader == layers.IPProtocolUDP || ip6.NextHeader == layers.IPProtocolICMPv6)
	})
	for _, f := range frames {
		out := run(t, r, "nptv6", f)
		ip6 := decode(out.Data).Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		in6 := decode(f).Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !bytes.Equal(ip6.SrcIP[:6], []byte{0x20, 0x01, 0x0d, 0xb8, 0xca, 0xfe}) || !bytes.Equal(ip6.SrcIP[6:], in6.SrcIP[6:]) {
			t.Errorf("source %v -> %v, want prefix 2001:db8:cafe::/48 and the same host bits", in6.SrcIP, ip6.SrcIP)
		}
		if err := pktgen.CheckChecksums(out.Data); err != nil {
			t.Errorf("checksum after NPTv6: %v", err)
		}
	}
}

func TestTestRunner_Run_TailCallChain(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "tail_dispatch"))
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	}
	tcp := func(port layers.TCPPort, syn bool) []byte {
		n := ip(layers.IPProtocolTCP)
		return build(t, eth, n, &layers.TCP{SrcPort: 40000, DstPort: port, SYN: syn, ACK: !syn})
	}
	udp := &layers.UDP{SrcPort: 5000, DstPort: 53}
	for _, c := range []struct {
		name   string
		frame  []byte
		retval uint32
		trace  uint32
	}{
		{"syn to closed port", tcp(9, true), shot, 0x123},
		{"syn to open port", tcp(443, true), ok, 0x123},
		{"ack", tcp(9, false), ok, 0x12},
		{"udp", build(t, eth, ip(layers.IPProtocolUDP), udp, gopacket.Payload("q")), ok, 0x14},
		{"icmp: empty slot", build(t, eth, ip(layers.IPProtocolICMPv4), &layers.ICMPv4{}), ok, 0x1f},
	} {
		out, err := r.Run("tail_dispatch", kernel.RunInput{Data: c.frame, Ctx: skbCtx(nil)})
		if err != nil {
			t.Fatal(err)
		}
		if mark := binary.LittleEndian.Uint32(out.Ctx[offMark:]); out.Retval != c.retval || mark != c.trace {
			t.Errorf("%s: retval %d trace %#x, want %d %#x", c.name, out.Retval, mark, c.retval, c.trace)
		}
	}
}

func TestTestRunner_Run_ICMPEchoReply(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "icmp_echo"))
	frames := framesWhere(t, 60, func(p gopacket.Packet) bool {
		ic4, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		ic6, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		ip := ipv4Of(p)
		v4 := ic4 != nil && ic4.TypeCode == layers.CreateICMPv4TypeCode(8, 0) && ip != nil && ip.IHL == 5 && !isFragment(ip)
		ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		v6 := ic6 != nil && ic6.TypeCode == layers.CreateICMPv6TypeCode(128, 0) && ip6.NextHeader == layers.IPProtocolICMPv6
		return untagged(p) && (v4 || v6) && pktgen.CheckChecksums(p.Data()) == nil
	})
	for _, f := range frames {
		out := run(t, r, "icmp_echo", f)
		in, p := decode(f), decode(out.Data)
		if out.Retval != redirect {
			t.Fatalf("retval %d, want TC_ACT_REDIRECT", out.Retval)
		}
		if err := pktgen.CheckChecksums(out.Data); err != nil {
			t.Errorf("reply checksum: %v", err)
		}
		inNet, outNet := in.NetworkLayer().NetworkFlow(), p.NetworkLayer().NetworkFlow()
		if inNet.Reverse() != outNet || !bytes.Equal(out.Data[0:6], f[6:12]) {
			t.Errorf("addresses not swapped: %v -> %v", inNet, outNet)
		}
	}
}

func TestTestRunner_Run_VLANPushPop(t *testing.T) {
	push := newRunner(t, corpusSpec(t, "vlan_push"))
	pop := newRunner(t, corpusSpec(t, "vlan_pop"))
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: et}
	}
	v4 := build(t, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, TTL: 64, TOS: 0xa0, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}})
	v6 := build(t, eth(layers.EthernetTypeIPv6), &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolNoNextHeader, SrcIP: make([]byte, 16), DstIP: make([]byte, 16)})
	ctx := skbCtx(nil)

	// One push keeps the tag out of band: the bytes do not change.
	out, err := push.Run("vlan_push", kernel.RunInput{Data: v4, Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Data, v4) || cb(out.Ctx, 0) != 1 || cb(out.Ctx, 1) != 5<<13|100 || cb(out.Ctx, 2) != 0x8100 {
		t.Errorf("single push: data changed=%v, cb % x", !bytes.Equal(out.Data, v4), out.Ctx[offCB:offCB+20])
	}
	// A second push moves the first tag into the packet.
	out, err = push.Run("vlan_push", kernel.RunInput{Data: v6, Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	inner := append(append(append([]byte{}, v6[:12]...), 0x81, 0x00, 0x00, 100), v6[12:]...)
	if !bytes.Equal(out.Data, inner) || cb(out.Ctx, 1)&0xfff != 3000 || cb(out.Ctx, 2) != 0x88a8 || cb(out.Ctx, 4) != 0x8100 {
		t.Errorf("double push: got % x\nwant % x\ncb % x", out.Data, inner, out.Ctx[offCB:offCB+20])
	}

	// Pop of the single tag gives the untagged frame; pop of QinQ takes the
	// outer tag and moves the inner one out of band.
	out, err = pop.Run("vlan_pop", kernel.RunInput{Data: inner, Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Data, v6) || cb(out.Ctx, 0) != 0 || cb(out.Ctx, 1) != 0 {
		t.Errorf("pop: got % x want % x, cb % x", out.Data, v6, out.Ctx[offCB:offCB+20])
	}
	qinq := build(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 3000, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, gopacket.Payload(v4[14:]))
	out, err = pop.Run("vlan_pop", kernel.RunInput{Data: qinq, Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Data, v4) || cb(out.Ctx, 1) != 1 || cb(out.Ctx, 2)&0xfff != 100 || cb(out.Ctx, 3) != 0x0800 {
		t.Errorf("QinQ pop: got % x want % x, cb % x", out.Data, v4, out.Ctx[offCB:offCB+20])
	}
}

func TestTestRunner_ReadRing_FlowEvents(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "flow_events"))
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	}
	syn := build(t, eth, ip(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1234, DstPort: 80, SYN: true})
	ack := build(t, eth, ip(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1234, DstPort: 80, ACK: true})
	echo := build(t, eth, ip(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})
	reply := build(t, eth, ip(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0)})
	dns := build(t, eth, ip(layers.IPProtocolUDP), &layers.UDP{SrcPort: 999, DstPort: 53}, gopacket.Payload(make([]byte, 20)))
	for _, f := range [][]byte{syn, ack, echo, reply, dns} {
		run(t, r, "flow_events", f)
	}
	recs, err := r.ReadRing("events")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []uint32
	for _, rec := range recs {
		kinds = append(kinds, binary.LittleEndian.Uint32(rec))
	}
	// SYN (1), echo request (2), DNS sample (3); the ACK is not an event
	// and the echo reply's reservation was discarded.
	if !slices.Equal(kinds, []uint32{1, 2, 3}) {
		t.Errorf("record kinds %v, want [1 2 3]", kinds)
	}
	if len(recs) == 3 && (len(recs[2]) != 40 || !bytes.Equal(recs[2][8:40], dns[14:46])) {
		t.Errorf("DNS sample record % x, want the first 32 bytes of the IP header on", recs[2])
	}
	if again, err := r.ReadRing("events"); err != nil || len(again) != 0 {
		t.Errorf("second drain: %d records, %v", len(again), err)
	}
}

func TestTestRunner_ResetMaps_GlobalVariables(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "config_filter"))
	budget := func() uint32 {
		kv, err := r.MapContents(".data")
		if err != nil || len(kv) != 1 {
			t.Fatalf(".data: %v %v", kv, err)
		}
		return binary.LittleEndian.Uint32(kv[0].Values[0])
	}
	bss := func() []byte {
		kv, err := r.MapContents(".bss")
		if err != nil || len(kv) != 1 {
			t.Fatalf(".bss: %v %v", kv, err)
		}
		return kv[0].Values[0]
	}
	if budget() != 64 {
		t.Fatalf("initial budget %d, want 64", budget())
	}
	g := pktgen.New(1)
	for range 500 {
		run(t, r, "config_filter", g.Next())
	}
	if seen := binary.LittleEndian.Uint64(bss()); seen != 500 || budget() != 0 {
		t.Errorf("after 500 frames: seen %d, budget %d; want 500 and 0", seen, budget())
	}
	if err := r.ResetMaps(); err != nil {
		t.Fatal(err)
	}
	if b := bss(); budget() != 64 || !bytes.Equal(b, make([]byte, len(b))) {
		t.Errorf("after reset: budget %d, .bss % x", budget(), b)
	}
}

func TestTestRunner_SetMap_LPMRule(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "lpm_acl"))
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	from := func(src []byte) []byte {
		return build(t, eth, &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: []byte{10, 9, 9, 9}})
	}
	verdict := func(src []byte) (uint32, uint32) {
		out, err := r.Run("lpm_acl", kernel.RunInput{Data: from(src), Ctx: skbCtx(nil)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Retval, binary.LittleEndian.Uint32(out.Ctx[offMark:])
	}
	for _, c := range []struct {
		src         []byte
		retval, mrk uint32
	}{
		{[]byte{8, 8, 8, 8}, ok, 0xdef},  // only 0/0 matches
		{[]byte{10, 1, 2, 3}, shot, 0},   // /32 deny inside a /24 mark
		{[]byte{10, 1, 2, 4}, ok, 0x102}, // the /24
		{[]byte{10, 1, 9, 9}, shot, 0},   // the /16
		{[]byte{10, 2, 0, 1}, ok, 0},     // the /8 allow
	} {
		if v, m := verdict(c.src); v != c.retval || m != c.mrk {
			t.Errorf("%v: verdict %d mark %#x, want %d %#x", c.src, v, m, c.retval, c.mrk)
		}
	}
	// A control-plane rule (prefixlen, addr; action, mark, hits) for 8.8.8.0/24.
	key := []byte{24, 0, 0, 0, 8, 8, 8, 0}
	val := make([]byte, 16)
	binary.LittleEndian.PutUint32(val, 1) // ACL_DENY
	if err := r.SetMap("acl_v4", key, val); err != nil {
		t.Fatal(err)
	}
	if v, _ := verdict([]byte{8, 8, 8, 8}); v != shot {
		t.Errorf("after adding a deny rule: verdict %d", v)
	}
	rules, err := r.MapContents("acl_v4")
	if err != nil || len(rules) != 9 {
		t.Errorf("acl_v4 has %d rules (%v), want 8 installed + 1 added", len(rules), err)
	}
}

func TestTestRunner_MapContents_PerCPUCounters(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "proto_counters"))
	g := pktgen.New(9)
	const n = 1000
	for range n {
		run(t, r, "proto_counters", g.Next())
	}
	kv, err := r.MapContents("class_stats")
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, e := range kv[:4] { // OTHER, ARP, IPV4, IPV6: exactly one per frame
		if len(e.Values) != cpus {
			t.Fatalf("%d per-CPU values, want %d", len(e.Values), cpus)
		}
		for _, v := range e.Values {
			total += binary.LittleEndian.Uint64(v)
		}
	}
	if total != n {
		t.Errorf("frames counted over all CPUs: %d, want %d", total, n)
	}
}

// TestTestRunner_Run_DerivedContext checks what the kernel derives for the
// program: pkt_type from the destination MAC against lo's all-zero
// addresses, protocol, ifindex 1, data_meta == data, and wire_len, which is 0 without a context and the frame length
// with one.
func TestTestRunner_Run_DerivedContext(t *testing.T) {
	r := newRunner(t, corpusSpec(t, "ctx_fields"))
	snapshot := func(dst []byte, ctx []byte) []byte {
		if err := r.ResetMaps(); err != nil { // slot 0 again
			t.Fatal(err)
		}
		f := etherFrame(0x88b5, 60)
		copy(f, dst)
		if _, err := r.Run("ctx_fields", kernel.RunInput{Data: f, Ctx: ctx}); err != nil {
			t.Fatal(err)
		}
		kv, err := r.MapContents("snapshots")
		if err != nil {
			t.Fatal(err)
		}
		return kv[0].Values[0]
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		dst     []byte
		pktType uint32
	}{
		{make([]byte, 6), 0}, // PACKET_HOST
		// lo has no broadcast address (all zero), so ff:ff:.. is only
		// multicast there: PACKET_MULTICAST, not PACKET_BROADCAST.
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2},
		{[]byte{0x01, 0x00, 0x5e, 0, 0, 1}, 2},
		{[]byte{0x02, 0, 0, 0, 0, 9}, 3}, // PACKET_OTHERHOST
	} {
		if s := snapshot(c.dst, nil); le.Uint32(s[4:]) != c.pktType {
			t.Errorf("dst %x: pkt_type %d, want %d", c.dst, le.Uint32(s[4:]), c.pktType)
		}
	}
	s := snapshot(nil, nil)
	if le.Uint32(s[0:]) != 60 || le.Uint32(s[16:]) != 0xb588 || le.Uint32(s[40:]) != 1 || le.Uint32(s[76:]) != 60 || le.Uint32(s[80:]) != 0 {
		t.Errorf("len/protocol/ifindex/data_len/meta_len = %d %#x %d %d %d", le.Uint32(s[0:]), le.Uint32(s[16:]), le.Uint32(s[40:]), le.Uint32(s[76:]), le.Uint32(s[80:]))
	}
	if wl := le.Uint32(s[96:]); wl != 0 {
		t.Errorf("wire_len without context = %d, want 0", wl)
	}
	if wl := le.Uint32(snapshot(nil, skbCtx(nil))[96:]); wl != 60 {
		t.Errorf("wire_len with a zero context = %d, want 60", wl)
	}
}

func TestTestRunner_Run_TailAndRoom(t *testing.T) {
	trim := newRunner(t, corpusSpec(t, "trim_tail"))
	encap := newRunner(t, corpusSpec(t, "ipip_encap"))
	decap := newRunner(t, corpusSpec(t, "ipip_decap"))
	g := pktgen.New(21)
	tunnelled := 0
	for range 3000 {
		f := g.Next()
		out := run(t, trim, "trim_tail", f)
		keep := min(len(f), 256)
		trailer := binary.BigEndian.AppendUint32([]byte("TCXT"), uint32(len(f)))
		if !bytes.Equal(out.Data, append(bytes.Clone(f[:keep]), trailer...)) {
			t.Fatalf("trim_tail: %d bytes in, % x out", len(f), out.Data)
		}
		p := decode(f)
		if ip := ipv4Of(p); ip == nil || !untagged(p) || !ip.DstIP.Mask([]byte{255, 255, 255, 0}).Equal([]byte{198, 51, 100, 0}) || ip.Version != 4 {
			continue
		}
		enc := run(t, encap, "ipip_encap", f)
		if len(enc.Data) != len(f)+20 || enc.Data[23] != 4 {
			t.Fatalf("encap: % x", enc.Data)
		}
		if err := pktgen.CheckChecksums(enc.Data); err != nil && !errors.Is(err, pktgen.ErrNoChecksum) {
			t.Errorf("outer header: %v", err)
		}
		if dec := run(t, decap, "ipip_decap", enc.Data); !bytes.Equal(dec.Data, f) {
			t.Errorf("decap(encap(f)) != f:\n% x\n% x", dec.Data, f)
		}
		tunnelled++
	}
	if tunnelled < 20 {
		t.Errorf("only %d frames to the tunnel prefix", tunnelled)
	}
}
