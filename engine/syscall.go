package engine

import (
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/vm"
)

// BPF_PROG_TYPE_SYSCALL programs: what userspace runs with
// BPF_PROG_TEST_RUN to do in the kernel what only a program can, such as
// creating a crypto context and storing it in a map for the tc programs
// of the same object. The engine loads them beside the SCHED_CLS programs
// (Collection.Syscalls) and runs them without a context, as the kernel's
// selftests do; they may call the helpers below and the kfuncs registered
// for the type, never a packet helper.

// progTypeOf is the kfunc registration a program of ps's type uses.
func progTypeOf(ps *ebpf.ProgramSpec) progTypes {
	if ps != nil && ps.Type == ebpf.Syscall {
		return forSyscall
	}
	return forTC
}

// syscallHelperIDs are the helpers of bpf_base_func_proto (what a syscall
// program may call besides bpf_sys_bpf and its kin) that the engine has.
var syscallHelperIDs = []asm.BuiltinFunc{
	asm.FnMapLookupElem, asm.FnMapUpdateElem, asm.FnMapDeleteElem, asm.FnMapLookupPercpuElem,
	asm.FnKtimeGetNs, asm.FnKtimeGetBootNs, asm.FnKtimeGetCoarseNs, asm.FnKtimeGetTaiNs,
	asm.FnGetPrandomU32, asm.FnGetSmpProcessorId, asm.FnGetNumaNodeId, asm.FnTracePrintk,
	asm.FnLoop, asm.FnSpinLock, asm.FnSpinUnlock, asm.FnForEachMapElem,
	asm.FnRingbufOutput, asm.FnRingbufReserve, asm.FnRingbufSubmit, asm.FnRingbufDiscard, asm.FnRingbufQuery,
	asm.FnKptrXchg, asm.FnDynptrFromMem, asm.FnDynptrRead, asm.FnDynptrWrite,
}

// syscallHelpers is the helper table of syscall programs: the tc table
// cut down to syscallHelperIDs, with the kfuncs.
func syscallHelpers(tc []vm.HelperFunc) []vm.HelperFunc {
	t := make([]vm.HelperFunc, len(tc))
	for _, id := range syscallHelperIDs {
		if int(id) < len(tc) {
			t[id] = tc[id]
		}
	}
	for i := range kfuncs {
		t[kfuncBase+i] = tc[kfuncBase+i] // the linker refused the others
	}
	return t
}

// loadSyscall links and loads the syscall program name.
func (c *Collection) loadSyscall(name string, env *linkEnv) error {
	insns, err := link(name, env)
	if err != nil {
		return fmt.Errorf("new collection: %w", err)
	}
	if err := c.check(name, insns); err != nil {
		return fmt.Errorf("new collection: %w", err)
	}
	vp, err := vm.Load(insns, vm.Options{
		Helpers:      syscallHelpers(c.helpers),
		Maps:         c.resolveMap,
		Ctx:          vm.NewCtxPolicy(0), // no context: every access faults
		AddressSpace: c.as,
		Engine:       c.opts.Engine.vm(),
		ArrayLookup:  int32(asm.FnMapLookupElem),
	})
	if err != nil {
		return fmt.Errorf("new collection: program %q: %w%s", name, err, sourceOf(insns, err))
	}
	ps := env.progs[name]
	c.Syscalls[name] = newProgram(c, name, ps.SectionName, vp, insns)
	return nil
}

// RunSyscall runs a syscall program of the executor's collection once, as
// BPF_PROG_TEST_RUN does without ctx_in (r1 is NULL), and returns its
// return value. A fault or a helper error is returned as from Run.
func (x *Executor) RunSyscall(prog *Program) (uint32, error) {
	switch {
	case prog == nil:
		return 0, fmt.Errorf("run syscall program: nil program: %w", syscall.EINVAL)
	case prog.coll != x.coll || x.coll.Syscalls[prog.name] != prog:
		return 0, fmt.Errorf("run syscall program %s: not a syscall program of this collection: %w", prog.name, syscall.EINVAL)
	case x.coll.closed.Load():
		return 0, fmt.Errorf("run syscall program %s: collection closed: %w", prog.name, syscall.EBADF)
	}
	r0, err := x.m.Run(prog.vm, 0)
	x.finish()
	if err != nil {
		prog.faults.Add(1)
		x.explain(err)
		return 0, fmt.Errorf("run syscall program %s: %w", prog.name, err)
	}
	return uint32(r0), nil
}

// RunSyscall runs p, a syscall program, on one of the collection's
// executors (see Executor.RunSyscall).
func (p *Program) RunSyscall() (uint32, error) {
	s, err := p.coll.acquire()
	if err != nil {
		return 0, err
	}
	defer p.coll.pool.release(s)
	return s.x.RunSyscall(p)
}
