package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// testRunReport is everything test-run found; --json prints it as it is.
type testRunReport struct {
	Object  string `json:"object"`
	Program string `json:"program"`
	// Syscalls are the --syscall runs, before the packets.
	Syscalls []syscallReport `json:"syscalls,omitempty"`
	Packets  []packetReport  `json:"packets"`
	Maps     []mapDump       `json:"maps,omitempty"`
	// Interpreted says why a program asked to run compiled (--engine jit)
	// runs in the interpreter.
	Interpreted string `json:"interpreted,omitempty"`
	// Warnings are the engine's load-time findings (engine.Warning).
	Warnings []string `json:"warnings,omitempty"`
	// LeftOut are the object's programs of other types and maps of types
	// the engine lacks that the tc programs do not use.
	LeftOut []string `json:"left_out,omitempty"`
}

// syscallReport is the outcome of one --syscall run.
type syscallReport struct {
	Program string `json:"program"`
	Retval  int32  `json:"retval"`
}

// packetReport is the outcome of one packet.
type packetReport struct {
	Index  int    `json:"index"`
	Origin string `json:"origin"`
	Len    int    `json:"len"`
	Retval int32  `json:"retval"`
	Action string `json:"action"` // TC_ACT_* name
	TCX    string `json:"tcx"`    // what tcx does with it: pass, drop, redirect, next
	// Error is why the run stopped early (a memory fault, the instruction
	// limit, a failed helper); the verdict is then TC_ACT_SHOT.
	Error    string `json:"error,omitempty"`
	Executed uint64 `json:"insns_executed"`

	DataChanged bool          `json:"data_changed"`
	LenOut      int           `json:"len_out"`
	DataOut     hexBytes      `json:"data_out,omitempty"` // when changed or --show-data
	Runs        []byteRun     `json:"changed_bytes,omitempty"`
	Redirect    *redirectInfo `json:"redirect,omitempty"`
	Ctx         []fieldChange `json:"ctx_changes,omitempty"`
	Tunnel      *tunnelInfo   `json:"tunnel,omitempty"`

	Repeat   int     `json:"repeat"`
	NsPerRun float64 `json:"ns_per_run,omitempty"`

	out    []byte
	ctxOut []byte // struct __sk_buff as BPF_PROG_TEST_RUN's ctx_out
}

// tunnelInfo is the tunnel metadata a program attached
// (bpf_skb_set_tunnel_key, bpf_skb_set_tunnel_opt): what a collect-metadata
// tunnel device would encapsulate the packet with.
type tunnelInfo struct {
	ID     uint64   `json:"id"`
	Remote string   `json:"remote"`
	Local  string   `json:"local"`
	TOS    uint8    `json:"tos"`
	TTL    uint8    `json:"ttl"`
	Label  uint32   `json:"label,omitempty"`
	Flags  []string `json:"flags"`
	Opts   hexBytes `json:"options,omitempty"`
}

func newTunnelInfo(t skb.Tunnel) *tunnelInfo {
	addr := func(a [16]byte) string {
		if t.IPv6 {
			return netip.AddrFrom16(a).String()
		}
		return netip.AddrFrom4([4]byte(a[:4])).String()
	}
	ti := &tunnelInfo{ID: t.ID, Remote: addr(t.Dst), Local: addr(t.Src), TOS: t.TOS, TTL: t.TTL, Label: t.Label,
		Opts: bytes.Clone(t.Opts), Flags: []string{}}
	for _, f := range []struct {
		bit  int
		name string
	}{{skb.TunnelKey, "key"}, {skb.TunnelCsum, "csum"}, {skb.TunnelSeq, "seq"},
		{skb.TunnelDontFragment, "dont-fragment"}, {skb.TunnelNoCache, "nocache"}} {
		if t.Flags&(1<<f.bit) != 0 {
			ti.Flags = append(ti.Flags, f.name)
		}
	}
	return ti
}

