package mprog

import (
	"syscall"

	"github.com/tcxgo/tcx"
)

// IDs names a chain position for a query: the program's ID and the link's ID
// (0 for a plain attachment). The caller owns the ID spaces.
type IDs[P, L any] func(Tuple[P, L]) (progID, linkID uint32)

// Query is bpf_mprog_query. b may be nil (a hook without an entry), which
// reports count 0 and revision 1. Arrays are filled in chain order, only when
// opts.Count, opts.ProgIDs and the total are all non-zero; with fewer slots
// than programs the first opts.Count are written and ENOSPC is returned.
// QueryResult.Count is always the total. Attach flags are always 0. Array
// elements beyond what is written stay untouched.
func Query[P, L any](b *Bundle[P, L], opts *tcx.QueryOptions, ids IDs[P, L]) (tcx.QueryResult, error) {
	if opts.QueryFlags != 0 || opts.AttachFlags != 0 {
		return tcx.QueryResult{}, syscall.EINVAL
	}
	res := tcx.QueryResult{Revision: 1}
	if b != nil {
		res.Revision, res.Count = b.revision, uint32(b.count)
	}
	if opts.Count == 0 || opts.ProgIDs == nil || res.Count == 0 {
		return res, nil
	}
	n, err := res.Count, error(nil)
	if opts.Count < n {
		n, err = opts.Count, syscall.ENOSPC
	}
	for i := range int(n) {
		pid, lid := ids(b.At(i))
		opts.ProgIDs[i] = pid
		if opts.ProgAttachFlags != nil {
			opts.ProgAttachFlags[i] = 0
		}
		if opts.LinkIDs != nil {
			opts.LinkIDs[i] = lid
		}
		if opts.LinkAttachFlags != nil {
			opts.LinkAttachFlags[i] = 0
		}
	}
	return res, err
}
