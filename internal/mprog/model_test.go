package mprog_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/mprog"
)

// The reference model below is deliberately naive and written from the
// spec's prose (shared/spec/tcx-semantics.md 2.2, 2.3, 2.6), not from the
// kernel's code: a plain slice, "find the index, insert into the slice".
// The engine must agree with it on every result of long random runs.

type tprog struct{ id uint32 }
type tlink struct{ id uint32 }

type tuple = mprog.Tuple[tprog, tlink]
type relative = mprog.Relative[tprog, tlink]

type slot struct {
	p *tprog
	l *tlink
}

type model struct {
	s   []slot
	rev uint64
}

func newModel() *model { return &model{rev: 1} }

func (m *model) has(p *tprog) bool {
	return slices.ContainsFunc(m.s, func(x slot) bool { return x.p == p })
}

// where returns the slot index of the relative, -1 for "no relative".
func (m *model) where(r relative) (int, error) {
	if r.Prog == nil {
		return -1, nil
	}
	for i, x := range m.s {
		if x.p == r.Prog && (r.Link == nil || r.Link == x.l) {
			return i, nil
		}
	}
	return 0, syscall.ENOENT
}

func (m *model) attach(nt tuple, old *tprog, flags tcx.Flags, r relative, rev uint64) (*tprog, error) {
	if rev != 0 && rev != m.rev {
		return nil, syscall.ESTALE
	}
	if m.has(nt.Prog) {
		return nil, syscall.EEXIST
	}
	if r.Err != nil {
		return nil, r.Err
	}
	replace := flags&tcx.FlagReplace != 0
	before := flags&tcx.FlagBefore != 0
	after := flags&tcx.FlagAfter != 0
	victim := -1
	if replace {
		victim = slices.IndexFunc(m.s, func(x slot) bool { return x.p == old })
		if victim < 0 {
			return nil, syscall.ENOENT
		}
		if m.s[victim].l != nt.Link {
			return nil, syscall.EBUSY
		}
	} else if len(m.s) == 63 {
		return nil, syscall.ERANGE
	}
	// gap is where a new program goes: 0 = front, len = back.
	gap := len(m.s)
	if before {
		i, err := m.where(r)
		if err != nil {
			return nil, err
		}
		if i < 0 {
			gap = 0
		} else {
			gap = i
		}
		// "replace old, which must sit right in front of the relative"
		if replace && (i < 0 || victim != i-1) {
			return nil, syscall.ERANGE
		}
	}
	if after {
		i, err := m.where(r)
		if err != nil {
			return nil, err
		}
		if before {
			return nil, syscall.ERANGE // in front of and behind x at once
		}
		if i < 0 {
			gap = len(m.s)
		} else {
			gap = i + 1
		}
		if replace && (i < 0 || victim != i+1) {
			return nil, syscall.ERANGE
		}
	}
	if !replace && !before && !after && (r.Prog != nil || flags != 0) {
		return nil, syscall.EINVAL
	}
	m.rev++
	if replace {
		o := m.s[victim].p
		m.s[victim] = slot{nt.Prog, nt.Link}
		if nt.Link != nil {
			return nil, nil
		}
		return o, nil
	}
	m.s = slices.Insert(m.s, gap, slot{nt.Prog, nt.Link})
	return nil, nil
}

