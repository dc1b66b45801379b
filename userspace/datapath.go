package userspace

import (
	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/skb"
)

// Packet is one frame's sk_buff for its whole trip through the runtime:
// the frame and every sk_buff field a tc program can see (skb.Packet,
// embedded: p.Mark, p.CB, p.Data(), p.SetHash(...), p.Redirect(...)).
// Every program of every chain the frame passes, Go (RunnerFunc) and ELF
// (engine) alike, runs on this one value, so what one program writes the
// next one reads, as on the kernel's sk_buff; between hooks the runtime
// changes it only as the kernel's code between hooks does (see skb's
// Xmit, Forward, Scrub, RedirectToPeer and RATIONALE.md).
//
// A program asks for a redirect as a BPF program does: p.Redirect(ifindex,
// flags) or p.RedirectPeer(ifindex, 0), then returns TCX_REDIRECT (the
// helpers return TC_ACT_REDIRECT = tcx.VerdictRedirect). The pending
// redirect lasts for one hook: a later program of the chain may return
// TCX_REDIRECT to act on an earlier program's call.
type Packet struct {
	skb.Packet
	// CPU is the simulated CPU the trip runs on, for runners that model
	// CPUs (the engine's per-CPU maps): -1 until the first such program
	// picks one, which the later programs of the trip keep to. The
	// runtime sets it to -1 where a trip starts.
	CPU int
}

// Direction is the hook the packet is on: tcx.Ingress while
// tc_at_ingress is set.
func (p *Packet) Direction() tcx.Direction {
	if p.AtIngress {
		return tcx.Ingress
	}
	return tcx.Egress
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
	// Dropped by a program (TC_ACT_SHOT), by a failed redirect or by the
	// receive path (a tagged frame too short to untag).
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
	// dropping device (the missing target of a failed redirect), in
	// Runtime's ifindex space.
	Ifindex int
	// Runtime is the runtime (network namespace) Ifindex belongs to: the
	// one the frame was sent into unless it crossed a veth pair to another
	// runtime (AddVethPairTo).
	Runtime *Runtime
	// Verdict is the last hook's verdict after tcx and classic tc
	// (VerdictNext when nothing decided).
	Verdict int32
	// Hooks counts hook passes, Redirects the redirects among them.
	Hooks, Redirects int
	// RedirectedTo is the target of the last redirect (0 without one).
	RedirectedTo int
	// Frame is the frame at its fate as a wire would carry it (an
	// out-of-band VLAN tag written back after the MAC addresses). Transmit
	// and Receive copy it into the array of the frame they were given
	// when it fits (like append; a longer frame gets a new array); the
	// *Packet variants leave it nil: the packet itself holds the result.
	Frame []byte
	// Packet is the packet at its fate for TransmitPacket and
	// ReceivePacket (the caller's), nil for Transmit and Receive.
	Packet *Packet
}

// Transmit sends frame out of ifindex as a local AF_PACKET socket would
// (skb.Packet.ResetXmit): egress hook, then the device's transmit
// (loopback and veth continue on an ingress hook). The frame is copied
// into the runtime once and out once (Outcome.Frame); the trip takes no
// lock and does not allocate.
func (rt *Runtime) Transmit(ifindex int, frame []byte) Outcome {
	p := rt.packets.Get().(*Packet)
	var out Outcome
	if err := p.ResetXmit(frame, uint32(ifindex)); err != nil {
		out = Outcome{Fate: Dropped, Ifindex: ifindex, Runtime: rt, Verdict: tcx.VerdictNext}
	} else {
		out = rt.pipeline(p, tcx.Egress, true)
	}
	out.Frame = p.WireFrame(frame[:0])
	rt.packets.Put(p)
	return out
}

// Receive hands frame to ifindex as if it arrived from the wire:
// eth_type_trans and the receive path's resets (skb.Packet.Forward without
// the scrub), the ingress hook, then the local stack. Copies as Transmit.
func (rt *Runtime) Receive(ifindex int, frame []byte) Outcome {
	p := rt.packets.Get().(*Packet)
	var out Outcome
	if err := p.Reset(frame, skb.Device{Ifindex: uint32(ifindex)}); err != nil {
		out = Outcome{Fate: Dropped, Ifindex: ifindex, Runtime: rt, Verdict: tcx.VerdictNext}
	} else {
		out = rt.pipeline(p, tcx.Ingress, true)
	}
	out.Frame = p.WireFrame(frame[:0])
	rt.packets.Put(p)
	return out
}

// TransmitPacket is Transmit of a packet the caller built (with
// skb.Packet.ResetXmit or Reset, then any fields set): it leaves device
// p.Ifindex after dev_queue_xmit's resets (skb.Packet.Xmit); p is updated
// in place and nothing is copied.
func (rt *Runtime) TransmitPacket(p *Packet) Outcome {
	out := rt.pipeline(p, tcx.Egress, true)
	out.Packet = p
	return out
}

