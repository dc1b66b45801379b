package skb

import (
	"fmt"
	"strconv"
	"strings"
)

// Quirks are skb helper behaviours of kernel releases older than the one the
// model follows by default. The zero value is the model's default: the
// behaviour of Linux 6.18.44, the newest kernel the helpers were compared
// with. A Packet whose Quirks field holds a bit behaves like the releases the
// bit names; QuirksFor picks them for a running kernel.
type Quirks uint32

const (
	// QuirkGrowPastTail: bpf_skb_adjust_room grows at an offset beyond the
	// end of the packet (BPF_ADJ_ROOM_NET on a packet cut to its MAC header
	// by change_tail) and moves whatever lies past the tail along with the
	// headers. Linux 6.12.118 and 6.18.0 (net/core/filter.c,
	// bpf_skb_generic_push) do this; 6.18.44 answers -ENOMEM, after the
	// encapsulation flag checks, as pskb_may_pull(skb, off) would.
	QuirkGrowPastTail Quirks = 1 << iota
)

// Release is a kernel version, major.minor.patch.
type Release struct{ Major, Minor, Patch int }

// ParseRelease reads the version at the start of a uname release string
// such as "6.18.44-fc-v1272" or "6.12.0-rc3".
func ParseRelease(s string) (Release, error) {
	var r Release
	head, _, _ := strings.Cut(s, "-")
	parts := strings.SplitN(head, ".", 3)
	if len(parts) < 2 {
		return r, fmt.Errorf("kernel release %q: want major.minor[.patch]", s)
	}
	nums := [3]*int{&r.Major, &r.Minor, &r.Patch}
	for i, p := range parts {
		// A patch level may carry a suffix ("44+"): read its digits.
		end := strings.IndexFunc(p, func(c rune) bool { return c < '0' || c > '9' })
		if end == 0 || (end > 0 && i < 2) {
			return r, fmt.Errorf("kernel release %q: bad number %q", s, p)
		}
		if end > 0 {
			p = p[:end]
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return r, fmt.Errorf("kernel release %q: %w", s, err)
		}
		*nums[i] = n
	}
	return r, nil
}

// Less reports whether r is an older release than o.
func (r Release) Less(o Release) bool {
	if r.Major != o.Major {
		return r.Major < o.Major
	}
	if r.Minor != o.Minor {
		return r.Minor < o.Minor
	}
	return r.Patch < o.Patch
}

func (r Release) String() string { return fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch) }

// quirkSpan records where a quirk was seen: every release of a series in
// oldUpTo up to that patch level shows it, every series that stopped
// receiving stable releases before the fix (eolBelow..firstNew's series)
// shows it, and from firstNew on none does. Nobody has looked at the other
// releases (later stable releases of a series in oldUpTo, long-term series
// older than eolBelow, the patch levels before firstNew in its series):
// QuirksFor says it does not know, and a caller beside such a kernel should
// ask it (the skb tests do).
type quirkSpan struct {
	q        Quirks
	oldUpTo  []Release
	eolBelow Release
	firstNew Release
}

var quirkSpans = [...]quirkSpan{{
	q:        QuirkGrowPastTail,
	oldUpTo:  []Release{{6, 12, 118}, {6, 18, 0}},
	eolBelow: Release{6, 13, 0},
	firstNew: Release{6, 18, 44},
}}

// QuirksFor returns the quirks of a kernel release and which of them it
// knows. For a bit clear in known, q holds the older behaviour: only
// releases from the recorded first new one on are known to have changed.
func QuirksFor(r Release) (q, known Quirks) {
	for _, s := range quirkSpans {
		if !r.Less(s.firstNew) {
			known |= s.q
			continue
		}
		q |= s.q
		series := Release{r.Major, r.Minor, 0}
		if !series.Less(s.eolBelow) && series.Less(Release{s.firstNew.Major, s.firstNew.Minor, 0}) {
			known |= s.q
		}
		for _, o := range s.oldUpTo {
			if o.Major == r.Major && o.Minor == r.Minor && r.Patch <= o.Patch {
				known |= s.q
			}
		}
	}
	return q, known
}
