package tcx

import (
	"errors"
	"fmt"
	"syscall"
)

// Anchor says where in a chain an attachment goes. It is sealed: the only
// anchors are the ones built by the constructors below, so there is exactly
// one way to say "where" and no invalid flag combination can be expressed.
type Anchor interface {
	anchor() (flags Flags, rel Object, relID uint32)
}

type anchor struct {
	flags Flags
	rel   Object
	relID uint32
}

func (a anchor) anchor() (Flags, Object, uint32) { return a.flags, a.rel, a.relID }

// Head is the position before every program of the chain.
func Head() Anchor { return anchor{flags: FlagBefore} }

// Tail is the position after every program of the chain (the default).
func Tail() Anchor { return anchor{flags: FlagAfter} }

// BeforeProgram is the position just in front of p.
func BeforeProgram(p Program) Anchor { return anchor{flags: FlagBefore, rel: p} }

// AfterProgram is the position just after p.
func AfterProgram(p Program) Anchor { return anchor{flags: FlagAfter, rel: p} }

// BeforeLink is the position just in front of l's program.
func BeforeLink(l Link) Anchor { return anchor{flags: FlagBefore | FlagLink, rel: l} }

// AfterLink is the position just after l's program.
func AfterLink(l Link) Anchor { return anchor{flags: FlagAfter | FlagLink, rel: l} }

// BeforeProgramByID is the position just in front of the program with that ID.
func BeforeProgramByID(id uint32) Anchor { return anchor{flags: FlagBefore | FlagID, relID: id} }

// AfterProgramByID is the position just after the program with that ID.
func AfterProgramByID(id uint32) Anchor { return anchor{flags: FlagAfter | FlagID, relID: id} }

// BeforeLinkByID is the position just in front of the link with that ID.
func BeforeLinkByID(id uint32) Anchor {
	return anchor{flags: FlagBefore | FlagLink | FlagID, relID: id}
}

// AfterLinkByID is the position just after the link with that ID.
func AfterLinkByID(id uint32) Anchor {
	return anchor{flags: FlagAfter | FlagLink | FlagID, relID: id}
}

// ReplaceProgram replaces the plain attachment of p. Only AttachProgram
// accepts it: a link can never replace anything.
func ReplaceProgram(p Program) Anchor { return anchor{flags: FlagReplace, rel: p} }

// AttachProgram attaches prog without a link at the anchor (nil = Tail).
func AttachProgram(b Backend, ifindex int, dir Direction, prog Program, at Anchor, expectedRevision uint64) error {
	opts := AttachOptions{ExpectedRevision: expectedRevision}
	if at != nil {
		flags, rel, id := at.anchor()
		opts.Flags, opts.RelativeID = flags, id
		if flags&FlagReplace != 0 {
			p, _ := rel.(Program)
			opts.Replace = p
		} else {
			opts.Relative = rel
		}
	}
	return b.Attach(ifindex, dir, prog, opts)
}

// AttachLink creates a link for prog at the anchor (nil = Tail).
func AttachLink(b Backend, ifindex int, dir Direction, prog Program, at Anchor, expectedRevision uint64) (Link, error) {
	opts := LinkOptions{ExpectedRevision: expectedRevision}
	if at != nil {
		flags, rel, id := at.anchor()
		if flags&FlagReplace != 0 {
			return nil, fmt.Errorf("create tcx link: %w (a link cannot replace a program)", syscall.EINVAL)
		}
		opts.Flags, opts.Relative, opts.RelativeID = flags, rel, id
	}
	return b.CreateLink(ifindex, dir, prog, opts)
}

// Entry is one position of a chain as a query reports it.
type Entry struct {
	ProgramID uint32
	LinkID    uint32 // 0 for a plain attachment
}

// Chain is the full state of one hook.
type Chain struct {
	Entries  []Entry
	Revision uint64
}

// QueryChain reads the whole chain of a hook, retrying if it grows between
// the count query and the fill.
func QueryChain(b Backend, ifindex int, dir Direction) (Chain, error) {
	for {
		res, err := b.Query(ifindex, dir, QueryOptions{})
		if err != nil {
			return Chain{}, err
		}
		n := res.Count
		progs, links := make([]uint32, n), make([]uint32, n)
		res, err = b.Query(ifindex, dir, QueryOptions{Count: n, ProgIDs: progs, LinkIDs: links})
		if errors.Is(err, syscall.ENOSPC) {
			continue
		}
		if err != nil {
			return Chain{}, err
		}
		c := Chain{Revision: res.Revision, Entries: make([]Entry, res.Count)}
		for i := range c.Entries {
			c.Entries[i] = Entry{ProgramID: progs[i], LinkID: links[i]}
		}
		return c, nil
	}
}