// redirectInfo is the redirect a program asked for.
type redirectInfo struct {
	Helper  string `json:"helper"` // bpf_redirect, bpf_redirect_peer, bpf_redirect_neigh
	Ifindex uint32 `json:"ifindex"`
	Ingress bool   `json:"ingress"`
	// Taken is false when the program asked for a redirect but did not
	// return TC_ACT_REDIRECT, so tcx ignores it.
	Taken bool `json:"taken"`
}

// fieldChange is an sk_buff field the program changed.
type fieldChange struct {
	Field  string `json:"field"`
	Before uint64 `json:"before"`
	After  uint64 `json:"after"`
	hex    bool
}

// skbField is one sk_buff field shown when a run changes it.
type skbField struct {
	name  string
	hex   bool
	value func(p *skb.Packet) uint64
}

// skbFields are the fields a tc program can change, directly through
// __sk_buff or as a side effect of a helper.
func skbFields() []skbField {
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	fields := []skbField{
		{"mark", true, func(p *skb.Packet) uint64 { return uint64(p.Mark) }},
		{"priority", false, func(p *skb.Packet) uint64 { return uint64(p.Priority) }},
		{"queue_mapping", false, func(p *skb.Packet) uint64 { return uint64(p.QueueMapping) }},
		{"tc_index", false, func(p *skb.Packet) uint64 { return uint64(p.TCIndex) }},
		{"tc_classid", true, func(p *skb.Packet) uint64 { return uint64(p.TCClassid) }},
	}
	for i := range 5 {
		fields = append(fields, skbField{fmt.Sprintf("cb[%d]", i), false, func(p *skb.Packet) uint64 {
			return uint64(binary.NativeEndian.Uint32(p.CB[4*i:]))
		}})
	}
	return append(fields,
		skbField{"protocol", true, func(p *skb.Packet) uint64 { return uint64(p.Protocol) }},
		skbField{"vlan_present", false, func(p *skb.Packet) uint64 { return b2u(p.VlanPresent) }},
		skbField{"vlan_proto", true, func(p *skb.Packet) uint64 { return uint64(p.VlanProto) }},
		skbField{"vlan_tci", false, func(p *skb.Packet) uint64 { return uint64(p.VlanTCI) }},
		skbField{"hash", true, func(p *skb.Packet) uint64 { return uint64(p.Hash) }},
		skbField{"tstamp", false, func(p *skb.Packet) uint64 { return p.Tstamp }},
		// bpf_sk_assign's socket, by cookie.
		skbField{"sk", false, func(p *skb.Packet) uint64 { return p.Sock }},
	)
}

// testDevices is what --ifindex makes exist besides the loopback device:
// BPF_PROG_TEST_RUN fails with ENODEV for an ifindex that names no device
// of the caller's namespace, and the engine asks this lookup instead.
type testDevices struct{ ifindex uint32 }

func newTestDevices(ifindex uint32) *testDevices { return &testDevices{ifindex: ifindex} }

func (d *testDevices) lookup(ifindex uint32) (skb.Device, bool) {
	if ifindex == d.ifindex && ifindex > 1 {
		return skb.Device{Ifindex: ifindex}, true
	}
	return skb.Device{}, false
}

// ctxIn builds the struct __sk_buff passed as ctx_in from the flags.
func ctxIn(opts *testRunOptions) []byte {
	ctx := make([]byte, skb.CtxSize)
	le := binary.NativeEndian
	le.PutUint32(ctx[skb.CtxMark:], opts.ctxMark)
	le.PutUint32(ctx[skb.CtxPriority:], opts.ctxPriority)
	le.PutUint32(ctx[skb.CtxIfindex:], opts.ifindex)
	le.PutUint32(ctx[skb.CtxIngressIfindex:], opts.ingressIfidx)
	for i, v := range opts.ctxCB {
		le.PutUint32(ctx[skb.CtxCB+4*i:], uint32(v))
	}
	return ctx
}

