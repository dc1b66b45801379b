/* nptv6: IPv6 prefix translation for traffic leaving a ULA network. A
 * source address in fd00::/8 gets its first 48 bits replaced by the
 * external prefix 2001:db8:cafe::/48. IPv6 has no header checksum, but
 * TCP, UDP and ICMPv6 checksum the source address through the pseudo
 * header: the program computes the difference of the old and new address
 * with bpf_csum_diff and folds it in with bpf_l4_csum_replace
 * (BPF_F_PSEUDO_HDR). Extension headers are not walked: only packets whose
 * next header is the transport are translated. Verdict: TC_ACT_OK. */
#include "parse.h"

const volatile __be16 ext_prefix[3] = {0x0120, 0xb80d, 0xfeca}; /* 2001:db8:cafe */

__u64 translated;

SEC("tc")
int nptv6(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct in6_addr old_addr, new_addr;
	__u32 csum_off, saddr_off;
	struct ipv6hdr *ip6;
	__u64 csum_flags = 0;
	struct cursor c;
	struct l2 l2;
	__s64 diff;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IPV6)
		return TC_ACT_OK;
	ip6 = parse_ipv6(&c);
	if (!ip6 || ip6->saddr.u6_addr8[0] != 0xfd)
		return TC_ACT_OK;

	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
		csum_off = offsetof(struct tcphdr, check);
		break;
	case IPPROTO_UDP:
		csum_off = offsetof(struct udphdr, check);
		csum_flags = BPF_F_MARK_MANGLED_0;
		break;
	case IPPROTO_ICMPV6:
		csum_off = offsetof(struct icmphdr, checksum);
		break;
	default:
		return TC_ACT_OK;
	}
	/* The checksum field must be inside the packet for the helper. */
	if (c.pos + csum_off + 2 > c.end)
		return TC_ACT_OK;

	old_addr = ip6->saddr;
	new_addr = old_addr;
	new_addr.u6_addr16[0] = ext_prefix[0];
	new_addr.u6_addr16[1] = ext_prefix[1];
	new_addr.u6_addr16[2] = ext_prefix[2];
	csum_off += c.pos - data;
	saddr_off = l2.l3_off + offsetof(struct ipv6hdr, saddr);

	diff = bpf_csum_diff(old_addr.u6_addr32, sizeof(old_addr), new_addr.u6_addr32,
			     sizeof(new_addr), 0);
	if (diff < 0)
		return TC_ACT_SHOT;
	if (bpf_l4_csum_replace(skb, csum_off, 0, diff, csum_flags | BPF_F_PSEUDO_HDR))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, saddr_off, &new_addr, sizeof(new_addr), 0))
		return TC_ACT_SHOT;
	translated++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