func (m *model) detach(dt tuple, flags tcx.Flags, r relative, rev uint64) (tuple, error) {
	if flags&tcx.FlagReplace != 0 {
		return tuple{}, syscall.EINVAL
	}
	if rev != 0 && rev != m.rev {
		return tuple{}, syscall.ESTALE
	}
	if len(m.s) == 0 {
		return tuple{}, syscall.ENOENT
	}
	if r.Err != nil {
		return tuple{}, r.Err
	}
	before := flags&tcx.FlagBefore != 0
	after := flags&tcx.FlagAfter != 0
	// target is "the program in front of x" / "behind x"; in front of the
	// first is spelled -1 and behind the last len, and both are clamped
	// to the first/last program at the end (the spec's quirk).
	target, fixed := 0, false
	if dt.Prog != nil {
		i := slices.IndexFunc(m.s, func(x slot) bool { return x.p == dt.Prog })
		if i < 0 {
			return tuple{}, syscall.ENOENT
		}
		if m.s[i].l != dt.Link {
			return tuple{}, syscall.EBUSY
		}
		target, fixed = i, true
	}
	for _, rule := range []struct {
		on    bool
		delta int
		bare  int
	}{{before, -1, -1}, {after, +1, len(m.s)}} {
		if !rule.on {
			continue
		}
		i, err := m.where(r)
		if err != nil {
			return tuple{}, err
		}
		t := rule.bare
		if i >= 0 {
			t = i + rule.delta
		}
		if fixed && t != target {
			return tuple{}, syscall.ERANGE
		}
		target, fixed = t, true
	}
	if !fixed {
		if r.Prog != nil || flags != 0 {
			return tuple{}, syscall.EINVAL
		}
		target = len(m.s)
	}
	if target >= 63 {
		return tuple{}, syscall.ERANGE
	}
	target = max(0, min(target, len(m.s)-1))
	x := m.s[target]
	if x.l != nil && dt.Link == nil {
		return tuple{}, syscall.EBUSY
	}
	m.s = slices.Delete(m.s, target, target+1)
	m.rev++
	return tuple{Prog: x.p, Link: x.l}, nil
}

func (m *model) query(opts *tcx.QueryOptions) (tcx.QueryResult, error) {
	if opts.QueryFlags != 0 || opts.AttachFlags != 0 {
		return tcx.QueryResult{}, syscall.EINVAL
	}
	res := tcx.QueryResult{Count: uint32(len(m.s)), Revision: m.rev}
	if opts.ProgIDs == nil || opts.Count == 0 {
		return res, nil // "nothing asked for" beats "too small"
	}
	var err error
	for i, x := range m.s {
		if i == int(opts.Count) {
			err = syscall.ENOSPC
			break
		}
		opts.ProgIDs[i] = x.p.id
		if opts.LinkIDs != nil {
			opts.LinkIDs[i] = 0
			if x.l != nil {
				opts.LinkIDs[i] = x.l.id
			}
		}
		if opts.ProgAttachFlags != nil {
			opts.ProgAttachFlags[i] = 0
		}
		if opts.LinkAttachFlags != nil {
			opts.LinkAttachFlags[i] = 0
		}
	}
	return res, err
}

func ids(t tuple) (uint32, uint32) {
	if t.Link == nil {
		return t.Prog.id, 0
	}
	return t.Prog.id, t.Link.id
}

// fuzzer drives the engine and the model with the same random requests.
type fuzzer struct {
	t     *testing.T
	r     *rand.Rand
	b     *mprog.Bundle[tprog, tlink]
	m     *model
	progs []*tprog
	links []*tlink // every link ever made; linkProg maps the attached ones
	lprog map[*tlink]*tprog
	ops   map[string]int // outcomes seen, "kind:errno"
	full  bool           // the bundle held 63 programs before this step
}

func (f *fuzzer) prog() *tprog { return f.progs[f.r.IntN(len(f.progs))] }

func (f *fuzzer) flags() tcx.Flags {
	var fl tcx.Flags
	for _, b := range []tcx.Flags{tcx.FlagReplace, tcx.FlagBefore, tcx.FlagAfter, tcx.FlagID, tcx.FlagLink} {
		if f.r.IntN(4) == 0 {
			fl |= b
		}
	}
	if f.r.IntN(40) == 0 {
		fl |= 1 << f.r.IntN(32)
	}
	return fl
}

