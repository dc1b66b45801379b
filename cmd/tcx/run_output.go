package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/topology"
	"github.com/tcxgo/tcx/userspace"
)

// runOutput prints traces, the summary and maps of tcx run.
type runOutput struct {
	w         io.Writer
	json      bool
	built     *topology.Built
	filter    *tripFilter
	printk    *printkSink
	noTimings bool
}

// tripJSON is one traced frame as a JSON line.
type tripJSON struct {
	Seq     uint64     `json:"seq"`
	Device  string     `json:"device"`
	From    string     `json:"from"`
	Len     int        `json:"len"`
	Summary string     `json:"summary"`
	Steps   []stepJSON `json:"steps"`
	Fate    string     `json:"fate"`
	At      string     `json:"at"`
	OutLen  int        `json:"out_len"`
	Printk  []string   `json:"printk,omitempty"`
}

type stepJSON struct {
	Program  string `json:"program"`
	Hook     string `json:"hook"`
	Verdict  string `json:"verdict"`
	Code     int32  `json:"code"`
	Changed  int    `json:"bytes_changed"`
	LenDelta int    `json:"len_delta,omitempty"`
	Redirect int    `json:"redirect_ifindex,omitempty"`
	Fault    bool   `json:"fault,omitempty"`
}

// devName names device ifindex of runtime rt (nil: the default
// namespace's) as the topology does: NS/NAME outside the default one.
func (o *runOutput) devName(rt *userspace.Runtime, ifindex int) string {
	if rt == nil {
		rt = o.built.Runtime
	}
	for i, d := range o.built.Devices {
		if d.Ifindex == ifindex && d.Runtime == rt {
			return o.built.Labels[i]
		}
	}
	return "if" + strconv.Itoa(ifindex)
}

// label names a bound device as the topology does (name when unknown).
func (o *runOutput) label(d *datapath.Device, name string) string {
	if i := slices.Index(o.built.Devices, d); d != nil && i >= 0 {
		return o.built.Labels[i]
	}
	return name
}

// trip is the datapath's trace callback.
func (o *runOutput) trip(t *datapath.Trip) {
	printk := o.printk.take()
	src, at := o.label(t.From, t.Device), o.label(t.AtDevice, t.At)
	if !o.filter.match(t, src, at) {
		return
	}
	from := "host"
	if t.FromWire {
		from = "wire"
	}
	j := tripJSON{Seq: t.Seq, Device: src, From: from, Len: len(t.In), Summary: frameSummary(t.In),
		Fate: t.Outcome.Fate.String(), At: at, OutLen: len(t.Outcome.Frame), Printk: printk, Steps: []stepJSON{}}
	for _, s := range t.Steps {
		name, verdict := tcAction(s.Verdict)
		hook := "egress"
		if s.Ingress {
			hook = "ingress"
		}
		j.Steps = append(j.Steps, stepJSON{Program: s.Program, Hook: o.devName(s.Runtime, s.Device) + "/" + hook, Verdict: verdict + " (" + name + ")",
			Code: s.Verdict, Changed: s.Changed, LenDelta: s.LenDelta, Redirect: s.Redirect, Fault: s.Fault})
	}
	if o.json {
		b, _ := json.Marshal(struct {
			Trip tripJSON `json:"trip"`
		}{j})
		fmt.Fprintf(o.w, "%s\n", b)
		return
	}
	fmt.Fprintf(o.w, "#%d %s from %s, %d bytes: %s\n", j.Seq, j.Device, j.From, j.Len, j.Summary)
	for i, s := range j.Steps {
		fmt.Fprintf(o.w, "    %-28s %-9s %s", s.Program, s.Hook, s.Verdict)
		if s.Changed > 0 || s.LenDelta != 0 {
			fmt.Fprintf(o.w, ", %d bytes changed", s.Changed)
			if s.LenDelta != 0 {
				fmt.Fprintf(o.w, ", length %+d", s.LenDelta)
			}
		}
		if s.Redirect != 0 {
			fmt.Fprintf(o.w, " -> %s", o.devName(t.Steps[i].Runtime, s.Redirect))
		}
		if s.Fault {
			fmt.Fprint(o.w, " FAULT (dropped)")
		}
		fmt.Fprintln(o.w)
	}
	for _, l := range printk {
		fmt.Fprintf(o.w, "    printk: %s\n", l)
	}
	decided := ""
	if n := len(j.Steps); n > 0 && t.Outcome.Verdict != -1 {
		decided = " (decided by " + j.Steps[n-1].Program + ")"
	}
	fmt.Fprintf(o.w, "    => %s at %s%s\n", j.Fate, j.At, decided)
}

