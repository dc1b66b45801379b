/* conntrack_lru: a stateful TCP/UDP firewall with the connection table in
 * an LRU hash. A TCP flow is created only by a SYN without ACK and moves
 * through SYN_SENT, ESTABLISHED (first ACK) and CLOSING (FIN or RST);
 * segments of unknown flows other than SYNs are dropped, as is anything
 * after an RST. UDP flows are created by their first packet. The key is
 * the direction-normalised 5-tuple (lower address first), so both
 * directions share one entry. IPv4 only, VLAN tags allowed. mark = the
 * state after the packet. Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "parse.h"

enum { CT_NONE, CT_SYN_SENT, CT_ESTABLISHED, CT_CLOSING, CT_RESET, CT_UDP };

struct ct_key {
	__be32 addr_lo, addr_hi;
	__be16 port_lo, port_hi;
	__u8 proto;
	__u8 pad[3];
};

struct ct_entry {
	__u32 state;
	__u32 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} conntrack SEC(".maps");

static __always_inline void make_key(struct ct_key *k, struct iphdr *ip, __be16 sport,
				     __be16 dport)
{
	if (bpf_ntohl(ip->saddr) < bpf_ntohl(ip->daddr) ||
	    (ip->saddr == ip->daddr && bpf_ntohs(sport) <= bpf_ntohs(dport))) {
		k->addr_lo = ip->saddr;
		k->addr_hi = ip->daddr;
		k->port_lo = sport;
		k->port_hi = dport;
	} else {
		k->addr_lo = ip->daddr;
		k->addr_hi = ip->saddr;
		k->port_lo = dport;
		k->port_hi = sport;
	}
	k->proto = ip->protocol;
}

static __always_inline __u32 tcp_next(__u32 state, __u8 flags)
{
	if (flags & TCP_FLAG_RST)
		return CT_RESET;
	if (flags & TCP_FLAG_FIN)
		return CT_CLOSING;
	if (state == CT_SYN_SENT && (flags & TCP_FLAG_ACK) && !(flags & TCP_FLAG_SYN))
		return CT_ESTABLISHED;
	return state;
}

SEC("tc")
int conntrack_lru(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct ct_entry *e, fresh = {};
	struct ct_key k = {};
	struct cursor c;
	struct iphdr *ip;
	struct l2 l2;
	__u8 flags = 0;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return TC_ACT_OK;
	ip = parse_ipv4(&c);
	if (!ip || ipv4_is_fragment(ip))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = c.pos;

		if ((void *)(th + 1) > c.end)
			return TC_ACT_SHOT;
		flags = th->flags;
		make_key(&k, ip, th->source, th->dest);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *uh = c.pos;

		if ((void *)(uh + 1) > c.end)
			return TC_ACT_SHOT;
		make_key(&k, ip, uh->source, uh->dest);
	} else {
		return TC_ACT_OK;
	}

	e = bpf_map_lookup_elem(&conntrack, &k);
	if (!e) {
		if (k.proto == IPPROTO_TCP &&
		    (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN) {
			skb->mark = CT_NONE;
			return TC_ACT_SHOT;
		}
		fresh.state = k.proto == IPPROTO_TCP ? CT_SYN_SENT : CT_UDP;
		fresh.packets = 1;
		fresh.bytes = skb->len;
		bpf_map_update_elem(&conntrack, &k, &fresh, BPF_NOEXIST);
		skb->mark = fresh.state;
		return TC_ACT_OK;
	}
	if (e->state == CT_RESET) {
		skb->mark = CT_RESET;
		return TC_ACT_SHOT;
	}
	if (k.proto == IPPROTO_TCP)
		e->state = tcp_next(e->state, flags);
	e->packets++;
	e->bytes += skb->len;
	skb->mark = e->state;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
