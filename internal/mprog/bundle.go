package mprog

import (
	"runtime"
	"sync/atomic"
)

// Max is the most programs a bundle holds (bpf_mprog_max()): the fast-path
// arrays have one slot more, which always stays nil and ends the chain.
const Max = 63

const slots = Max + 1

// Tuple is one position of a chain: the program and, for a link attachment,
// the link that owns it (nil for a plain attachment).
type Tuple[P, L any] struct {
	Prog *P
	Link *L
}

// entry is one fast-path array (struct bpf_mprog_entry). A bundle has two;
// readers run the active one, writers prepare the other ("peer") and swap.
type entry[P any] struct {
	fp [slots]atomic.Pointer[P]
	// readers counts goroutines currently iterating this array. A writer
	// overwrites an array only once it is not active and its count is 0:
	// the grace period that RCU's synchronize_rcu gives the kernel.
	readers atomic.Int64
	_       [56]byte // keep the hot counter off the next array's cache line
}

// Bundle is the per-hook state (struct bpf_mprog_bundle): two fast-path
// arrays, one control-plane array of links, the count and the revision.
type Bundle[P, L any] struct {
	a, b   entry[P]
	active atomic.Pointer[entry[P]]

	// cp, count and revision belong to the writer side: they are read and
	// written only under the caller's control lock.
	cp       [slots]*L
	count    int
	revision uint64
}

// New returns an empty bundle with revision 1 (bpf_mprog_bundle_init). It is
// the only allocation a bundle ever makes: attach, replace and detach work in
// the two preallocated arrays, so detaching can never fail for lack of memory.
func New[P, L any]() *Bundle[P, L] {
	b := &Bundle[P, L]{revision: 1}
	b.active.Store(&b.a)
	return b
}

// Count is the number of attached programs.
func (b *Bundle[P, L]) Count() int { return b.count }

// Revision is the bundle's revision: 1 at creation, +1 per successful change.
func (b *Bundle[P, L]) Revision() uint64 { return b.revision }

// At returns position i (0 <= i < Count) of the chain. Writer side only.
func (b *Bundle[P, L]) At(i int) Tuple[P, L] {
	return Tuple[P, L]{Prog: b.active.Load().fp[i].Load(), Link: b.cp[i]}
}

// View is a reader's pinned snapshot of the chain. It must be released
// exactly once, and promptly: a writer that needs the array waits for it.
type View[P any] struct {
	e *entry[P]
}

// Acquire pins the active array for reading. It never blocks on writers and
// never allocates.
func (b *Bundle[P, L]) Acquire() View[P] {
	for {
		e := b.active.Load()
		e.readers.Add(1)
		// Re-check after announcing ourselves: if a writer swapped in
		// between, it may already have looked at e's count and be
		// rewriting e, so back off and take the new active array.
		if b.active.Load() == e {
			return View[P]{e: e}
		}
		e.readers.Add(-1)
	}
}

// At returns the i-th program of the snapshot, or nil past the end of the
// chain (the kernel's NULL-terminated fast path).
func (v View[P]) At(i int) *P {
	if uint(i) >= slots {
		return nil
	}
	return v.e.fp[i].Load()
}

// Release unpins the snapshot.
func (v View[P]) Release() { v.e.readers.Add(-1) }

func (b *Bundle[P, L]) peer() *entry[P] {
	if b.active.Load() == &b.a {
		return &b.b
	}
	return &b.a
}

// drain waits until no reader uses e any more. e must not be active.
func drain[P any](e *entry[P]) {
	for e.readers.Load() != 0 {
		runtime.Gosched()
	}
}

// writablePeer returns the inactive array, filled with a copy of the active
// one, once the last reader that might still be inside it has left
// (bpf_mprog_entry_copy).
func (b *Bundle[P, L]) writablePeer() *entry[P] {
	cur := b.active.Load()
	p := b.peer()
	drain(p)
	for i := range p.fp {
		p.fp[i].Store(cur.fp[i].Load())
	}
	return p
}

// publish makes p the active array and waits for the readers of the old one
// to leave (the kernel's tcx_entry_update + synchronize_rcu), so that once a
// write returns no packet still runs the previous chain.
func (b *Bundle[P, L]) publish(p *entry[P]) {
	old := b.active.Swap(p)
	drain(old)
}

// commit is bpf_mprog_commit: the change is final, count it.
func (b *Bundle[P, L]) commit() { b.revision++ }

// Clear empties the bundle without touching the revision, for a device that
// goes away (tcx_uninstall): readers are moved to an empty array first, then
// fn sees every removed tuple in chain order, so the caller can mark links
// defunct and drop plain attachments' program references.
func (b *Bundle[P, L]) Clear(fn func(Tuple[P, L])) {
	cur := b.active.Load()
	p := b.peer()
	drain(p)
	for i := range p.fp {
		p.fp[i].Store(nil)
	}
	b.publish(p)
	n := b.count
	b.count = 0
	for i := 0; i < n; i++ {
		t := Tuple[P, L]{Prog: cur.fp[i].Load(), Link: b.cp[i]}
		b.cp[i] = nil
		if fn != nil {
			fn(t)
		}
	}
}
