package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/sock"
)

// testRunOptions are the flags of tcx test-run.
type testRunOptions struct {
	object  string
	prog    string
	pcap    string
	hexFile string
	hex     []string
	set     []string
	syscall []string

	ctxMark, ctxPriority   uint32
	ifindex, ingressIfidx  uint32
	ctxCB                  []uint
	repeat                 int
	repeatSet              bool
	jsonOut, list, dumpMap bool
	showData               bool
	engineName             string
	engine                 engine.Engine
	strict                 bool
	sockets                []string
	sockmaps               []string
	atIngress              bool
}

func newTestRunCommand() *cobra.Command {
	opts := &testRunOptions{}
	cmd := &cobra.Command{
		Use:   "test-run OBJ.o [--prog NAME] (--pcap FILE | --hex-file FILE | --hex HEX ...)",
		Short: "Run a tc program from an ELF object on packets, like bpftool prog run, without root",
		Long: `test-run loads a clang-built ELF object with tcx-go's pure-Go execution
engine (no kernel, no root) and runs one of its tc programs on each packet
the way BPF_PROG_TEST_RUN does: the skb is built on the loopback device
(ifindex 1) unless --ifindex names another device (which, unlike in the
kernel, need not exist), and the limits on frames are the kernel's
(14..3712 bytes; IPv4 needs 34, IPv6 54).

For every packet it prints the return code with its tc name and what tcx does
with it, the bytes the program changed (offset, header, old -> new; a full
hexdump when the length changed), the redirect target (bpf_redirect does not
send anything in a test run) and the sk_buff fields that changed: mark,
priority, queue_mapping, tc_index, tc_classid, cb[], the VLAN tag and more.

Packets are run in order on one simulated CPU and share the object's maps,
so state (conntrack, counters) carries from one packet to the next;
--dump-maps shows it afterwards. The context is always passed, so wire_len
reads as the frame length, as on a real packet.

Programs built against vmlinux.h are CO-RE-relocated against the running
kernel's BTF (or tcx-go's own UAPI types where there is none). Checks the
kernel's verifier makes and tcx-go makes cheaply at load time (combined
stack depth of bpf-to-bpf calls, global function arguments, packet access
beyond its checked bound) print a warning; --strict refuses the object.`,
		Example: `  # the programs and maps of an object
  tcx test-run testdata/progs/tail_dispatch.o --list

  # an ICMP echo request as hex (spaces and colons allowed) on device 5
  tcx test-run testdata/progs/icmp_echo.o --ifindex 5 --hex "02:00:00:00:00:01 02:00:00:00:00:0a 0800 45000020123440004001 14a70a0000020a000001 0800192700070001 70696e67"

  # frames from a hex file (one per line) through a NAT, then its conntrack
  tcx test-run testdata/progs/nat44.o --hex-file cmd/tcx/testdata/testrun/frames.hex --dump-maps

  # a capture through a router, as JSON
  tcx test-run testdata/progs/l3_forward.o --pcap cmd/tcx/testdata/testrun/mixed.pcap --json

  # the mean time of 10000 runs of each frame
  tcx test-run testdata/progs/l4_classify.o --pcap cmd/tcx/testdata/testrun/mixed.pcap --repeat 10000

  # the same in the interpreter instead of compiled machine code
  tcx test-run testdata/progs/l4_classify.o --pcap cmd/tcx/testdata/testrun/mixed.pcap --repeat 10000 --engine interp

  # a kernel selftest's crypto context, created by its syscall program, then
  # 16 bytes encrypted with "ecb(aes)" into .bss
  tcx test-run testdata/thirdparty/selftests/progs/crypto_bench.o --set 'cipher="ecb(aes)"' --set 'key="12345678testtest"' --set key_len=16 --syscall crypto_setup --prog crypto_encrypt --hex 31323334353637383132333435363700 --dump-maps

  # a TCP listener and an established connection for the socket lookups of a
  # kernel selftest; bpf_sk_assign works at ingress (the skb shows the cookie)
  tcx test-run testdata/thirdparty/selftests/progs/vrf_socket_lookup.o --prog tc_socket_lookup --socket "tcp listen 127.0.0.1:8080 cookie=7" --socket "udp 127.0.0.1:53" --hex "020000000002 020000000001 0800 4500002800010000400600007f0000017f000001 9c40 1f90 00000000 00000000 5002ffff00000000" --dump-maps

  # a kernel selftest's bpf_sk_assign at tc ingress, with an established
  # socket in its sockmap: the skb line shows the socket's cookie as sk
  tcx test-run testdata/thirdparty/selftests/progs/test_assign_reuse.o --prog tc_main --set dest_port=4321 --socket "tcp 127.0.0.1:4321 127.0.0.1:40000 cookie=5" --sockmap sk_map:0=5 --at-ingress --hex "020000000002 020000000001 0800 4500002800010000400600007f0000017f000001 9c40 10e1 00000000 00000000 5002ffff00000000"

  # refuse, as the kernel's verifier does, a program whose bpf-to-bpf calls
  # need more than 512 bytes of stack (without --strict: a warning)
  tcx test-run testdata/thirdparty/selftests/rejected/test_global_func1.o --hex-file cmd/tcx/testdata/testrun/frames.hex --strict`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("test-run takes one ELF object, got %d arguments (packets go in --hex, --hex-file or --pcap)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.object = args[0]
			opts.repeatSet = cmd.Flags().Changed("repeat")
			return testRun(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.prog, "prog", "", "program to run (default: the object's only program)")
	f.StringVar(&opts.pcap, "pcap", "", "read Ethernet frames from a pcap or pcapng `FILE`")
	f.StringVar(&opts.hexFile, "hex-file", "", "read frames from `FILE`, one hex frame per line (# comments)")
	f.StringArrayVar(&opts.hex, "hex", nil, "a frame as `HEX` digits; repeatable")
	f.StringArrayVar(&opts.syscall, "syscall", nil, "run the syscall program `NAME` once before the packets, as a selftest sets up what its tc programs use (a crypto context); repeatable")
	f.StringArrayVar(&opts.set, "set", nil, "set a global variable before loading, `NAME=VALUE` (an integer, an IP or MAC address, hex bytes, or a \"string\" for a char array); repeatable")
	f.Uint32Var(&opts.ctxMark, "ctx-mark", 0, "skb->mark before the run")
	f.Uint32Var(&opts.ctxPriority, "ctx-priority", 0, "skb->priority before the run")
	f.UintSliceVar(&opts.ctxCB, "ctx-cb", nil, "cb[0..4] before the run, a comma-separated `LIST`")
	f.Uint32Var(&opts.ifindex, "ifindex", 0, "device the skb is on (default 1, the loopback device)")
	f.Uint32Var(&opts.ingressIfidx, "ingress-ifindex", 0, "skb->skb_iif, the device the packet arrived on")
	f.IntVar(&opts.repeat, "repeat", 1, "run each packet `N` times on one skb (BPF_PROG_TEST_RUN's repeat); print the mean ns/run")
	f.BoolVar(&opts.showData, "show-data", false, "print the whole output frame of every packet as a hexdump")
	f.BoolVar(&opts.dumpMap, "dump-maps", false, "print the contents of the object's maps after the run")
	f.BoolVar(&opts.list, "list", false, "list the programs and maps of the object and exit")
	f.BoolVar(&opts.jsonOut, "json", false, "print machine-readable JSON")
	f.BoolVar(&opts.strict, "strict", false, "refuse a program the kernel's verifier would refuse for what the load-time checks find (default: warn)")
	f.StringArrayVar(&opts.sockets, "socket", nil, "a socket in the namespace the socket lookups and sockmaps see, `SPEC`: \"tcp listen ADDR:PORT\", \"tcp LOCAL PEER\", \"udp ADDR:PORT [PEER]\", then v6only, dev=N, mark=N, priority=N, cookie=N; repeatable (default: none, lookups find nothing)")
	f.StringArrayVar(&opts.sockmaps, "sockmap", nil, "put a --socket in a sockmap or sockhash before the packets, `NAME:KEY=COOKIE` (KEY an integer of the map's key size); repeatable")
	f.BoolVar(&opts.atIngress, "at-ingress", false, "run as on a tc ingress hook (BPF_PROG_TEST_RUN's skb is not): bpf_sk_assign then assigns, and VLAN helpers fix up a CHECKSUM_COMPLETE sum")
	f.StringVar(&opts.engineName, "engine", "auto", "run programs on `ENGINE`: jit (compiled machine code), interp (the interpreter) or auto (jit on linux/amd64)")
	return cmd
}

// socketTable is the sockets of --socket.
func socketTable(specs []string) (*sock.Table, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	t := &sock.Table{}
	for _, spec := range specs {
		s, err := sock.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("--socket: %w", err)
		}
		if _, err := t.Add(s); err != nil {
			return nil, fmt.Errorf("--socket: %w", err)
		}
	}
	return t, nil
}

// fillSockmaps puts --sockmap's sockets in their maps.
func fillSockmaps(coll *engine.Collection, socks *sock.Table, specs []string) error {
	for _, spec := range specs {
		name, rest, ok1 := strings.Cut(spec, ":")
		k, c, ok2 := strings.Cut(rest, "=")
		key, err1 := strconv.ParseUint(k, 0, 64)
		cookie, err2 := strconv.ParseUint(c, 0, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			return fmt.Errorf("--sockmap %q: want NAME:KEY=COOKIE with integer KEY and COOKIE", spec)
		}
		sm, ok := coll.Maps[name].(*maps.SockMap)
		if !ok {
			return fmt.Errorf("--sockmap %q: the object has no sockmap or sockhash %q", spec, name)
		}
		s := socks.Get(cookie)
		if s == nil {
			return fmt.Errorf("--sockmap %q: no --socket with cookie=%d", spec, cookie)
		}
		kb := binary.LittleEndian.AppendUint64(nil, key)
		ks := int(sm.Info().KeySize)
		if ks > len(kb) {
			kb = append(kb, make([]byte, ks-len(kb))...)
		}
		if err := sm.SetSocket(kb[:ks], s, 0); err != nil {
			return fmt.Errorf("--sockmap %q: %w", spec, err)
		}
	}
	return nil
}

// testRun is the whole of tcx test-run.
func testRun(ctx context.Context, w io.Writer, opts *testRunOptions) error {
	spec, err := ebpf.LoadCollectionSpec(opts.object)
	if err != nil {
		return fmt.Errorf("load %s: %w", opts.object, err)
	}
	if opts.list {
		return listObject(w, opts, spec)
	}
	if err := checkOptions(opts); err != nil {
		return err
	}
	if err := setVariables(spec, opts.set); err != nil {
		return err
	}
	name, err := pickProgram(spec, opts.prog)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.object, err)
	}
	frames, err := loadFrames(opts)
	if err != nil {
		return err
	}
	report, err := runPackets(ctx, spec, name, frames, opts)
	if err != nil {
		return err
	}
	if opts.jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		writeReport(w, report, opts)
	}
	if faults := report.faults(); faults > 0 {
		return fmt.Errorf("%d of %d run(s) of %s ended in an error", faults, len(frames), name)
	}
	return nil
}

