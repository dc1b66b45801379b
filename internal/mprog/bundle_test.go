package mprog_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/mprog"
)

type bundle = mprog.Bundle[tprog, tlink]

// fixture is a bundle plus named programs p1..p9 and links l1..l9.
type fixture struct {
	t *testing.T
	b *bundle
	p [10]*tprog
	l [10]*tlink
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, b: mprog.New[tprog, tlink]()}
	for i := range f.p {
		f.p[i] = &tprog{id: uint32(i)}
		f.l[i] = &tlink{id: uint32(100 + i)}
	}
	return f
}

// chain renders the bundle as "1 2L 3" (L marks a link attachment).
func (f *fixture) chain() string {
	s := ""
	for i := range f.b.Count() {
		t := f.b.At(i)
		if i > 0 {
			s += " "
		}
		s += fmt.Sprint(t.Prog.id)
		if t.Link != nil {
			s += "L"
		}
	}
	return s
}

func (f *fixture) attach(progs ...int) {
	f.t.Helper()
	for _, n := range progs {
		if _, err := f.b.Attach(tuple{Prog: f.p[n]}, nil, 0, relative{}, 0); err != nil {
			f.t.Fatalf("attach %d: %v", n, err)
		}
	}
}

func (f *fixture) link(n int) {
	f.t.Helper()
	if _, err := f.b.Attach(tuple{Prog: f.p[n], Link: f.l[n]}, nil, 0, relative{}, 0); err != nil {
		f.t.Fatalf("link %d: %v", n, err)
	}
}

func (f *fixture) rel(n int) relative { return relative{Tuple: tuple{Prog: f.p[n]}} }
func (f *fixture) lrel(n int) relative {
	return relative{Tuple: tuple{Prog: f.p[n], Link: f.l[n]}}
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		t.Fatalf("error %v, want %v", got, want)
	}
}

