/* mpls_push: an MPLS label edge router. Untagged IPv4 and IPv6 packets get
 * one MPLS label stack entry between the Ethernet header and the IP header:
 * bpf_skb_change_head grows the packet by 4 bytes at the front (the kernel
 * zeroes them), the program moves the MAC addresses to the new start,
 * writes ethertype 0x8847 and the label entry (label from .rodata, traffic
 * class from the IP precedence, bottom of stack, TTL copied from the IP
 * header). cb[0] = the label entry written, cb[1] = skb->len afterwards.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT if a helper fails. */
#include "parse.h"

const volatile __u32 label = 16004;

SEC("tc")
int mpls_push(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 macs[2 * ETH_ALEN];
	__u32 tc, ttl, lse;
	__be32 lse_be;
	__be16 mpls = bpf_htons(ETH_P_MPLS_UC);

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		tc = ip->tos >> 5;
		ttl = ip->ttl;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		tc = ip6->priority >> 1;
		ttl = ip6->hop_limit;
	} else {
		return TC_ACT_OK;
	}
	__builtin_memcpy(macs, eth, sizeof(macs));
	lse = label << 12 | tc << 9 | 1 << 8 | ttl;
	lse_be = bpf_htonl(lse);

	if (bpf_skb_change_head(skb, sizeof(lse_be), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 2 * ETH_ALEN, &mpls, sizeof(mpls), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &lse_be, sizeof(lse_be), 0))
		return TC_ACT_SHOT;
	skb->cb[0] = lse;
	skb->cb[1] = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
