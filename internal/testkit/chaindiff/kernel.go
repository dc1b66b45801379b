package chaindiff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

// protos are the ethertypes the kernel side sends and listens for. A
// packet socket bound to one of them on a device sees the frames the
// ingress hook let through to the local stack there (after the hook; an
// out-of-band VLAN tag is cleared before delivery).
var protos = []uint16{etherTest, etherIPv4, etherVLAN, 0x88a8, 0x86dd}

// Kernel runs configurations on the kernel's tcx.
type Kernel struct {
	topos [][]*kernel.Backend // per topology, per namespace
	coll  *kernel.Collection
	vs    []Variant
	socks map[sockKey]*kernel.PacketSocket
	// Unmatched counts, per ethertype, received frames whose tail names
	// no frame of the batch: late ones of an earlier batch, a tail a
	// program overwrote, or the kernel's own traffic (IPv6 neighbour
	// discovery and MLD on the veth ends).
	Unmatched map[uint16]int
}

type sockKey struct {
	topo, ns, ifindex int
	proto             uint16
}

// NewKernel builds the topologies in fresh namespaces (first is a backend
// whose namespace the caller made; the others are created with newBackend)
// and loads the variants once.
func NewKernel(topos []Topology, vs []Variant, newBackend func() (*kernel.Backend, error)) (*Kernel, error) {
	k := &Kernel{vs: vs, socks: map[sockKey]*kernel.PacketSocket{}, Unmatched: map[uint16]int{}}
	for ti, t := range topos {
		bs := make([]*kernel.Backend, t.NS)
		for i := range bs {
			b, err := newBackend()
			if err != nil {
				return nil, err
			}
			// The kernel's own IPv6 traffic (neighbour discovery, MLD)
			// on the veth ends would reach the 0x86dd sockets.
			if err := b.NetNS().DisableIPv6(); err != nil {
				return nil, err
			}
			bs[i] = b
		}
		for _, p := range t.Pairs {
			a, b := t.Devs[p[0]], t.Devs[p[1]]
			var ia, ib int
			var err error
			if a.NS == b.NS {
				ia, ib, err = bs[a.NS].NetNS().AddVethPair(a.Name, b.Name)
			} else {
				ia, ib, err = bs[a.NS].NetNS().AddVethPairTo(a.Name, bs[b.NS].NetNS(), b.Name)
			}
			if err != nil {
				return nil, err
			}
			if ia != a.Ifindex || ib != b.Ifindex {
				return nil, fmt.Errorf("kernel %s: ifindexes %d/%d, want %d/%d", t.Name, ia, ib, a.Ifindex, b.Ifindex)
			}
		}
		for _, d := range t.Devs {
			ns := bs[d.NS].NetNS()
			if err := ns.SetHardwareAddr(d.Ifindex, d.Addr); err != nil {
				return nil, err
			}
			for _, ifindex := range []int{d.Ifindex, 1} {
				for _, proto := range protos {
					key := sockKey{ti, d.NS, ifindex, proto}
					if k.socks[key] != nil {
						continue
					}
					s, err := ns.OpenPacketSocket(ifindex, proto)
					if err != nil {
						return nil, err
					}
					k.socks[key] = s
				}
			}
		}
		k.topos = append(k.topos, bs)
	}
	coll, err := k.topos[0][0].LoadCollection(Spec(vs), kernel.LoadOptions{})
	if err != nil {
		return nil, err
	}
	k.coll = coll
	return k, nil
}

// Close closes the sockets and the collection; the backends belong to
// the caller.
func (k *Kernel) Close() error {
	var errs []error
	for _, s := range k.socks {
		errs = append(errs, s.Close())
	}
	if k.coll != nil {
		errs = append(errs, k.coll.Close())
	}
	return errors.Join(errs...)
}

// Apply attaches (attach true) or detaches the configuration's chains.
func (k *Kernel) Apply(t Topology, c Config, attach bool) error {
	for _, ch := range c.Chains {
		d := t.Devs[ch.Hook.Dev]
		b := k.topos[c.Topo][d.NS]
		for _, v := range ch.Progs {
			p := k.coll.Programs[k.vs[v].Name()]
			var err error
			if attach {
				err = b.Attach(d.Ifindex, ch.Hook.Dir, p, tcx.AttachOptions{})
			} else {
				err = b.Detach(d.Ifindex, ch.Hook.Dir, p, tcx.DetachOptions{})
			}
			if err != nil {
				return fmt.Errorf("kernel %s %s/%v: %w", k.vs[v].Name(), d.Name, ch.Hook.Dir, err)
			}
		}
	}
	return nil
}

