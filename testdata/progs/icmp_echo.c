/* icmp_echo: answers pings in the datapath. An ICMP echo request (IPv4) or
 * ICMPv6 echo request becomes the reply in place: MAC and IP addresses are
 * swapped by direct writes (which leaves every checksum valid, a swap does
 * not change a ones' complement sum), the type is changed and the ICMP
 * checksum fixed with bpf_l4_csum_replace (no pseudo header for ICMPv4;
 * for ICMPv6 the pseudo header is unchanged by the swap), the IPv4 TTL is
 * reset to 64 with bpf_l3_csum_replace. The reply is sent back out of the
 * receiving device: bpf_redirect(skb->ifindex, 0).
 * Verdicts: TC_ACT_REDIRECT for replies, TC_ACT_OK otherwise. */
#include "parse.h"

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
}

SEC("tc")
int icmp_echo(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 l4_off = ETH_HLEN;
	struct icmphdr *ih;
	__be16 old, new;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__be32 addr;
		__be16 oldttl, newttl;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_ICMP || ip->ihl != 5)
			return TC_ACT_OK;
		if (ipv4_is_fragment(ip))
			return TC_ACT_OK;
		ih = (void *)(ip + 1);
		if ((void *)(ih + 1) > data_end || ih->type != ICMP_ECHO || ih->code != 0)
			return TC_ACT_OK;
		addr = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = addr;
		oldttl = *(__be16 *)&ip->ttl;
		ip->ttl = 64;
		newttl = *(__be16 *)&ip->ttl;
		old = *(__be16 *)ih;
		ih->type = ICMP_ECHOREPLY;
		new = *(__be16 *)ih;
		swap_macs(eth);
		l4_off += sizeof(*ip);
		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), oldttl,
					newttl, 2))
			return TC_ACT_SHOT;
		if (bpf_l4_csum_replace(skb, l4_off + offsetof(struct icmphdr, checksum), old, new, 2))
			return TC_ACT_SHOT;
		return bpf_redirect(skb->ifindex, 0);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct in6_addr addr;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6)
			return TC_ACT_OK;
		ih = (void *)(ip6 + 1);
		if ((void *)(ih + 1) > data_end || ih->type != ICMPV6_ECHO_REQUEST || ih->code != 0)
			return TC_ACT_OK;
		addr = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = addr;
		ip6->hop_limit = 64;
		old = *(__be16 *)ih;
		ih->type = ICMPV6_ECHO_REPLY;
		new = *(__be16 *)ih;
		swap_macs(eth);
		l4_off += sizeof(*ip6);
		if (bpf_l4_csum_replace(skb, l4_off + offsetof(struct icmphdr, checksum), old, new, 2))
			return TC_ACT_SHOT;
		return bpf_redirect(skb->ifindex, 0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
