package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/topology"
)

// runOptions are the flags of tcx run.
type runOptions struct {
	topology string
	// the flags-only form: one device, one program
	object, program, wire, host, hook, netns string
	set                                      []string
	mtu                                      int
	promisc, paced                           bool
	recTx, recDelivered, recDropped          string

	workers   int
	recordDir string
	trace     bool
	filter    string
	printk    string
	dumpMaps  bool
	jsonOut   bool
	progress  string
	duration  time.Duration
	noTimings bool
	engine    string
	strict    bool
}

func newRunCommand() *cobra.Command {
	opts := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run (--topology FILE | --object OBJ.o --program NAME --wire PORT [--host PORT])",
		Short: "Run tc programs from ELF objects on real traffic in userspace (pcap, TAP, AF_PACKET)",
		Long: `run builds a userspace tcx datapath and runs it until its pcap inputs end,
--duration passes, or SIGINT/SIGTERM arrives; then it flushes every output
pcap and prints a summary.

Each device has a wire port (where its frames come from and where what it
transmits leaves) and a host side (the kernel's stack of a real device). A
frame from the wire runs the device's ingress hook (tcx chain, then classic
tc): PASS delivers it to the host side, DROP drops it, REDIRECT sends it to
another device's egress (or ingress with BPF_F_INGRESS). A frame from the
host side runs the egress hook and leaves by the wire port; a veth end's
wire is its peer. Redirect loops end at the runtime's hop limit (counted
as looped). Frames shorter than 14 bytes or longer than the MTU allows are
counted as receive errors and not processed; a program that faults is
counted, its frame dropped. A program the kernel's verifier would refuse
for what the load-time checks find (more than 512 bytes of stack across
calls, bad global function arguments, packet access past its checked
bound) runs with a warning on stderr; --strict refuses it.

Ports: pcap:FILE (pcap or pcapng, wire only), tap:NAME (a TAP device,
created; needs CAP_NET_ADMIN), afpacket:IFACE (an existing interface,
recvmmsg/sendmmsg batches; needs CAP_NET_RAW), discard (count and drop).

A topology file (YAML, see topology/SCHEMA.md) describes several devices,
network namespaces (each with its own ifindexes; a device outside the
default one is named NS/NAME) and the veth pairs joining them, chains of
programs placed by anchors, global variables, maps shared between objects
and the worker count. The flags-only form is one device with one program
on one hook.

--trace prints every frame's trip: the programs that ran, their verdicts,
the bytes they changed, bpf_printk output, and where the frame went.
--trace-filter keeps some: space-separated terms that must all hold, among
dev=NAME|NS/NAME fate=delivered|transmitted|dropped|consumed|looped
proto=arp|ipv4|ipv6|tcp|udp|icmp port=N host=IP prog=NAME.`,
		Example: `  # the demo: an ACL, a NAT, a counter and a redirect over a bundled capture
  tcx run --topology testdata/datapath/demo.yaml --trace --record-dir /tmp/out

  # one program on the ingress of a TAP device, as JSON events
  tcx run --object testdata/progs/dp_acl.o --program dp_acl --wire tap:tcx0 --json

  # a capture through a NAT, recording what it delivers, with the maps after
  tcx run --object testdata/progs/dp_nat.o --program dp_snat --wire pcap:in.pcap \
      --set inside_addr=10.0.0.1 --set outside_addr=192.0.2.1 \
      --record-delivered out.pcap --dump-maps

  # bpf_redirect_peer from eth0 into namespace b, through a veth pair
  tcx run --topology testdata/datapath/peer.yaml --trace --trace-filter dev=b/eth0

  # only the dropped TCP frames of a topology
  tcx run --topology lab.yaml --trace --trace-filter "fate=dropped proto=tcp"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDatapath(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.topology, "topology", "", "the datapath described in a YAML `FILE`")
	f.StringVar(&opts.object, "object", "", "flags-only form: ELF object `FILE`")
	f.StringVar(&opts.program, "program", "", "flags-only form: the tc program to attach (default: the object's only one)")
	f.StringVar(&opts.wire, "wire", "", "flags-only form: the device's wire `PORT`")
	f.StringVar(&opts.host, "host", "", "flags-only form: the device's host side `PORT` (default: count and discard)")
	f.StringVar(&opts.hook, "hook", "ingress", "flags-only form: ingress or egress")
	f.StringVar(&opts.netns, "netns", "", "flags-only form: network namespace `PATH` the ports open in")
	f.StringArrayVar(&opts.set, "set", nil, "flags-only form: global variable `NAME=VALUE` (integer, IP or MAC address, @DEVICE); repeatable")
	f.IntVar(&opts.mtu, "mtu", 0, "flags-only form: the device's MTU (default 1500)")
	f.BoolVar(&opts.promisc, "promisc", false, "flags-only form: promiscuous mode for an afpacket wire")
	f.BoolVar(&opts.paced, "paced", false, "flags-only form: replay a pcap wire at capture timing")
	f.StringVar(&opts.recTx, "record-transmitted", "", "flags-only form: record transmitted frames in a pcap `FILE`")
	f.StringVar(&opts.recDelivered, "record-delivered", "", "flags-only form: record delivered frames in a pcap `FILE`")
	f.StringVar(&opts.recDropped, "record-dropped", "", "flags-only form: record dropped frames in a pcap `FILE`")
	f.IntVar(&opts.workers, "workers", 0, "simulated CPUs for per-CPU maps (default: the topology's, else 1)")
	f.StringVar(&opts.recordDir, "record-dir", "", "where relative recording paths of a topology start (default: the topology's directory)")
	f.BoolVar(&opts.trace, "trace", false, "print every frame's trip")
	f.StringVar(&opts.filter, "trace-filter", "", "trace only frames matching `TERMS` (implies --trace)")
	f.StringVar(&opts.printk, "printk", "", "write bpf_printk output to `FILE` (default: stderr, or into the trace)")
	f.BoolVar(&opts.dumpMaps, "dump-maps", false, "print every map's contents at exit")
	f.BoolVar(&opts.jsonOut, "json", false, "print JSON lines: one per traced frame, then the summary")
	f.StringVar(&opts.progress, "progress", "auto", "a live counter line on stderr: auto (when a terminal), always, never")
	f.DurationVar(&opts.duration, "duration", 0, "stop after `D` (default: when inputs end or at SIGINT/SIGTERM)")
	f.StringVar(&opts.engine, "engine", "auto", "run programs on `ENGINE`: jit, interp or auto (jit on linux/amd64)")
	f.BoolVar(&opts.noTimings, "no-timings", false, "leave ns/frame out of the summary (for reproducible output)")
	f.BoolVar(&opts.strict, "strict", false, "refuse a program the kernel's verifier would refuse for what the load-time checks find (default: warn)")
	return cmd
}

// flagsTopology is the flags-only form as a topology.
func flagsTopology(o *runOptions) (*topology.Topology, error) {
	if o.object == "" || o.wire == "" {
		return nil, errors.New("run needs --topology FILE, or --object and --wire (see tcx run --help)")
	}
	set := map[string]any{}
	for _, kv := range o.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want NAME=VALUE", kv)
		}
		if n, err := strconv.ParseInt(v, 0, 64); err == nil {
			set[k] = n
		} else {
			set[k] = v
		}
	}
	prog := o.program
	if prog == "" {
		name, err := onlyProgram(o.object)
		if err != nil {
			return nil, err
		}
		prog = name
	}
	d := topology.Device{Name: "dev0", MTU: o.mtu, Wire: o.wire, Host: o.host, PortNetNS: o.netns, Promisc: o.promisc, Paced: o.paced,
		Record: topology.Record{Transmitted: o.recTx, Delivered: o.recDelivered, Dropped: o.recDropped}}
	e := []topology.Entry{{Object: "obj", Program: prog}}
	switch o.hook {
	case "ingress":
		d.Ingress = e
	case "egress":
		d.Egress = e
	default:
		return nil, fmt.Errorf("--hook %q: want ingress or egress", o.hook)
	}
	t := &topology.Topology{Workers: o.workers, Objects: []topology.Object{{Name: "obj", Path: o.object, Set: set}}, Devices: []topology.Device{d}}
	cwd, _ := os.Getwd()
	t.Dir = cwd
	return t, t.Validate()
}

// onlyProgram names the single program of an object.
func onlyProgram(path string) (string, error) {
	spec, err := engine.LoadCollectionSpec(path)
	if err != nil {
		return "", err
	}
	if len(spec.Programs) != 1 {
		var names []string
		for n := range spec.Programs {
			names = append(names, n)
		}
		return "", fmt.Errorf("%s has %d programs (%s): choose one with --program", path, len(names), strings.Join(slices.Sorted(slices.Values(names)), ", "))
	}
	for n := range spec.Programs {
		return n, nil
	}
	return "", nil
}

// runDatapath is the whole of tcx run.
func runDatapath(ctx context.Context, stdout, stderr io.Writer, o *runOptions) error {
	var (
		topo *topology.Topology
		err  error
	)
	if o.topology != "" {
		if o.object != "" || o.wire != "" {
			return errors.New("--topology and the flags-only form (--object, --wire) exclude each other")
		}
		topo, err = topology.Load(o.topology)
		if o.workers > 0 && err == nil {
			topo.Workers = o.workers
		}
	} else {
		topo, err = flagsTopology(o)
	}
	if err != nil {
		return err
	}
	filter, err := parseFilter(o.filter)
	if err != nil {
		return err
	}
	tracing := o.trace || o.filter != ""

	printk := &printkSink{w: stderr}
	if o.printk != "" {
		f, err := os.Create(o.printk)
		if err != nil {
			return fmt.Errorf("--printk: %w", err)
		}
		defer f.Close()
		printk.w = f
	} else if tracing {
		printk.capture = true
	}
	if !printk.capture {
		printk.start()
		defer func() {
			if n := printk.stop(); n > 0 {
				fmt.Fprintf(stderr, "tcx: %d bpf_printk lines dropped (the output did not keep up)\n", n)
			}
		}()
	}
	eng, err := engine.ParseEngine(o.engine)
	if err != nil {
		return fmt.Errorf("--engine: %w", err)
	}
	built, err := topo.Build(topology.BuildOptions{Printk: printk, RecordDir: o.recordDir, Engine: eng, Strict: o.strict})
	if err != nil {
		if o.strict && errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("%w\n(the kernel's verifier refuses such a program; without --strict it runs, with a warning)", err)
		}
		return err
	}
	defer built.Close()
	loadWarnings(stderr, built)

	out := &runOutput{w: stdout, json: o.jsonOut, built: built, filter: filter, printk: printk, noTimings: o.noTimings}
	cfg := datapath.Config{Runtime: built.Runtime, Devices: built.Devices}
	if tracing {
		tr := &datapath.Tracer{}
		for _, c := range built.Programs {
			c.Trace(tr)
		}
		cfg.Tracer, cfg.Trace = tr, out.trip
	}
	dp, err := datapath.New(cfg)
	if err != nil {
		built.ClosePorts()
		return err
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	stopProgress := startProgress(stderr, o.progress, dp, built)
	stopTimers := serveTimers(ctx, built, stderr)
	runErr := dp.Run(ctx)
	stopTimers()
	stopProgress()
	printk.stop() // every line out before the summary
	out.summary(dp, recordings(topo, built))
	if o.dumpMaps {
		if err := out.dumpMaps(); err != nil {
			return err
		}
	}
	return runErr
}

// loadWarnings prints the load-time checks' findings of every object, as
// test-run does: a program the kernel's verifier would refuse runs here,
// but not without a word.
func loadWarnings(w io.Writer, b *topology.Built) {
	for _, name := range slices.Sorted(maps.Keys(b.Objects)) {
		for _, warn := range b.Objects[name].Warnings {
			if warn.Check != engine.CheckSkipped {
				fmt.Fprintf(w, "warning: object %s: %s\n", name, warn)
			}
		}
	}
}

// recording is one output pcap.
type recording struct {
	Device string `json:"device"`
	Fate   string `json:"fate"`
	Path   string `json:"path"`
	Frames uint64 `json:"frames"`
}

func recordings(t *topology.Topology, b *topology.Built) []recording {
	var out []recording
	for i, d := range b.Devices {
		for _, r := range []struct {
			fate string
			w    interface {
				Path() string
				Count() uint64
			}
			ok bool
		}{{"transmitted", d.Transmitted, d.Transmitted != nil}, {"delivered", d.Delivered, d.Delivered != nil}, {"dropped", d.Dropped, d.Dropped != nil}} {
			if r.ok {
				out = append(out, recording{Device: b.Labels[i], Fate: r.fate, Path: filepath.Clean(r.w.Path()), Frames: r.w.Count()})
			}
		}
	}
	return out
}
