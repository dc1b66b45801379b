package conformance

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest/probes"
	"golang.org/x/sys/unix"
)

// hook is a scenario's view of one hook (device and direction) of an Env,
// with helpers that mirror the selftests' ASSERT_* lines. The probe programs
// and links it creates are shared by all hooks derived from it (on), so that
// destroy closes everything the scenario made, like test_tc_link__destroy.
type hook struct {
	t       *testing.T
	env     Env
	b       tcx.Backend
	dir     tcx.Direction
	ifindex int
	objs    *objects
}

type objects struct {
	probes map[int]tcx.Program // tcN by N
	links  []tcx.Link
}

func newHook(t *testing.T, env Env, dir tcx.Direction) *hook {
	return &hook{
		t: t, env: env, b: env.Backend(), dir: dir, ifindex: env.Loopback(),
		objs: &objects{probes: map[int]tcx.Program{}},
	}
}

// on is the same scenario on another hook.
func (h *hook) on(ifindex int, dir tcx.Direction) *hook {
	c := *h
	c.ifindex, c.dir = ifindex, dir
	return &c
}

// variant runs one sub-variant of a scenario (the selftests' extra
// parameters) as a subtest with its own programs and links, destroyed at the
// end, on the same Env.
func (h *hook) variant(name string, f func(v *hook)) {
	h.t.Run(name, func(t *testing.T) {
		v := *h
		v.t, v.objs = t, &objects{probes: map[int]tcx.Program{}}
		defer v.destroy()
		f(&v)
	})
}

// other is the opposite direction of the same device.
func (h *hook) other() *hook {
	if h.dir == tcx.Ingress {
		return h.on(h.ifindex, tcx.Egress)
	}
	return h.on(h.ifindex, tcx.Ingress)
}

// tc returns the scenario's program tcN (loaded on first use) with the
// verdict test_tc_link.c gives it.
func (h *hook) tc(n int) tcx.Program {
	h.t.Helper()
	if p, ok := h.objs.probes[n]; ok {
		return p
	}
	p, err := h.env.Probe(n, probes.SelftestVerdict(n))
	if err != nil {
		h.t.Fatalf("load probe tc%d: %v", n, err)
	}
	h.objs.probes[n] = p
	return p
}

func (h *hook) attach(p tcx.Program, o tcx.AttachOptions) error {
	return h.b.Attach(h.ifindex, h.dir, p, o)
}

func (h *hook) detach(p tcx.Program, o tcx.DetachOptions) error {
	return h.b.Detach(h.ifindex, h.dir, p, o)
}

// link creates a link; successful links are closed by destroy.
func (h *hook) link(p tcx.Program, o tcx.LinkOptions) (tcx.Link, error) {
	l, err := h.b.CreateLink(h.ifindex, h.dir, p, o)
	if err == nil {
		h.objs.links = append(h.objs.links, l)
	}
	return l, err
}

// mustLink is bpf_program__attach_tcx followed by ASSERT_OK_PTR.
func (h *hook) mustLink(p tcx.Program, o tcx.LinkOptions) tcx.Link {
	h.t.Helper()
	l, err := h.link(p, o)
	if err != nil {
		h.t.Fatalf("link %s on %s: %v", p.Name(), h, err)
	}
	return l
}

func (h *hook) String() string { return fmt.Sprintf("ifindex %d %s", h.ifindex, h.dir) }

// ok fails the scenario (and stops it) on an error, as the selftests jump to
// cleanup when a step that must work fails.
func (h *hook) ok(err error, what string) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s on %s: unexpected error: %v", what, h, err)
	}
}

// fails checks that err carries the errno the kernel returns.
func (h *hook) fails(err error, want syscall.Errno, what string) {
	h.t.Helper()
	if !errors.Is(err, want) {
		h.t.Errorf("%s on %s: got %s, want %s", what, h, errString(err), errnoName(want))
	}
}

