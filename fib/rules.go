package fib

import (
	"encoding/binary"
	"net/netip"
)

// RuleAction is what a matching rule does (FR_ACT_*).
type RuleAction uint8

const (
	ToTable         RuleAction = iota // FR_ACT_TO_TBL: look the table up
	RuleBlackhole                     // FR_ACT_BLACKHOLE
	RuleUnreachable                   // FR_ACT_UNREACHABLE
	RuleProhibit                      // FR_ACT_PROHIBIT
)

// Rule is a fib rule (ip rule add). Its selectors are the ones a
// bpf_fib_lookup flow can meet: source and destination prefixes (a
// source prefix never matches an IPv6 BPF_FIB_LOOKUP_OUTPUT lookup,
// which has no source address to the kernel), the input device (lo, 1,
// for an OUTPUT lookup), the output device (only an OUTPUT lookup has
// one), the mark (params->mark with BPF_FIB_LOOKUP_MARK, else 0) under
// a mask, and not.
type Rule struct {
	Priority uint32
	IPv6     bool // the family: ip -6 rule
	Src, Dst netip.Prefix
	Iif, Oif uint32 // ifindex, 0: any
	Mark     uint32
	Mask     uint32 // 0 with a Mark: 0xffffffff, as ip rule gives
	Invert   bool
	Action   RuleAction
	Table    uint32 // for ToTable
}

// customRules reports a family with rules of its own
// (fib_has_custom_rules, fib6_has_custom_rules).
func (t *Table) customRules(v6 bool) bool {
	if t == nil {
		return false
	}
	for i := range t.Rules {
		if t.Rules[i].IPv6 == v6 {
			return true
		}
	}
	return false
}

// defaultRule is the kernel's default rule k: 0 local, 32766 main,
// 32767 default (IPv4 only).
func defaultRule(k int, v6 bool) (Rule, bool) {
	r := [...]Rule{{Priority: 0, Table: TableLocal}, {Priority: 32766, Table: TableMain}, {Priority: 32767, Table: TableDefault}}[k]
	r.IPv6 = v6
	return r, !(v6 && r.Table == TableDefault)
}

// rule is the family's rule at position seq: -3..-1 the default rules,
// 0.. the Table's.
func (t *Table) rule(seq int, v6 bool) (Rule, bool) {
	if seq < 0 {
		return defaultRule(seq+3, v6)
	}
	r := t.Rules[seq]
	return r, r.IPv6 == v6
}

// nextRule is the position of the family's rule after (prio, seq) in the
// kernel's order: by priority, the default rules first among equals, then
// the others in the order added. It walks without sorting, so a lookup
// allocates nothing; rule lists are short.
func (t *Table) nextRule(prio uint32, seq int, v6 bool) (uint32, int, bool) {
	found := false
	var bp uint32
	var bs int
	for s := -3; s < len(t.Rules); s++ {
		r, ok := t.rule(s, v6)
		if !ok || r.Priority < prio || r.Priority == prio && s <= seq {
			continue
		}
		if !found || r.Priority < bp || r.Priority == bp && s < bs {
			found, bp, bs = true, r.Priority, s
		}
	}
	return bp, bs, found
}

// ruleLookup is fib_rules_lookup over the family's rules in priority
// order (a rule added later goes after those of the same priority), with
// fib4_rule_action or fib6_rule_action_alt: a table that does not exist,
// has no route or gives a throw route (IPv4) lets the next rule try. The
// result is the route found, or an answer: IPv4 rule actions answer
// BLACKHOLE, NOT_FWDED (ENETUNREACH) and PROHIBIT; every IPv6 rule error,
// and a walk with no answer, NOT_FWDED.
func (t *Table) ruleLookup(p []byte, flags, ifindex uint32, v6 bool) (*Route, int64) {
	src, dst := addrAt(p, 16, v6), addrAt(p, 32, v6)
	iif, oif := ifindex, uint32(0)
	if flags&FlagOutput != 0 {
		iif, oif = 1, ifindex
	}
	var mark uint32
	if flags&FlagMark != 0 {
		mark = binary.LittleEndian.Uint32(p[52:])
	}
	for prio, seq, ok := t.nextRule(0, -4, v6); ok; prio, seq, ok = t.nextRule(prio, seq, v6) {
		r, _ := t.rule(seq, v6)
		if !r.matches(src, dst, iif, oif, mark, v6 && oif == 0) {
			continue
		}
		switch r.Action {
		case RuleBlackhole:
			if v6 {
				return nil, RetNotFwded
			}
			return nil, RetBlackhole
		case RuleUnreachable:
			return nil, RetNotFwded
		case RuleProhibit:
			if v6 {
				return nil, RetNotFwded
			}
			return nil, RetProhibit
		}
		if !t.hasTable(r.Table, v6) {
			continue
		}
		if v6 {
			found, any := t.lookup6(dst, ifindex, r.Table)
			if any {
				return nil, RetNotFwded
			}
			if found != nil {
				return found, 0
			}
			continue
		}
		if found := t.lookup4(dst, flags, ifindex, r.Table); found != nil && found.Type != Throw {
			return found, 0
		}
	}
	return nil, RetNotFwded
}

// matches is fib_rule_match with fib4_rule_match / fib6_rule_match;
// hasSrc is an IPv6 lookup's RT6_LOOKUP_F_HAS_SADDR.
func (r *Rule) matches(src, dst netip.Addr, iif, oif, mark uint32, hasSrc bool) bool {
	ok := r.selects(src, dst, iif, oif, mark, hasSrc)
	return ok != r.Invert
}

func (r *Rule) selects(src, dst netip.Addr, iif, oif, mark uint32, hasSrc bool) bool {
	if r.Iif != 0 && r.Iif != iif || r.Oif != 0 && r.Oif != oif {
		return false
	}
	mask := r.Mask
	if mask == 0 && r.Mark != 0 {
		mask = 0xffffffff
	}
	if (r.Mark^mark)&mask != 0 {
		return false
	}
	if r.Dst.IsValid() && r.Dst.Bits() > 0 && !r.Dst.Contains(dst) {
		return false
	}
	if r.Src.IsValid() && r.Src.Bits() > 0 {
		if r.IPv6 && !hasSrc {
			return false
		}
		if !r.Src.Contains(src) {
			return false
		}
	}
	return true
}
