package topology

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
)

// Topology is a datapath description, as in the YAML file (see SCHEMA.md).
type Topology struct {
	// Workers is the number of simulated CPUs (per-CPU maps keep that many
	// values, and that many programs run at once); 0 means one per port
	// the datapath reads (at least 1).
	Workers int `yaml:"workers"`
	// Namespaces names the network namespaces besides DefaultNetNS, each
	// its own userspace runtime (own devices, own ifindexes), as the
	// kernel's namespaces are; veth pairs join them.
	Namespaces []string `yaml:"namespaces"`
	Objects    []Object `yaml:"objects"`
	Devices    []Device `yaml:"devices"`
	// Routes and Neighbours are each namespace's static routes and
	// ARP/NDP entries, which bpf_fib_lookup consults with the routes of
	// the devices' addresses.
	Routes     []Route     `yaml:"routes"`
	Neighbours []Neighbour `yaml:"neighbours"`
	// Rules are each namespace's fib rules (ip rule).
	Rules []Rule `yaml:"rules"`
	// Dir is where relative paths start (the file's directory).
	Dir string `yaml:"-"`

	src  []byte // the YAML, for line numbers
	file string
}

// Object is an ELF object file of tc programs.
type Object struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
	// Set gives global variables (.rodata, .data, .bss) values before
	// loading: integers, IPv4/IPv6 or MAC addresses as strings, or
	// "@DEVICE" for a device's ifindex.
	Set map[string]any `yaml:"set"`
	// Share names maps shared with every other object that shares a map
	// of that name, as LIBBPF_PIN_BY_NAME does; maps the ELF pins by name
	// are shared without being listed.
	Share []string `yaml:"share"`
}

// Device is a runtime device and its ports.
type Device struct {
	Name string `yaml:"name"`
	MTU  int    `yaml:"mtu"`
	// Wire and Host are port specs (package port): pcap:FILE, tap:NAME,
	// afpacket:IFACE, discard.
	Wire string `yaml:"wire"`
	Host string `yaml:"host"`
	// NetNS is the runtime namespace the device is in: a name under
	// Topology.Namespaces, or DefaultNetNS (also when empty).
	NetNS string `yaml:"netns"`
	// PortNetNS is the kernel namespace path TAP and AF_PACKET ports open
	// in (default: ours).
	PortNetNS string `yaml:"port_netns"`
	Promisc   bool   `yaml:"promisc"`
	// Paced replays a pcap wire at capture timing.
	Paced bool `yaml:"paced"`
	// Veth names the other end of a veth pair (declared as a device too):
	// DEVICE in this device's namespace, or NS/DEVICE in namespace NS.
	Veth string `yaml:"veth"`
	// MAC is the device's hardware address (default all zero), the
	// source MAC bpf_fib_lookup reports for it and what decides whether a
	// frame received is PACKET_HOST.
	MAC string `yaml:"mac"`
	// Addresses are the device's IP addresses with prefix lengths; each
	// brings the routes the kernel adds with it.
	Addresses []string `yaml:"addresses"`
	// Forwarding is net.ipv4/ipv6.conf.DEV.forwarding: off (as in a new
	// kernel namespace), bpf_fib_lookup for packets arriving on the
	// device answers BPF_FIB_LKUP_RET_FWD_DISABLED.
	Forwarding bool    `yaml:"forwarding"`
	Record     Record  `yaml:"record"`
	Ingress    []Entry `yaml:"ingress"`
	Egress     []Entry `yaml:"egress"`
}

// Record names pcap files for the frames that met a fate on the device.
type Record struct {
	Transmitted string `yaml:"transmitted"`
	Delivered   string `yaml:"delivered"`
	Dropped     string `yaml:"dropped"`
}

// Entry is one program in a hook's chain.
type Entry struct {
	Object  string `yaml:"object"`
	Program string `yaml:"program"`
	// Link names the entry's tcx link; others place themselves relative
	// to it. Default: PROGRAM@DEVICE/HOOK.
	Link string `yaml:"link"`
	// Position: "head" or "tail" (default); Before/After name a link of
	// the same hook declared earlier.
	Position string `yaml:"position"`
	Before   string `yaml:"before"`
	After    string `yaml:"after"`
}