// failsOneOf is fails for the few requests whose errno depends on global
// state the test cannot control (a program ID that may or may not exist).
func (h *hook) failsOneOf(err error, what string, want ...syscall.Errno) {
	h.t.Helper()
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	h.t.Errorf("%s on %s: got %s, want one of %v", what, h, errString(err), want)
}

// expect checks a request's outcome (want 0: success, which the scenario
// needs to go on) and then the hook's count, the selftests' usual pair of
// ASSERT_EQ(err, ...) and assert_mprog_count.
func (h *hook) expect(err error, want unix.Errno, count uint32, what string) {
	h.t.Helper()
	if want == 0 {
		h.ok(err, what)
	} else {
		h.fails(err, want, what)
	}
	h.count(count)
}

// count is assert_mprog_count: a query without arrays succeeds and reports n.
func (h *hook) count(n uint32) {
	h.t.Helper()
	res, err := h.b.Query(h.ifindex, h.dir, tcx.QueryOptions{})
	if err != nil {
		h.t.Errorf("query %s: %v", h, err)
		return
	}
	if res.Count != n {
		h.t.Errorf("query %s: count %d, want %d", h, res.Count, n)
	}
}

// slot is one expected chain position: a program and the link that holds it
// (nil for a plain attachment).
type slot struct {
	prog tcx.Program
	link tcx.Link
}

func plain(p tcx.Program) slot              { return slot{prog: p} }
func linked(p tcx.Program, l tcx.Link) slot { return slot{prog: p, link: l} }

// chain queries the hook with all four arrays one slot larger than the
// expected chain (pre-zeroed, like the selftests) and checks count, revision,
// program and link IDs by position, zero attach flags and the untouched tail.
func (h *hook) chain(rev uint64, want ...slot) {
	h.t.Helper()
	n := len(want) + 1
	progs, links := make([]uint32, n), make([]uint32, n)
	pflags, lflags := make([]uint32, n), make([]uint32, n)
	for i := range n {
		// Non-zero garbage proves the kernel writes zeros for attach flags.
		pflags[i], lflags[i] = 0xdead, 0xbeef
	}
	res, err := h.b.Query(h.ifindex, h.dir, tcx.QueryOptions{
		Count: uint32(n), ProgIDs: progs, LinkIDs: links,
		ProgAttachFlags: pflags, LinkAttachFlags: lflags,
	})
	if err != nil {
		h.t.Errorf("query %s: %v", h, err)
		return
	}
	if res.Count != uint32(len(want)) || res.Revision != rev || res.AttachFlags != 0 {
		h.t.Errorf("query %s: count %d revision %d attach_flags %d, want count %d revision %d attach_flags 0",
			h, res.Count, res.Revision, res.AttachFlags, len(want), rev)
	}
	wantProgs, wantLinks := make([]uint32, n), make([]uint32, n)
	for i, s := range want {
		wantProgs[i] = s.prog.ID()
		if s.link != nil {
			wantLinks[i] = s.link.ID()
		}
	}
	if !slices.Equal(progs, wantProgs) || !slices.Equal(links, wantLinks) {
		h.t.Errorf("query %s: prog_ids %v link_ids %v, want %v %v", h, progs, links, wantProgs, wantLinks)
	}
	for i := range len(want) {
		if pflags[i] != 0 || lflags[i] != 0 {
			h.t.Errorf("query %s: slot %d attach flags prog %#x link %#x, want 0", h, i, pflags[i], lflags[i])
		}
	}
	if pflags[len(want)] != 0xdead || lflags[len(want)] != 0xbeef {
		h.t.Errorf("query %s: flag arrays written beyond the count", h)
	}
}

// order is chain for plain attachments only.
func (h *hook) order(rev uint64, progs ...tcx.Program) {
	h.t.Helper()
	slots := make([]slot, len(progs))
	for i, p := range progs {
		slots[i] = plain(p)
	}
	h.chain(rev, slots...)
}

