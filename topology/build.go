package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/fib"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/userspace"
)

// BuildOptions configure Build.
type BuildOptions struct {
	// Printk receives bpf_trace_printk output (nil discards it).
	Printk io.Writer
	// NoPorts builds the runtime and chains without opening any port or
	// recording (for tests and dry runs).
	NoPorts bool
	// RecordDir is where relative recording paths start (default: the
	// topology's directory).
	RecordDir string
	// Engine runs the programs (engine.Options.Engine; zero: auto).
	Engine engine.Engine
	// Strict refuses an object whose programs the kernel's verifier would
	// refuse for what the engine's load-time checks find
	// (engine.Options.Strict). Without it they load, and each finding is
	// in its collection's Warnings (Built.Objects), for the caller to show.
	Strict bool
}

// Built is a topology made real.
type Built struct {
	// Runtime is the default namespace's runtime; Runtimes every
	// namespace's by name (DefaultNetNS included).
	Runtime  *userspace.Runtime
	Runtimes map[string]*userspace.Runtime
	// Devices are the datapath bindings, in the file's order (each with
	// its namespace's Runtime); Labels name them for people: NAME in the
	// default namespace, NS/NAME elsewhere.
	Devices []*datapath.Device
	Labels  []string
	// Programs are the counted runners of every chain entry, in order.
	Programs []*datapath.Counted
	// Objects are the loaded collections by object name; Shared the maps
	// shared by name.
	Objects map[string]*engine.Collection
	Specs   map[string]*ebpf.CollectionSpec
	Shared  map[string]maps.Map
	Workers int
	// FIBs are the routes, devices and neighbours of every namespace by
	// name, which bpf_fib_lookup consults for packets there.
	FIBs map[string]*fib.Table

	links []tcx.Link
	ports []port.Port
	pcaps []*port.PcapWriter
}

