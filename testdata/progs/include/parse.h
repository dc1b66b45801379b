/* parse.h: bounds-checked header walking with direct packet access, shared
 * by the corpus programs. Every step checks against data_end before the
 * access, the pattern the verifier requires. */
#ifndef TCX_PARSE_H
#define TCX_PARSE_H

#include "net.h"

struct cursor {
	void *pos;
	void *end;
};

static __always_inline void cursor_init(struct cursor *c, struct __sk_buff *skb)
{
	c->pos = (void *)(long)skb->data;
	c->end = (void *)(long)skb->data_end;
}

/* l2 describes the Ethernet part of a frame. */
struct l2 {
	__u16 proto;   /* host order ethertype after the VLAN tags */
	__u16 vlans;   /* number of 802.1Q/802.1ad tags walked (at most 2) */
	__u16 outer_vid;
	__u16 l3_off;  /* offset of the network header */
};

/* parse_l2 walks the Ethernet header and up to two VLAN tags; returns 0 on
 * success, -1 if the frame is too short. */
static __always_inline int parse_l2(struct cursor *c, void *data, struct l2 *l2)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return -1;
	c->pos = eth + 1;
	l2->proto = bpf_ntohs(eth->h_proto);
	l2->vlans = 0;
	l2->outer_vid = 0;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = c->pos;

		if (l2->proto != ETH_P_8021Q && l2->proto != ETH_P_8021AD)
			break;
		if ((void *)(vh + 1) > c->end)
			return -1;
		if (i == 0)
			l2->outer_vid = bpf_ntohs(vh->h_vlan_TCI) & 0x0fff;
		l2->proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		l2->vlans++;
		c->pos = vh + 1;
	}
	l2->l3_off = c->pos - data;
	return 0;
}

/* parse_ipv4 checks and skips an IPv4 header including options. */
static __always_inline struct iphdr *parse_ipv4(struct cursor *c)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;

	if ((void *)(ip + 1) > c->end)
		return NULL;
	if (ip->version != 4 || ip->ihl < 5)
		return NULL;
	hlen = ip->ihl * 4;
	if (c->pos + hlen > c->end)
		return NULL;
	c->pos += hlen;
	return ip;
}

static __always_inline struct ipv6hdr *parse_ipv6(struct cursor *c)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return NULL;
	if (ip6->version != 6)
		return NULL;
	c->pos = ip6 + 1;
	return ip6;
}

static __always_inline int ipv4_is_fragment(struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

#endif
