/* ipip_encap: a tunnel ingress. Untagged IPv4 packets to the tunnelled
 * prefix 198.51.100.0/24 are wrapped in an outer IPv4 header (protocol 4,
 * IPIP) from tun_src to tun_dst: bpf_skb_adjust_room makes 20 bytes of room
 * after the MAC header (BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) and
 * the program writes the outer header, whose checksum it computes with
 * bpf_csum_diff over the new header. Outer TTL 64, DF copied from the
 * inner header, TOS copied. cb[0] = skb->len after encapsulation.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT if the helper fails. */
#include "parse.h"

const volatile __be32 tun_src = 0x0100000a;   /* 10.0.0.1 */
const volatile __be32 tun_dst = 0x0200000a;   /* 10.0.0.2 */
const volatile __be32 tun_prefix = 0x006433c6; /* 198.51.100.0 */
const volatile __be32 tun_mask = 0x00ffffff;   /* /24 */

__u32 encapsulated;

SEC("tc")
int ipip_encap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *inner, outer = {};
	__s64 sum;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	inner = (void *)(eth + 1);
	if ((void *)(inner + 1) > data_end || inner->version != 4)
		return TC_ACT_OK;
	if ((inner->daddr & tun_mask) != tun_prefix)
		return TC_ACT_OK;

	outer.version = 4;
	outer.ihl = 5;
	outer.tos = inner->tos;
	outer.tot_len = bpf_htons(bpf_ntohs(inner->tot_len) + sizeof(outer));
	outer.id = inner->id;
	outer.frag_off = inner->frag_off & bpf_htons(0x4000);
	outer.ttl = 64;
	outer.protocol = IPPROTO_IPIP;
	outer.saddr = tun_src;
	outer.daddr = tun_dst;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&outer, sizeof(outer), 0);
	if (sum < 0)
		return TC_ACT_SHOT;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	outer.check = ~sum;

	if (bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0))
		return TC_ACT_SHOT;
	encapsulated++;
	skb->cb[0] = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