// Close releases links, collections, ports and recordings not yet handed
// to a running datapath (which closes its own).
func (b *Built) Close() error {
	var errs []error
	for _, l := range b.links {
		errs = append(errs, l.Close())
	}
	for _, c := range b.Objects {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// ClosePorts closes every port and recording (when no datapath ran them).
func (b *Built) ClosePorts() {
	for _, p := range b.ports {
		p.Close()
	}
	for _, w := range b.pcaps {
		w.Close()
	}
}

// Build creates the runtime, loads the objects, attaches the chains and
// opens the ports. On error everything made so far is released.
func (t *Topology) Build(opts BuildOptions) (_ *Built, err error) {
	workers := t.Workers
	if workers == 0 {
		// One simulated CPU per port read, so that no worker waits for
		// another's executor.
		for _, d := range t.Devices {
			for _, spec := range []string{d.Wire, d.Host} {
				if spec != "" && !(opts.NoPorts) {
					workers++
				}
			}
		}
		workers = max(workers, 1)
	}
	b := &Built{Runtime: userspace.New(), Runtimes: map[string]*userspace.Runtime{}, Objects: map[string]*engine.Collection{}, Specs: map[string]*ebpf.CollectionSpec{}, Shared: map[string]maps.Map{}, Workers: workers}
	defer func() {
		if err != nil {
			b.ClosePorts()
			b.Close()
		}
	}()
	// One runtime per namespace: ifindexes count from 1 (lo) in each.
	b.Runtimes[DefaultNetNS] = b.Runtime
	for _, n := range t.Namespaces {
		b.Runtimes[n] = userspace.New()
	}
	ifindex := map[string]int{} // by NS/NAME
	for i, d := range t.Devices {
		if _, done := ifindex[d.key()]; done {
			continue
		}
		p := fmt.Sprintf("$.devices[%d]", i)
		rt := b.Runtimes[d.ns()]
		if d.Veth != "" {
			pns, pname := d.peer()
			a, z, err := rt.AddVethPairTo(d.Name, b.Runtimes[pns], pname)
			if err != nil {
				return nil, t.errAt(p, "add veth pair: %w", err)
			}
			ifindex[d.key()], ifindex[d.peerKey()] = a, z
			continue
		}
		x, err := rt.AddDevice(d.Name)
		if err != nil {
			return nil, t.errAt(p, "add device: %w", err)
		}
		ifindex[d.key()] = x
	}

	fibs, errs := t.routing(func(key string) uint32 { return uint32(ifindex[key]) })
	if len(errs) > 0 {
		return nil, errs[0]
	}
	b.FIBs = fibs
	for i, d := range t.Devices {
		if d.MAC == "" {
			continue
		}
		mac, _ := parseMAC(d.MAC) // checked by routing
		if err := b.Runtimes[d.ns()].SetHardwareAddr(ifindex[d.key()], mac); err != nil {
			return nil, t.errAt(fmt.Sprintf("$.devices[%d].mac", i), "set MAC address: %w", err)
		}
	}

	for i, o := range t.Objects {
		p := fmt.Sprintf("$.objects[%d]", i)
		coll, spec, err := t.loadObject(p, o, ifindex, b.Shared, workers, opts)
		if err != nil {
			return nil, err
		}
		b.Objects[o.Name], b.Specs[o.Name] = coll, spec
	}

	for i, d := range t.Devices {
		p := fmt.Sprintf("$.devices[%d]", i)
		rt, idx := b.Runtimes[d.ns()], ifindex[d.key()]
		for _, hook := range []struct {
			key     string
			dir     tcx.Direction
			entries []Entry
		}{{"ingress", tcx.Ingress, d.Ingress}, {"egress", tcx.Egress, d.Egress}} {
			links := map[string]tcx.Link{}
			byID := map[uint32]*datapath.Counted{}
			for k, e := range hook.entries {
				ep := fmt.Sprintf("%s.%s[%d]", p, hook.key, k)
				coll := b.Objects[e.Object]
				prog := coll.Programs[e.Program]
				if prog == nil {
					return nil, t.errAt(ep+".program", "object %q has no tc program %q (it has: %s): %w",
						e.Object, e.Program, strings.Join(programNames(coll), ", "), syscall.ENOENT)
				}
				name := e.linkName(d.Name, hook.key)
				c := datapath.Count(name, engine.NewRunner(prog).WithFIB(fibs[d.ns()]), prog.Faults)
				c.Runtime = rt
				h, err := rt.NewProgram(e.Program, c)
				if err != nil {
					return nil, t.errAt(ep, "load program: %w", err)
				}
				byID[h.ID()] = c
				var at tcx.Anchor = tcx.Tail()
				switch {
				case e.Position == "head":
					at = tcx.Head()
				case e.Before != "":
					at = tcx.BeforeLink(links[e.Before])
				case e.After != "":
					at = tcx.AfterLink(links[e.After])
				}
				l, err := tcx.AttachLink(rt, idx, hook.dir, h, at, 0)
				h.Close() // the link holds the program
				if err != nil {
					return nil, t.errAt(ep, "attach %s: %w", name, err)
				}
				links[name] = l
				b.links = append(b.links, l)
			}
			// Programs are listed in the order the hook runs them.
			if len(hook.entries) > 0 {
				chain, err := tcx.QueryChain(rt, idx, hook.dir)
				if err != nil {
					return nil, t.errAt(p, "query %s: %w", hook.key, err)
				}
				for _, e := range chain.Entries {
					b.Programs = append(b.Programs, byID[e.ProgramID])
				}
			}
		}
		b.Devices = append(b.Devices, &datapath.Device{Name: d.Name, Ifindex: idx, Runtime: rt, MTU: d.MTU})
		label := d.Name
		if d.ns() != DefaultNetNS {
			label = d.key()
		}
		b.Labels = append(b.Labels, label)
	}
	if opts.NoPorts {
		return b, nil
	}
	for i, d := range t.Devices {
		p := fmt.Sprintf("$.devices[%d]", i)
		dev := b.Devices[i]
		popts := port.Options{NetNS: d.PortNetNS, Promisc: d.Promisc, Paced: d.Paced, MTU: d.MTU}
		for _, side := range []struct {
			key  string
			spec string
			dst  *port.Port
		}{{"wire", d.Wire, &dev.Wire}, {"host", d.Host, &dev.Host}} {
			if side.spec == "" {
				continue
			}
			spec := side.spec
			if k, arg, _ := strings.Cut(spec, ":"); k == "pcap" {
				spec = "pcap:" + t.path(arg)
			}
			pt, err := port.Open(spec, popts)
			if err != nil {
				if why := port.Explain(err); why != "" {
					return nil, t.errAt(p+"."+side.key, "%v: %s", err, why)
				}
				return nil, t.errAt(p+"."+side.key, "%w", err)
			}
			b.ports = append(b.ports, pt)
			*side.dst = pt
		}
		for _, rec := range []struct {
			key, path string
			dst       **port.PcapWriter
		}{{"transmitted", d.Record.Transmitted, &dev.Transmitted}, {"delivered", d.Record.Delivered, &dev.Delivered}, {"dropped", d.Record.Dropped, &dev.Dropped}} {
			if rec.path == "" {
				continue
			}
			rp := t.path(rec.path)
			if opts.RecordDir != "" && !filepath.IsAbs(rec.path) {
				rp = filepath.Join(opts.RecordDir, rec.path)
			}
			if err := os.MkdirAll(filepath.Dir(rp), 0o755); err != nil {
				return nil, t.errAt(p+".record."+rec.key, "%w", err)
			}
			w, err := port.CreatePcap(rp)
			if err != nil {
				return nil, t.errAt(p+".record."+rec.key, "%w", err)
			}
			b.pcaps = append(b.pcaps, w)
			*rec.dst = w
		}
	}
	return b, nil
}

func programNames(c *engine.Collection) []string {
	var out []string
	for n := range c.Programs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// loadObject loads one object: spec, variables, shared maps, collection.
func (t *Topology) loadObject(p string, o Object, ifindex map[string]int, shared map[string]maps.Map, workers int, opts BuildOptions) (*engine.Collection, *ebpf.CollectionSpec, error) {
	path := t.path(o.Path)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, t.errAt(p+".path", "object %q: %w", o.Name, err)
	}
	spec, err := engine.LoadCollectionSpec(path)
	if err != nil {
		return nil, nil, t.errAt(p+".path", "object %q: %w", o.Name, err)
	}
	for name, ps := range spec.Programs {
		if ps.Type != ebpf.SchedCLS {
			return nil, nil, t.errAt(p+".path", "object %q: program %q is %s (section %q), not a tc program (SCHED_CLS): %w",
				o.Name, name, ps.Type, ps.SectionName, syscall.EINVAL)
		}
	}
	for _, k := range sortedKeys(o.Set) {
		v := spec.Variables[k]
		if v == nil {
			return nil, nil, t.errAt(p+".set."+k, "object %q has no global variable %q: %w", o.Name, k, syscall.ENOENT)
		}
		val, err := convert(v, o.Set[k], ifindex)
		if err == nil {
			err = v.Set(val)
		}
		if err != nil {
			return nil, nil, t.errAt(p+".set."+k, "set %s: %w", k, err)
		}
	}
	for _, m := range o.Share {
		if spec.Maps[m] == nil {
			return nil, nil, t.errAt(p+".share", "object %q has no map %q: %w", o.Name, m, syscall.ENOENT)
		}
	}
	repl := map[string]maps.Map{}
	var share []string
	for name, ms := range spec.Maps {
		if ms.Pinning == ebpf.PinByName || slices.Contains(o.Share, name) {
			share = append(share, name)
			if m := shared[name]; m != nil {
				repl[name] = m
			}
		}
	}
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: workers, Trace: opts.Printk, MapReplacements: repl, Engine: opts.Engine, Strict: opts.Strict})
	if err != nil {
		return nil, nil, t.errAt(p, "object %q: %w", o.Name, err)
	}
	for _, name := range share {
		shared[name] = coll.Maps[name]
	}
	return coll, spec, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// convert turns a YAML value into what VariableSpec.Set takes for v:
// integers of v's size (big-endian for __be16/__be32/__be64 types),
// addresses as bytes, "@DEVICE" as the device's ifindex.
func convert(v *ebpf.VariableSpec, val any, ifindex map[string]int) (any, error) {
	size := int(v.Size())
	be := bigEndian(v)
	var n uint64
	switch x := val.(type) {
	case bool:
		if x {
			n = 1
		}
	case int:
		n = uint64(x)
	case int64:
		n = uint64(x)
	case uint64:
		n = x
	case string:
		if dev, ok := strings.CutPrefix(x, "@"); ok {
			i, err := deviceIfindex(ifindex, dev)
			if err != nil {
				return nil, err
			}
			n = uint64(i)
			break
		}
		if a, err := netip.ParseAddr(x); err == nil {
			b := a.AsSlice()
			if len(b) != size {
				return nil, fmt.Errorf("address %s has %d bytes, the variable %d: %w", x, len(b), size, syscall.EINVAL)
			}
			return b, nil
		}
		if mac, err := net.ParseMAC(x); err == nil && len(mac) == size {
			return []byte(mac), nil
		}
		return nil, fmt.Errorf("value %q: want an integer, an IP or MAC address or @DEVICE: %w", x, syscall.EINVAL)
	default:
		return nil, fmt.Errorf("value %v (%T): want an integer, an address or @DEVICE: %w", val, val, syscall.EINVAL)
	}
	b := make([]byte, size)
	switch size {
	case 1:
		if n > 0xff {
			return nil, fmt.Errorf("%d does not fit in 1 byte: %w", n, syscall.ERANGE)
		}
		b[0] = byte(n)
	case 2:
		if n > 0xffff {
			return nil, fmt.Errorf("%d does not fit in 2 bytes: %w", n, syscall.ERANGE)
		}
		if be {
			binary.BigEndian.PutUint16(b, uint16(n))
		} else {
			binary.NativeEndian.PutUint16(b, uint16(n))
		}
	case 4:
		if n > 0xffffffff {
			return nil, fmt.Errorf("%d does not fit in 4 bytes: %w", n, syscall.ERANGE)
		}
		if be {
			binary.BigEndian.PutUint32(b, uint32(n))
		} else {
			binary.NativeEndian.PutUint32(b, uint32(n))
		}
	case 8:
		if be {
			binary.BigEndian.PutUint64(b, n)
		} else {
			binary.NativeEndian.PutUint64(b, n)
		}
	default:
		return nil, fmt.Errorf("an integer for a %d-byte variable: %w", size, syscall.EINVAL)
	}
	return b, nil
}

// deviceIfindex resolves "NS/DEVICE", or "DEVICE" when one namespace
// alone has a device of that name.
func deviceIfindex(ifindex map[string]int, dev string) (int, error) {
	if strings.Contains(dev, "/") {
		i, ok := ifindex[dev]
		if !ok {
			return 0, fmt.Errorf("no device %q: %w", dev, syscall.ENODEV)
		}
		return i, nil
	}
	var found []string
	for _, k := range sortedKeys(ifindex) {
		if _, name, _ := strings.Cut(k, "/"); name == dev {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no device %q: %w", dev, syscall.ENODEV)
	case 1:
		return ifindex[found[0]], nil
	}
	return 0, fmt.Errorf("device %q is in several namespaces (%s): write @NS/%s: %w", dev, strings.Join(found, ", "), dev, syscall.EINVAL)
}

// bigEndian reports a variable whose type is one of the kernel's __be
// typedefs.
func bigEndian(v *ebpf.VariableSpec) bool {
	var t btf.Type
	if bv := v.Type; bv != nil {
		t = bv.Type
	}
	for range 8 {
		switch x := t.(type) {
		case *btf.Volatile:
			t = x.Type
		case *btf.Const:
			t = x.Type
		case *btf.Typedef:
			if strings.HasPrefix(x.Name, "__be") {
				return true
			}
			t = x.Type
		default:
			return false
		}
	}
	return false
}
