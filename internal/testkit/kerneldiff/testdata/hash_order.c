// SPDX-License-Identifier: GPL-2.0
/*
 * hash_order: bpf_for_each_map_elem over hash maps made with
 * BPF_F_ZERO_SEED, whose bucket order (jhash with seed 0, newest first in a
 * bucket) is the same on every load, so the engine must visit their
 * elements in the kernel's order. Each walk_* program records the keys it
 * visits in "order" (slot i: the i-th key) and stops after cb[0] of them;
 * slot 127 holds bpf_for_each_map_elem's result.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} order SEC(".maps");

struct key6 {
	__u8 b[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(key, __u32);
	__type(value, __u64);
} h4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 24);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(key, struct key6);
	__type(value, __u32);
} h6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 32);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(key, __u32);
	__type(value, __u64);
} pc4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(key, __u32);
	__type(value, __u64);
} lru4 SEC(".maps");

struct walk {
	__u32 n;
	__u32 stop;
};

static __always_inline long record(__u64 key, struct walk *w)
{
	__u32 i = w->n++;

	if (i < 127)
		bpf_map_update_elem(&order, &i, &key, BPF_ANY);
	return w->n >= w->stop;
}

static long visit4(void *map, __u32 *key, void *val, struct walk *w)
{
	return record(*key, w);
}

static long visit6(void *map, struct key6 *key, void *val, struct walk *w)
{
	__u64 k = 0;

	__builtin_memcpy(&k, key->b, 6);
	return record(k, w);
}

static __always_inline int done(long n)
{
	__u32 i = 127;
	__u64 v = n;

	bpf_map_update_elem(&order, &i, &v, BPF_ANY);
	return TC_ACT_OK;
}

#define WALK(name, map, fn)                                     \
	SEC("tc")                                               \
	int walk_##name(struct __sk_buff *skb)                  \
	{                                                       \
		struct walk w = {.stop = skb->cb[0]};           \
		return done(bpf_for_each_map_elem(&map, fn, &w, 0)); \
	}

WALK(h4, h4, visit4)
WALK(h6, h6, visit6)
WALK(pc4, pc4, visit4)
WALK(lru4, lru4, visit4)

char _license[] SEC("license") = "GPL";