func TestBundle_Attach_Rules(t *testing.T) {
	none := relative{}
	for _, tc := range []struct {
		name   string
		setup  func(f *fixture)
		do     func(f *fixture) error
		err    error
		chain  string
		revDif uint64
	}{
		{"append", func(f *fixture) { f.attach(1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[2]}, nil, 0, none, 0)
			return err
		}, nil, "1 2", 1},
		{"before without relative prepends", func(f *fixture) { f.attach(1, 2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, nil, tcx.FlagBefore, none, 0)
			return err
		}, nil, "3 1 2", 1},
		{"after without relative appends", func(f *fixture) { f.attach(1, 2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, nil, tcx.FlagAfter, none, 0)
			return err
		}, nil, "1 2 3", 1},
		{"before relative", func(f *fixture) { f.attach(1, 2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, nil, tcx.FlagBefore, f.rel(2), 0)
			return err
		}, nil, "1 3 2", 1},
		{"after relative", func(f *fixture) { f.attach(1, 2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, nil, tcx.FlagAfter, f.rel(1), 0)
			return err
		}, nil, "1 3 2", 1},
		{"link relative matches its own slot only", func(f *fixture) { f.attach(1); f.link(2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, nil, tcx.FlagAfter|tcx.FlagLink, relative{Tuple: tuple{Prog: f.p[1], Link: f.l[2]}}, 0)
			return err
		}, syscall.ENOENT, "1 2L", 0},
		{"prog relative matches a link slot", func(f *fixture) { f.attach(1); f.link(2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, nil, tcx.FlagBefore, f.rel(2), 0)
			return err
		}, nil, "1 3 2L", 1},
		{"stale revision before exists", func(f *fixture) { f.attach(1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[1]}, nil, 0, none, 7)
			return err
		}, syscall.ESTALE, "1", 0},
		{"exists before relative error", func(f *fixture) { f.attach(1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[1]}, nil, tcx.FlagBefore, relative{Err: syscall.EBADF}, 0)
			return err
		}, syscall.EEXIST, "1", 0},
		{"relative error before position", func(f *fixture) { f.attach(1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[2]}, nil, tcx.FlagBefore|tcx.FlagAfter, relative{Err: syscall.EBADF}, 0)
			return err
		}, syscall.EBADF, "1", 0},
		{"before and after", func(f *fixture) {}, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[1]}, nil, tcx.FlagBefore|tcx.FlagAfter, none, 0)
			return err
		}, syscall.ERANGE, "", 0},
		{"before and after absent relative", func(f *fixture) {}, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[1]}, nil, tcx.FlagBefore|tcx.FlagAfter, f.rel(2), 0)
			return err
		}, syscall.ENOENT, "", 0},
		{"relative without position flag", func(f *fixture) { f.attach(2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[1]}, nil, 0, f.rel(2), 0)
			return err
		}, syscall.EINVAL, "2", 0},
		{"ID flag alone", func(f *fixture) {}, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[1]}, nil, tcx.FlagID, none, 0)
			return err
		}, syscall.EINVAL, "", 0},
		{"replace", func(f *fixture) { f.attach(2, 1) }, func(f *fixture) error {
			old, err := f.b.Attach(tuple{Prog: f.p[3]}, f.p[2], tcx.FlagReplace, none, 0)
			if err == nil && old != f.p[2] {
				return fmt.Errorf("replaced %v", old)
			}
			return err
		}, nil, "3 1", 1},
		{"replace with matching before", func(f *fixture) { f.attach(3, 1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[2]}, f.p[3], tcx.FlagReplace|tcx.FlagBefore, f.rel(1), 0)
			return err
		}, nil, "2 1", 1},
		{"replace with disagreeing after", func(f *fixture) { f.attach(2, 1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, f.p[2], tcx.FlagReplace|tcx.FlagAfter, f.rel(1), 0)
			return err
		}, syscall.ERANGE, "2 1", 0},
		{"replace absent", func(f *fixture) { f.attach(1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, f.p[2], tcx.FlagReplace, none, 0)
			return err
		}, syscall.ENOENT, "1", 0},
		{"plain replace of a link slot", func(f *fixture) { f.attach(1); f.link(2) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3]}, f.p[2], tcx.FlagReplace, none, 0)
			return err
		}, syscall.EBUSY, "1 2L", 0},
		{"link create with replace", func(f *fixture) { f.attach(1) }, func(f *fixture) error {
			_, err := f.b.Attach(tuple{Prog: f.p[3], Link: f.l[3]}, nil, tcx.FlagReplace, none, 0)
			return err
		}, syscall.ENOENT, "1", 0},
		{"link update keeps the link", func(f *fixture) { f.attach(1); f.link(2) }, func(f *fixture) error {
			old, err := f.b.Attach(tuple{Prog: f.p[3], Link: f.l[2]}, f.p[2], tcx.FlagReplace|tcx.FlagID, f.rel(2), 0)
			if old != nil {
				return fmt.Errorf("link update handed back %v", old)
			}
			return err
		}, nil, "1 3L", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f)
			rev := f.b.Revision()
			wantErr(t, tc.do(f), tc.err)
			if got := f.chain(); got != tc.chain {
				t.Errorf("chain %q, want %q", got, tc.chain)
			}
			if got := f.b.Revision() - rev; got != tc.revDif {
				t.Errorf("revision moved by %d, want %d", got, tc.revDif)
			}
		})
	}
}