func checkOptions(opts *testRunOptions) error {
	e, err := engine.ParseEngine(opts.engineName)
	if err != nil {
		return fmt.Errorf("--engine %q: must be jit, interp or auto", opts.engineName)
	}
	opts.engine = e
	if opts.repeat < 1 {
		return fmt.Errorf("--repeat %d: must be at least 1", opts.repeat)
	}
	if len(opts.ctxCB) > 5 {
		return fmt.Errorf("--ctx-cb: %d values, struct __sk_buff has cb[5]", len(opts.ctxCB))
	}
	for i, v := range opts.ctxCB {
		if v > 0xffffffff {
			return fmt.Errorf("--ctx-cb: cb[%d] = %d does not fit in 32 bits", i, v)
		}
	}
	return nil
}

// pickProgram finds the program to run: the named one, or the only one.
// A wrong or missing name lists what there is.
func pickProgram(spec *ebpf.CollectionSpec, name string) (string, error) {
	names := sortedNames(spec.Programs)
	if name == "" {
		var tc []string
		for _, n := range names {
			if spec.Programs[n].Type == ebpf.SchedCLS {
				tc = append(tc, n)
			}
		}
		switch {
		case len(names) == 1:
			name = names[0]
		case len(tc) == 1: // the object's other programs are for other hooks
			return tc[0], nil
		default:
			return "", fmt.Errorf("%d programs, choose one with --prog: %s", len(names), strings.Join(names, ", "))
		}
	}
	ps, ok := spec.Programs[name]
	if !ok {
		if len(names) == 0 {
			return "", fmt.Errorf("no program %q: the object has no programs", name)
		}
		return "", fmt.Errorf("no program %q; available: %s", name, strings.Join(names, ", "))
	}
	if ps.Type == ebpf.UnspecifiedProgram {
		// A section name only its loader knows (test_tc_tunnel.o's
		// "encap_gre_none"): tc(8) loads whatever section it is told
		// to as a classifier, and so does test-run.
		ps.Type = ebpf.SchedCLS
	}
	if ps.Type != ebpf.SchedCLS {
		return "", fmt.Errorf("program %q is %s (section %q): test-run runs tc (SCHED_CLS) programs", name, ps.Type, ps.SectionName)
	}
	return name, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// listObject prints the programs and maps of spec (--list).
func listObject(w io.Writer, opts *testRunOptions, spec *ebpf.CollectionSpec) error {
	type progInfo struct {
		Name    string `json:"name"`
		Section string `json:"section"`
		Type    string `json:"type"`
		Insns   int    `json:"insns"`
	}
	type mapInfo struct {
		Name       string `json:"name"`
		Type       string `json:"type"`
		KeySize    uint32 `json:"key_size"`
		ValueSize  uint32 `json:"value_size"`
		MaxEntries uint32 `json:"max_entries"`
		Flags      uint32 `json:"flags"`
	}
	type varInfo struct {
		Name     string   `json:"name"`
		Section  string   `json:"section"`
		Size     uint32   `json:"size"`
		Constant bool     `json:"constant"`
		Value    hexBytes `json:"value"`
		Shown    string   `json:"value_formatted,omitempty"`
	}
	out := struct {
		Object    string     `json:"object"`
		Programs  []progInfo `json:"programs"`
		Maps      []mapInfo  `json:"maps"`
		Variables []varInfo  `json:"variables"`
	}{Object: opts.object, Programs: []progInfo{}, Maps: []mapInfo{}, Variables: []varInfo{}}
	for _, n := range sortedNames(spec.Programs) {
		p := spec.Programs[n]
		out.Programs = append(out.Programs, progInfo{n, p.SectionName, p.Type.String(), len(p.Instructions)})
	}
	for _, n := range sortedNames(spec.Maps) {
		m := spec.Maps[n]
		out.Maps = append(out.Maps, mapInfo{n, mapType(m.Type), m.KeySize, m.ValueSize, m.MaxEntries, m.Flags})
	}
	for _, n := range sortedNames(spec.Variables) {
		v := spec.Variables[n]
		vi := varInfo{Name: n, Section: v.SectionName, Size: v.Size(), Constant: v.Constant(), Value: v.Value}
		if v.Type != nil {
			vi.Shown = formatBTF(v.Type.Type, v.Value)
		}
		out.Variables = append(out.Variables, vi)
	}
	if opts.jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(w, opts.object)
	rows := [][]string{}
	for _, p := range out.Programs {
		rows = append(rows, []string{p.Name, p.Section, p.Type, fmt.Sprint(p.Insns)})
	}
	writeTable(w, "programs:", "name\tsection\ttype\tinsns", rows)
	rows = rows[:0]
	for _, m := range out.Maps {
		rows = append(rows, []string{m.Name, m.Type, fmt.Sprint(m.KeySize), fmt.Sprint(m.ValueSize),
			fmt.Sprint(m.MaxEntries), fmt.Sprintf("%#x", m.Flags)})
	}
	writeTable(w, "maps:", "name\ttype\tkey\tvalue\tmax entries\tflags", rows)
	rows = rows[:0]
	for _, v := range out.Variables {
		shown := v.Shown
		if shown == "" {
			shown = "0x" + hex.EncodeToString(v.Value)
		}
		rows = append(rows, []string{v.Name, v.Section, fmt.Sprint(v.Size), shown})
	}
	writeTable(w, "global variables (--set NAME=VALUE):", "name\tsection\tsize\tvalue", rows)
	return nil
}

// writeTable prints a titled, aligned table, or "(none)" without rows.
func writeTable(w io.Writer, title, header string, rows [][]string) {
	fmt.Fprintf(w, "\n%s\n", title)
	if len(rows) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\n", header)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\n", strings.Join(r, "\t"))
	}
	tw.Flush()
}

