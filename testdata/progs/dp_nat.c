/* dp_nat: one-to-one (static) IPv4 NAT of the datapath demo and of the tcx
 * run tests, in two programs sharing the .rodata pair inside_addr <->
 * outside_addr: dp_snat rewrites a source inside_addr to outside_addr,
 * dp_dnat a destination outside_addr to inside_addr. TCP and UDP checksums
 * are fixed with bpf_l4_csum_replace (pseudo header; a zero UDP checksum
 * stays zero), the IPv4 header checksum with bpf_l3_csum_replace; ICMP
 * needs only the latter. Translations are counted in dp_nat_count (.bss).
 * Other frames continue unchanged. Verdicts: TCX_NEXT, TC_ACT_SHOT when a
 * helper fails. */
#include "parse.h"

const volatile __be32 inside_addr = 0x0100000a;  /* 10.0.0.1 */
const volatile __be32 outside_addr = 0x6400000a; /* 10.0.0.100 */

__u64 dp_nat_count;

static __always_inline int translate(struct __sk_buff *skb, bool source)
{
	void *data = (void *)(long)skb->data;
	__be32 from = source ? inside_addr : outside_addr;
	__be32 to = source ? outside_addr : inside_addr;
	__u32 addr_off, csum_off = 0;
	__u64 flags = 0;
	struct cursor c;
	struct iphdr *ip;
	struct l2 l2;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return TC_ACT_UNSPEC;
	ip = parse_ipv4(&c);
	if (!ip)
		return TC_ACT_UNSPEC;
	if ((source ? ip->saddr : ip->daddr) != from)
		return TC_ACT_UNSPEC;
	addr_off = l2.l3_off + (source ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	if (!(ip->frag_off & bpf_htons(IP_OFFSET))) {
		if (ip->protocol == IPPROTO_TCP && c.pos + sizeof(struct tcphdr) <= c.end) {
			csum_off = c.pos - data + offsetof(struct tcphdr, check);
		} else if (ip->protocol == IPPROTO_UDP && c.pos + sizeof(struct udphdr) <= c.end) {
			csum_off = c.pos - data + offsetof(struct udphdr, check);
			flags = BPF_F_MARK_MANGLED_0;
		}
	}
	if (csum_off &&
	    bpf_l4_csum_replace(skb, csum_off, from, to, flags | BPF_F_PSEUDO_HDR | sizeof(to)))
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, l2.l3_off + offsetof(struct iphdr, check), from, to, sizeof(to)))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, addr_off, &to, sizeof(to), 0))
		return TC_ACT_SHOT;
	__sync_fetch_and_add(&dp_nat_count, 1);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int dp_snat(struct __sk_buff *skb)
{
	return translate(skb, true);
}

SEC("tc")
int dp_dnat(struct __sk_buff *skb)
{
	return translate(skb, false);
}

char LICENSE[] SEC("license") = "GPL";
