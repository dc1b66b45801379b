package skb_test

import (
	"bytes"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

func TestPacket_LoadBytes(t *testing.T) {
	frame := testFrame(skb.EthPIP, 40)
	p, _ := skb.New(frame, skb.Loopback())
	for _, c := range []struct {
		name string
		off  uint32
		n    int
		want int64
	}{
		{"head", 0, 14, 0},
		{"up to the tail", 30, 10, 0},
		{"one past the tail", 31, 10, -14},
		{"offset past the tail", 41, 1, -14},
		{"offset above INT_MAX", 1 << 31, 1, -14},
	} {
		to := bytes.Repeat([]byte{0xaa}, c.n)
		got := p.LoadBytes(c.off, to)
		if got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
			continue
		}
		want := make([]byte, c.n) // zeroed on failure
		if c.want == 0 {
			want = frame[c.off : int(c.off)+c.n]
		}
		if !bytes.Equal(to, want) {
			t.Errorf("%s: buffer %x, want %x", c.name, to, want)
		}
	}
}

func TestPacket_LoadBytesRelative(t *testing.T) {
	frame := testFrame(skb.EthPIP, 40)
	p, _ := skb.New(frame, skb.Loopback())
	for _, c := range []struct {
		name  string
		off   uint32
		n     int
		start uint32
		want  int64
		from  int
	}{
		{"MAC", 2, 4, skb.HdrStartMAC, 0, 2},
		{"network", 0, 20, skb.HdrStartNet, 0, 14},
		{"network past the tail", 7, 20, skb.HdrStartNet, -14, 0},
		{"offset above 0xffff", 0x10000, 1, skb.HdrStartMAC, -14, 0},
		{"unknown start header", 0, 1, 2, -14, 0},
	} {
		to := bytes.Repeat([]byte{0xaa}, c.n)
		if got := p.LoadBytesRelative(c.off, to, c.start); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
			continue
		}
		want := make([]byte, c.n)
		if c.want == 0 {
			want = frame[c.from : c.from+c.n]
		}
		if !bytes.Equal(to, want) {
			t.Errorf("%s: buffer %x, want %x", c.name, to, want)
		}
	}
}

func TestPacket_StoreBytes(t *testing.T) {
	for _, c := range []struct {
		name  string
		off   uint32
		n     int
		flags uint64
		want  int64
	}{
		{"inside", 14, 4, 0, 0},
		{"ends at the tail", 36, 4, skb.FRecomputeCsum, 0},
		{"past the tail", 37, 4, 0, -14},
		{"offset above INT_MAX", 1 << 31, 1, 0, -14},
		{"unknown flag", 0, 1, 4, -22},
		{"both flags", 0, 1, skb.FRecomputeCsum | skb.FInvalidateHash, 0},
	} {
		frame := testFrame(skb.EthPIP, 40)
		p, _ := skb.New(frame, skb.Loopback())
		p.SetHash(77)
		src := bytes.Repeat([]byte{0x5a}, c.n)
		if got := p.StoreBytes(c.off, src, c.flags); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
			continue
		}
		want := frame
		if c.want == 0 {
			want = append(append(append([]byte{}, frame[:c.off]...), src...), frame[int(c.off)+c.n:]...)
		}
		if !bytes.Equal(p.Data(), want) {
			t.Errorf("%s: packet %x, want %x", c.name, p.Data(), want)
		}
		if cleared := p.Hash == 0; cleared != (c.want == 0 && c.flags&skb.FInvalidateHash != 0) {
			t.Errorf("%s: hash %d", c.name, p.Hash)
		}
	}
}