// ReceivePacket is Receive of a packet the caller built: it arrives on
// p.Ifindex; eth_type_trans and the receive path's resets apply, the other
// fields (mark, priority, cb[] ...) are as the caller set them.
func (rt *Runtime) ReceivePacket(p *Packet) Outcome {
	out := rt.pipeline(p, tcx.Ingress, true)
	out.Packet = p
	return out
}

// pipeline is the trip: hooks and the hops between them. start says p has
// not been through the entry point's resets yet.
func (rt *Runtime) pipeline(p *Packet, dir tcx.Direction, start bool) Outcome {
	cur := rt
	table := *cur.table.Load()
	out := Outcome{Verdict: tcx.VerdictNext}
trip:
	for {
		d := table[int(p.Ifindex)]
		if d == nil {
			out.Fate, out.Ifindex = Dropped, int(p.Ifindex)
			break
		}
		if start {
			start = false
			p.CPU = -1
			if dir == tcx.Egress {
				p.Xmit(p.Ifindex)
			} else if p.EthTypeTrans(d.skbDevice()); !p.Receive() {
				out.Fate, out.Ifindex = Dropped, d.ifindex
				break
			}
		}
		if out.Hooks == MaxHops {
			out.Fate, out.Ifindex = Looped, d.ifindex
			break
		}
		out.Hooks++
		v := d.runHook(dir, p)
		out.Verdict = v
		switch v {
		case tcx.VerdictRedirect:
			// skb_do_redirect: the target is consumed from the packet.
			rd := p.PendingRedirect()
			p.ClearRedirect()
			out.Redirects++
			out.RedirectedTo = int(rd.Ifindex)
			t := table[int(rd.Ifindex)]
			if t == nil || rd.Kind == skb.RedirectNone {
				out.Fate, out.Ifindex = Dropped, int(rd.Ifindex)
				break trip
			}
			switch {
			case rd.Kind == skb.RedirectPeer:
				// Only at ingress, only to a device whose peer is in
				// another namespace; the receive path runs again there.
				peer := t.peer
				if dir != tcx.Ingress || peer == nil || peer.rt == t.rt {
					out.Fate, out.Ifindex = Dropped, t.ifindex
					break trip
				}
				cur, table = peer.rt, *peer.rt.table.Load()
				if !p.RedirectToPeer(uint32(peer.ifindex)) {
					out.Fate, out.Ifindex = Dropped, peer.ifindex
					break trip
				}
			case rd.Ingress:
				dir = tcx.Ingress
				if !p.Forward(t.skbDevice(), false) {
					out.Fate, out.Ifindex = Dropped, t.ifindex
					break trip
				}
			default:
				// bpf_redirect to egress; bpf_redirect_neigh is taken as
				// one too (no neighbour or route lookup is modelled).
				dir = tcx.Egress
				p.RedirectXmit(uint32(t.ifindex))
			}
			continue
		case tcx.VerdictDrop:
			out.Fate, out.Ifindex = Dropped, d.ifindex
		case actStolen, actQueued, actTrap:
			out.Fate, out.Ifindex = Consumed, d.ifindex
		default:
			if dir == tcx.Ingress {
				out.Fate, out.Ifindex = Delivered, d.ifindex
				break trip
			}
			p.PickTx()
			switch d.kind {
			case kindLoopback:
				dir = tcx.Ingress
				if !p.LoopbackXmit(d.skbDevice()) {
					out.Fate, out.Ifindex = Dropped, d.ifindex
					break trip
				}
				continue
			case kindVeth:
				// veth_xmit: __dev_forward_skb to the peer.
				peer := d.peer
				dir = tcx.Ingress
				cur, table = peer.rt, *peer.rt.table.Load()
				if !p.Forward(peer.skbDevice(), peer.rt != d.rt) {
					out.Fate, out.Ifindex = Dropped, peer.ifindex
					break trip
				}
				continue
			}
			out.Fate, out.Ifindex = Transmitted, d.ifindex
		}
		break
	}
	out.Runtime = cur
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
		p.TCIndex = p.TCClassid
		return ret
	case tcx.VerdictDrop, tcx.VerdictRedirect:
		return ret
	}
	return tcx.VerdictNext
}

// runClassic is tc_run over cls_bpf direct-action filters
// (cls_bpf_classify): each filter starts with tc_classid = its classid
// (qdisc_skb_cb's u16); the first code cls_bpf_exec_opcode keeps (OK,
// SHOT, STOLEN, TRAP, REDIRECT) decides, every other code moves on to the
// next filter. OK sets tc_index to the minor of the resulting classid.
func runClassic(c *filterChain, p *Packet) int32 {
	if c == nil {
		return tcx.VerdictNext
	}
	for i := range c.f {
		f := &c.f[i]
		p.TCClassid = uint16(f.classid)
		ret := f.prog.run.Run(p)
		switch ret {
		case tcx.VerdictPass:
			p.TCIndex = p.TCClassid
			return ret
		case tcx.VerdictDrop, tcx.VerdictRedirect, actStolen, actTrap:
			return ret
		}
	}
	return tcx.VerdictNext
}
