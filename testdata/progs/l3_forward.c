/* l3_forward: the fast path of a router. IPv4 and IPv6 packets (untagged)
 * have their TTL / hop limit decremented -- IPv4 with bpf_l3_csum_replace
 * on the TTL/protocol word -- get next-hop MAC addresses from .rodata and
 * are redirected with bpf_redirect: IPv4 to the egress of out_ifindex,
 * IPv6 to the ingress of out_ifindex (BPF_F_INGRESS). BPF_PROG_TEST_RUN
 * reports the redirect verdict without transmitting anything. Packets whose
 * TTL would expire are dropped, everything else passes up the stack.
 * Verdicts: TC_ACT_REDIRECT (7), TC_ACT_SHOT, TC_ACT_OK. */
#include "parse.h"

const volatile __u32 out_ifindex = 1;
const volatile __u8 next_hop_mac[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const volatile __u8 own_mac[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

__u64 forwarded, expired;

static __always_inline void rewrite_macs(struct ethhdr *eth)
{
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++) {
		eth->h_dest[i] = next_hop_mac[i];
		eth->h_source[i] = own_mac[i];
	}
}

SEC("tc")
int l3_forward(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__be16 old, new;

		if ((void *)(ip + 1) > data_end || ip->version != 4)
			return TC_ACT_OK;
		if (ip->ttl <= 1) {
			expired++;
			return TC_ACT_SHOT;
		}
		old = *(__be16 *)&ip->ttl;
		ip->ttl--;
		new = *(__be16 *)&ip->ttl;
		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, 2))
			return TC_ACT_SHOT;
		/* The helper may have moved the packet. */
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return TC_ACT_SHOT;
		rewrite_macs(eth);
		forwarded++;
		return bpf_redirect(out_ifindex, 0);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return TC_ACT_OK;
		if (ip6->hop_limit <= 1) {
			expired++;
			return TC_ACT_SHOT;
		}
		ip6->hop_limit--;
		rewrite_macs(eth);
		forwarded++;
		return bpf_redirect(out_ifindex, BPF_F_INGRESS);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
