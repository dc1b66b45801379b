package userspace

import (
	"github.com/tcxgo/tcx"
)

// Packet is what a program sees and may change: the frame (from the
// Ethernet header on, in both directions) and the __sk_buff fields tc
// programs commonly use.
type Packet struct {
	Data []byte
	// Ifindex is the device the packet is on now.
	Ifindex int
	// IngressIfindex is the device it was last received on (0 for a
	// locally sent packet).
	IngressIfindex int
	Direction      tcx.Direction
	Mark           uint32
	Priority       uint32
	TCIndex        uint16
	TCClassid      uint32
	// Redirect is the target ifindex a program chose (bpf_redirect) before
	// returning TCX_REDIRECT; RedirectIngress selects the target's ingress
	// (BPF_F_INGRESS) instead of its egress.
	Redirect        int
	RedirectIngress bool
}

// Runner executes one program on a packet and returns its verdict.
type Runner interface {
	Run(p *Packet) int32
}

// RunnerFunc is a program written in Go.
type RunnerFunc func(p *Packet) int32

func (f RunnerFunc) Run(p *Packet) int32 { return f(p) }

// tc action codes (TC_ACT_*) beyond the four tcx verdicts.
const (
	actStolen = 4
	actQueued = 5
	actTrap   = 8
)

// Fate is where a packet ended.
type Fate uint8

const (
	// Delivered: it passed an ingress hook and reached the local stack.
	Delivered Fate = iota + 1
	// Transmitted: it left a device that has no peer (onto the wire).
	Transmitted
	// Dropped by a program (TC_ACT_SHOT) or by a failed redirect.
	Dropped
	// Consumed by a classic filter (TC_ACT_STOLEN, QUEUED or TRAP).
	Consumed
	// Looped: it was redirected or forwarded more than MaxHops times.
	Looped
)

func (f Fate) String() string {
	switch f {
	case Delivered:
		return "delivered"
	case Transmitted:
		return "transmitted"
	case Dropped:
		return "dropped"
	case Consumed:
		return "consumed"
	case Looped:
		return "looped"
	}
	return "unknown"
}

// MaxHops bounds how many hooks one frame may pass (redirects and veth or
// loopback delivery each start a new pass), so a redirect loop ends.
const MaxHops = 32

// Outcome is the result of pushing one frame through the pipeline.
type Outcome struct {
	Fate Fate
	// Ifindex is where the fate happened: the receiving, transmitting or
	// dropping device (the missing target of a failed redirect).
	Ifindex int
	// Verdict is the last hook's verdict after tcx and classic tc
	// (VerdictNext when nothing decided).
	Verdict int32
	// Hooks counts hook passes, Redirects the redirects among them.
	Hooks, Redirects int
	// RedirectedTo is the target of the last redirect (0 without one).
	RedirectedTo int
	// Packet is the packet's final state (Data shares the frame).
	Packet Packet
}

// Transmit sends frame out of ifindex: egress hook, then the device's
// transmit (loopback and veth continue on an ingress hook). It takes no
// lock and does not allocate.
func (rt *Runtime) Transmit(ifindex int, frame []byte) Outcome {
	p := rt.packets.Get().(*Packet)
	*p = Packet{Data: frame, Ifindex: ifindex}
	out := rt.pipeline(p, tcx.Egress)
	rt.packets.Put(p)
	return out
}

// Receive hands frame to ifindex as if it arrived from the wire: the
// ingress hook, then the local stack.
func (rt *Runtime) Receive(ifindex int, frame []byte) Outcome {
	p := rt.packets.Get().(*Packet)
	*p = Packet{Data: frame, Ifindex: ifindex}
	out := rt.pipeline(p, tcx.Ingress)
	rt.packets.Put(p)
	return out
}

// TransmitPacket is Transmit with caller-provided metadata; p.Ifindex names
// the device and p is updated in place.
func (rt *Runtime) TransmitPacket(p *Packet) Outcome { return rt.pipeline(p, tcx.Egress) }

