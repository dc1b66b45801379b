/* proto_counters: per-CPU traffic accounting, the classic first tc
 * program. A per-CPU array counts packets and bytes per protocol class
 * (see enum class) and a per-CPU hash counts TCP/UDP service ports (ports
 * above 1023 share key 0, which bounds the table). The packet is not
 * changed. Verdict: always TC_ACT_OK. */
#include "parse.h"

enum class {
	CLASS_OTHER,
	CLASS_ARP,
	CLASS_IPV4,
	CLASS_IPV6,
	CLASS_TCP,
	CLASS_UDP,
	CLASS_ICMP,
	CLASS_VLAN,
	CLASS_FRAGMENT,
	CLASS_MAX,
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct port_key {
	__u8 proto;
	__u8 pad;
	__u16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} class_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2048);
	__type(key, struct port_key);
	__type(value, struct counter);
} port_stats SEC(".maps");

static __always_inline void count_class(__u32 class, __u32 len)
{
	struct counter *ctr = bpf_map_lookup_elem(&class_stats, &class);

	if (ctr) {
		ctr->packets++;
		ctr->bytes += len;
	}
}

static __always_inline void count_port(__u8 proto, __be16 port, __u32 len)
{
	struct port_key key = {.proto = proto};
	struct counter *ctr, init = {1, len};

	key.port = bpf_ntohs(port);
	if (key.port > 1023)
		key.port = 0;
	ctr = bpf_map_lookup_elem(&port_stats, &key);
	if (ctr) {
		ctr->packets++;
		ctr->bytes += len;
		return;
	}
	bpf_map_update_elem(&port_stats, &key, &init, BPF_NOEXIST);
}

SEC("tc")
int proto_counters(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u32 len = skb->len;
	struct cursor c;
	struct l2 l2;
	__u8 proto;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0) {
		count_class(CLASS_OTHER, len);
		return TC_ACT_OK;
	}
	if (l2.vlans)
		count_class(CLASS_VLAN, len);
	if (l2.proto == ETH_P_ARP) {
		count_class(CLASS_ARP, len);
		return TC_ACT_OK;
	} else if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);

		count_class(CLASS_IPV4, len);
		if (!ip)
			return TC_ACT_OK;
		if (ipv4_is_fragment(ip))
			count_class(CLASS_FRAGMENT, len);
		if (ip->frag_off & bpf_htons(IP_OFFSET))
			return TC_ACT_OK;
		proto = ip->protocol;
	} else if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		count_class(CLASS_IPV6, len);
		if (!ip6)
			return TC_ACT_OK;
		proto = ip6->nexthdr;
	} else {
		count_class(CLASS_OTHER, len);
		return TC_ACT_OK;
	}

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		__be16 *ports = c.pos;

		count_class(proto == IPPROTO_TCP ? CLASS_TCP : CLASS_UDP, len);
		if ((void *)(ports + 2) <= c.end)
			count_port(proto, ports[1], len);
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		count_class(CLASS_ICMP, len);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
