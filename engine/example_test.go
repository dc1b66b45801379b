package engine_test

import (
	"fmt"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// Load a clang-built router, configure it through a .rodata variable, run
// it on one packet, then attach it to the userspace tcx runtime.
func Example() {
	rt := userspace.New()
	eth0, err := rt.AddDevice("eth0")
	if err != nil {
		panic(err)
	}
	spec, err := engine.LoadCollectionSpec("../testdata/progs/l3_forward.o")
	if err != nil {
		panic(err)
	}
	if err := spec.Variables["out_ifindex"].Set(uint32(eth0)); err != nil {
		panic(err)
	}
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1})
	if err != nil {
		panic(err)
	}
	defer coll.Close()
	prog := coll.Programs["l3_forward"]

	frame := []byte{
		0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 9, 0x08, 0x00, // Ethernet, IPv4
		0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0xb5, 0x7f, // TTL 64, UDP
		10, 0, 0, 1, 10, 0, 0, 2,
	}
	pkt, err := skb.New(frame, skb.Loopback())
	if err != nil {
		panic(err)
	}
	res, err := prog.Run(pkt)
	if err != nil {
		panic(err)
	}
	fmt.Printf("verdict %d, redirect to %d, ttl %d\n", res.Retval, res.Redirect.Ifindex, pkt.Data()[22])

	h, err := rt.NewProgram("l3_forward", engine.NewRunner(prog))
	if err != nil {
		panic(err)
	}
	if err := rt.Attach(1, tcx.Ingress, h, tcx.AttachOptions{}); err != nil {
		panic(err)
	}
	out := rt.Receive(1, frame)
	fmt.Printf("%s on ifindex %d, ttl %d\n", out.Fate, out.Ifindex, out.Frame[22])
	// Output:
	// verdict 7, redirect to 2, ttl 63
	// transmitted on ifindex 2, ttl 63
}