// frameSummary is a one-line description of a frame.
func frameSummary(b []byte) string {
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	if len(b) < 14 {
		return "runt"
	}
	var parts []string
	if a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		return fmt.Sprintf("ARP who-has %s tell %s", netip.AddrFrom4([4]byte(a.DstProtAddress)), netip.AddrFrom4([4]byte(a.SourceProtAddress)))
	}
	src, dst := "", ""
	if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		src, dst = ip.SrcIP.String(), ip.DstIP.String()
	} else if ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		src, dst = ip.SrcIP.String(), ip.DstIP.String()
	} else {
		return fmt.Sprintf("ethertype %#04x", uint16(b[12])<<8|uint16(b[13]))
	}
	switch {
	case p.Layer(layers.LayerTypeTCP) != nil:
		t := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		flags := ""
		for _, f := range []struct {
			on bool
			s  string
		}{{t.SYN, "S"}, {t.ACK, "."}, {t.FIN, "F"}, {t.RST, "R"}, {t.PSH, "P"}} {
			if f.on {
				flags += f.s
			}
		}
		parts = append(parts, fmt.Sprintf("TCP %s:%d > %s:%d [%s]", src, t.SrcPort, dst, t.DstPort, flags))
	case p.Layer(layers.LayerTypeUDP) != nil:
		u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		parts = append(parts, fmt.Sprintf("UDP %s:%d > %s:%d", src, u.SrcPort, dst, u.DstPort))
	case p.Layer(layers.LayerTypeICMPv4) != nil:
		c := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		parts = append(parts, fmt.Sprintf("ICMP %s > %s %s", src, dst, c.TypeCode))
	default:
		parts = append(parts, fmt.Sprintf("IP %s > %s", src, dst))
	}
	return strings.Join(parts, " ")
}

// tripFilter selects traced frames: every term must hold.
type tripFilter struct {
	dev, fate, proto, prog string
	port                   int
	host                   netip.Addr
}

func parseFilter(s string) (*tripFilter, error) {
	f := &tripFilter{}
	for _, term := range strings.Fields(s) {
		k, v, ok := strings.Cut(term, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("--trace-filter term %q: want KEY=VALUE", term)
		}
		switch k {
		case "dev":
			f.dev = v
		case "fate":
			if !slices.Contains([]string{"delivered", "transmitted", "dropped", "consumed", "looped"}, v) {
				return nil, fmt.Errorf("--trace-filter: fate %q: want delivered, transmitted, dropped, consumed or looped", v)
			}
			f.fate = v
		case "proto":
			if !slices.Contains([]string{"arp", "ipv4", "ipv6", "tcp", "udp", "icmp"}, v) {
				return nil, fmt.Errorf("--trace-filter: proto %q: want arp, ipv4, ipv6, tcp, udp or icmp", v)
			}
			f.proto = v
		case "port":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("--trace-filter: port %q: want 0..65535", v)
			}
			f.port = int(n)
		case "host":
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("--trace-filter: host %q: %w", v, err)
			}
			f.host = a
		case "prog":
			f.prog = v
		default:
			return nil, fmt.Errorf("--trace-filter: unknown key %q (dev, fate, proto, port, host, prog)", k)
		}
	}
	return f, nil
}

