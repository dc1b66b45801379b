package engine

import (
	"bytes"

	"github.com/tcxgo/tcx/skb"
)

// TestRun runs p once the way BPF_PROG_TEST_RUN runs a SCHED_CLS program
// and answers like it: data is the frame (14..3712 bytes; IPv4 needs 34,
// IPv6 54), ctxIn an optional struct __sk_buff of which only mark,
// priority, ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs,
// gso_size and hwtstamp may be set (else EINVAL; a longer ctxIn must be
// zero beyond __sk_buff, else E2BIG). dataOut is the packet afterwards;
// ctxOut, only when ctxIn is not nil, carries the fields the kernel
// copies back. Input errors wrap the kernel's errno; a run that faults
// returns its *Fault (or *LimitError, *HelperError) with retval
// TC_ACT_SHOT, where the kernel would have refused the program at load.
// It runs on one of the collection's executors and allocates its results.
func (p *Program) TestRun(data, ctxIn []byte) (retval uint32, dataOut, ctxOut []byte, err error) {
	s, err := p.coll.acquire()
	if err != nil {
		return 0, nil, nil, err
	}
	defer p.coll.pool.release(s)
	return s.x.TestRun(p, data, ctxIn)
}

// TestRun is Program.TestRun on this executor (so on its CPU).
func (x *Executor) TestRun(p *Program, data, ctxIn []byte) (retval uint32, dataOut, ctxOut []byte, err error) {
	pkt := &x.own
	if err := pkt.ResetTestRun(data, ctxIn, x.coll.opts.Devices); err != nil {
		return 0, nil, nil, err
	}
	res, runErr := x.Run(p, pkt)
	dataOut = bytes.Clone(pkt.Data())
	if ctxIn != nil {
		ctxOut = make([]byte, skb.CtxSize)
		pkt.CtxOut(ctxOut)
	}
	return res.Retval, dataOut, ctxOut, runErr
}