func TestBundle_Attach_Full(t *testing.T) {
	f := newFixture(t)
	progs := make([]*tprog, mprog.Max+2)
	for i := range progs {
		progs[i] = &tprog{id: uint32(i + 1)}
	}
	for i := range mprog.Max {
		if _, err := f.b.Attach(tuple{Prog: progs[i]}, nil, 0, relative{}, 0); err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
	}
	if f.b.Revision() != 64 {
		t.Fatalf("revision %d after 63 attaches, want 64", f.b.Revision())
	}
	last := relative{Tuple: tuple{Prog: progs[mprog.Max-1]}}
	for _, fl := range []tcx.Flags{0, tcx.FlagBefore, tcx.FlagAfter} {
		for _, r := range []relative{{}, last} {
			if fl == 0 && r.Prog != nil {
				continue
			}
			_, err := f.b.Attach(tuple{Prog: progs[mprog.Max]}, nil, fl, r, 0)
			wantErr(t, err, syscall.ERANGE)
		}
	}
	// A replace does not add a program and still works on a full bundle.
	if _, err := f.b.Attach(tuple{Prog: progs[mprog.Max]}, progs[0], tcx.FlagReplace, relative{}, 0); err != nil {
		t.Fatalf("replace on full bundle: %v", err)
	}
	// The kernel's quirk: "delete the last" computes position 63 and
	// fails with ERANGE on a full bundle, while "delete the first" works.
	_, err := f.b.Detach(tuple{}, 0, relative{}, 0)
	wantErr(t, err, syscall.ERANGE)
	_, err = f.b.Detach(tuple{}, tcx.FlagAfter, relative{}, 0)
	wantErr(t, err, syscall.ERANGE)
	got, err := f.b.Detach(tuple{}, tcx.FlagBefore, relative{}, 0)
	wantErr(t, err, nil)
	if got.Prog != progs[mprog.Max] {
		t.Fatalf("removed %v, want the replacement at the front", got.Prog)
	}
}

func TestBundle_Detach_Rules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fixture)
		do    func(f *fixture) (tuple, error)
		err   error
		gone  int // program number removed (0: none)
		chain string
	}{
		{"empty", func(f *fixture) {}, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, 0, relative{}, 0)
		}, syscall.ENOENT, 0, ""},
		{"replace flag first", func(f *fixture) {}, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagReplace, relative{}, 9)
		}, syscall.EINVAL, 0, ""},
		{"stale before empty", func(f *fixture) {}, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, 0, relative{}, 9)
		}, syscall.ESTALE, 0, ""},
		{"no flags deletes last", func(f *fixture) { f.attach(1, 2, 3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, 0, relative{}, 0)
		}, nil, 3, "1 2"},
		{"before deletes first", func(f *fixture) { f.attach(1, 2, 3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagBefore, relative{}, 0)
		}, nil, 1, "2 3"},
		{"before first relative deletes it", func(f *fixture) { f.attach(1, 2, 3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagBefore, f.rel(1), 0)
		}, nil, 1, "2 3"},
		{"after last relative deletes it", func(f *fixture) { f.attach(1, 2, 3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagAfter, f.rel(3), 0)
		}, nil, 3, "1 2"},
		{"before relative", func(f *fixture) { f.attach(1, 2, 3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagBefore, f.rel(3), 0)
		}, nil, 2, "1 3"},
		{"prog with agreeing before", func(f *fixture) { f.attach(1, 2, 3, 4) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[1]}, tcx.FlagBefore, f.rel(2), 0)
		}, nil, 1, "2 3 4"},
		{"prog with disagreeing before", func(f *fixture) { f.attach(1, 2, 3, 4) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[2]}, tcx.FlagBefore, f.rel(4), 0)
		}, syscall.ERANGE, 0, "1 2 3 4"},
		{"prog after itself", func(f *fixture) { f.attach(1, 2) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[1]}, tcx.FlagAfter, f.rel(1), 0)
		}, syscall.ERANGE, 0, "1 2"},
		{"absent prog", func(f *fixture) { f.attach(1) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[2]}, 0, relative{}, 0)
		}, syscall.ENOENT, 0, "1"},
		{"plain detach of link prog", func(f *fixture) { f.attach(1); f.link(2) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[2]}, 0, relative{}, 0)
		}, syscall.EBUSY, 0, "1 2L"},
		{"positional detach hits link", func(f *fixture) { f.attach(1); f.link(2) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagAfter, relative{}, 0)
		}, syscall.EBUSY, 0, "1 2L"},
		{"link release", func(f *fixture) { f.attach(1); f.link(2); f.attach(3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[2], Link: f.l[2]}, 0, relative{}, 0)
		}, nil, 2, "1 3"},
		{"relative without flag", func(f *fixture) { f.attach(1) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, 0, f.rel(1), 0)
		}, syscall.EINVAL, 0, "1"},
		{"relative error after empty check", func(f *fixture) { f.attach(1) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{Prog: f.p[9]}, 0, relative{Err: syscall.EBADF}, 0)
		}, syscall.EBADF, 0, "1"},
		{"link relative", func(f *fixture) { f.attach(1); f.link(2); f.attach(3) }, func(f *fixture) (tuple, error) {
			return f.b.Detach(tuple{}, tcx.FlagAfter|tcx.FlagLink, f.lrel(2), 0)
		}, nil, 3, "1 2L"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f)
			rev := f.b.Revision()
			got, err := tc.do(f)
			wantErr(t, err, tc.err)
			var want *tprog
			if tc.gone != 0 {
				want = f.p[tc.gone]
			}
			if got.Prog != want {
				t.Errorf("removed %v, want %v", got.Prog, want)
			}
			if c := f.chain(); c != tc.chain {
				t.Errorf("chain %q, want %q", c, tc.chain)
			}
			if moved := f.b.Revision() - rev; (tc.err == nil) != (moved == 1) || moved > 1 {
				t.Errorf("revision moved by %d", moved)
			}
		})
	}
}

