package conformance

import (
	"fmt"
	"slices"

	"github.com/tcxgo/tcx"
	"golang.org/x/sys/unix"
)

// The newer tc_opts.c scenarios (test_ns_tc_opts_*): detach on an empty hook,
// tcx next to classic tc, the 63-program limit and the query ABI.

// tcOptsDeleteEmpty detaches "the last program" of a hook that has none,
// once with no entry at all and once with an entry kept alive by clsact.
func tcOptsDeleteEmpty(h *hook) {
	for _, classic := range []bool{false, true} {
		h.variant(classicName(classic), func(v *hook) {
			v.count(0)
			if classic {
				v.qdisc(v.ifindex, Clsact)
				v.count(0)
			}
			v.fails(v.detach(nil, do{}), unix.ENOENT, "detach from empty hook")
			if classic {
				v.ok(v.env.DeleteQdisc(v.ifindex, Clsact), "delete clsact")
			}
			v.count(0)
		})
	}
}

// tcOptsChainMixed puts a passing tcx program in front of a classic cls_bpf
// filter (tc5, PASS): tcx's verdict ends the pipeline unless it is NEXT.
func tcOptsChainMixed(h *hook) {
	tc4, tc5, tc6 := h.tc(4), h.tc(5), h.tc(6)
	h.count(0)
	h.classic(true, tc5)
	h.expect(h.attach(tc6, ao{}), 0, 1, "attach tc6")
	h.traffic(6)
	h.expect(h.attach(tc4, ao{Flags: fReplace, Replace: tc6}), 0, 1, "replace tc6 by tc4")
	h.traffic(4, 5)
	h.expect(h.detach(tc4, do{}), 0, 0, "detach tc4")
	h.traffic(5)
	h.unclassic()
}

// veth creates the selftests' tcx_opts1/tcx_opts2 pair and deletes it when
// the (sub)test ends, in case the scenario stopped before doing so.
func (h *hook) veth() (ia, ib int) {
	h.t.Helper()
	ia, ib, err := h.env.AddVeth("tcx_opts1", "tcx_opts2")
	h.ok(err, "add veth")
	h.t.Cleanup(func() { _ = h.env.DeleteDevice(ia) })
	return ia, ib
}

// tcOptsMax fills a veth hook with 63 fresh programs; the 64th fails with
// ERANGE whatever its position. Six variants: no flag, BEFORE, AFTER, each
// without a relative and relative to the last program (the selftest spreads
// these six over the two directions; here each direction runs all six).
func tcOptsMax(h *hook) {
	for _, flags := range []tcx.Flags{0, fBefore, fAfter} {
		for _, relative := range []bool{false, true} {
			h.variant(fmt.Sprintf("flags_%#x_relative_%v", uint32(flags), relative), func(v *hook) {
				ia, ib := v.veth()
				d := v.on(ia, v.dir)
				d.count(0)
				var last tcx.Program
				for i := range tcx.MaxPrograms {
					p, err := v.env.Probe(100+i, tcx.VerdictPass)
					v.ok(err, "load dummy program")
					d.ok(d.attach(p, ao{}), fmt.Sprintf("attach program %d", i+1))
					d.count(uint32(i + 1))
					if i == tcx.MaxPrograms-1 && relative {
						last = p
						continue
					}
					// Closing the handle must not detach the program.
					v.ok(p.Close(), "close dummy program")
				}
				p, err := v.env.Probe(200, tcx.VerdictPass)
				v.ok(err, "load 64th program")
				o := ao{Flags: flags}
				if last != nil {
					o.Relative = last
				}
				d.expect(d.attach(p, o), unix.ERANGE, tcx.MaxPrograms, "attach 64th program")
				v.ok(p.Close(), "close 64th program")
				if last != nil {
					v.ok(last.Close(), "close last program")
				}
				v.deleteVeth(ia, ib)
			})
		}
	}
}

// tcOptsQuery checks BPF_PROG_QUERY's ABI: what is written for every
// combination of count and array, ENOSPC with partial results, and the
// rejected flags.
func tcOptsQuery(h *hook) {
	tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	h.count(0)
	for i, p := range []tcx.Program{tc1, tc2, tc3, tc4} {
		h.ok(h.attach(p, ao{ExpectedRevision: uint64(i + 1)}), "attach "+p.Name())
		h.count(uint32(i + 1))
	}
	all := []uint32{tc1.ID(), tc2.ID(), tc3.ID(), tc4.ID()}
	q := func(what string, o tcx.QueryOptions, wantErr unix.Errno, wantIDs []uint32) {
		h.t.Helper()
		res, err := h.b.Query(h.ifindex, h.dir, o)
		if wantErr != 0 {
			h.fails(err, wantErr, what)
		} else if err != nil {
			h.t.Errorf("%s: %v", what, err)
		}
		if wantErr == unix.EINVAL {
			return
		}
		if res.Count != 4 || res.Revision != 5 || res.AttachFlags != 0 {
			h.t.Errorf("%s: count %d revision %d attach_flags %d, want 4 5 0", what, res.Count, res.Revision, res.AttachFlags)
		}
		if o.ProgIDs != nil {
			want := make([]uint32, len(o.ProgIDs))
			copy(want, wantIDs)
			if !slices.Equal(o.ProgIDs, want) {
				h.t.Errorf("%s: prog_ids %v, want %v", what, o.ProgIDs, want)
			}
		}
	}
	// Test 1: libbpf's double query; count carries over from the first.
	q("query without arrays", tcx.QueryOptions{}, 0, nil)
	q("query with ids", tcx.QueryOptions{Count: 4, ProgIDs: make([]uint32, 10)}, 0, all)
	// Test 2 is the raw syscall: zero count, then the count echoed back.
	q("raw query count 0", tcx.QueryOptions{}, 0, nil)
	q("raw query count 4", tcx.QueryOptions{Count: 4, ProgIDs: make([]uint32, 10)}, 0, all)
	q("query count 2", tcx.QueryOptions{Count: 2, ProgIDs: make([]uint32, 10)}, unix.ENOSPC, all[:2])
	q("query count 10", tcx.QueryOptions{Count: 10, ProgIDs: make([]uint32, 10)}, 0, all)
	q("query count 40 without array", tcx.QueryOptions{Count: 40}, 0, nil)
	q("query count 0 with array", tcx.QueryOptions{ProgIDs: make([]uint32, 10)}, 0, nil)
	q("query_flags 1", tcx.QueryOptions{QueryFlags: 1, ProgIDs: make([]uint32, 10)}, unix.EINVAL, nil)
	q("attach_flags 1", tcx.QueryOptions{AttachFlags: 1, ProgIDs: make([]uint32, 10)}, unix.EINVAL, nil)
	h.detachAll(tc4, tc3, tc2, tc1)
}

// tcOptsQueryAttach uses the revision an empty hook reports as the expected
// revision of the first attach.
func tcOptsQueryAttach(h *hook) {
	tc1 := h.tc(1)
	res, err := h.b.Query(h.ifindex, h.dir, tcx.QueryOptions{})
	h.ok(err, "query empty hook")
	if res.Count != 0 || res.Revision != 1 {
		h.t.Errorf("empty hook: count %d revision %d, want 0 1", res.Count, res.Revision)
	}
	h.ok(h.attach(tc1, ao{ExpectedRevision: res.Revision}), "attach tc1 at the queried revision")
	h.order(2, tc1)
	h.expect(h.detach(tc1, do{}), 0, 0, "detach tc1")
}
