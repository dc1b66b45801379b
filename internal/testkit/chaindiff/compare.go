package chaindiff

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// Comparison counts what Compare accepted beyond exact equality.
type Comparison struct {
	// StackStamps counts records where the kernel's tstamp was a realtime
	// clock value taken by the receive path (net_timestamp_check, active
	// while any socket on the machine asks for receive timestamps) where
	// the model has 0: the runtime takes no timestamps.
	StackStamps int
	// Unheard counts frames the model delivered with a protocol the
	// kernel side has no packet socket for (so it cannot see them
	// arrive); the kernel must not have delivered them elsewhere.
	Unheard int
}

// Compare returns how the kernel's observation k of a frame differs from
// the model's m, in words, or nil. Everything must be equal, with one
// allowance: a tstamp the model has as 0 may be, in the kernel, a
// realtime timestamp within [t0, t1] (see Comparison.StackStamps).
func (c *Comparison) Compare(k, m *Observation, t0, t1 time.Time) []string {
	var d []string
	if k.Also != nil {
		d = append(d, fmt.Sprintf("delivered twice: also %s", fate(k.Also)))
	}
	if k.SendFailed != m.SendFailed {
		d = append(d, fmt.Sprintf("dropped at the first egress hook: kernel %v, model %v", k.SendFailed, m.SendFailed))
	}
	if m.Delivered && !k.Delivered && !slices.Contains(protos, m.Protocol) {
		c.Unheard++
	} else if k.Delivered != m.Delivered || (k.Delivered && (k.NS != m.NS || k.Ifindex != m.Ifindex)) {
		d = append(d, fmt.Sprintf("fate: kernel %s, model %s", fate(k), fate(m)))
	} else if k.Delivered && !bytes.Equal(k.Frame, m.Frame) {
		d = append(d, fmt.Sprintf("delivered frame:\n  kernel % x\n  model  % x", k.Frame, m.Frame))
	}
	if k.Steps != m.Steps {
		d = append(d, fmt.Sprintf("program runs: kernel %d, model %d (variants kernel %v, model %v)", k.Steps, m.Steps, variants(k), variants(m)))
	}
	names := WordNames()
	for s := range min(len(k.Records), len(m.Records)) {
		kr, mr := &k.Records[s], &m.Records[s]
		for w := range NWords {
			if kr[w] == mr[w] {
				continue
			}
			if w == wTstamp || w == wTstampHi {
				kt := uint64(kr[wTstamp]) | uint64(kr[wTstampHi])<<32
				mt := uint64(mr[wTstamp]) | uint64(mr[wTstampHi])<<32
				if mt == 0 && kt >= uint64(t0.UnixNano()) && kt <= uint64(t1.UnixNano()) {
					if w == wTstamp {
						c.StackStamps++
					}
					continue
				}
			}
			d = append(d, fmt.Sprintf("run %d (v%d, ifindex %d): %s: kernel %#x, model %#x", s, mr[wVariant], mr[wIfindex], names[w], kr[w], mr[w]))
		}
	}
	return d
}

func fate(o *Observation) string {
	switch {
	case o.Delivered:
		return fmt.Sprintf("delivered on ifindex %d in netns %d", o.Ifindex, o.NS)
	case o.SendFailed:
		return "dropped on the first egress hook"
	}
	return "dropped"
}

func variants(o *Observation) []uint32 {
	var v []uint32
	for _, r := range o.Records {
		v = append(v, r[wVariant])
	}
	return v
}

// Stats sums up what the kernel side saw, to show the comparison covered
// something: records, deliveries per namespace, drops, redirects taken.
type Stats struct {
	Records, Delivered, DeliveredNS1, DeliveredLo, SendFailed, Redirected int
	// IPv6 counts records of frames an IPv4 frame became by
	// bpf_skb_change_proto (the generator sends no IPv6), VlanOOB records
	// with an out-of-band tag.
	IPv6, VlanOOB int
	Verdicts      map[int32]int
}

func (s *Stats) add(o *Observation) {
	if s.Verdicts == nil {
		s.Verdicts = map[int32]int{}
	}
	s.Records += len(o.Records)
	if o.Delivered {
		s.Delivered++
		if o.NS == 1 {
			s.DeliveredNS1++
		}
		if o.Ifindex == 1 {
			s.DeliveredLo++
		}
	}
	if o.SendFailed {
		s.SendFailed++
	}
	for _, r := range o.Records {
		s.Verdicts[int32(r[wVerdict])]++
		if r[wProtocol] == uint32(htons(0x86dd)) {
			s.IPv6++
		}
		if r[wVlanPresent] != 0 {
			s.VlanOOB++
		}
	}
	if len(o.Records) > 0 && o.Records[len(o.Records)-1][wTTL] < InitialTTL {
		s.Redirected++
	}
}

func (s *Stats) String() string {
	return fmt.Sprintf("%d records (%d of IPv6 frames made by change_proto, %d with an out-of-band VLAN tag), %d frames delivered (%d in the second netns, %d on lo), %d dropped on their first egress hook, %d redirected; verdicts %v",
		s.Records, s.IPv6, s.VlanOOB, s.Delivered, s.DeliveredNS1, s.DeliveredLo, s.SendFailed, s.Redirected, s.Verdicts)
}