// Error is a mistake in a topology, with where it is.
type Error struct {
	File      string
	Line, Col int
	Path      string // YAML path, $.devices[0].name
	Msg       string
	Err       error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, strings.TrimPrefix(e.Path, "$."), e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and validates a topology file.
func Load(path string) (*Topology, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	return Parse(path, src)
}

var yamlPos = regexp.MustCompile(`^\[(\d+):(\d+)\] (.*)`)

// Parse validates a topology given as YAML; name is for messages and its
// directory is where relative paths start.
func Parse(name string, src []byte) (*Topology, error) {
	t := &Topology{Dir: filepath.Dir(name), src: src, file: name}
	if err := decode(src, t); err != nil {
		e := &Error{File: name, Msg: err.Error()}
		// go-yaml reports "[LINE:COL] message" followed by the source.
		first, _, _ := strings.Cut(err.Error(), "\n")
		if m := yamlPos.FindStringSubmatch(first); m != nil {
			fmt.Sscan(m[1], &e.Line)
			fmt.Sscan(m[2], &e.Col)
			e.Msg = m[3]
		}
		return nil, e
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// decode is go-yaml's strict decoding. go-yaml v1.19.2 panics on some
// malformed documents (a nil sequence node in decodeSlice, found by
// FuzzParse); that becomes an error rather than a crash of tcx run.
func decode(src []byte, t *Topology) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML (the parser failed: %v)", r)
		}
	}()
	return yaml.UnmarshalWithOptions(src, t, yaml.Strict())
}

// errAt builds an Error at a YAML path, with its line when the topology
// came from a file.
func (t *Topology) errAt(path, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := &Error{File: t.file, Path: path, Msg: err.Error(), Err: err}
	if e.File == "" {
		e.File = "topology"
	}
	e.Line, e.Col = t.locate(path)
	return e
}

