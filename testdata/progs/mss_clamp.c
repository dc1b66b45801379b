/* mss_clamp: TCP MSS clamping for a tunnel with a smaller MTU, written in
 * the helper style (no direct packet access at all): headers are read with
 * bpf_skb_load_bytes into the stack, the TCP options of SYN segments are
 * walked in a bounded loop, an MSS option larger than max_mss is rewritten
 * with bpf_skb_store_bytes and the TCP checksum fixed with
 * bpf_l4_csum_replace. IPv4 and IPv6 (no extension headers), untagged or
 * one VLAN tag. mark = the MSS found (0 if none), cb[0] = the MSS sent.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT if a helper fails. */
#include "net.h"

const volatile __u16 max_mss = 1360;

#define MAX_OPT_LEN 40

SEC("tc")
int mss_clamp(struct __sk_buff *skb)
{
	__u8 opts[MAX_OPT_LEN] = {};
	__u32 off = ETH_HLEN, opt_len;
	struct tcphdr th;
	__be16 proto;
	__u8 l4;

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)))
		return TC_ACT_OK;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		if (bpf_skb_load_bytes(skb, 16, &proto, sizeof(proto)))
			return TC_ACT_OK;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
			return TC_ACT_OK;
		if (ip.frag_off & bpf_htons(IP_OFFSET))
			return TC_ACT_OK;
		l4 = ip.protocol;
		off += ip.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
			return TC_ACT_OK;
		l4 = ip6.nexthdr;
		off += sizeof(ip6);
	} else {
		return TC_ACT_OK;
	}
	if (l4 != IPPROTO_TCP)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, off, &th, sizeof(th)))
		return TC_ACT_OK;
	skb->mark = 0;
	if (!(th.flags & TCP_FLAG_SYN) || th.doff <= 5)
		return TC_ACT_OK;
	opt_len = th.doff * 4 - sizeof(th);
	barrier_var(opt_len);
	if (opt_len < 4 || opt_len > MAX_OPT_LEN)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, off + sizeof(th), opts, opt_len))
		return TC_ACT_OK;

	for (__u32 i = 0; i < MAX_OPT_LEN - 1;) {
		__u8 kind = opts[i], len;

		if (i >= opt_len || kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		len = opts[i + 1];
		if (len < 2 || i + len > opt_len)
			break;
		if (kind == 2 && len == 4 && i + 3 < MAX_OPT_LEN) {
			__be16 old_mss = (__be16)opts[i + 3] << 8 | opts[i + 2];
			__be16 new_mss = bpf_htons(max_mss);
			__u32 mss_off = off + sizeof(th) + i + 2;

			skb->mark = bpf_ntohs(old_mss);
			skb->cb[0] = bpf_ntohs(old_mss);
			if (bpf_ntohs(old_mss) <= max_mss)
				break;
			if (bpf_l4_csum_replace(skb, off + offsetof(struct tcphdr, check),
						old_mss, new_mss, sizeof(new_mss)))
				return TC_ACT_SHOT;
			if (bpf_skb_store_bytes(skb, mss_off, &new_mss, sizeof(new_mss), 0))
				return TC_ACT_SHOT;
			skb->cb[0] = max_mss;
			break;
		}
		i += len;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
