package mprog

import (
	"syscall"

	"github.com/tcxgo/tcx"
)

// Relative is the relative object of a request after the caller resolved it
// (bpf_mprog_tuple_relative). Resolving needs the caller's handle and ID
// tables, so it happens before the bundle is consulted; but the kernel
// reports a failed resolution only at step 3 of attach (after ESTALE and
// EEXIST) and step 4 of detach, so the error travels along in Err and the
// bundle returns it at exactly that step.
//
// The zero Relative is "no relative object". A resolved program has Link nil
// and matches that program however it is attached; a resolved link has both
// Link and its program set and matches only that link's slot.
type Relative[P, L any] struct {
	Tuple[P, L]
	Err error
}

// none marks "no position fixed yet" (the kernel's idx = -ERANGE).
const none = -2

// exists reports whether prog is anywhere in the bundle (bpf_mprog_exists).
func (b *Bundle[P, L]) exists(prog *P) bool {
	e := b.active.Load()
	for i := 0; i < b.count; i++ {
		if e.fp[i].Load() == prog {
			return true
		}
	}
	return false
}

// posExact finds t's slot: ENOENT if t.Prog is absent, EBUSY if it is
// present but owned by a different link (or by a link when t has none).
func (b *Bundle[P, L]) posExact(t Tuple[P, L]) (int, error) {
	e := b.active.Load()
	for i := 0; i < b.count; i++ {
		if e.fp[i].Load() == t.Prog {
			if t.Link == b.cp[i] {
				return i, nil
			}
			return 0, syscall.EBUSY
		}
	}
	return 0, syscall.ENOENT
}

// posRelative finds the relative's slot and returns it shifted by delta (-1
// for BEFORE, +1 for AFTER). Without a relative, BEFORE means position -1
// (in front of everything) and AFTER means count (behind everything).
func (b *Bundle[P, L]) posRelative(t Tuple[P, L], delta int) (int, error) {
	if t.Prog == nil {
		if delta < 0 {
			return -1, nil
		}
		return b.count, nil
	}
	e := b.active.Load()
	for i := 0; i < b.count; i++ {
		if e.fp[i].Load() == t.Prog && (t.Link == nil || t.Link == b.cp[i]) {
			return i + delta, nil
		}
	}
	return 0, syscall.ENOENT
}

// position runs the BEFORE/AFTER rules shared by attach and detach on top of
// an index that REPLACE (attach) or the program (detach) may already have
// fixed. Every rule that is present must agree on the same index.
func (b *Bundle[P, L]) position(idx int, flags tcx.Flags, rel Relative[P, L]) (int, error) {
	for _, r := range [...]struct {
		flag  tcx.Flags
		delta int
	}{{tcx.FlagBefore, -1}, {tcx.FlagAfter, +1}} {
		if flags&r.flag == 0 {
			continue
		}
		t, err := b.posRelative(rel.Tuple, r.delta)
		if err != nil {
			return 0, err
		}
		if idx != none && t != idx {
			return 0, syscall.ERANGE
		}
		idx = t
	}
	return idx, nil
}

// Attach inserts or replaces a program (bpf_mprog_attach). nt is the new
// program with its link (nil for a plain attachment); old is the program to
// replace with tcx.FlagReplace (nil never matches: a link cannot replace).
// With the checks in the kernel's order:
//
//  1. revision != 0 and != current: ESTALE
//  2. nt.Prog already in the bundle: EEXIST
//  3. rel.Err (relative resolution)
//  4. REPLACE: exact slot of (old, nt.Link), ENOENT/EBUSY; otherwise a full
//     bundle: ERANGE
//  5. BEFORE, 6. AFTER: ENOENT for an absent relative, ERANGE on disagreement
//  7. no position rule but a relative or any flag bit: EINVAL; else append
//  8. position beyond the last slot: ERANGE
//
// On success the revision grows by one. For a plain replace, replaced is the
// program that left the chain; the caller drops its reference.
func (b *Bundle[P, L]) Attach(nt Tuple[P, L], old *P, flags tcx.Flags, rel Relative[P, L], revision uint64) (replaced *P, err error) {
	if revision != 0 && revision != b.revision {
		return nil, syscall.ESTALE
	}
	if b.exists(nt.Prog) {
		return nil, syscall.EEXIST
	}
	if rel.Err != nil {
		return nil, rel.Err
	}
	idx := none
	if flags&tcx.FlagReplace != 0 {
		if idx, err = b.posExact(Tuple[P, L]{Prog: old, Link: nt.Link}); err != nil {
			return nil, err
		}
	} else if b.count == Max {
		return nil, syscall.ERANGE
	}
	if idx, err = b.position(idx, flags, rel); err != nil {
		return nil, err
	}
	if idx == none {
		if rel.Prog != nil || flags != 0 {
			return nil, syscall.EINVAL
		}
		idx, flags = b.count, tcx.FlagAfter
	}
	if idx >= Max {
		return nil, syscall.ERANGE
	}
	if flags&tcx.FlagReplace != 0 {
		return b.replace(nt, idx), nil
	}
	b.insert(nt, idx, flags)
	return nil, nil
}

