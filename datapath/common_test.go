package datapath_test

import (
	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/topology"
)

const progs = "../testdata/progs/"

// chainTopology is the demo's chain on eth0's ingress, redirecting to
// eth1: counter, ACL, static NAT, redirect.
func chainTopology() *topology.Topology {
	return &topology.Topology{
		Workers: 1,
		Dir:     ".",
		Objects: []topology.Object{
			{Name: "count", Path: progs + "dp_count.o"},
			{Name: "acl", Path: progs + "dp_acl.o", Set: map[string]any{"blocked_port": 9090}},
			{Name: "nat", Path: progs + "dp_nat.o", Set: map[string]any{"inside_addr": "10.0.0.1", "outside_addr": "192.0.2.1"}},
			{Name: "fwd", Path: progs + "dp_redirect.o", Set: map[string]any{"out_ifindex": "@eth1"}},
		},
		Devices: []topology.Device{
			{Name: "eth0", Ingress: []topology.Entry{
				{Object: "count", Program: "dp_count"}, {Object: "acl", Program: "dp_acl"},
				{Object: "nat", Program: "dp_snat"}, {Object: "fwd", Program: "dp_redirect"}}},
			{Name: "eth1"},
		},
	}
}

// engineSpec loads an object of testdata/progs with variables set.
func engineSpec(obj string, set map[string]any) (*ebpf.CollectionSpec, error) {
	spec, err := engine.LoadCollectionSpec(progs + obj)
	if err != nil {
		return nil, err
	}
	for k, v := range set {
		if err := spec.Variables[k].Set(v); err != nil {
			return nil, err
		}
	}
	return spec, nil
}
