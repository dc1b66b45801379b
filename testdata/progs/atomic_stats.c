/* atomic_stats: flow statistics kept with every BPF atomic operation on
 * map values: fetch-and-add with and without using the result (64 and 32
 * bit), fetch-or/and/xor on flag words, exchange (xchg) of the last packet
 * length and compare-and-exchange (cmpxchg) loops for a running maximum
 * and minimum. Old values returned by the fetching forms are written to
 * skb->cb so that their results are observable. The packet is unchanged.
 * Verdict: TC_ACT_OK. */
#include "parse.h"

struct stats {
	__u64 packets;
	__u64 bytes;
	__u64 tcp_flags_seen;   /* OR of all TCP flag bytes */
	__u64 tcp_flags_common; /* AND of all TCP flag bytes */
	__u32 parity;           /* XOR of all packet lengths */
	__u32 events;
	__u64 last_len;
	__u64 max_len;
	__u32 min_len;
	__u32 swaps;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct stats);
} flow_stats SEC(".maps");

static __always_inline __u32 tcp_flags(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct iphdr *ip;
	struct tcphdr *th;
	struct l2 l2;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return 0x100;
	ip = parse_ipv4(&c);
	if (!ip || ip->protocol != IPPROTO_TCP)
		return 0x100;
	th = c.pos;
	if ((void *)(th + 1) > c.end)
		return 0x100;
	return th->flags;
}

SEC("tc")
int atomic_stats(struct __sk_buff *skb)
{
	__u32 len = skb->len, flags = tcp_flags(skb);
	__u32 key = flags == 0x100 ? 1 : 0;
	struct stats *s;
	__u64 old, cur;
	__u32 old32;

	s = bpf_map_lookup_elem(&flow_stats, &key);
	if (!s)
		return TC_ACT_OK;

	skb->cb[0] = __sync_fetch_and_add(&s->packets, 1);
	__sync_fetch_and_add(&s->bytes, len);
	__sync_fetch_and_add(&s->events, 1);
	if (flags != 0x100) {
		skb->cb[1] = __sync_fetch_and_or(&s->tcp_flags_seen, flags);
		if (s->packets == 1)
			__sync_lock_test_and_set(&s->tcp_flags_common, flags);
		else
			__sync_fetch_and_and(&s->tcp_flags_common, flags);
	}
	skb->cb[2] = __sync_fetch_and_xor(&s->parity, len);
	skb->cb[3] = __sync_lock_test_and_set(&s->last_len, len);

	/* Running maximum: retry while another CPU moved it under us. */
	for (int i = 0; i < 4; i++) {
		cur = s->max_len;
		if (len <= cur)
			break;
		old = __sync_val_compare_and_swap(&s->max_len, cur, len);
		if (old == cur) {
			__sync_fetch_and_add(&s->swaps, 1);
			break;
		}
	}
	/* Running minimum, 32-bit cmpxchg; 0 means unset. */
	for (int i = 0; i < 4; i++) {
		old32 = s->min_len;
		if (old32 && old32 <= len)
			break;
		if (__sync_bool_compare_and_swap(&s->min_len, old32, len))
			break;
	}
	skb->cb[4] = s->swaps;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
