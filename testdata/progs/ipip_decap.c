/* ipip_decap: a tunnel egress. Untagged IPv4 packets carrying IPv4-in-IPv4
 * (protocol 4) or IPv6-in-IPv4 (protocol 41) lose their outer header,
 * options included, through bpf_skb_adjust_room with a negative length
 * (BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4/6); for IPv6 payloads the
 * program rewrites the Ethernet type. Outer fragments are not decapsulated.
 * cb[0] = the removed length, cb[1] = skb->protocol afterwards.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT if the inner header is missing or the
 * helper fails. */
#include "parse.h"

SEC("tc")
int ipip_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__be16 inner_proto;
	struct iphdr *ip;
	__u64 flags;
	__u32 hlen;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
		return TC_ACT_OK;
	if (ipv4_is_fragment(ip))
		return TC_ACT_OK;
	hlen = ip->ihl * 4;
	if (ip->protocol == IPPROTO_IPIP) {
		flags = BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
		inner_proto = bpf_htons(ETH_P_IP);
		if ((void *)ip + hlen + sizeof(struct iphdr) > data_end)
			return TC_ACT_SHOT;
	} else if (ip->protocol == IPPROTO_IPV6) {
		flags = BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
		inner_proto = bpf_htons(ETH_P_IPV6);
		if ((void *)ip + hlen + sizeof(struct ipv6hdr) > data_end)
			return TC_ACT_SHOT;
	} else {
		return TC_ACT_OK;
	}

	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &inner_proto,
				sizeof(inner_proto), 0))
		return TC_ACT_SHOT;
	skb->cb[0] = hlen;
	skb->cb[1] = bpf_ntohs(skb->protocol);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
