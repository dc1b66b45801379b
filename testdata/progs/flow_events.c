/* flow_events: exports connection events to user space through a BPF ring
 * buffer. TCP segments with SYN, FIN or RST produce a struct event via
 * bpf_ringbuf_reserve/bpf_ringbuf_submit; UDP to port 53 copies the first
 * 32 bytes of the IP header onward with bpf_ringbuf_output; an ICMP/ICMPv6
 * packet reserves an event and then discards it unless it is an echo
 * request. A full ring counts into dropped_events. The packet is not
 * changed. Verdict: TC_ACT_OK. */
#include "parse.h"

#define SAMPLE_LEN 32

struct event {
	__u32 kind; /* 1 tcp, 2 icmp */
	__u32 len;
	__u8 proto;
	__u8 tcp_flags;
	__u16 family;
	__be16 sport;
	__be16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct sample {
	__u32 kind; /* 3 */
	__u32 len;
	__u8 bytes[SAMPLE_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

__u64 dropped_events;

SEC("tc")
int flow_events(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u8 saddr[16] = {}, daddr[16] = {};
	__u16 family;
	struct cursor c;
	struct event *e;
	struct l2 l2;
	void *l3;
	__u8 proto;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0)
		return TC_ACT_OK;
	l3 = c.pos;
	if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);

		if (!ip || (ip->frag_off & bpf_htons(IP_OFFSET)))
			return TC_ACT_OK;
		proto = ip->protocol;
		family = 4;
		__builtin_memcpy(saddr, &ip->saddr, 4);
		__builtin_memcpy(daddr, &ip->daddr, 4);
	} else if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		if (!ip6)
			return TC_ACT_OK;
		proto = ip6->nexthdr;
		family = 6;
		__builtin_memcpy(saddr, &ip6->saddr, 16);
		__builtin_memcpy(daddr, &ip6->daddr, 16);
	} else {
		return TC_ACT_OK;
	}

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = c.pos;

		if ((void *)(th + 1) > c.end)
			return TC_ACT_OK;
		if (!(th->flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST)))
			return TC_ACT_OK;
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			dropped_events++;
			return TC_ACT_OK;
		}
		e->kind = 1;
		e->len = skb->len;
		e->proto = proto;
		e->tcp_flags = th->flags;
		e->family = family;
		e->sport = th->source;
		e->dport = th->dest;
		__builtin_memcpy(e->saddr, saddr, 16);
		__builtin_memcpy(e->daddr, daddr, 16);
		bpf_ringbuf_submit(e, 0);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = c.pos;
		struct sample s = {.kind = 3, .len = skb->len};

		if ((void *)(uh + 1) > c.end || uh->dest != bpf_htons(53))
			return TC_ACT_OK;
		if (l3 + SAMPLE_LEN > c.end)
			return TC_ACT_OK;
		__builtin_memcpy(s.bytes, l3, SAMPLE_LEN);
		if (bpf_ringbuf_output(&events, &s, sizeof(s), 0))
			dropped_events++;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		struct icmphdr *ih = c.pos;
		__u8 type;

		if ((void *)(ih + 1) > c.end)
			return TC_ACT_OK;
		type = ih->type;
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			dropped_events++;
			return TC_ACT_OK;
		}
		if (type != ICMP_ECHO && type != ICMPV6_ECHO_REQUEST) {
			bpf_ringbuf_discard(e, 0);
			return TC_ACT_OK;
		}
		__builtin_memset(e, 0, sizeof(*e));
		e->kind = 2;
		e->len = skb->len;
		e->proto = proto;
		e->family = family;
		__builtin_memcpy(e->saddr, saddr, 16);
		__builtin_memcpy(e->daddr, daddr, 16);
		bpf_ringbuf_submit(e, 0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
