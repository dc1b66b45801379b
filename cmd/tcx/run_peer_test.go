package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/port"
)

// bpf_redirect_peer in a topology with namespaces: dp_peer on eth0's
// ingress redirects every frame to the peer of veth0, b's eth0, where it
// is delivered with the fates datapath's TestRedirectPeer checks against
// the kernel (its case "redirect_peer both ways between A and B"): the
// frame crosses into the other namespace, OTHERHOST becomes HOST, mark and
// priority stay. The same topology in one namespace is its case "a veth
// whose peer is in the same namespace": the redirect is refused and every
// frame is dropped.
func TestRun_RedirectPeerNamespaces(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runTool(t, "run", "--topology", "../../testdata/datapath/peer.yaml", "--trace", "--dump-maps", "--no-timings", "--record-dir", dir, "--engine", testEngine)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	goldenText(t, "run_peer", strings.ReplaceAll(out, dir, "OUT"))
	// What dp_peer_seen saw on b's eth0 of the IPv4 frames (dp_peer
	// kept pkt_type_before in the same map, shared across namespaces).
	if want := "{frames=6 pkt_type_before=3 pkt_type=0 mark=119 priority=120 ingress_is_dev=1}"; !strings.Contains(out, want) {
		t.Errorf("dp_peer_seen_map does not hold %s", want)
	}
	in, err := port.ReadPcapFile("../../testdata/datapath/demo.pcap")
	if err != nil {
		t.Fatal(err)
	}
	delivered, err := port.ReadPcapFile(filepath.Join(dir, "b-eth0-delivered.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var valid [][]byte // runts and frames over the MTU are receive errors
	for _, f := range in {
		if len(f.Data) >= 14 && len(f.Data) <= 1500+18 {
			valid = append(valid, f.Data)
		}
	}
	if len(delivered) != len(valid) || len(valid) != 8 {
		t.Fatalf("b/eth0 delivered %d frames of %d valid ones; want all 8", len(delivered), len(valid))
	}
	for i, f := range delivered {
		if !bytes.Equal(f.Data, valid[i]) {
			t.Errorf("frame %d changed on its way into b", i+1)
		}
	}

	// --trace-filter names a device outside the default namespace NS/NAME.
	code, out, errOut = runTool(t, "run", "--topology", "../../testdata/datapath/peer.yaml", "--json", "--trace-filter", "dev=b/eth0", "--record-dir", t.TempDir(), "--engine", testEngine)
	if code != 0 {
		t.Fatalf("--trace-filter dev=b/eth0: exit %d: %s", code, errOut)
	}
	var trips int
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var j struct {
			Trip *struct {
				Device string `json:"device"`
				At     string `json:"at"`
				Fate   string `json:"fate"`
				Steps  []struct {
					Hook string `json:"hook"`
				} `json:"steps"`
			} `json:"trip"`
		}
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if j.Trip == nil {
			continue
		}
		trips++
		if tr := j.Trip; tr.Device != "eth0" || tr.At != "b/eth0" || tr.Fate != "delivered" || len(tr.Steps) != 2 || tr.Steps[1].Hook != "b/eth0/ingress" {
			t.Errorf("trip %+v; want from eth0, delivered at b/eth0 after b/eth0's ingress", *tr)
		}
	}
	if trips != 8 {
		t.Errorf("dev=b/eth0 kept %d trips, want 8", trips)
	}
	if code, out, _ = runTool(t, "run", "--topology", "../../testdata/datapath/peer.yaml", "--json", "--trace-filter", "dev=ceth0", "--record-dir", t.TempDir()); code != 0 || strings.Contains(out, `"trip"`) {
		t.Errorf("dev=ceth0 (no such device) kept trips (exit %d)", code)
	}

	dir = t.TempDir()
	code, out, errOut = runTool(t, "run", "--topology", "../../testdata/datapath/peer_onens.yaml", "--no-timings", "--record-dir", dir, "--engine", testEngine)
	if code != 0 {
		t.Fatalf("one namespace: exit %d: %s", code, errOut)
	}
	goldenText(t, "run_peer_onens", strings.ReplaceAll(out, dir, "OUT"))
	if got, err := port.ReadPcapFile(filepath.Join(dir, "ceth0-delivered.pcap")); err != nil || len(got) != 0 {
		t.Errorf("one namespace: ceth0 delivered %d frames (%v), want none", len(got), err)
	}
}