func (f *fuzzer) relative() relative {
	switch f.r.IntN(8) {
	case 0, 1, 2:
		return relative{}
	case 3:
		errs := []error{syscall.EBADF, syscall.EINVAL, syscall.ENOENT, syscall.EAGAIN}
		return relative{Err: errs[f.r.IntN(len(errs))]}
	case 4:
		if len(f.links) > 0 {
			l := f.links[f.r.IntN(len(f.links))]
			p := f.lprog[l]
			if p == nil {
				p = f.prog() // a defunct link still names its last program
			}
			return relative{Tuple: tuple{Prog: p, Link: l}}
		}
	}
	return relative{Tuple: tuple{Prog: f.prog()}}
}

func (f *fuzzer) revision() uint64 {
	switch f.r.IntN(6) {
	case 0:
		return f.m.rev
	case 1:
		return f.m.rev + 1
	case 2:
		return f.m.rev - 1
	}
	return 0
}

func (f *fuzzer) check(op string, gotErr, wantErr error, got, want any) {
	f.t.Helper()
	kind, _, _ := strings.Cut(op, " ")
	if f.full {
		kind += "-full"
	}
	f.ops[fmt.Sprintf("%s:%v", kind, wantErr)]++
	if !errors.Is(gotErr, wantErr) && gotErr != wantErr {
		f.t.Fatalf("%s: error %v, model %v", op, gotErr, wantErr)
	}
	if got != want {
		f.t.Fatalf("%s: result %v, model %v", op, got, want)
	}
	f.compare()
}

func (f *fuzzer) compare() {
	f.t.Helper()
	n := f.r.IntN(66)
	var a, b [64]uint32
	var la, lb [64]uint32
	oa := tcx.QueryOptions{Count: uint32(n), ProgIDs: a[:], LinkIDs: la[:]}
	ob := tcx.QueryOptions{Count: uint32(n), ProgIDs: b[:], LinkIDs: lb[:]}
	if f.r.IntN(5) == 0 {
		oa.ProgIDs, ob.ProgIDs = nil, nil
	}
	ra, ea := mprog.Query(f.b, &oa, ids)
	rb, eb := f.m.query(&ob)
	if ra != rb || ea != eb || a != b || la != lb {
		f.t.Fatalf("query(count %d): engine %+v %v %v %v, model %+v %v %v %v", n, ra, ea, a[:ra.Count], la[:ra.Count], rb, eb, b[:rb.Count], lb[:rb.Count])
	}
	// The full chain must also match what a reader sees.
	v := f.b.Acquire()
	defer v.Release()
	for i := 0; i <= len(f.m.s); i++ {
		var want *tprog
		if i < len(f.m.s) {
			want = f.m.s[i].p
		}
		if v.At(i) != want {
			f.t.Fatalf("reader slot %d: %v, model %v", i, v.At(i), want)
		}
	}
}