func TestQuery_Fill(t *testing.T) {
	f := newFixture(t)
	f.attach(1)
	f.link(2)
	f.attach(3)
	var ids = func(t tuple) (uint32, uint32) {
		if t.Link == nil {
			return t.Prog.id, 0
		}
		return t.Prog.id, t.Link.id
	}
	progs, links, pf, lf := make([]uint32, 5), make([]uint32, 5), []uint32{9, 9, 9, 9, 9}, []uint32{9, 9, 9, 9, 9}
	res, err := mprog.Query(f.b, &tcx.QueryOptions{Count: 5, ProgIDs: progs, LinkIDs: links, ProgAttachFlags: pf, LinkAttachFlags: lf}, ids)
	wantErr(t, err, nil)
	if res.Count != 3 || res.Revision != 4 || !slices.Equal(progs, []uint32{1, 2, 3, 0, 0}) ||
		!slices.Equal(links, []uint32{0, 102, 0, 0, 0}) || !slices.Equal(pf, []uint32{0, 0, 0, 9, 9}) || !slices.Equal(lf, pf) {
		t.Fatalf("query %+v progs %v links %v flags %v %v", res, progs, links, pf, lf)
	}
	progs = make([]uint32, 5)
	res, err = mprog.Query(f.b, &tcx.QueryOptions{Count: 2, ProgIDs: progs}, ids)
	wantErr(t, err, syscall.ENOSPC)
	if res.Count != 3 || !slices.Equal(progs, []uint32{1, 2, 0, 0, 0}) {
		t.Fatalf("partial query %+v %v", res, progs)
	}
	links = make([]uint32, 5)
	res, err = mprog.Query(f.b, &tcx.QueryOptions{Count: 5, LinkIDs: links}, ids)
	wantErr(t, err, nil)
	if res.Count != 3 || slices.Max(links) != 0 {
		t.Fatalf("link ids written without prog ids: %v", links)
	}
	res, err = mprog.Query[tprog, tlink](nil, &tcx.QueryOptions{}, ids)
	if err != nil || res != (tcx.QueryResult{Count: 0, Revision: 1}) {
		t.Fatalf("query without entry: %+v %v", res, err)
	}
	for _, o := range []tcx.QueryOptions{{QueryFlags: 1}, {AttachFlags: 1}} {
		_, err = mprog.Query(f.b, &o, ids)
		wantErr(t, err, syscall.EINVAL)
	}
}

