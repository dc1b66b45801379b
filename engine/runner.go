package engine

import (
	"github.com/tcxgo/tcx/fib"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// Runner attaches a Program to the userspace runtime: it implements
// userspace.Runner (userspace.Runtime.NewProgram takes it).
type Runner struct {
	prog *Program
	fib  *fib.Table
}

var _ userspace.Runner = (*Runner)(nil)

// NewRunner returns the userspace.Runner of p.
func NewRunner(p *Program) *Runner { return &Runner{prog: p} }

// WithFIB makes bpf_fib_lookup in r's runs consult t, the routes of the
// namespace r's device is in, instead of the collection's Options.FIB: one
// object's programs can be attached in several namespaces, and a lookup
// uses the routes of the packet's device's namespace, as the kernel's
// (dev_net(skb->dev)). It returns r.
func (r *Runner) WithFIB(t *fib.Table) *Runner {
	r.fib = t
	return r
}

// Program is the program the runner runs.
func (r *Runner) Program() *Program { return r.prog }

// Run runs the program on the runtime's packet itself, on one of the
// collection's executors, and returns the verdict. The packet is the
// frame's one sk_buff (userspace.Packet embeds skb.Packet): the program
// reads and writes it in place, so it sees what the programs before it
// wrote and leaves its own writes (cb[], mark, hash, tstamp, a VLAN tag, a
// pending redirect, the bytes ...) to the programs after it, as on the
// kernel's sk_buff; nothing is copied. A run that fails is a drop
// (TC_ACT_SHOT), counted in Program.Faults; its changes made before the
// fault stay, as in the kernel.
//
// The run borrows the executor of the trip's CPU (up.CPU), or any free
// one and makes its CPU the trip's: the programs of a chain then see one
// CPU's per-CPU map values and bpf_get_smp_processor_id, as the kernel
// runs a hook's chain on one CPU.
func (r *Runner) Run(up *userspace.Packet) int32 {
	s, err := r.prog.coll.acquireCPU(up.CPU)
	if err != nil {
		return int32(skb.ActShot)
	}
	up.CPU = s.x.CPU()
	s.x.fib = r.fib
	res, err := s.x.Run(r.prog, &up.Packet)
	s.x.fib = nil
	r.prog.coll.pool.release(s)
	if err != nil {
		return int32(skb.ActShot)
	}
	return int32(res.Retval)
}