// replace overwrites slot idx of the active array in place: a single atomic
// store, so a reader sees the old or the new program there, and the rest of
// the chain is untouched (no swap, no grace period, as in the kernel).
func (b *Bundle[P, L]) replace(nt Tuple[P, L], idx int) *P {
	e := b.active.Load()
	old := e.fp[idx].Load()
	e.fp[idx].Store(nt.Prog)
	b.cp[idx] = nt.Link
	b.commit()
	if nt.Link != nil {
		return nil // the link owns its programs; it puts the old one
	}
	return old
}

// insert builds the grown chain in the peer array and swaps it in. idx is a
// BEFORE position (relative's slot - 1) or an AFTER position (relative's
// slot + 1, or count to append).
func (b *Bundle[P, L]) insert(nt Tuple[P, L], idx int, flags tcx.Flags) {
	p := b.writablePeer()
	if idx != b.count && flags&tcx.FlagBefore != 0 {
		idx++
	}
	for i := b.count; i > idx; i-- {
		p.fp[i].Store(p.fp[i-1].Load())
		b.cp[i] = b.cp[i-1]
	}
	p.fp[idx].Store(nt.Prog)
	b.cp[idx] = nt.Link
	b.count++
	b.publish(p)
	b.commit()
}

// Detach removes one program (bpf_mprog_detach). dt.Prog nil is a
// positional detach; dt.Link is the link being released (nil for a plain
// detach). With the checks in the kernel's order:
//
//  1. REPLACE flag: EINVAL
//  2. revision mismatch: ESTALE
//  3. empty bundle: ENOENT
//  4. rel.Err
//  5. dt.Prog given: its exact slot, ENOENT/EBUSY
//  6. BEFORE/AFTER as in Attach
//  7. nothing fixed a position: a relative or any flag gives EINVAL, else
//     the last program is the target
//  8. position beyond the last slot: ERANGE (so a positional detach of the
//     last program of a full bundle fails, as in the kernel)
//  9. the target slot belongs to a link that is not dt.Link: EBUSY
//
// Position -1 selects the first program and position count the last. On
// success the removed tuple is returned after the grace period; if it has no
// link the caller drops the program reference the attachment held. Detach
// never allocates.
func (b *Bundle[P, L]) Detach(dt Tuple[P, L], flags tcx.Flags, rel Relative[P, L], revision uint64) (removed Tuple[P, L], err error) {
	if flags&tcx.FlagReplace != 0 {
		return removed, syscall.EINVAL
	}
	if revision != 0 && revision != b.revision {
		return removed, syscall.ESTALE
	}
	if b.count == 0 {
		return removed, syscall.ENOENT
	}
	if rel.Err != nil {
		return removed, rel.Err
	}
	idx := none
	if dt.Prog != nil {
		if idx, err = b.posExact(dt); err != nil {
			return removed, err
		}
	}
	if idx, err = b.position(idx, flags, rel); err != nil {
		return removed, err
	}
	if idx == none {
		if rel.Prog != nil || flags != 0 {
			return removed, syscall.EINVAL
		}
		idx = b.count
	}
	if idx >= Max {
		return removed, syscall.ERANGE
	}
	switch idx {
	case -1:
		idx = 0
	case b.count:
		idx = b.count - 1
	}
	removed = b.At(idx)
	if removed.Link != nil && dt.Link == nil {
		return Tuple[P, L]{}, syscall.EBUSY
	}
	b.delete(idx)
	return removed, nil
}

// delete builds the shrunk chain in the peer array and swaps it in.
func (b *Bundle[P, L]) delete(idx int) {
	p := b.writablePeer()
	for i := idx; i < b.count; i++ {
		p.fp[i].Store(p.fp[i+1].Load())
		b.cp[i] = b.cp[i+1]
	}
	b.count--
	b.publish(p)
	b.commit()
}