func TestBundle_Clear(t *testing.T) {
	f := newFixture(t)
	f.attach(1)
	f.link(2)
	rev := f.b.Revision()
	var seen []tuple
	f.b.Clear(func(t tuple) { seen = append(seen, t) })
	if f.b.Count() != 0 || f.b.Revision() != rev || len(seen) != 2 || seen[1].Link != f.l[2] {
		t.Fatalf("clear: count %d rev %d->%d seen %v", f.b.Count(), rev, f.b.Revision(), seen)
	}
	v := f.b.Acquire()
	defer v.Release()
	if v.At(0) != nil {
		t.Fatal("reader still sees a program after Clear")
	}
}

// TestBundle_Allocs proves the reader path and detach never allocate.
func TestBundle_Allocs(t *testing.T) {
	f := newFixture(t)
	f.attach(1, 2, 3, 4, 5, 6)
	var sum uint32
	if n := testing.AllocsPerRun(1000, func() {
		v := f.b.Acquire()
		for i := 0; ; i++ {
			p := v.At(i)
			if p == nil {
				break
			}
			sum += p.id
		}
		v.Release()
	}); n != 0 {
		t.Errorf("running a chain: %v allocs", n)
	}
	if sum == 0 {
		t.Fatal("chain did not run")
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := f.b.Detach(tuple{}, 0, relative{}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.b.Attach(tuple{Prog: f.p[6]}, nil, 0, relative{}, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("detach+attach: %v allocs", n)
	}
	f.link(7)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := f.b.Detach(tuple{Prog: f.p[7], Link: f.l[7]}, 0, relative{}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.b.Attach(tuple{Prog: f.p[7], Link: f.l[7]}, nil, 0, relative{}, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("link release+create: %v allocs", n)
	}
}

// TestBundle_ConcurrentReaders runs readers that check every snapshot is a
// chain some writer actually published while a writer attaches, detaches
// and replaces. Every chain the writer builds is strictly increasing by ID
// with one marker program at its head, so a torn view (half old, half new)
// shows up as a broken order or a missing/duplicate marker.
func TestBundle_ConcurrentReaders(t *testing.T) {
	b := mprog.New[tprog, tlink]()
	progs := make([]*tprog, 40)
	for i := range progs {
		progs[i] = &tprog{id: uint32(i + 1)}
	}
	markerA, markerB := &tprog{id: 0}, &tprog{id: 0}
	if _, err := b.Attach(tuple{Prog: markerA}, nil, 0, relative{}, 0); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var views atomic.Int64
	errc := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				v := b.Acquire()
				p := v.At(0)
				if p != markerA && p != markerB {
					errc <- fmt.Errorf("head is %v, not a marker", p)
					v.Release()
					return
				}
				last := uint32(0)
				for i := 1; ; i++ {
					q := v.At(i)
					if q == nil {
						break
					}
					if q.id <= last {
						errc <- fmt.Errorf("torn chain: %d after %d", q.id, last)
						v.Release()
						return
					}
					last = q.id
				}
				v.Release()
				views.Add(1)
			}
		}()
	}
	marker := markerA
	for i := 0; i < 3000 && len(errc) == 0; i++ {
		p := progs[i%len(progs)]
		switch i % 3 {
		case 0, 1:
			// Insert p in order, or remove it if present.
			if _, err := b.Detach(tuple{Prog: p}, 0, relative{}, 0); errors.Is(err, syscall.ENOENT) {
				pos := relative{}
				fl := tcx.FlagAfter
				for j := 1; j < b.Count(); j++ {
					if b.At(j).Prog.id > p.id {
						pos, fl = relative{Tuple: tuple{Prog: b.At(j).Prog}}, tcx.FlagBefore
						break
					}
				}
				if _, err := b.Attach(tuple{Prog: p}, nil, fl, pos, 0); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
		case 2:
			next := markerB
			if marker == markerB {
				next = markerA
			}
			if _, err := b.Attach(tuple{Prog: next}, marker, tcx.FlagReplace, relative{}, 0); err != nil {
				t.Fatal(err)
			}
			marker = next
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if views.Load() == 0 {
		t.Fatal("readers never ran")
	}
}
