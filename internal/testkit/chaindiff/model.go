package chaindiff

import (
	"encoding/binary"
	"fmt"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/userspace"
)

// Observation is what one side saw of one frame.
type Observation struct {
	// SendFailed: the frame was dropped on the egress hook of the device
	// it was sent from (the kernel's send fails with ENOBUFS).
	SendFailed bool
	// Delivered: it reached the local stack of device Ifindex in
	// namespace NS, with these bytes (from the MAC header; an
	// out-of-band VLAN tag is not in them).
	Delivered   bool
	NS, Ifindex int
	Frame       []byte
	// Protocol is skb->protocol at delivery (model only).
	Protocol uint16
	// Also is a second delivery of the same frame (kernel only; a
	// divergence: the model delivers a frame once).
	Also *Observation
	// Steps is how many program runs the frame caused; Records the
	// first MaxSteps of them.
	Steps   uint32
	Records [][NWords]uint32
}

// Model runs configurations on the userspace runtime with the engine.
type Model struct {
	topos [][]*userspace.Runtime // per topology, per namespace
	coll  *engine.Collection
	vs    []Variant
	progs map[*userspace.Runtime][]tcx.Program
	pkt   userspace.Packet
}

// NewModel builds the topologies as userspace runtimes and loads the
// variants with the engine.
func NewModel(topos []Topology, vs []Variant) (*Model, error) {
	coll, err := engine.NewCollection(Spec(vs), engine.Options{NumCPU: 1})
	if err != nil {
		return nil, err
	}
	m := &Model{coll: coll, vs: vs, progs: map[*userspace.Runtime][]tcx.Program{}}
	for _, t := range topos {
		rts := make([]*userspace.Runtime, t.NS)
		for i := range rts {
			rts[i] = userspace.New()
		}
		for _, p := range t.Pairs {
			a, b := t.Devs[p[0]], t.Devs[p[1]]
			ia, ib, err := rts[a.NS].AddVethPairTo(a.Name, rts[b.NS], b.Name)
			if err != nil {
				return nil, err
			}
			if ia != a.Ifindex || ib != b.Ifindex {
				return nil, fmt.Errorf("userspace %s: ifindexes %d/%d, want %d/%d", t.Name, ia, ib, a.Ifindex, b.Ifindex)
			}
			for _, d := range []Device{a, b} {
				if err := rts[d.NS].SetHardwareAddr(d.Ifindex, d.Addr); err != nil {
					return nil, err
				}
			}
		}
		m.topos = append(m.topos, rts)
	}
	return m, nil
}

// Close releases the engine collection.
func (m *Model) Close() error { return m.coll.Close() }

func (m *Model) prog(rt *userspace.Runtime, v int) (tcx.Program, error) {
	ps := m.progs[rt]
	if ps == nil {
		ps = make([]tcx.Program, len(m.vs))
		m.progs[rt] = ps
	}
	if ps[v] == nil {
		p, err := rt.NewProgram(m.vs[v].Name(), engine.NewRunner(m.coll.Programs[m.vs[v].Name()]))
		if err != nil {
			return nil, err
		}
		ps[v] = p
	}
	return ps[v], nil
}

// Apply attaches (attach true) or detaches the configuration's chains.
func (m *Model) Apply(t Topology, c Config, attach bool) error {
	rts := m.topos[c.Topo]
	for _, ch := range c.Chains {
		d := t.Devs[ch.Hook.Dev]
		rt := rts[d.NS]
		for _, v := range ch.Progs {
			p, err := m.prog(rt, v)
			if err != nil {
				return err
			}
			if attach {
				err = rt.Attach(d.Ifindex, ch.Hook.Dir, p, tcx.AttachOptions{})
			} else {
				err = rt.Detach(d.Ifindex, ch.Hook.Dir, p, tcx.DetachOptions{})
			}
			if err != nil {
				return fmt.Errorf("userspace %s %s/%v: %w", m.vs[v].Name(), d.Name, ch.Hook.Dir, err)
			}
		}
	}
	return nil
}

// ApplyClassic adds (add true) or deletes the configuration's classic
// filter and its clsact qdisc.
func (m *Model) ApplyClassic(t Topology, c Config, add bool) error {
	if c.Classic == nil {
		return nil
	}
	d := t.Devs[c.Classic.Hook.Dev]
	rt := m.topos[c.Topo][d.NS]
	if !add {
		return rt.DeleteQdisc(d.Ifindex)
	}
	p, err := m.prog(rt, c.Classic.Progs[0])
	if err != nil {
		return err
	}
	if err := rt.AddQdisc(d.Ifindex, userspace.QdiscClsact); err != nil {
		return err
	}
	return rt.AddFilter(d.Ifindex, c.Classic.Hook.Dir, userspace.Filter{Priority: 1, Handle: 1, Program: p})
}

// Run sends one frame (whose tail names slot) through the runtime and
// reads what the programs recorded.
func (m *Model) Run(t Topology, c Config, f Frame, slot int) (Observation, error) {
	steps, rec := m.coll.Maps["steps"], m.coll.Maps["rec"]
	key := binary.LittleEndian.AppendUint32(nil, uint32(slot))
	if err := steps.Update(key, make([]byte, 4), 0); err != nil {
		return Observation{}, err
	}
	d := t.Devs[f.Dev]
	rt := m.topos[c.Topo][d.NS]
	if err := m.pkt.ResetXmit(f.Bytes, uint32(d.Ifindex)); err != nil {
		return Observation{}, err
	}
	out := rt.TransmitPacket(&m.pkt)
	var o Observation
	o.SendFailed = out.Fate == userspace.Dropped && out.Hooks == 1 && out.Verdict == tcx.VerdictDrop
	if out.Fate == userspace.Delivered {
		o.Delivered, o.Ifindex = true, out.Ifindex
		for i, r := range m.topos[c.Topo] {
			if r == out.Runtime {
				o.NS = i
			}
		}
		o.Frame = append([]byte(nil), m.pkt.Data()...)
		o.Protocol = m.pkt.Protocol
	}
	v := make([]byte, 4)
	if err := steps.Lookup(key, v); err != nil {
		return o, err
	}
	o.Steps = binary.LittleEndian.Uint32(v)
	val := make([]byte, 4*NWords)
	for s := range min(o.Steps, MaxSteps) {
		k := binary.LittleEndian.AppendUint32(nil, uint32(slot*MaxSteps)+s)
		if err := rec.Lookup(k, val); err != nil {
			return o, err
		}
		var r [NWords]uint32
		for i := range r {
			r[i] = binary.LittleEndian.Uint32(val[4*i:])
		}
		o.Records = append(o.Records, r)
	}
	return o, nil
}
