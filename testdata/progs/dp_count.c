/* dp_count: the counter of the datapath demo: packets and bytes per
 * EtherType class (slot 0 other, 1 ARP, 2 IPv4, 3 IPv6) in a per-CPU array,
 * so each worker of tcx run counts on its own CPU slot. The frame is not
 * changed. Verdict: always TCX_NEXT (TC_ACT_UNSPEC), so the chain goes on. */
#include "parse.h"

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct counter);
} dp_counts SEC(".maps");

SEC("tc")
int dp_count(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct counter *ct;
	__u32 slot = 0;

	if ((void *)(eth + 1) <= data_end) {
		if (eth->h_proto == bpf_htons(ETH_P_ARP))
			slot = 1;
		else if (eth->h_proto == bpf_htons(ETH_P_IP))
			slot = 2;
		else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
			slot = 3;
	}
	ct = bpf_map_lookup_elem(&dp_counts, &slot);
	if (ct) {
		ct->packets++;
		ct->bytes += skb->len;
	}
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