// match: src and at are the labels of t's devices (NS/NAME outside the
// default namespace).
func (f *tripFilter) match(t *datapath.Trip, src, at string) bool {
	if f.dev != "" && f.dev != src && f.dev != at {
		return false
	}
	if f.fate != "" && f.fate != t.Outcome.Fate.String() {
		return false
	}
	if f.prog != "" && !slices.ContainsFunc(t.Steps, func(s datapath.Step) bool {
		return s.Program == f.prog || strings.HasPrefix(s.Program, f.prog+"@")
	}) {
		return false
	}
	if f.proto == "" && f.port == 0 && !f.host.IsValid() {
		return true
	}
	p := gopacket.NewPacket(t.In, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	switch f.proto {
	case "arp":
		if p.Layer(layers.LayerTypeARP) == nil {
			return false
		}
	case "ipv4":
		if p.Layer(layers.LayerTypeIPv4) == nil {
			return false
		}
	case "ipv6":
		if p.Layer(layers.LayerTypeIPv6) == nil {
			return false
		}
	case "tcp":
		if p.Layer(layers.LayerTypeTCP) == nil {
			return false
		}
	case "udp":
		if p.Layer(layers.LayerTypeUDP) == nil {
			return false
		}
	case "icmp":
		if p.Layer(layers.LayerTypeICMPv4) == nil && p.Layer(layers.LayerTypeICMPv6) == nil {
			return false
		}
	}
	if f.port != 0 {
		ok := false
		if t, is := p.Layer(layers.LayerTypeTCP).(*layers.TCP); is {
			ok = int(t.SrcPort) == f.port || int(t.DstPort) == f.port
		}
		if u, is := p.Layer(layers.LayerTypeUDP).(*layers.UDP); is {
			ok = ok || int(u.SrcPort) == f.port || int(u.DstPort) == f.port
		}
		if !ok {
			return false
		}
	}
	if f.host.IsValid() {
		nl := p.NetworkLayer()
		if nl == nil {
			return false
		}
		src, _ := netip.AddrFromSlice(nl.NetworkFlow().Src().Raw())
		dst, _ := netip.AddrFromSlice(nl.NetworkFlow().Dst().Raw())
		if src != f.host && dst != f.host {
			return false
		}
	}
	return true
}

// summaryJSON is the summary as a JSON line.
type summaryJSON struct {
	Devices    []deviceJSON  `json:"devices"`
	Programs   []programJSON `json:"programs"`
	Recordings []recording   `json:"recordings"`
}

type deviceJSON struct {
	Name string `json:"name"`
	datapath.Counters
}

type programJSON struct {
	datapath.ProgramStats
	NsPerRun float64 `json:"ns_per_run"`
}

func (o *runOutput) summary(dp *datapath.Datapath, recs []recording) {
	var s summaryJSON
	for i, c := range dp.Stats() {
		s.Devices = append(s.Devices, deviceJSON{Name: o.built.Labels[i], Counters: c})
	}
	for _, c := range o.built.Programs {
		st := c.Stats()
		p := programJSON{ProgramStats: st}
		if st.Runs > 0 {
			p.NsPerRun = float64(st.Nanos) / float64(st.Runs)
		}
		if o.noTimings {
			p.Nanos, p.NsPerRun = 0, 0
		}
		s.Programs = append(s.Programs, p)
	}
	s.Recordings = recs
	if s.Recordings == nil {
		s.Recordings = []recording{}
	}
	if o.json {
		b, _ := json.Marshal(struct {
			Summary summaryJSON `json:"summary"`
		}{s})
		fmt.Fprintf(o.w, "%s\n", b)
		return
	}
	fmt.Fprintln(o.w, "\ndevices:")
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  device\trx\trx errors\tfrom host\ttransmitted\tdelivered\tdropped\tconsumed\tlooped\ttx errors\t")
	for _, d := range s.Devices {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", d.Name, d.RxFrames, d.RxErrors, d.HostFrames,
			d.Transmitted, d.Delivered, d.Dropped, d.Consumed, d.Looped, d.TxErrors)
	}
	tw.Flush()
	fmt.Fprintln(o.w, "programs:")
	tw = tabwriter.NewWriter(o.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "  program\truns\tnext\tpass\tdrop\tredirect\tother\tfaults\t")
	if !o.noTimings {
		fmt.Fprint(tw, "ns/run\t")
	}
	fmt.Fprintln(tw)
	for _, p := range s.Programs {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t", p.Name, p.Runs, p.Next, p.Pass, p.Drop, p.Redirect, p.Other, p.Faults)
		if !o.noTimings {
			fmt.Fprintf(tw, "%.0f\t", p.NsPerRun)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if len(recs) > 0 {
		fmt.Fprintln(o.w, "recordings:")
		for _, r := range recs {
			fmt.Fprintf(o.w, "  %s %s: %d frames in %s\n", r.Device, r.Fate, r.Frames, r.Path)
		}
	}
}

// dumpMaps prints every object's maps (shared ones once).
func (o *runOutput) dumpMaps() error {
	var dumps []mapDump
	seen := map[any]bool{}
	names := make([]string, 0, len(o.built.Objects))
	for n := range o.built.Objects {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, obj := range names {
		coll, spec := o.built.Objects[obj], o.built.Specs[obj]
		mnames := make([]string, 0, len(coll.Maps))
		for n := range coll.Maps {
			mnames = append(mnames, n)
		}
		slices.Sort(mnames)
		for _, n := range mnames {
			m := coll.Maps[n]
			if seen[m] {
				continue
			}
			seen[m] = true
			d, err := dumpMap(m, spec.Maps[n], coll.NumCPU())
			if err != nil {
				return fmt.Errorf("dump map %s of %s: %w", n, obj, err)
			}
			d.Name = obj + "/" + d.Name
			dumps = append(dumps, d)
		}
	}
	if o.json {
		b, _ := json.Marshal(struct {
			Maps []mapDump `json:"maps"`
		}{dumps})
		fmt.Fprintf(o.w, "%s\n", b)
		return nil
	}
	fmt.Fprintln(o.w, "maps:")
	writeMapDumps(o.w, dumps)
	return nil
}

// startProgress prints a counter line on stderr twice a second while the
// datapath runs (when mode is always, or auto and stderr is a terminal).
func startProgress(w io.Writer, mode string, dp *datapath.Datapath, b *topology.Built) func() {
	on := mode == "always"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	}
	if !on {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprintln(w)
				return
			case <-tick.C:
				var c datapath.Counters
				for _, s := range dp.Stats() {
					c.RxFrames += s.RxFrames + s.HostFrames
					c.Transmitted += s.Transmitted
					c.Delivered += s.Delivered
					c.Dropped += s.Dropped
					c.RxErrors += s.RxErrors
				}
				secs := time.Since(start).Seconds()
				fmt.Fprintf(w, "\r%6.1fs  in %d (%.0f/s)  transmitted %d  delivered %d  dropped %d  rx errors %d ",
					secs, c.RxFrames, float64(c.RxFrames)/secs, c.Transmitted, c.Delivered, c.Dropped, c.RxErrors)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}
