package vm

import (
	"maps"
	"slices"
	"syscall"
)

// subprograms splits the program at its subprogram entries (0, bpf-to-bpf
// call targets, function pointer targets) and applies the kernel's
// check_subprogs and call-depth rules: jumps stay inside their subprogram,
// never land on the second half of an ld_imm64, every subprogram ends in
// exit or an unconditional jump, and the static call graph has no cycle and
// no chain deeper than MaxFrames.
func (b *builder) subprograms() error {
	slices.Sort(b.starts)
	n := len(b.raw)
	sub := make([]int, n) // slot -> subprogram index
	calls := make([][][2]int, len(b.starts))
	for k, s := range b.starts {
		if b.second[s] {
			return b.fail(s, syscall.EINVAL, "call into the middle of ldimm64 insn %d", s-1)
		}
		e := b.end(k)
		for i := s; i < e; i++ {
			sub[i] = k
		}
	}
	for k, s := range b.starts {
		e := b.end(k)
		for i := s; i < e; i++ {
			if b.second[i] || !b.target[i] {
				continue
			}
			t := int(b.ops[i].off)
			if b.ops[i].kind == kCall {
				calls[k] = append(calls[k], [2]int{i, t})
				continue
			}
			if t < s || t >= e {
				return b.fail(i, syscall.EINVAL, "jump out of range from insn %d to %d", i, t)
			}
			if b.second[t] {
				return b.fail(i, syscall.EINVAL, "jump into the middle of ldimm64 insn %d", t-1)
			}
		}
		last := e - 1
		if b.second[last] || (b.ops[last].kind != kExit && b.ops[last].kind != kJa) {
			return b.fail(last, syscall.EINVAL, "last insn is not an exit or jmp")
		}
	}
	return b.callGraph(sub, calls)
}

// end is the slot after subprogram k.
func (b *builder) end(k int) int {
	if k+1 < len(b.starts) {
		return b.starts[k+1]
	}
	return len(b.raw)
}

func (b *builder) callGraph(sub []int, calls [][][2]int) error {
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]uint8, len(b.starts))
	frames := make([]int, len(b.starts)) // deepest chain of frames starting here
	var visit func(k int) error
	visit = func(k int) error {
		state[k] = onPath
		frames[k] = 1
		for _, c := range calls[k] {
			callee := sub[c[1]]
			switch state[callee] {
			case onPath:
				return b.fail(c[0], syscall.EINVAL, "recursive call from insn %d to subprogram at insn %d", c[0], c[1])
			case unvisited:
				if err := visit(callee); err != nil {
					return err
				}
			}
			if d := 1 + frames[callee]; d > frames[k] {
				if d > MaxFrames {
					return b.fail(c[0], syscall.E2BIG, "the call stack of %d frames is too deep", d)
				}
				frames[k] = d
			}
		}
		state[k] = done
		return nil
	}
	for k := range b.starts {
		if state[k] == unvisited {
			if err := visit(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// compact drops the second halves of ld_imm64 and renumbers targets from
// raw offsets to op indices.
func (b *builder) compact() *Program {
	idx := make([]int32, len(b.raw))
	n := int32(0)
	for i := range b.raw {
		idx[i] = n
		if !b.second[i] {
			n++
		}
	}
	p := &Program{
		code:    make([]op, 0, n),
		insn:    make([]int32, 0, n),
		funcs:   make(map[int32]int32, len(b.funcs)),
		helpers: slices.Clone(b.opts.Helpers),
		ctx:     b.as.sharedPolicy(b.opts.Ctx),
		as:      b.as,
		raw:     len(b.raw),

		arrayLookup: b.opts.ArrayLookup,
		pktHelpers:  maps.Clone(b.opts.PacketHelpers),
		pktPtrs:     b.opts.PacketPointers,
	}
	for i, o := range b.ops {
		if b.second[i] {
			continue
		}
		if b.target[i] {
			o.off = idx[o.off]
		}
		p.code = append(p.code, o)
		p.insn = append(p.insn, int32(i))
	}
	for raw := range b.funcs {
		p.funcs[raw] = idx[raw]
	}
	return p
}
