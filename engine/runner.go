package engine

import (
	"encoding/binary"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// Runner attaches a Program to the userspace runtime: it implements
// userspace.Runner (userspace.Runtime.NewProgram takes it).
type Runner struct {
	prog *Program
}

var _ userspace.Runner = (*Runner)(nil)

// NewRunner returns the userspace.Runner of p.
func NewRunner(p *Program) *Runner { return &Runner{prog: p} }

// Program is the program the runner runs.
func (r *Runner) Program() *Program { return r.prog }

// Run builds the sk_buff the kernel's tc hook would show the program from
// the runtime's packet, runs the program on one of the collection's
// executors, copies the results back and returns the verdict. A run that
// fails is a drop (TC_ACT_SHOT), counted in Program.Faults.
//
// The sk_buff: the frame as received on (ingress) or sent from (egress)
// the packet's device, with Options.Devices supplying the device's
// addresses for pkt_type (ingress only; egress packets are PACKET_HOST);
// at ingress an outer 802.1Q/802.1ad tag is moved out of band as
// __netif_receive_skb_core's skb_vlan_untag does; mark, priority,
// tc_index, tc_classid and ingress_ifindex come from the packet.
//
// Copied back: mark, priority, tc_index, tc_classid, a redirect the
// program asked for during this run (target and BPF_F_INGRESS; the runtime
// acts on it only for TCX_REDIRECT), and the bytes, with an out-of-band
// VLAN tag written back into the frame. Like append, Run rewrites the
// bytes in place when the result fits in cap(Data) and gives Data a new
// array otherwise; frames with spare capacity grow without allocating.
func (r *Runner) Run(up *userspace.Packet) int32 {
	s, err := r.prog.coll.acquire()
	if err != nil {
		return int32(skb.ActShot)
	}
	defer s.release()
	return s.x.runHook(r.prog, up)
}

func (x *Executor) runHook(p *Program, up *userspace.Packet) int32 {
	pkt := &x.own
	dev := skb.Device{Ifindex: uint32(up.Ifindex)}
	if lookup := x.coll.opts.Devices; lookup != nil {
		if d, ok := lookup(uint32(up.Ifindex)); ok {
			dev = d
			dev.Ifindex = uint32(up.Ifindex)
		}
	}
	ingress := up.Direction == tcx.Ingress
	frame := up.Data
	var tag [4]byte
	tagged := ingress && len(frame) >= skb.EthHLen+skb.VlanHLen && vlanEthertype(binary.BigEndian.Uint16(frame[12:]))
	if tagged {
		copy(tag[:], frame[12:16])
		x.scratch = append(append(x.scratch[:0], frame[:12]...), frame[16:]...)
		frame = x.scratch
	}
	if err := pkt.Reset(frame, dev); err != nil {
		return int32(skb.ActShot) // shorter than an Ethernet header
	}
	if tagged {
		pkt.VlanPresent = true
		pkt.VlanProto = binary.BigEndian.Uint16(tag[0:])
		pkt.VlanTCI = binary.BigEndian.Uint16(tag[2:])
	}
	if !ingress {
		pkt.PktType = skb.PacketHost
	}
	pkt.AtIngress = ingress
	pkt.Mark = up.Mark
	pkt.Priority = up.Priority
	pkt.TCIndex = up.TCIndex
	pkt.TCClassid = uint16(up.TCClassid)
	pkt.IngressIfindex = uint32(up.IngressIfindex)

	res, err := x.Run(p, pkt)
	if err != nil {
		return int32(skb.ActShot)
	}
	up.Mark = pkt.Mark
	up.Priority = pkt.Priority
	up.TCIndex = pkt.TCIndex
	up.TCClassid = uint32(pkt.TCClassid)
	if rd := res.Redirect; rd.Kind != skb.RedirectNone {
		up.Redirect, up.RedirectIngress = int(rd.Ifindex), rd.Ingress
	}
	writeBack(up, pkt)
	return int32(res.Retval)
}

func vlanEthertype(t uint16) bool { return t == skb.EthP8021Q || t == skb.EthP8021AD }

// writeBack stores the packet's bytes, with an out-of-band VLAN tag
// inserted after the MAC addresses, into up.Data.
func writeBack(up *userspace.Packet, pkt *skb.Packet) {
	d := pkt.Data()
	tagged := pkt.VlanPresent && len(d) >= 12
	n := len(d)
	if tagged {
		n += skb.VlanHLen
	}
	out := up.Data
	if n <= cap(out) {
		out = out[:n]
	} else {
		out = make([]byte, n, n+skb.DefaultTailroom)
	}
	if !tagged {
		copy(out, d)
	} else {
		copy(out[:12], d[:12])
		binary.BigEndian.PutUint16(out[12:], pkt.VlanProto)
		binary.BigEndian.PutUint16(out[14:], pkt.VlanTCI)
		copy(out[16:], d[12:])
	}
	up.Data = out
}
