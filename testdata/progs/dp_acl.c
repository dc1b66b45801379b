/* dp_acl: the ACL of the datapath demo and of the tcx run tests. IPv4 TCP
 * segments to blocked_port (.rodata) are dropped, counted in dp_acl_hits
 * (an array map: slot 0 dropped, slot 1 inspected TCP) and reported with
 * bpf_trace_printk; everything else continues down the tcx chain.
 * Verdicts: TC_ACT_SHOT, TCX_NEXT (TC_ACT_UNSPEC). */
#include "parse.h"

/* Helper 6; tcx_bpf.h leaves it out because corpus programs must not print. */
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;

const volatile __u16 blocked_port = 9090;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} dp_acl_hits SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&dp_acl_hits, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int dp_acl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct iphdr *ip;
	struct tcphdr *th;
	struct l2 l2;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return TC_ACT_UNSPEC;
	ip = parse_ipv4(&c);
	if (!ip || ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return TC_ACT_UNSPEC;
	th = c.pos;
	if ((void *)(th + 1) > c.end)
		return TC_ACT_UNSPEC;
	count(1);
	if (th->dest != bpf_htons(blocked_port))
		return TC_ACT_UNSPEC;
	count(0);
	{
		char fmt[] = "dp_acl: drop tcp port %d";

		bpf_trace_printk(fmt, sizeof(fmt), blocked_port);
	}
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