// runFrame runs prog on one frame, opts.repeat times on the same skb as
// BPF_PROG_TEST_RUN does, and reports what the last run did. Errors are
// about the input (the kernel would refuse the test run); a run that faults
// is reported in the packetReport instead.
func runFrame(ctx context.Context, x *engine.Executor, prog *engine.Program, f frame, opts *testRunOptions, devs *testDevices) (packetReport, error) {
	var pkt skb.Packet
	if err := pkt.ResetTestRun(f.data, ctxIn(opts), devs.lookup); err != nil {
		return packetReport{}, fmt.Errorf("%s: %w", f.origin, err)
	}
	pkt.AtIngress = opts.atIngress
	fields := skbFields()
	before := make([]uint64, len(fields))
	for i, fl := range fields {
		before[i] = fl.value(&pkt)
	}
	var res engine.Result
	var runErr error
	start := time.Now()
	for i := range opts.repeat {
		if res, runErr = x.Run(prog, &pkt); runErr != nil {
			break
		}
		// A long --repeat stops at ^C; checking every run would cost more
		// than some programs take.
		if i%4096 == 4095 && ctx.Err() != nil {
			return packetReport{}, fmt.Errorf("%s: %w after %d runs", f.origin, context.Cause(ctx), i+1)
		}
	}
	elapsed := time.Since(start)

	out := bytes.Clone(pkt.Data())
	ctxOut := make([]byte, skb.CtxSize)
	pkt.CtxOut(ctxOut)
	r := packetReport{
		Origin: f.origin, Len: len(f.data), Retval: int32(res.Retval), Executed: res.Executed,
		LenOut: len(out), Repeat: opts.repeat, out: out, ctxOut: ctxOut,
	}
	r.Action, r.TCX = tcAction(r.Retval)
	if runErr != nil {
		r.Error = runErr.Error()
	}
	r.DataChanged = !bytes.Equal(f.data, out)
	if r.DataChanged || opts.showData {
		r.DataOut = out
	}
	if r.DataChanged && len(out) == len(f.data) {
		r.Runs = diffRuns(f.data, out)
	}
	if rd := res.Redirect; rd.Kind != skb.RedirectNone {
		helper := map[skb.RedirectKind]string{skb.RedirectDev: "bpf_redirect",
			skb.RedirectPeer: "bpf_redirect_peer", skb.RedirectNeigh: "bpf_redirect_neigh"}[rd.Kind]
		r.Redirect = &redirectInfo{Helper: helper, Ifindex: rd.Ifindex, Ingress: rd.Ingress,
			Taken: res.Retval == skb.ActRedirect}
	}
	if t, ok := pkt.Tunnel(); ok {
		r.Tunnel = newTunnelInfo(t)
	}
	for i, fl := range fields {
		if after := fl.value(&pkt); after != before[i] {
			r.Ctx = append(r.Ctx, fieldChange{Field: fl.name, Before: before[i], After: after, hex: fl.hex})
		}
	}
	if opts.repeatSet {
		r.NsPerRun = float64(elapsed.Nanoseconds()) / float64(opts.repeat)
	}
	return r, nil
}

