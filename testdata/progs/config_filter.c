/* config_filter: a port filter whose whole state lives in global variables,
 * the way libbpf skeletons configure programs. .rodata (const volatile)
 * holds the configuration the loader may rewrite before loading: the open
 * TCP/UDP ports and whether ICMP is allowed. .data holds a token budget
 * for packets to closed ports with an initial value (they pass while the
 * budget lasts, one token each). .bss holds zero-initialised counters, and
 * a custom .data.stats section an array of per-verdict counters. mark = the
 * packet's sequence number (seen count).
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "parse.h"

const volatile __u16 open_ports[6] = {22, 53, 80, 123, 443, 8443};
const volatile bool allow_icmp = true;

__u32 budget = 64;                 /* .data */
__u64 seen, passed, dropped;       /* .bss */
__u64 verdicts[3] SEC(".data.stats") = {0, 0, 0};

static __always_inline bool port_open(__be16 port)
{
	__u16 p = bpf_ntohs(port);

	for (int i = 0; i < ARRAY_SIZE(open_ports); i++)
		if (open_ports[i] == p)
			return true;
	return false;
}

static __always_inline int decide(struct cursor *c, __u8 proto)
{
	__be16 *ports = c->pos;

	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return allow_icmp ? TC_ACT_OK : TC_ACT_SHOT;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	if ((void *)(ports + 2) > c->end)
		return TC_ACT_SHOT;
	if (port_open(ports[1]))
		return TC_ACT_OK;
	if (budget > 0) {
		budget--;
		return TC_ACT_OK;
	}
	return TC_ACT_SHOT;
}

SEC("tc")
int config_filter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct l2 l2;
	int verdict = TC_ACT_OK;

	seen++;
	skb->mark = seen;
	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) == 0) {
		if (l2.proto == ETH_P_IP) {
			struct iphdr *ip = parse_ipv4(&c);

			if (ip && !(ip->frag_off & bpf_htons(IP_OFFSET)))
				verdict = decide(&c, ip->protocol);
		} else if (l2.proto == ETH_P_IPV6) {
			struct ipv6hdr *ip6 = parse_ipv6(&c);

			if (ip6)
				verdict = decide(&c, ip6->nexthdr);
		}
	}
	if (verdict == TC_ACT_SHOT)
		dropped++;
	else
		passed++;
	verdicts[verdict == TC_ACT_SHOT ? 2 : 0]++;
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
