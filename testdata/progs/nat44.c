/* nat44: source NAT for IPv4 TCP/UDP leaving a private network. Packets
 * from 10/8, 172.16/12 and 192.168/16 get the source address nat_addr and a
 * source port from a deterministic allocator; the translation is remembered
 * in a hash map (the conntrack) so the same flow keeps its port. Addresses
 * and ports are written with bpf_skb_store_bytes; the IPv4 header checksum
 * is fixed with bpf_l3_csum_replace and the TCP/UDP checksum (pseudo header
 * included) with bpf_l4_csum_replace, leaving a zero UDP checksum zero.
 * Non-first fragments and other protocols pass untouched. Verdict: TC_ACT_OK,
 * TC_ACT_SHOT when the port range is exhausted. */
#include "parse.h"

const volatile __be32 nat_addr = 0x010200c0; /* 192.0.2.1 */
const volatile __u16 port_base = 20000;
const volatile __u16 port_count = 8192;

struct flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct binding {
	__be16 nat_port;
	__u16 pad;
	__u32 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow);
	__type(value, struct binding);
} nat_conntrack SEC(".maps");

/* Next port to hand out; .bss, starts at zero. */
__u32 next_port;

static __always_inline bool is_private(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);

	return (a >> 24) == 10 || (a >> 20) == (172 << 4 | 1) || (a >> 16) == (192 << 8 | 168);
}

SEC("tc")
int nat44(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct binding b = {}, *bp;
	__u32 ip_off, l4_off, csum_off;
	struct flow f = {};
	struct cursor c;
	struct iphdr *ip;
	__be32 new_addr = nat_addr;
	__be16 *ports;
	__u64 csum_flags;
	struct l2 l2;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return TC_ACT_OK;
	ip = parse_ipv4(&c);
	if (!ip || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_TCP) {
		csum_off = offsetof(struct tcphdr, check);
		csum_flags = 0;
		if (c.pos + sizeof(struct tcphdr) > c.end)
			return TC_ACT_OK;
	} else if (ip->protocol == IPPROTO_UDP) {
		csum_off = offsetof(struct udphdr, check);
		csum_flags = BPF_F_MARK_MANGLED_0;
		if (c.pos + sizeof(struct udphdr) > c.end)
			return TC_ACT_OK;
	} else {
		return TC_ACT_OK;
	}
	if (!is_private(ip->saddr))
		return TC_ACT_OK;

	ports = c.pos;
	f.saddr = ip->saddr;
	f.daddr = ip->daddr;
	f.sport = ports[0];
	f.dport = ports[1];
	f.proto = ip->protocol;
	ip_off = l2.l3_off;
	l4_off = c.pos - data;

	bp = bpf_map_lookup_elem(&nat_conntrack, &f);
	if (bp) {
		bp->packets++;
		b.nat_port = bp->nat_port;
	} else {
		if (next_port >= port_count)
			return TC_ACT_SHOT;
		b.nat_port = bpf_htons(port_base + next_port);
		b.packets = 1;
		if (bpf_map_update_elem(&nat_conntrack, &f, &b, BPF_NOEXIST))
			return TC_ACT_SHOT;
		next_port++;
	}

	/* Address: L4 checksum (pseudo header), L3 checksum, then the bytes. */
	if (bpf_l4_csum_replace(skb, l4_off + csum_off, f.saddr, new_addr,
				csum_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)))
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), f.saddr, new_addr,
				sizeof(new_addr)))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr), &new_addr,
				sizeof(new_addr), 0))
		return TC_ACT_SHOT;
	/* Port: only the L4 checksum covers it. */
	if (bpf_l4_csum_replace(skb, l4_off + csum_off, f.sport, b.nat_port,
				csum_flags | sizeof(b.nat_port)))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, l4_off, &b.nat_port, sizeof(b.nat_port), 0))
		return TC_ACT_SHOT;
	skb->mark = bpf_ntohs(b.nat_port);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
