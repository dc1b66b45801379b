package skb_test

import (
	"testing"

	"github.com/tcxgo/tcx/skb"
)

func TestParseRelease(t *testing.T) {
	for _, c := range []struct {
		in   string
		want skb.Release
		bad  bool
	}{
		{in: "6.18.44-fc-v1272", want: skb.Release{Major: 6, Minor: 18, Patch: 44}},
		{in: "6.12.0-rc3", want: skb.Release{Major: 6, Minor: 12}},
		{in: "6.19", want: skb.Release{Major: 6, Minor: 19}},
		{in: "6.18.7+", want: skb.Release{Major: 6, Minor: 18, Patch: 7}},
		{in: "6", bad: true},
		{in: "x.1.2", bad: true},
		{in: "6.x", bad: true},
	} {
		got, err := skb.ParseRelease(c.in)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("ParseRelease(%q) = %v, %v", c.in, got, err)
		}
	}
}

func TestQuirksFor(t *testing.T) {
	g := skb.QuirkGrowPastTail
	for _, c := range []struct {
		rel      string
		q, known skb.Quirks
	}{
		{"6.18.44", 0, g},
		{"6.18.60", 0, g},
		{"7.1.0", 0, g},
		{"6.18.0", g, g},
		{"6.12.118", g, g},
		{"6.15.3", g, g},
		{"6.18.20", g, 0},  // between the last old and the first new release seen
		{"6.12.130", g, 0}, // a later 6.12.y may carry the fix
		{"6.6.100", g, 0},
	} {
		r, err := skb.ParseRelease(c.rel)
		if err != nil {
			t.Fatal(err)
		}
		if q, known := skb.QuirksFor(r); q != c.q || known != c.known {
			t.Errorf("QuirksFor(%s) = %#x known %#x, want %#x known %#x", c.rel, q, known, c.q, c.known)
		}
	}
}

// TestPacket_AdjustRoom_GrowPastTail: NET-mode growth on a packet cut to its
// MAC header. The default model answers -ENOMEM and leaves the packet as
// it was; with QuirkGrowPastTail the headers move and the zeroed room
// lands past the old tail.
func TestPacket_AdjustRoom_GrowPastTail(t *testing.T) {
	frame := testFrame(skb.EthPIP, 60)
	for _, q := range []skb.Quirks{0, skb.QuirkGrowPastTail} {
		p := skb.Packet{Quirks: q}
		if err := p.ResetTestRun(frame, nil, nil); err != nil {
			t.Fatal(err)
		}
		if got := p.ChangeTail(14, 0); got != 0 {
			t.Fatalf("change_tail: %d", got)
		}
		// Invalid encap flags win over the offset check either way.
		if got := p.AdjustRoom(8, skb.AdjRoomNet, skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL3IPv6); got != -22 {
			t.Errorf("quirks %#x: conflicting encap flags: %d, want -EINVAL", q, got)
		}
		got := p.AdjustRoom(8, skb.AdjRoomNet, 0)
		switch {
		case q == 0 && (got != -12 || p.Len() != 14):
			t.Errorf("default: %d, len %d; want -ENOMEM, 14", got, p.Len())
		case q != 0 && (got != 0 || p.Len() != 22):
			t.Errorf("QuirkGrowPastTail: %d, len %d; want 0, 22", got, p.Len())
		}
		if q != 0 {
			if d := p.Data(); string(d[:14]) != string(frame[:14]) {
				t.Errorf("QuirkGrowPastTail: MAC header moved wrong: %x", d[:14])
			}
		}
		// MAC mode never reaches past the tail.
		if got := p.AdjustRoom(4, skb.AdjRoomMAC, 0); got != 0 {
			t.Errorf("quirks %#x: MAC-mode growth: %d", q, got)
		}
	}
}
