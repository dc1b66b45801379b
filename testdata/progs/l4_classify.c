/* l4_classify: a flow classifier that walks Ethernet, up to two VLAN tags,
 * IPv4 (with options) or IPv6 (with up to four extension headers), then
 * TCP/UDP/ICMP/ICMPv6, using direct packet access only. It writes the class
 * to skb->mark (l4 proto << 16 | destination port or ICMP type), the header
 * offsets to cb[0] (l3) and cb[1] (l4), the VLAN count and outer VID to
 * cb[2], raises skb->priority for TCP control segments and DNS/NTP, and
 * drops headers that lie about their length or do not fit.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC (not IP). */
#include "parse.h"

#define MAX_EXT 4

/* skip_ipv6_ext walks extension headers; returns the upper-layer protocol
 * or -1 when a header does not fit. */
static __always_inline int skip_ipv6_ext(struct cursor *c, __u8 nexthdr)
{
#pragma unroll
	for (int i = 0; i < MAX_EXT; i++) {
		struct ipv6_opt_hdr *oh = c->pos;
		__u32 len;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(oh + 1) > c->end)
				return -1;
			len = ((__u32)oh->hdrlen + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(oh + 1) > c->end)
				return -1;
			len = 8;
			break;
		case IPPROTO_AH:
			if ((void *)(oh + 1) > c->end)
				return -1;
			len = ((__u32)oh->hdrlen + 2) * 4;
			break;
		default:
			return nexthdr;
		}
		nexthdr = oh->nexthdr;
		if (c->pos + len > c->end)
			return -1;
		c->pos += len;
	}
	return nexthdr;
}

SEC("tc")
int l4_classify(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct l2 l2;
	__u32 l4proto, key = 0, prio = skb->priority;
	int proto;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0)
		return TC_ACT_SHOT;

	if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);

		if (!ip)
			return TC_ACT_SHOT;
		if (bpf_ntohs(ip->tot_len) < ip->ihl * 4)
			return TC_ACT_SHOT;
		l4proto = ip->protocol;
		/* Only the first fragment carries the L4 header. */
		if (ip->frag_off & bpf_htons(IP_OFFSET)) {
			key = 0xffff;
			goto out;
		}
	} else if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		if (!ip6)
			return TC_ACT_SHOT;
		proto = skip_ipv6_ext(&c, ip6->nexthdr);
		if (proto < 0)
			return TC_ACT_SHOT;
		l4proto = proto;
	} else {
		return TC_ACT_UNSPEC;
	}

	switch (l4proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = c.pos;

		if ((void *)(th + 1) > c.end)
			return TC_ACT_SHOT;
		if (th->doff < 5)
			return TC_ACT_SHOT;
		key = bpf_ntohs(th->dest);
		/* Interactive traffic first. */
		if (th->flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST))
			prio = 6;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = c.pos;

		if ((void *)(uh + 1) > c.end)
			return TC_ACT_SHOT;
		key = bpf_ntohs(uh->dest);
		if (key == 53 || key == 123)
			prio = 5;
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		struct icmphdr *ih = c.pos;

		if ((void *)(ih + 1) > c.end)
			return TC_ACT_SHOT;
		key = ih->type;
		break;
	}
	default:
		key = 0;
	}
out:
	skb->priority = prio;
	skb->mark = l4proto << 16 | key;
	skb->cb[0] = l2.l3_off;
	skb->cb[1] = c.pos - data;
	skb->cb[2] = l2.vlans << 16 | l2.outer_vid;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