func TestPacket_PullData(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	for _, c := range []struct {
		n    uint32
		want int64
	}{{0, 0}, {40, 0}, {41, -12}, {1 << 31, -12}} {
		if got := p.PullData(c.n); got != c.want {
			t.Errorf("PullData(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestPacket_ChangeType(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	for _, c := range []struct {
		to   uint32
		want int64
		now  uint8
	}{{skb.PacketOtherHost, 0, 3}, {skb.PacketBroadcast, 0, 1}, {skb.PacketOutgoing, -22, 1}, {1 << 20, -22, 1}} {
		if got := p.ChangeType(c.to); got != c.want || p.PktType != c.now {
			t.Errorf("ChangeType(%d) = %d, pkt_type %d", c.to, got, p.PktType)
		}
	}
	p.PktType = skb.PacketLoopback // from a type it may not change
	if got := p.ChangeType(skb.PacketHost); got != -22 {
		t.Errorf("from PACKET_LOOPBACK: %d, want -EINVAL", got)
	}
}

func TestPacket_CsumLevel(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	for i, c := range []struct {
		level uint64
		want  int64
		state skb.CsumState
	}{
		{skb.CsumLevelQuery, -13, skb.ChecksumNone},
		{skb.CsumLevelDec, 0, skb.ChecksumNone},
		{skb.CsumLevelInc, 0, skb.ChecksumUnnecessary},
		{skb.CsumLevelQuery, 0, skb.ChecksumUnnecessary},
		{skb.CsumLevelInc, 0, skb.ChecksumUnnecessary},
		{skb.CsumLevelInc, 0, skb.ChecksumUnnecessary},
		{skb.CsumLevelInc, 0, skb.ChecksumUnnecessary},
		{skb.CsumLevelInc, 0, skb.ChecksumUnnecessary}, // capped at 3
		{skb.CsumLevelQuery, 3, skb.ChecksumUnnecessary},
		{skb.CsumLevelDec, 0, skb.ChecksumUnnecessary},
		{skb.CsumLevelQuery, 2, skb.ChecksumUnnecessary},
		{skb.CsumLevelReset, 0, skb.ChecksumNone},
		{4, -22, skb.ChecksumNone},
	} {
		if got := p.CsumLevel(c.level); got != c.want || p.IPSummed != c.state {
			t.Errorf("step %d level %d: got %d state %d, want %d state %d", i, c.level, got, p.IPSummed, c.want, c.state)
		}
	}
}

func TestPacket_Redirect(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	if got := p.Redirect(5, skb.FIngress); got != skb.ActRedirect {
		t.Fatalf("Redirect = %d", got)
	}
	if r := p.PendingRedirect(); r.Kind != skb.RedirectDev || r.Ifindex != 5 || !r.Ingress {
		t.Fatalf("pending %+v", r)
	}
	// Internal flags (neigh, peer, nexthop) are not the program's to set.
	for _, f := range []uint64{2, 4, 8, 1 << 40} {
		if got := p.Redirect(6, f); got != skb.ActShot {
			t.Errorf("flags %#x: %d, want TC_ACT_SHOT", f, got)
		}
	}
	if p.PendingRedirect().Ifindex != 5 {
		t.Error("a refused redirect replaced the pending one")
	}
	if got := p.RedirectPeer(7, 1); got != skb.ActShot {
		t.Errorf("RedirectPeer with flags: %d", got)
	}
	if got := p.RedirectPeer(7, 0); got != skb.ActRedirect || p.PendingRedirect().Kind != skb.RedirectPeer {
		t.Errorf("RedirectPeer: %d %+v", got, p.PendingRedirect())
	}
	if got := p.RedirectNeigh(8, make([]byte, 19), 0); got != skb.ActShot {
		t.Errorf("RedirectNeigh with short params: %d", got)
	}
	nh := append([]byte{2, 0, 0, 0}, make([]byte, 16)...)
	if got := p.RedirectNeigh(8, nh, 0); got != skb.ActRedirect || !p.PendingRedirect().HasNexthop {
		t.Errorf("RedirectNeigh: %d %+v", got, p.PendingRedirect())
	}
	p.ClearRedirect()
	if p.PendingRedirect().Kind != skb.RedirectNone {
		t.Error("ClearRedirect")
	}
}

func TestPacket_CloneRedirect(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	if got := p.CloneRedirect(1, 2); got != -22 {
		t.Errorf("bad flags: %d", got)
	}
	for i := range 10 {
		if got := p.CloneRedirect(uint32(i), skb.FIngress); got != 0 {
			t.Fatalf("clone %d: %d", i, got)
		}
	}
	if c := p.Clones(); len(c) != 8 || c[3].Ifindex != 3 || !c[3].Ingress || c[3].Len != 40 || p.ClonesDropped() != 2 {
		t.Errorf("clones %+v, dropped %d", c, p.ClonesDropped())
	}
	var seen []byte
	p.OnClone = func(q *skb.Packet, ifindex uint32, flags uint64) int64 {
		seen = append(seen, q.Data()...)
		return -100
	}
	if got := p.CloneRedirect(9, 0); got != -100 || !bytes.Equal(seen, p.Data()) {
		t.Errorf("OnClone: %d", got)
	}
	p.GSOSize = 100 // a GSO packet without gso_type, as test_run makes
	if got := p.CloneRedirect(1, 0); got != -74 {
		t.Errorf("typeless GSO: %d, want -EBADMSG", got)
	}
}

func TestPacket_Hash(t *testing.T) {
	fwd := ipv4L4(t, false, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, 1000, 80)
	rev := ipv4L4(t, false, []byte{10, 0, 0, 2}, []byte{10, 0, 0, 1}, 80, 1000)
	other := ipv4L4(t, false, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, 1001, 80)
	h := func(f []byte, seed uint32) (int64, *skb.Packet) {
		p, _ := skb.New(f, skb.Loopback())
		p.HashSeed = seed
		return p.GetHashRecalc(), p
	}
	a, pa := h(fwd, 0)
	b, _ := h(rev, 0)
	c, _ := h(other, 0)
	d, _ := h(fwd, 1)
	if a != b || a == c || a == d || a == 0 || !pa.L4Hash || !pa.SWHash || int64(pa.Hash) != a {
		t.Errorf("hashes fwd %#x rev %#x other %#x seed %#x, l4 %v", a, b, c, d, pa.L4Hash)
	}
	if again, _ := h(fwd, 0); again != a {
		t.Error("hash is not deterministic")
	}
	pa.SetHash(5)
	if pa.GetHashRecalc() != 5 || !pa.L4Hash {
		t.Error("a set hash is not kept")
	}
	pa.SetHashInvalid()
	if pa.Hash != 0 || pa.GetHashRecalc() != a {
		t.Error("an invalidated hash is not recomputed")
	}
	arp, _ := skb.New(testFrame(0x0806, 42), skb.Loopback())
	if arp.GetHashRecalc() == 0 || arp.L4Hash {
		t.Error("non-IP packets get a non-zero, non-L4 hash")
	}
}

func TestPacket_SetTstamp(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIPv6, 60), skb.Loopback())
	for _, c := range []struct {
		ts    uint64
		clock uint32
		want  int64
	}{
		{0, skb.ClockRealtime, 0},
		{0, skb.ClockMonotonic, -22},
		{0, skb.ClockTAI, -22},
		{5, skb.ClockTAI, 0},
		{5, 3, -22},
	} {
		if got := p.SetTstamp(c.ts, c.clock); got != c.want {
			t.Errorf("SetTstamp(%d, %d) = %d, want %d", c.ts, c.clock, got, c.want)
		}
	}
	if p.Tstamp != 5 || p.TstampType != skb.ClockTAI {
		t.Errorf("tstamp %d type %d", p.Tstamp, p.TstampType)
	}
	arp, _ := skb.New(testFrame(0x0806, 60), skb.Loopback())
	if got := arp.SetTstamp(1, skb.ClockRealtime); got != -95 {
		t.Errorf("non-IP: %d, want -EOPNOTSUPP", got)
	}
}