// writeReport prints the report for people.
func writeReport(w io.Writer, rep *testRunReport, opts *testRunOptions) {
	fmt.Fprintf(w, "%s: program %s, %d packet%s\n", rep.Object, rep.Program, len(rep.Packets), plural(len(rep.Packets), "", "s"))
	if rep.Interpreted != "" {
		fmt.Fprintf(w, "note: the program runs in the interpreter, not compiled: %s\n", rep.Interpreted)
	}
	if len(rep.LeftOut) > 0 {
		fmt.Fprintf(w, "note: %d program%s or map%s of the object left out (other program types, map types no tc program uses; --json lists them)\n",
			len(rep.LeftOut), plural(len(rep.LeftOut), "", "s"), plural(len(rep.LeftOut), "", "s"))
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	for _, sc := range rep.Syscalls {
		fmt.Fprintf(w, "syscall program %s: retval %d\n", sc.Program, sc.Retval)
	}
	for i := range rep.Packets {
		writePacket(w, &rep.Packets[i], opts)
	}
	if rep.Maps != nil {
		fmt.Fprintln(w)
		writeMapDumps(w, rep.Maps)
	}
}

func writePacket(w io.Writer, r *packetReport, opts *testRunOptions) {
	fmt.Fprintf(w, "\npacket %d (%s): %d bytes\n", r.Index, r.Origin, r.Len)
	fmt.Fprintf(w, "  retval    %d %s (tcx: %s) after %d insns\n", r.Retval, r.Action, r.TCX, r.Executed)
	if r.Error != "" {
		fmt.Fprintf(w, "  error     %s\n", r.Error)
	}
	switch {
	case !r.DataChanged:
		fmt.Fprintln(w, "  data      unchanged")
	case r.Runs != nil:
		n := changedBytes(r.Runs)
		fmt.Fprintf(w, "  data      %d byte%s changed:\n", n, plural(n, "", "s"))
		writeRuns(w, "    ", r.Runs)
	default:
		fmt.Fprintf(w, "  data      %d -> %d bytes:\n", r.Len, r.LenOut)
		hexdump(w, "    ", r.out)
	}
	if opts.showData && (!r.DataChanged || r.Runs != nil) {
		fmt.Fprintln(w, "  data out")
		hexdump(w, "    ", r.out)
	}
	if rd := r.Redirect; rd != nil {
		dir := "egress"
		if rd.Ingress {
			dir = "ingress"
		}
		note := ""
		if !rd.Taken {
			note = " (not taken: retval is not TC_ACT_REDIRECT)"
		}
		fmt.Fprintf(w, "  redirect  %s to ifindex %d %s%s\n", rd.Helper, rd.Ifindex, dir, note)
	}
	if len(r.Ctx) > 0 {
		parts := make([]string, len(r.Ctx))
		for i, c := range r.Ctx {
			parts[i] = fmt.Sprintf("%s %s -> %s", c.Field, c.format(c.Before), c.format(c.After))
		}
		writeWrapped(w, "  skb       ", parts)
	}
	if t := r.Tunnel; t != nil {
		line := fmt.Sprintf("  tunnel    id %d remote %s local %s tos %d ttl %d", t.ID, t.Remote, t.Local, t.TOS, t.TTL)
		if t.Label != 0 {
			line += fmt.Sprintf(" label %#x", t.Label)
		}
		line += " flags " + strings.Join(t.Flags, ",")
		if len(t.Opts) > 0 {
			line += fmt.Sprintf(" options % x", []byte(t.Opts))
		}
		fmt.Fprintln(w, line)
	}
	if r.NsPerRun > 0 {
		fmt.Fprintf(w, "  time      %.1f ns/run (mean of %d runs)\n", r.NsPerRun, r.Repeat)
	}
}

func (c fieldChange) format(v uint64) string {
	if c.hex {
		return fmt.Sprintf("%#x", v)
	}
	return fmt.Sprint(v)
}

// writeWrapped prints parts after label, comma-separated, starting a new
// line indented like the first whenever one would pass wrapWidth columns.
func writeWrapped(w io.Writer, label string, parts []string) {
	const wrapWidth = 80
	indent := strings.Repeat(" ", len(label))
	line := label
	for i, p := range parts {
		sep := ""
		if i < len(parts)-1 {
			sep = ","
		}
		if line != label && len(line)+1+len(p)+len(sep) > wrapWidth {
			fmt.Fprintln(w, line)
			line = indent
		}
		if line != label && line != indent {
			line += " "
		}
		line += p + sep
	}
	fmt.Fprintln(w, line)
}