// ApplyClassic adds (add true) or deletes the configuration's classic
// filter and its clsact qdisc.
func (k *Kernel) ApplyClassic(t Topology, c Config, add bool) error {
	if c.Classic == nil {
		return nil
	}
	d := t.Devs[c.Classic.Hook.Dev]
	ns := k.topos[c.Topo][d.NS].NetNS()
	if !add {
		return ns.DeleteQdisc(d.Ifindex, kernel.QdiscClsact)
	}
	if err := ns.AddQdisc(d.Ifindex, kernel.QdiscClsact); err != nil {
		return err
	}
	return ns.AddFilter(d.Ifindex, c.Classic.Hook.Dir, 1, 1, k.coll.Programs[k.vs[c.Classic.Progs[0]].Name()])
}

// RunBatch sends up to BatchSlots frames (frame i names slot i in its
// tail), waits until the frames the model delivered have arrived or settle
// has passed without any arrival, and reads the records. Where the kernel
// is behind the model (fewer program runs or deliveries so far: softirq
// work late on a loaded machine) it looks again for up to lag; a frame
// still behind then is what the kernel did.
func (k *Kernel) RunBatch(t Topology, c Config, frames []Frame, model []Observation, settle, lag time.Duration) ([]Observation, error) {
	expect := 0
	for i := range model {
		if model[i].Delivered {
			expect++
		}
	}
	steps, rec := k.coll.Maps["steps"], k.coll.Maps["rec"]
	obs := make([]Observation, len(frames))
	bySeq := make(map[uint32]int, len(frames))
	for i, f := range frames {
		if err := steps.Update(uint32(i), uint32(0)); err != nil {
			return nil, err
		}
		bySeq[f.Seq] = i
	}
	var socks []*kernel.PacketSocket
	var keys []sockKey
	for key, s := range k.socks {
		if key.topo == c.Topo {
			socks, keys = append(socks, s), append(keys, key)
		}
	}
	buf := make([]byte, 65536)
	got := 0
	// receive takes what arrived within wait; it reports whether anything
	// did.
	receive := func(wait time.Duration) (bool, error) {
		i, b, err := kernel.RecvAny(socks, buf, wait)
		if errors.Is(err, syscall.ETIMEDOUT) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		seq, ok := FrameSeq(b)
		j, mine := bySeq[seq]
		if !ok || !mine {
			if len(b) >= 14 {
				k.Unmatched[binary.BigEndian.Uint16(b[12:])]++
			}
			return true, nil
		}
		o := &obs[j]
		if o.Delivered {
			if o.Also != nil {
				return false, fmt.Errorf("frame %d delivered three times", seq)
			}
			o = &Observation{}
			obs[j].Also = o
		} else {
			got++
		}
		o.Delivered, o.NS, o.Ifindex, o.Frame = true, keys[i].ns, keys[i].ifindex, append([]byte(nil), b...)
		return true, nil
	}
	for i, f := range frames {
		d := t.Devs[f.Dev]
		proto := binary.BigEndian.Uint16(f.Bytes[12:])
		s := k.socks[sockKey{c.Topo, d.NS, d.Ifindex, proto}]
		if err := s.Send(f.Bytes); err != nil {
			if !errors.Is(err, syscall.ENOBUFS) {
				return nil, err
			}
			obs[i].SendFailed = true
		}
		// Keep the sockets' receive queues short: a full one drops.
		for {
			more, err := receive(0)
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
		}
	}
	for {
		// Wait for what the model delivered, then a little longer for
		// what it did not.
		wait := settle
		if got >= expect {
			wait = settle / 4
		}
		more, err := receive(wait)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	for deadline := time.Now().Add(lag); ; {
		behind := false
		for i := range frames {
			o := &obs[i]
			if err := steps.Lookup(uint32(i), &o.Steps); err != nil {
				return nil, err
			}
			if o.Steps < model[i].Steps || (model[i].Delivered && !o.Delivered) {
				behind = true
			}
		}
		if !behind || time.Now().After(deadline) {
			break
		}
		if _, err := receive(20 * time.Millisecond); err != nil {
			return nil, err
		}
	}
	for i := range frames {
		o := &obs[i]
		for s := range min(o.Steps, MaxSteps) {
			var r [NWords]uint32
			if err := rec.Lookup(uint32(i*MaxSteps)+s, &r); err != nil {
				return nil, err
			}
			o.Records = append(o.Records, r)
		}
	}
	return obs, nil
}
