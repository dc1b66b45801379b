/* qos_mark: DiffServ classification into the skb metadata a qdisc uses.
 * The DSCP of IPv4/IPv6 packets selects a class from a .rodata table; the
 * program writes skb->priority, skb->tc_index (the DSCP), skb->tc_classid,
 * skb->queue_mapping and the low half of skb->mark (the high half set by
 * earlier hops is kept), and increments cb[0] as a hop counter carried in
 * from the context. Bulk UDP (both ports >= 49152) with DSCP 0 is remarked
 * to CS1: for IPv4 with bpf_l3_csum_replace on the header word, for IPv6 by
 * a direct write to the traffic class. Fields that the test-run context
 * does not return are read back: cb[1] = tc_index, cb[2] = tc_classid,
 * cb[3] = queue_mapping, cb[4] = the DSCP now in the packet.
 * Verdict: TC_ACT_OK. */
#include "parse.h"

enum { BE, BULK, AF, EF, NC };

static const __u8 dscp_class[64] = {
	[8] = BULK,			/* CS1 */
	[10] = AF, [12] = AF, [14] = AF,	/* AF1x */
	[18] = AF, [20] = AF, [22] = AF,	/* AF2x */
	[26] = AF, [28] = AF, [30] = AF,	/* AF3x */
	[34] = AF, [36] = AF, [38] = AF,	/* AF4x */
	[46] = EF,
	[48] = NC, [56] = NC,
};

static const __u32 class_prio[5] = {0, 1, 4, 6, 7};

#define CS1 8

static __always_inline bool bulk_udp(struct cursor *c, __u8 proto)
{
	struct udphdr *uh = c->pos;

	if (proto != IPPROTO_UDP || (void *)(uh + 1) > c->end)
		return false;
	return bpf_ntohs(uh->source) >= 49152 && bpf_ntohs(uh->dest) >= 49152;
}

SEC("tc")
int qos_mark(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u32 dscp, class, now = 0;
	struct cursor c;
	struct l2 l2;

	skb->cb[0]++;
	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0)
		return TC_ACT_OK;
	if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);

		if (!ip)
			return TC_ACT_OK;
		dscp = ip->tos >> 2;
		now = dscp;
		if (dscp == 0 && bulk_udp(&c, ip->protocol)) {
			/* The checksum covers tos as the low byte of the first word. */
			__be16 old = *(__be16 *)ip;
			__be16 new = bpf_htons(bpf_ntohs(old) & 0xff00 | CS1 << 2 | (ip->tos & 3));
			__u32 off = l2.l3_off;

			if (bpf_l3_csum_replace(skb, off + offsetof(struct iphdr, check), old, new, 2))
				return TC_ACT_OK;
			if (bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0))
				return TC_ACT_OK;
			now = CS1;
		}
	} else if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		if (!ip6)
			return TC_ACT_OK;
		dscp = (ip6->priority << 2) | (ip6->flow_lbl[0] >> 6);
		now = dscp;
		if (dscp == 0 && bulk_udp(&c, ip6->nexthdr)) {
			/* Traffic class straddles the first two bytes. */
			ip6->priority = CS1 >> 2;
			ip6->flow_lbl[0] = (ip6->flow_lbl[0] & 0x3f) | (CS1 & 3) << 6;
			now = CS1;
		}
	} else {
		return TC_ACT_OK;
	}

	class = dscp_class[dscp & 63];
	barrier_var(class);
	if (class > NC)
		class = BE;
	skb->priority = class_prio[class];
	skb->tc_index = dscp;
	skb->tc_classid = 0x10000 | (class + 1);
	skb->queue_mapping = class;
	skb->mark = (skb->mark & 0xffff0000) | 0x100 | class;
	skb->cb[1] = skb->tc_index;
	skb->cb[2] = skb->tc_classid;
	skb->cb[3] = skb->queue_mapping;
	skb->cb[4] = now;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
