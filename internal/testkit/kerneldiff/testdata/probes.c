// SPDX-License-Identifier: GPL-2.0
/*
 * Probe programs of the kerneldiff tests: each runs one helper family or
 * one behaviour the engine once got wrong, under BPF_PROG_TEST_RUN in the
 * kernel and under the engine's TestRun, and leaves what it saw in its
 * return value, in ctx_out (cb, mark, priority) and in the "out" array, so
 * that comparing the two runs compares the helpers.
 *
 * Arguments come from ctx_in's cb[0..4]; results go to out[0..7] (u64).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#ifndef BPF_F_TUNINFO_FLAGS
#define BPF_F_TUNINFO_FLAGS (1ULL << 4)
#endif
#ifndef BPF_F_NO_TUNNEL_KEY
#define BPF_F_NO_TUNNEL_KEY (1ULL << 4)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

static __always_inline void put(__u32 i, __u64 v)
{
	bpf_map_update_elem(&out, &i, &v, BPF_ANY);
}

/* tail_sub_chain: a subprogram tail-calls the program itself; each hop
 * starts inside the previous hop's subprogram frame. The kernel lets the
 * chain run to its 33-tail-call limit; every program's main adds 1 to the
 * result on the way out and out[0] counts the hops. */
int tail_sub_chain(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} chain SEC(".maps") = {
	.values = { [0] = (void *)&tail_sub_chain },
};

static __noinline int hop(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *n = bpf_map_lookup_elem(&out, &k);

	if (n)
		(*n)++;
	bpf_tail_call(skb, &chain, 0);
	return 1000 + (skb->len & 1);
}

SEC("tc")
int tail_sub_chain(struct __sk_buff *skb)
{
	return hop(skb) + 1;
}

/* clone: bpf_clone_redirect(skb, cb[0], cb[1]); the result in cb[0]. */
SEC("tc")
int clone(struct __sk_buff *skb)
{
	long r = bpf_clone_redirect(skb, skb->cb[0], skb->cb[1]);

	skb->cb[0] = r;
	return TC_ACT_OK;
}

/* tai: bpf_ktime_get_tai_ns() and bpf_ktime_get_ns() in out[0], out[1]. */
SEC("tc")
int tai(struct __sk_buff *skb)
{
	put(0, bpf_ktime_get_tai_ns());
	put(1, bpf_ktime_get_ns());
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
