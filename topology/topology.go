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
	Workers int      `yaml:"workers"`
	Objects []Object `yaml:"objects"`
	Devices []Device `yaml:"devices"`
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
	// NetNS is the namespace path TAP and AF_PACKET ports open in.
	NetNS   string `yaml:"netns"`
	Promisc bool   `yaml:"promisc"`
	// Paced replays a pcap wire at capture timing.
	Paced bool `yaml:"paced"`
	// Veth names the other end of a veth pair (declared as a device too).
	Veth    string  `yaml:"veth"`
	Record  Record  `yaml:"record"`
	Ingress []Entry `yaml:"ingress"`
	Egress  []Entry `yaml:"egress"`
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
	if len(t.Devices) == 0 {
		bad(t.errAt("$", "no devices"))
	}
	devs := map[string]int{}
	for i, d := range t.Devices {
		p := fmt.Sprintf("$.devices[%d]", i)
		if !nameRE.MatchString(d.Name) || d.Name == "lo" {
			bad(t.errAt(p+".name", "device name %q: want 1..15 of [A-Za-z0-9_.:-], not lo", d.Name))
		} else if _, dup := devs[d.Name]; dup {
			bad(t.errAt(p+".name", "device %q declared twice", d.Name))
		}
		devs[d.Name] = i
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
			j, ok := devs[d.Veth]
			switch {
			case !ok:
				bad(t.errAt(p+".veth", "veth peer %q is not a declared device", d.Veth))
			case j == i:
				bad(t.errAt(p+".veth", "a device cannot be its own veth peer"))
			case t.Devices[j].Veth != "" && t.Devices[j].Veth != d.Name:
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
	return errors.Join(errs...)
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
