package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/spf13/cobra"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

func newDemoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Build a tcx chain with anchors on the userspace runtime and push packets through it",
		Long: `demo runs on the embedded userspace runtime (no root, no kernel support):
it creates a veth pair, builds an egress chain with links and plain attachments
placed by anchors, sends a few packets and prints after each step the chain
(program and link IDs in execution order), the revision and the verdicts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.OutOrStdout())
		},
	}
}

// demoProgram is a Go stand-in for a tc program until the execution engine
// runs ELF objects here; each one logs that it ran so the output shows the
// chain order.
type demoProgram struct {
	name string
	fn   func(p *userspace.Packet) int32
}

func demo(w io.Writer) error {
	rt := userspace.New()
	veth0, _, err := rt.AddVethPair("veth0", "veth1")
	if err != nil {
		return err
	}
	var trace []string
	load := func(name string, fn func(p *userspace.Packet) int32) (tcx.Program, error) {
		return rt.NewProgram(name, userspace.RunnerFunc(func(p *userspace.Packet) int32 {
			trace = append(trace, name)
			return fn(p)
		}))
	}
	count := 0
	counter, err := load("counter", func(*userspace.Packet) int32 { count++; return tcx.VerdictNext })
	if err != nil {
		return err
	}
	dnsDrop, err := load("drop-dns", func(p *userspace.Packet) int32 {
		if udpDstPort(p.Data()) == 53 {
			return tcx.VerdictDrop
		}
		return tcx.VerdictNext
	})
	if err != nil {
		return err
	}
	marker, err := load("marker", func(p *userspace.Packet) int32 { p.Mark = 0x2a; return tcx.VerdictNext })
	if err != nil {
		return err
	}
	passAll, err := load("pass-all", func(*userspace.Packet) int32 { return tcx.VerdictPass })
	if err != nil {
		return err
	}

	show := func(step string) error {
		c, err := tcx.QueryChain(rt, veth0, tcx.Egress)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n== %s\nveth0 egress revision %d:\n", step, c.Revision)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  pos\tprog id\tlink id\tprogram")
		for i, e := range c.Entries {
			link := "-"
			if e.LinkID != 0 {
				link = fmt.Sprint(e.LinkID)
			}
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\n", i, e.ProgramID, link, progName(e.ProgramID, counter, dnsDrop, marker, passAll))
		}
		return tw.Flush()
	}
	var skb userspace.Packet // one sk_buff, reused for every frame
	send := func() {
		for _, pkt := range demoPackets() {
			trace = trace[:0]
			if err := skb.ResetXmit(pkt.frame, uint32(veth0)); err != nil {
				fmt.Fprintf(w, "  %-22s %v\n", pkt.name, err)
				continue
			}
			out := rt.TransmitPacket(&skb)
			fmt.Fprintf(w, "  %-22s ran %-30s -> %s\n", pkt.name, strings.Join(trace, ","), describe(rt, out))
		}
	}

	if err := show("empty hook"); err != nil {
		return err
	}
	l1, err := tcx.AttachLink(rt, veth0, tcx.Egress, counter, tcx.Tail(), 1)
	if err != nil {
		return err
	}
	defer l1.Close()
	if err := tcx.AttachProgram(rt, veth0, tcx.Egress, dnsDrop, tcx.Head(), 0); err != nil {
		return err
	}
	l3, err := tcx.AttachLink(rt, veth0, tcx.Egress, marker, tcx.AfterLink(l1), 0)
	if err != nil {
		return err
	}
	defer l3.Close()
	if err := show("link counter (tail, expected revision 1), drop-dns (head), link marker after counter"); err != nil {
		return err
	}
	send()

	err = tcx.AttachProgram(rt, veth0, tcx.Egress, passAll, tcx.Tail(), 2)
	fmt.Fprintf(w, "\nattach pass-all with a stale expected revision 2: %v\n", err)
	if err := l3.Update(passAll, tcx.UpdateOptions{}); err != nil {
		return err
	}
	if err := show("link marker updated to pass-all (same position, same link)"); err != nil {
		return err
	}
	send()

	if err := l1.Close(); err != nil {
		return err
	}
	if err := show("last handle of the counter link closed: it detached itself"); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ncounter ran %d times\n", count)
	return nil
}

func progName(id uint32, progs ...tcx.Program) string {
	for _, p := range progs {
		if p.ID() == id {
			return p.Name()
		}
	}
	return "?"
}

type demoPacket struct {
	name  string
	frame []byte
}

func demoPackets() []demoPacket {
	return []demoPacket{
		{"udp 10.0.0.1 -> :53", udpFrame(53)},
		{"udp 10.0.0.1 -> :8080", udpFrame(8080)},
	}
}

func udpFrame(dport uint16) []byte {
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload("tcx-go"))
	return buf.Bytes()
}

// udpDstPort reads the UDP destination port of an untagged IPv4 frame, or 0.
func udpDstPort(f []byte) uint16 {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14+9] != 17 {
		return 0
	}
	ihl := int(f[14]&0x0f) * 4
	if len(f) < 14+ihl+4 {
		return 0
	}
	return binary.BigEndian.Uint16(f[14+ihl+2:])
}

// describe says where a frame ended, naming devices instead of ifindexes.
func describe(rt *userspace.Runtime, out userspace.Outcome) string {
	dev := fmt.Sprint(out.Ifindex)
	for _, name := range []string{"veth0", "veth1"} {
		if i, ok := rt.Ifindex(name); ok && i == out.Ifindex {
			dev = name
		}
	}
	s := fmt.Sprintf("%s at %s", out.Fate, dev)
	if out.Packet.Mark != 0 {
		s += fmt.Sprintf(" (mark %#x)", out.Packet.Mark)
	}
	return s
}
