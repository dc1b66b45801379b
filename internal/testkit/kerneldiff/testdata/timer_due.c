// SPDX-License-Identifier: GPL-2.0
/*
 * timer_due: a bpf_timer that comes due while nothing runs. arm starts
 * the timer of element cb[0] % 4 (CLOCK_MONOTONIC) cb[1] microseconds
 * from now (50 ms when cb[1] is 0, as on tcx run's frames), its callback
 * counting in "fired"; whoever watches the map after the deadline sees
 * the callback's work without running anything.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct telem {
	struct bpf_timer t;
	__u64 fired;
	__u64 armed;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct telem);
} due SEC(".maps");

static int fired(void *map, __u32 *key, struct telem *v)
{
	/* Atomic: whoever watches the map reads it while a callback may run. */
	__sync_fetch_and_add(&v->fired, 1);
	return 0;
}

SEC("tc")
int arm(struct __sk_buff *skb)
{
	__u32 k = skb->cb[0] % 4;
	struct telem *v = bpf_map_lookup_elem(&due, &k);

	if (!v)
		return TC_ACT_SHOT;
	bpf_timer_init(&v->t, &due, 1 /* CLOCK_MONOTONIC */);
	if (bpf_timer_set_callback(&v->t, fired))
		return TC_ACT_SHOT;
	v->armed++;
	if (bpf_timer_start(&v->t, skb->cb[1] ? (__u64)skb->cb[1] * 1000 : 50000000, 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