// ReceivePacket is Receive with caller-provided metadata.
func (rt *Runtime) ReceivePacket(p *Packet) Outcome { return rt.pipeline(p, tcx.Ingress) }

func (rt *Runtime) pipeline(p *Packet, dir tcx.Direction) Outcome {
	table := *rt.table.Load()
	out := Outcome{Verdict: tcx.VerdictNext}
	for {
		d := table[p.Ifindex]
		if d == nil {
			out.Fate, out.Ifindex = Dropped, p.Ifindex
			break
		}
		if out.Hooks == MaxHops {
			out.Fate, out.Ifindex = Looped, d.ifindex
			break
		}
		out.Hooks++
		p.Direction = dir
		if dir == tcx.Ingress {
			p.IngressIfindex = d.ifindex
		}
		v := d.runHook(dir, p)
		out.Verdict = v
		switch v {
		case tcx.VerdictRedirect:
			// skb_do_redirect: the target is consumed from the
			// packet; an unknown target drops it.
			out.Redirects++
			out.RedirectedTo = p.Redirect
			p.Ifindex, dir = p.Redirect, tcx.Egress
			if p.RedirectIngress {
				dir = tcx.Ingress
			}
			p.Redirect, p.RedirectIngress = 0, false
			continue
		case tcx.VerdictDrop:
			out.Fate = Dropped
		case actStolen, actQueued, actTrap:
			out.Fate = Consumed
		default:
			if dir == tcx.Ingress {
				out.Fate = Delivered
				break
			}
			switch d.kind {
			case kindLoopback:
				dir = tcx.Ingress
				continue
			case kindVeth:
				p.Ifindex, dir = d.peer.ifindex, tcx.Ingress
				continue
			}
			out.Fate = Transmitted
		}
		out.Ifindex = d.ifindex
		break
	}
	out.Packet = *p
	return out
}

// runHook is sch_handle_ingress/egress up to the verdict: nothing without a
// tcx entry, else the tcx chain, and classic tc if that ended in NEXT.
func (d *device) runHook(dir tcx.Direction, p *Packet) int32 {
	e := d.hooks[dir].entry.Load()
	if e == nil {
		return tcx.VerdictNext
	}
	if v := runTCX(e.bundle, p); v != tcx.VerdictNext {
		return v
	}
	return runClassic(e.miniq.Load(), p)
}

// runTCX is tcx_run: programs in order until one returns anything but
// NEXT; then tcx_action_code maps every unknown code to NEXT.
func runTCX(b *bundle, p *Packet) int32 {
	v := b.Acquire()
	defer v.Release()
	ret := tcx.VerdictNext
	for i := 0; ; i++ {
		prog := v.At(i)
		if prog == nil {
			break
		}
		if ret = prog.run.Run(p); ret != tcx.VerdictNext {
			break
		}
	}
	switch ret {
	case tcx.VerdictPass:
		p.TCIndex = uint16(p.TCClassid)
		return ret
	case tcx.VerdictDrop, tcx.VerdictRedirect:
		return ret
	}
	return tcx.VerdictNext
}

// runClassic is tc_run over cls_bpf direct-action filters
// (cls_bpf_classify): each filter starts with tc_classid = its classid;
// the first code cls_bpf_exec_opcode keeps (OK, SHOT, STOLEN, TRAP,
// REDIRECT) decides, every other code moves on to the next filter. OK sets
// tc_index to the minor of the resulting classid.
func runClassic(c *filterChain, p *Packet) int32 {
	if c == nil {
		return tcx.VerdictNext
	}
	for i := range c.f {
		f := &c.f[i]
		p.TCClassid = f.classid
		ret := f.prog.run.Run(p)
		switch ret {
		case tcx.VerdictPass:
			classid := f.classid&0xffff0000 | p.TCClassid
			p.TCIndex = uint16(classid)
			return ret
		case tcx.VerdictDrop, tcx.VerdictRedirect, actStolen, actTrap:
			return ret
		}
	}
	return tcx.VerdictNext
}