// runPackets loads spec into the engine and runs program name on every
// frame in order, then reads the maps if --dump-maps asks for them.
func runPackets(ctx context.Context, spec *ebpf.CollectionSpec, name string, frames []frame, opts *testRunOptions) (*testRunReport, error) {
	devs := newTestDevices(opts.ifindex)
	// One CPU: per-CPU maps then show the one value the runs touched, and
	// the output does not depend on the machine.
	socks, err := socketTable(opts.sockets)
	if err != nil {
		return nil, err
	}
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Devices: devs.lookup, Engine: opts.engine, Strict: opts.strict, Sockets: socks})
	if err != nil && opts.strict && errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("load %s: %w\n(the kernel's verifier refuses such a program; without --strict it runs, with a warning)", opts.object, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", opts.object, err)
	}
	defer coll.Close()
	if err := fillSockmaps(coll, socks, opts.sockmaps); err != nil {
		return nil, err
	}
	x, err := coll.NewExecutor(0)
	if err != nil {
		return nil, err
	}
	report := &testRunReport{Object: opts.object, Program: name, Packets: []packetReport{}}
	for _, w := range coll.Warnings {
		if w.Check == engine.CheckSkipped {
			report.LeftOut = append(report.LeftOut, w.Msg)
			continue
		}
		report.Warnings = append(report.Warnings, w.String())
	}
	if compiled, why := coll.Programs[name].Compiled(); opts.engine == engine.EngineJIT && !compiled {
		report.Interpreted = why
	}
	for _, sname := range opts.syscall {
		p := coll.Syscalls[sname]
		if p == nil {
			names := sortedNames(coll.Syscalls)
			if len(names) == 0 {
				return nil, fmt.Errorf("--syscall %s: the object has no syscall programs", sname)
			}
			return nil, fmt.Errorf("--syscall %s: no such syscall program; available: %s", sname, strings.Join(names, ", "))
		}
		r, err := x.RunSyscall(p)
		if err != nil {
			return nil, fmt.Errorf("--syscall %s: %w", sname, err)
		}
		report.Syscalls = append(report.Syscalls, syscallReport{Program: sname, Retval: int32(r)})
	}
	for i, f := range frames {
		r, err := runFrame(ctx, x, coll.Programs[name], f, opts, devs)
		if err != nil {
			return nil, err
		}
		r.Index = i + 1
		report.Packets = append(report.Packets, r)
	}
	if opts.dumpMap {
		if report.Maps, err = dumpMaps(coll, spec); err != nil {
			return nil, err
		}
	}
	return report, nil
}

func (r *testRunReport) faults() int {
	n := 0
	for _, p := range r.Packets {
		if p.Error != "" {
			n++
		}
	}
	return n
}

// dumpMaps reads every map of the collection, in name order.
func dumpMaps(coll *engine.Collection, spec *ebpf.CollectionSpec) ([]mapDump, error) {
	var dumps []mapDump
	for _, n := range sortedNames(coll.Maps) {
		d, err := dumpMap(coll.Maps[n], spec.Maps[n], coll.NumCPU())
		if err != nil {
			return nil, err
		}
		d.Name = n
		dumps = append(dumps, d)
	}
	return dumps, nil
}
