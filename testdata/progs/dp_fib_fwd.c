/* dp_fib_fwd: a router's forwarding step on bpf_fib_lookup, as the
 * kernel's samples/bpf/xdp_fwd and the selftests' tc_neigh_fib do it.
 * Untagged IPv4 and IPv6 frames are looked up (flags from .rodata
 * lookup_flags; the input device is the one the frame arrived on) and on
 * success get their TTL / hop limit decremented (IPv4 with
 * bpf_l3_csum_replace), the MAC addresses the lookup returned, and are
 * redirected with bpf_redirect to the egress of the device it named.
 * Packets whose TTL would expire, and lookups answering BLACKHOLE,
 * UNREACHABLE or PROHIBIT, are dropped; every other answer (not
 * forwarded, forwarding disabled, no neighbour, fragmentation needed)
 * passes the packet up the stack, which knows what to do with it. Other
 * frames (ARP, VLAN-tagged) pass as well.
 * fib_results counts the lookups by result (slot 10: a negative errno);
 * slot 11 counts expired TTLs.
 * Verdicts: TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_OK. */
#include "parse.h"

#define AF_INET 2
#define AF_INET6 10

/* struct bpf_fib_lookup, include/uapi/linux/bpf.h (6.10 and later). */
struct bpf_fib_lookup {
	__u8 family;
	__u8 l4_protocol;
	__be16 sport;
	__be16 dport;
	union {
		__u16 tot_len;
		__u16 mtu_result;
	};
	__u32 ifindex;
	union {
		__u8 tos;
		__be32 flowinfo;
		__u32 rt_metric;
	};
	union {
		__be32 ipv4_src;
		__u32 ipv6_src[4];
	};
	union {
		__be32 ipv4_dst;
		__u32 ipv6_dst[4];
	};
	union {
		struct {
			__be16 h_vlan_proto;
			__be16 h_vlan_TCI;
		};
		__u32 tbid;
	};
	union {
		struct {
			__u32 mark;
		};
		struct {
			__u8 smac[6];
			__u8 dmac[6];
		};
	};
};

static long (*bpf_fib_lookup)(void *ctx, struct bpf_fib_lookup *params, int plen, __u32 flags) = (void *)69;

#define BPF_FIB_LKUP_RET_SUCCESS 0
#define BPF_FIB_LKUP_RET_BLACKHOLE 1
#define BPF_FIB_LKUP_RET_UNREACHABLE 2
#define BPF_FIB_LKUP_RET_PROHIBIT 3

const volatile __u32 lookup_flags = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 12);
	__type(key, __u32);
	__type(value, __u64);
} fib_results SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&fib_results, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* verdict turns a lookup result into what happens to the packet. */
static __always_inline int verdict(long rc)
{
	count(rc >= 0 && rc < 10 ? rc : 10);
	switch (rc) {
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

/* macs writes the lookup's MAC addresses; the caller rechecks bounds. */
static __always_inline int set_macs(struct __sk_buff *skb, struct bpf_fib_lookup *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	return 0;
}

SEC("tc")
int dp_fib_fwd(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup p = {};
	long rc;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	p.ifindex = skb->ingress_ifindex;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__be16 old, new;

		if ((void *)(ip + 1) > data_end || ip->version != 4)
			return TC_ACT_OK;
		p.family = AF_INET;
		p.tos = ip->tos;
		p.l4_protocol = ip->protocol;
		p.tot_len = bpf_ntohs(ip->tot_len);
		p.ipv4_src = ip->saddr;
		p.ipv4_dst = ip->daddr;
		if (ip->ttl <= 1) {
			count(11);
			return TC_ACT_OK;
		}
		rc = bpf_fib_lookup(skb, &p, sizeof(p), lookup_flags);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return verdict(rc);
		count(0);
		old = *(__be16 *)&ip->ttl;
		ip->ttl--;
		new = *(__be16 *)&ip->ttl;
		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, 2))
			return TC_ACT_SHOT;
		if (set_macs(skb, &p))
			return TC_ACT_SHOT;
		return bpf_redirect(p.ifindex, 0);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return TC_ACT_OK;
		p.family = AF_INET6;
		p.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		p.l4_protocol = ip6->nexthdr;
		p.tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		__builtin_memcpy(p.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(p.ipv6_dst, &ip6->daddr, 16);
		if (ip6->hop_limit <= 1) {
			count(11);
			return TC_ACT_OK;
		}
		rc = bpf_fib_lookup(skb, &p, sizeof(p), lookup_flags);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return verdict(rc);
		count(0);
		ip6->hop_limit--;
		if (set_macs(skb, &p))
			return TC_ACT_SHOT;
		return bpf_redirect(p.ifindex, 0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