// traffic is tc_skel_reset_all_seen + ping_cmd + ASSERT_EQ(seen_tcN): it
// pings over loopback and checks that exactly the listed probes ran, among
// all probes the scenario loaded.
func (h *hook) traffic(ran ...int) {
	h.t.Helper()
	if err := h.env.ResetSeen(); err != nil {
		h.t.Fatalf("reset seen: %v", err)
	}
	if err := h.env.Ping(); err != nil {
		h.t.Errorf("ping: %v", err)
	}
	for n := range h.objs.probes {
		seen, err := h.env.Seen(n)
		if err != nil {
			h.t.Fatalf("seen tc%d: %v", n, err)
		}
		if want := slices.Contains(ran, n); seen != want {
			h.t.Errorf("after ping: seen_tc%d = %v, want %v", n, seen, want)
		}
	}
}

// ping is a bare ASSERT_OK(system(ping_cmd)).
func (h *hook) ping() {
	h.t.Helper()
	if err := h.env.Ping(); err != nil {
		h.t.Errorf("ping: %v", err)
	}
}

// id is id_from_prog_fd / id_from_link_fd.
func (h *hook) id(o tcx.Object) uint32 {
	h.t.Helper()
	id := o.ID()
	if id == 0 {
		h.t.Errorf("object %v has ID 0", o)
	}
	return id
}

// destroy is test_tc_link__destroy: close every link and program handle the
// scenario made. Closing can fail only for a handle closed before.
func (h *hook) destroy() {
	h.t.Helper()
	for _, l := range h.objs.links {
		if err := l.Close(); err != nil && !errors.Is(err, unix.EBADF) {
			h.t.Errorf("close link %d: %v", l.ID(), err)
		}
	}
	h.objs.links = nil
	for n, p := range h.objs.probes {
		if err := p.Close(); err != nil && !errors.Is(err, unix.EBADF) {
			h.t.Errorf("close tc%d: %v", n, err)
		}
	}
	clear(h.objs.probes)
}

// qdisc adds a qdisc and, should the scenario stop early, removes it when
// the (sub)test ends so that the next variant starts clean.
func (h *hook) qdisc(ifindex int, kind Qdisc) {
	h.t.Helper()
	h.ok(h.env.AddQdisc(ifindex, kind), "add "+kind.String()+" qdisc")
	h.t.Cleanup(func() { _ = h.env.DeleteQdisc(ifindex, kind) })
}

// filter adds a classic cls_bpf filter (removed with its qdisc).
func (h *hook) filter(ifindex int, dir tcx.Direction, prog tcx.Program) {
	h.t.Helper()
	h.ok(h.env.AddClassicFilter(ifindex, dir, prog), "add cls_bpf "+prog.Name())
}

// deleteVeth is "ip link del" of the pair, then if_nametoindex == 0 for
// both ends.
func (h *hook) deleteVeth(ia, ib int) {
	h.t.Helper()
	h.ok(h.env.DeleteDevice(ia), "del veth")
	h.gone(ia)
	h.gone(ib)
}

// classic puts prog as a cls_bpf filter under a new clsact qdisc on the
// hook (if on), as the chain_classic selftests do with bpf_tc_hook_create
// and bpf_tc_attach; unclassic takes both down again.
func (h *hook) classic(on bool, prog tcx.Program) {
	h.t.Helper()
	if on {
		h.qdisc(h.ifindex, Clsact)
		h.filter(h.ifindex, h.dir, prog)
	}
}

func (h *hook) unclassic() {
	h.t.Helper()
	h.ok(h.env.DeleteClassicFilter(h.ifindex, h.dir), "delete cls_bpf")
	h.ok(h.env.DeleteQdisc(h.ifindex, Clsact), "delete clsact")
}

// gone checks that a deleted device is gone for tcx (if_nametoindex == 0).
func (h *hook) gone(ifindex int) {
	h.t.Helper()
	_, err := h.b.Query(ifindex, h.dir, tcx.QueryOptions{})
	h.on(ifindex, h.dir).fails(err, unix.ENODEV, "query deleted device")
}

func errString(err error) string {
	if err == nil {
		return "success"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return fmt.Sprintf("%s (%v)", errnoName(e), err)
	}
	return fmt.Sprintf("non-errno error %q", err)
}

func errnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}
