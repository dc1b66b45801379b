package skb_test

import (
	"testing"

	"github.com/tcxgo/tcx/skb"
)

// TestPacket_RedirectTarget: the decoded kind, ifindex and flag agree
// with PendingRedirect for every way a redirect is recorded.
func TestPacket_RedirectTarget(t *testing.T) {
	p, err := skb.New(make([]byte, 60), skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	for i, record := range []func(){
		func() {},
		func() { p.Redirect(5, skb.FIngress) },
		func() { p.Redirect(0xfffffffe, 0) },
		func() { p.RedirectPeer(7, 0) },
		func() { p.RedirectNeigh(9, make([]byte, 20), 0) },
		func() { p.RedirectNeigh(1<<31, nil, 0) },
	} {
		p.ClearRedirect()
		record()
		r := p.PendingRedirect()
		kind, ifindex, ingress := p.RedirectTarget()
		if kind != r.Kind || ifindex != r.Ifindex || ingress != r.Ingress {
			t.Errorf("case %d: RedirectTarget = %v %d %v, PendingRedirect %+v", i, kind, ifindex, ingress, r)
		}
		if (i == 0) == p.Redirecting() {
			t.Errorf("case %d: Redirecting = %v", i, p.Redirecting())
		}
	}
}