// locate finds the line and column of a YAML path; the path may point at
// a key that is absent, so it walks up to the nearest node that exists.
// A parser panic only costs the position.
func (t *Topology) locate(path string) (line, col int) {
	if t.src == nil {
		return 0, 0
	}
	defer func() { _ = recover() }()
	for p := path; p != "" && p != "$"; {
		if yp, err := yaml.PathString(p); err == nil {
			if n, err := yp.ReadNode(bytes.NewReader(t.src)); err == nil && n != nil {
				tok := n.GetToken()
				return tok.Position.Line, tok.Position.Column
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0, 0
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,15}$`)

// Validate checks the description without touching files or devices.
func (t *Topology) Validate() error {
	var errs []error
	bad := func(e *Error) { errs = append(errs, e) }
	if t.Workers < 0 || t.Workers > 256 {
		bad(t.errAt("$.workers", "workers %d: want 1..256", t.Workers))
	}
	objs := map[string]bool{}
	for i, o := range t.Objects {
		p := fmt.Sprintf("$.objects[%d]", i)
		switch {
		case o.Name == "":
			bad(t.errAt(p, "object without a name"))
		case objs[o.Name]:
			bad(t.errAt(p+".name", "object %q declared twice", o.Name))
		}
		if o.Path == "" {
			bad(t.errAt(p, "object %q has no path", o.Name))
		}
		objs[o.Name] = true
	}
	nss := map[string]bool{DefaultNetNS: true}
	for i, n := range t.Namespaces {
		p := fmt.Sprintf("$.namespaces[%d]", i)
		switch {
		case !nameRE.MatchString(n):
			bad(t.errAt(p, "namespace name %q: want 1..15 of [A-Za-z0-9_.:-]", n))
		case n == DefaultNetNS:
			bad(t.errAt(p, "namespace %q always exists: devices without netns are in it", n))
		case nss[n]:
			bad(t.errAt(p, "namespace %q declared twice", n))
		}
		nss[n] = true
	}
	if len(t.Devices) == 0 {
		bad(t.errAt("$", "no devices"))
	}
	devs := map[string]int{} // by NS/NAME
	for i, d := range t.Devices {
		p := fmt.Sprintf("$.devices[%d]", i)
		if !nss[d.ns()] {
			bad(t.errAt(p+".netns", "unknown namespace %q: declare it under namespaces (a kernel namespace for TAP and AF_PACKET ports is port_netns)", d.NetNS))
		}
		if !nameRE.MatchString(d.Name) || d.Name == "lo" {
			bad(t.errAt(p+".name", "device name %q: want 1..15 of [A-Za-z0-9_.:-], not lo", d.Name))
		} else if _, dup := devs[d.key()]; dup {
			bad(t.errAt(p+".name", "device %q declared twice in namespace %s", d.Name, d.ns()))
		}
		devs[d.key()] = i
		if d.MTU != 0 && (d.MTU < 68 || d.MTU > 16000) {
			bad(t.errAt(p+".mtu", "mtu %d: want 68..16000", d.MTU))
		}
		for _, side := range []struct{ key, spec string }{{"wire", d.Wire}, {"host", d.Host}} {
			if side.spec == "" {
				continue
			}
			kind, arg, _ := strings.Cut(side.spec, ":")
			switch {
			case kind == "discard" && arg == "":
			case (kind == "tap" || kind == "afpacket") && arg != "":
			case kind == "pcap" && arg != "" && side.key == "wire":
			case kind == "pcap" && arg != "":
				bad(t.errAt(p+"."+side.key, "a pcap is read only: use it as the wire, and record: for output"))
			default:
				bad(t.errAt(p+"."+side.key, "port %q: want pcap:FILE, tap:NAME, afpacket:IFACE or discard", side.spec))
			}
		}
	}
	for i, d := range t.Devices {
		p := fmt.Sprintf("$.devices[%d]", i)
		if d.Veth != "" {
			pns, pname := d.peer()
			j, ok := devs[pns+"/"+pname]
			switch {
			case !nss[pns]:
				bad(t.errAt(p+".veth", "veth peer %q: no namespace %q is declared", d.Veth, pns))
			case !ok:
				bad(t.errAt(p+".veth", "veth peer %q is not a device declared in namespace %s", d.Veth, pns))
			case j == i:
				bad(t.errAt(p+".veth", "a device cannot be its own veth peer"))
			case t.Devices[j].Veth != "" && t.Devices[j].peerKey() != d.key():
				bad(t.errAt(p+".veth", "veth peer %q is paired with %q", d.Veth, t.Devices[j].Veth))
			case d.Wire != "":
				bad(t.errAt(p+".wire", "a veth end has no wire: its peer is the wire"))
			}
		}
		for _, hook := range []struct {
			key     string
			entries []Entry
		}{{"ingress", d.Ingress}, {"egress", d.Egress}} {
			links := map[string]bool{}
			for k, e := range hook.entries {
				ep := fmt.Sprintf("%s.%s[%d]", p, hook.key, k)
				if !objs[e.Object] {
					bad(t.errAt(ep+".object", "object %q is not declared under objects", e.Object))
				}
				if e.Program == "" {
					bad(t.errAt(ep, "entry without a program"))
				}
				n := 0
				for _, s := range []string{e.Position, e.Before, e.After} {
					if s != "" {
						n++
					}
				}
				switch {
				case n > 1:
					bad(t.errAt(ep, "give one of position, before, after"))
				case e.Position != "" && e.Position != "head" && e.Position != "tail":
					bad(t.errAt(ep+".position", "position %q: want head or tail", e.Position))
				case e.Before != "" && !links[e.Before]:
					bad(t.errAt(ep+".before", "no link %q earlier in this hook", e.Before))
				case e.After != "" && !links[e.After]:
					bad(t.errAt(ep+".after", "no link %q earlier in this hook", e.After))
				}
				name := e.linkName(d.Name, hook.key)
				if links[name] {
					bad(t.errAt(ep+".link", "link %q used twice in this hook", name))
				}
				links[name] = true
			}
		}
	}
	if _, rerrs := t.routing(func(string) uint32 { return 0 }); len(rerrs) > 0 {
		errs = append(errs, rerrs...)
	}
	return errors.Join(errs...)
}

// DefaultNetNS is the namespace of devices that name none.
const DefaultNetNS = "default"

// ns is the device's namespace.
func (d Device) ns() string {
	if d.NetNS == "" {
		return DefaultNetNS
	}
	return d.NetNS
}

// key names the device in the whole topology: NS/NAME.
func (d Device) key() string { return d.ns() + "/" + d.Name }

// peer is the namespace and name of the device's veth peer.
func (d Device) peer() (ns, name string) {
	if ns, name, ok := strings.Cut(d.Veth, "/"); ok {
		return ns, name
	}
	return d.ns(), d.Veth
}

func (d Device) peerKey() string {
	ns, name := d.peer()
	return ns + "/" + name
}

func (e Entry) linkName(dev, hook string) string {
	if e.Link != "" {
		return e.Link
	}
	return e.Program + "@" + dev + "/" + hook
}

// path resolves a file name of the topology.
func (t *Topology) path(p string) string {
	if p == "" || filepath.IsAbs(p) || t.Dir == "" {
		return p
	}
	return filepath.Join(t.Dir, p)
}