func (f *fuzzer) step() {
	f.full = len(f.m.s) == 63
	switch k := f.r.IntN(10); {
	case k < 3: // plain attach
		nt := tuple{Prog: f.prog()}
		old := f.prog()
		fl, rel, rev := f.flags()&^tcx.FlagLink|f.flags()&tcx.FlagLink, f.relative(), f.revision()
		want, werr := f.m.attach(nt, old, fl, rel, rev)
		got, gerr := f.b.Attach(nt, old, fl, rel, rev)
		f.check(fmt.Sprintf("attach %v flags %#x", nt.Prog.id, fl), gerr, werr, got, want)
	case k < 5: // link create
		l := &tlink{id: uint32(1000 + len(f.links))}
		nt := tuple{Prog: f.prog(), Link: l}
		fl, rel, rev := f.flags(), f.relative(), f.revision()
		want, werr := f.m.attach(nt, nil, fl, rel, rev)
		got, gerr := f.b.Attach(nt, nil, fl, rel, rev)
		f.check(fmt.Sprintf("link %v flags %#x", nt.Prog.id, fl), gerr, werr, got, want)
		f.links = append(f.links, l)
		if gerr == nil {
			f.lprog[l] = nt.Prog
		}
	case k < 6: // link update (tcx_link_update's call)
		if len(f.lprog) == 0 {
			return
		}
		l := f.links[f.r.IntN(len(f.links))]
		op, ok := f.lprog[l]
		if !ok {
			return
		}
		nt := tuple{Prog: f.prog(), Link: l}
		rel := relative{Tuple: tuple{Prog: op}}
		want, werr := f.m.attach(nt, op, tcx.FlagReplace|tcx.FlagID, rel, 0)
		got, gerr := f.b.Attach(nt, op, tcx.FlagReplace|tcx.FlagID, rel, 0)
		f.check("update", gerr, werr, got, want)
		if gerr == nil {
			f.lprog[l] = nt.Prog
		}
	case k < 9: // plain detach
		dt := tuple{}
		if f.r.IntN(3) > 0 {
			dt.Prog = f.prog()
		}
		fl, rel, rev := f.flags(), f.relative(), f.revision()
		if f.r.IntN(2) == 0 {
			fl &^= tcx.FlagReplace
		}
		want, werr := f.m.detach(dt, fl, rel, rev)
		got, gerr := f.b.Detach(dt, fl, rel, rev)
		f.check(fmt.Sprintf("detach flags %#x", fl), gerr, werr, got, want)
	default: // link release
		if len(f.lprog) == 0 {
			return
		}
		l := f.links[f.r.IntN(len(f.links))]
		p, ok := f.lprog[l]
		if !ok {
			return
		}
		dt := tuple{Prog: p, Link: l}
		want, werr := f.m.detach(dt, 0, relative{}, 0)
		got, gerr := f.b.Detach(dt, 0, relative{}, 0)
		f.check("release", gerr, werr, got, want)
		delete(f.lprog, l)
	}
}

// TestBundle_Model runs long random request sequences (most of them invalid)
// through the engine and the naive model and compares every error, every
// returned tuple, the query result and what readers see after each step.
func TestBundle_Model(t *testing.T) {
	seen := map[string]int{}
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x7463))
			// Some runs draw from many programs so the bundle fills up
			// to 63 and the ERANGE rules get exercised.
			n := 8
			if seed%4 == 3 {
				n = 90
			}
			f := &fuzzer{t: t, r: r, b: mprog.New[tprog, tlink](), m: newModel(), lprog: map[*tlink]*tprog{}, ops: map[string]int{}}
			for i := range n {
				f.progs = append(f.progs, &tprog{id: uint32(i + 1)})
			}
			for range 5000 {
				f.step()
			}
			for k, v := range f.ops {
				seen[k] += v
			}
		})
	}
	// The comparison proves little unless the runs reach every rule.
	for _, want := range []string{
		"attach:<nil>", "attach:" + e(syscall.ESTALE), "attach:" + e(syscall.EEXIST),
		"attach:" + e(syscall.ENOENT), "attach:" + e(syscall.EBUSY), "attach:" + e(syscall.ERANGE),
		"attach:" + e(syscall.EINVAL), "attach:" + e(syscall.EBADF), "attach-full:" + e(syscall.ERANGE),
		"attach-full:<nil>", "link:<nil>", "link:" + e(syscall.ENOENT), "link:" + e(syscall.EAGAIN),
		"update:<nil>", "update:" + e(syscall.EEXIST),
		"detach:<nil>", "detach:" + e(syscall.ENOENT), "detach:" + e(syscall.EBUSY),
		"detach:" + e(syscall.ERANGE), "detach:" + e(syscall.EINVAL), "detach:" + e(syscall.ESTALE),
		"detach-full:" + e(syscall.ERANGE), "detach-full:<nil>", "release:<nil>",
	} {
		if seen[want] == 0 {
			t.Errorf("no step ended in %s", want)
		}
	}
	t.Logf("outcomes: %v", seen)
}

func e(err error) string { return err.Error() }
