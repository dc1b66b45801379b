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

/* tunnel: the tunnel metadata helpers, in the order cb[0]'s bits choose:
 * get key and options before any set, set a key (flags bits 0-5, size by
 * bits 6-7) built from cb[1..4], set options (size by bits 12-14), read
 * the key back (flags bits 8-10, size by bits 10-11... see below) and the
 * options. Results in out[0..4], the key read in out[5..10], the options
 * read in out[11..12]. */
static __always_inline void put_key(const void *k)
{
	const __u64 *w = k;

	put(5, w[0]);
	put(6, w[1]);
	put(7, w[2]);
	put(8, w[3]);
	put(9, w[4]);
	put(10, ((const __u32 *)k)[10]);
}

SEC("tc")
int tunnel(struct __sk_buff *skb)
{
	__u32 sel = skb->cb[0];
	__u64 kbuf[6] = {};
	struct bpf_tunnel_key *k = (void *)kbuf;
	__u8 opt[260] = {};
	__u64 obuf[2] = {};
	__u64 setflags = sel & 0x3f, getflags = (sel >> 8) & 0x13;
	long r;

	if (sel & (1 << 16)) {
		r = bpf_skb_get_tunnel_key(skb, k, sizeof(*k), getflags);
		put(0, r);
		r = bpf_skb_get_tunnel_opt(skb, obuf, sizeof(obuf));
		put(1, r);
	}
	kbuf[0] = (__u64)skb->cb[2] << 32 | skb->cb[1];
	kbuf[1] = (__u64)skb->cb[4] << 32 | skb->cb[3];
	kbuf[2] = (__u64)skb->cb[1] << 32 | skb->cb[2];
	kbuf[3] = (__u64)skb->cb[3] << 32 | (sel & (1 << 17) ? skb->cb[4] & 0xff0fffff : 0);
	kbuf[4] = (__u64)skb->cb[4] << 32 | skb->cb[3];
	kbuf[5] = skb->cb[1];
	if (!(sel & (1 << 18)))
		kbuf[2] &= 0x0000ffffffffffffULL; /* tunnel_ext 0 */
	if (!(sel & (1 << 19)))
		kbuf[3] &= 0xffffffff00000000ULL; /* tunnel_label 0 */
	switch ((sel >> 6) & 3) {
	case 0:
		r = bpf_skb_set_tunnel_key(skb, k, 44, setflags);
		break;
	case 1:
		r = bpf_skb_set_tunnel_key(skb, k, 28, setflags);
		break;
	case 2:
		r = bpf_skb_set_tunnel_key(skb, k, 8, setflags);
		break;
	default:
		r = bpf_skb_set_tunnel_key(skb, k, 40, setflags);
		break;
	}
	put(2, r);
	__builtin_memcpy(opt, kbuf, 48);
	switch ((sel >> 12) & 7) {
	case 0:
		r = bpf_skb_set_tunnel_opt(skb, opt, 8);
		break;
	case 1:
		r = bpf_skb_set_tunnel_opt(skb, opt, 4);
		break;
	case 2:
		r = bpf_skb_set_tunnel_opt(skb, opt, 12);
		break;
	case 3:
		r = bpf_skb_set_tunnel_opt(skb, opt, 6);
		break;
	case 4:
		r = bpf_skb_set_tunnel_opt(skb, opt, 256);
		break;
	case 5:
		r = bpf_skb_set_tunnel_opt(skb, opt, 252);
		break;
	default:
		r = 0x7777;
		break;
	}
	put(3, r);
	__builtin_memset(kbuf, 0xa5, sizeof(kbuf));
	switch ((sel >> 20) & 3) {
	case 0:
		r = bpf_skb_get_tunnel_key(skb, k, 44, getflags);
		break;
	case 1:
		r = bpf_skb_get_tunnel_key(skb, k, 24, getflags);
		break;
	case 2:
		r = bpf_skb_get_tunnel_key(skb, k, 8, getflags);
		break;
	default:
		r = bpf_skb_get_tunnel_key(skb, k, 20, getflags);
		break;
	}
	put(4, r);
	put_key(kbuf);
	__builtin_memset(obuf, 0x5a, sizeof(obuf));
	if (sel & (1 << 22))
		r = bpf_skb_get_tunnel_opt(skb, obuf, 4);
	else
		r = bpf_skb_get_tunnel_opt(skb, obuf, 16);
	put(11, r);
	put(12, obuf[0]);
	put(13, obuf[1]);
	return TC_ACT_OK;
}

/* check_mtu: bpf_check_mtu(skb, cb[0], &cb[1], cb[2], cb[3]); the result
 * in cb[4], *mtu_len in cb[1]. */
SEC("tc")
int check_mtu(struct __sk_buff *skb)
{
	__u32 mtu = skb->cb[1];

	skb->cb[4] = bpf_check_mtu(skb, skb->cb[0], &mtu, (__s32)skb->cb[2], skb->cb[3]);
	skb->cb[1] = mtu;
	return TC_ACT_OK;
}

/* sk_lookup: the socket lookups with a tuple from the packet, a size cb[0]
 * picks, netns id cb[1] and flags cb[2]; in a namespace without sockets
 * every one is NULL. cb[3] gets a bit per lookup that found something. */
SEC("tc")
int sk_lookup(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 found = 0, sz = skb->cb[0] & 3;
	__u64 ns = (__s32)skb->cb[1], fl = skb->cb[2];

	t.ipv4.saddr = skb->cb[3];
	t.ipv4.daddr = skb->cb[4];
#define LOOKUP(fn, bit)                                                   \
	do {                                                              \
		if (sz == 0)                                              \
			sk = fn(skb, &t, sizeof(t.ipv4), ns, fl);         \
		else if (sz == 1)                                         \
			sk = fn(skb, &t, sizeof(t.ipv6), ns, fl);         \
		else if (sz == 2)                                         \
			sk = fn(skb, &t, 0, ns, fl);                      \
		else                                                      \
			sk = fn(skb, &t, 13, ns, fl);                     \
		if (sk) {                                                 \
			found |= bit;                                     \
			bpf_sk_release(sk);                               \
		}                                                         \
	} while (0)
	LOOKUP(bpf_sk_lookup_tcp, 1);
	LOOKUP(bpf_sk_lookup_udp, 2);
	LOOKUP(bpf_skc_lookup_tcp, 4);
	skb->cb[3] = found;
	return TC_ACT_OK;
}

/* for_each: bpf_for_each_map_elem over an array the program fills from cb
 * (callback stops at index cb[0]) and over a hash of the same values
 * (callback visits all; the order is the map's). out[0..3]: counts and
 * sums; flags cb[1] for the hash walk. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} hsh SEC(".maps");

struct walk {
	__u64 sum;
	__u32 stop;
};

static long visit(void *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->sum = w->sum * 31 + *val + *key;
	*val += 1;
	return *key == w->stop;
}

static long visit_all(void *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->sum += *val ^ *key;
	return 0;
}

SEC("tc")
int for_each(struct __sk_buff *skb)
{
	struct walk w = {.stop = skb->cb[0]};
	__u64 vals[5] = {skb->cb[0], skb->cb[1], skb->cb[2], skb->cb[3], skb->cb[4]};

#pragma unroll
	for (int i = 0; i < 5; i++) {
		__u64 v = vals[i] + i;
		__u32 a = i, k = i * 7;

		bpf_map_update_elem(&arr, &a, &v, BPF_ANY);
		if (i != 3)
			bpf_map_update_elem(&hsh, &k, &v, BPF_ANY);
	}
	put(0, bpf_for_each_map_elem(&arr, visit, &w, 0));
	put(1, w.sum);
	w.sum = 0;
	put(2, bpf_for_each_map_elem(&hsh, visit_all, &w, skb->cb[1] & 1));
	put(3, w.sum);
	return TC_ACT_OK;
}

/* set_tstamp: bpf_skb_set_tstamp(skb, cb[0] | cb[1] << 32, cb[2]); the
 * result in cb[3], tstamp and tstamp_type come back in ctx_out. */
SEC("tc")
int set_tstamp(struct __sk_buff *skb)
{
	skb->cb[3] = bpf_skb_set_tstamp(skb, (__u64)skb->cb[1] << 32 | skb->cb[0], skb->cb[2]);
	return TC_ACT_OK;
}

/* fib: bpf_fib_lookup with family cb[0] & 0xff, l4 protocol cb[0] >> 8,
 * tot_len cb[0] >> 16, ifindex cb[1], flags cb[2] and addresses built from
 * cb[3..4] (IPv6 ones link-local when cb[2] bit 31 is set). The result in
 * out[0], the params afterwards in out[1..8]. */
SEC("tc")
int fib(struct __sk_buff *skb)
{
	struct bpf_fib_lookup p = {};
	__u32 sel = skb->cb[0], fl = skb->cb[2];
	__u64 *w = (void *)&p;

	p.family = sel & 0xff;
	p.l4_protocol = (sel >> 8) & 0xff;
	p.tot_len = sel >> 16;
	p.ifindex = skb->cb[1];
	p.ipv6_src[0] = skb->cb[3];
	p.ipv6_src[3] = skb->cb[4];
	p.ipv6_dst[0] = skb->cb[4];
	p.ipv6_dst[3] = skb->cb[3];
	if (fl & (1u << 31))
		p.ipv6_dst[0] = 0x80fe;
	p.tbid = skb->cb[3] & 0xffff;
	put(0, bpf_fib_lookup(skb, &p, sizeof(p), fl & 0x7fffffff));
	put(1, w[0]);
	put(2, w[1]);
	put(3, w[2]);
	put(4, w[3]);
	put(5, w[4]);
	put(6, w[5]);
	put(7, w[6]);
	put(8, w[7]);
	return TC_ACT_OK;
}

/* dynptr: the skb dynptr kfuncs and helpers. cb[0] picks the flags of
 * bpf_dynptr_from_skb (0 valid), cb[1] an offset, cb[2] a length selector,
 * cb[3] the write flags and data. Results in out[0..6], bytes read in
 * out[7..8]. */
extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *ptr, __u32 offset, void *buffer, __u32 buffer__szk) __ksym;
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;

SEC("tc")
int dynptr(struct __sk_buff *skb)
{
	struct bpf_dynptr ptr;
	__u64 buf[2] = {}, sbuf[2] = {};
	__u32 off = skb->cb[1], w = skb->cb[3];
	__u8 *s;
	long r;

	put(0, bpf_cast_to_kern_ctx(skb) != 0);
	r = bpf_dynptr_from_skb(skb, skb->cb[0] & 3, &ptr);
	put(1, r);
	if (skb->cb[2] & 1)
		r = bpf_dynptr_read(buf, 16, &ptr, off, skb->cb[2] & 2);
	else
		r = bpf_dynptr_read(buf, 4, &ptr, off, 0);
	put(2, r);
	put(7, buf[0]);
	put(8, buf[1]);
	r = bpf_dynptr_write(&ptr, off + 2, &w, skb->cb[2] & 4 ? 4 : 2, (skb->cb[2] >> 3) & 3);
	put(3, r);
	s = bpf_dynptr_slice(&ptr, off, sbuf, 8);
	put(4, s ? s[0] | (__u64)s[7] << 8 | 0x10000 : 0);
	put(6, bpf_dynptr_size(&ptr));
	return TC_ACT_OK;
}

/* map_in_map: an array of maps and a hash of maps over three inner
 * arrays; cb[0] picks the outer key, cb[1] the inner key, cb[2] a value to
 * add. out[0..1]: whether each lookup found a map and a value. */
struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner inner_a SEC(".maps"), inner_b SEC(".maps"), inner_c SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [1] = &inner_c, [3] = &inner_a },
};

static __always_inline __u64 bump(void *outer, __u32 okey, __u32 ikey, __u64 add)
{
	void *inner = bpf_map_lookup_elem(outer, &okey);
	__u64 *v;

	if (!inner)
		return 0;
	v = bpf_map_lookup_elem(inner, &ikey);
	if (!v)
		return 1;
	*v += add;
	return 2 + *v;
}

SEC("tc")
int map_in_map(struct __sk_buff *skb)
{
	put(0, bump(&outer_arr, skb->cb[0], skb->cb[1], skb->cb[2]));
	put(1, bump(&outer_hash, skb->cb[0], skb->cb[1] ^ 1, skb->cb[2] >> 8));
	return TC_ACT_OK;
}

/* timer: bpf_timer_* on element cb[0] % 3 of a map of timers, with clock
 * cb[1], start delay cb[2] (an hour or more, so that no timer fires
 * while the test looks: the kernel fires them asynchronously) and start
 * flags cb[3]; cb[4] picks which calls happen. Results in out[0..4]. */
struct telem {
	struct bpf_timer t;
	__u64 fired;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct telem);
} timers SEC(".maps");

static int timer_fired(void *map, __u32 *key, struct telem *v)
{
	v->fired++;
	return 0;
}

SEC("tc")
int timer(struct __sk_buff *skb)
{
	__u32 k = skb->cb[0] % 3, sel = skb->cb[4];
	struct telem *v = bpf_map_lookup_elem(&timers, &k);

	if (!v)
		return TC_ACT_SHOT;
	put(0, sel & 1 ? bpf_timer_init(&v->t, &timers, skb->cb[1]) : 99);
	put(1, sel & 2 ? bpf_timer_set_callback(&v->t, timer_fired) : 99);
	put(2, sel & 4 ? bpf_timer_start(&v->t, 3600000000000ULL + skb->cb[2], skb->cb[3] & ~1u) : 99);
	put(3, sel & 8 ? bpf_timer_cancel(&v->t) : 99);
	put(4, v->fired);
	return TC_ACT_OK;
}

/* spin_lock: a counter under a bpf_spin_lock in a map value, element
 * cb[0] % 2, incremented by cb[1]; the new value in out[0]. */
struct locked {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct locked);
} counters SEC(".maps");

SEC("tc")
int spin_lock(struct __sk_buff *skb)
{
	__u32 k = skb->cb[0] % 2;
	struct locked *v = bpf_map_lookup_elem(&counters, &k);
	__u64 n;

	if (!v)
		return TC_ACT_SHOT;
	bpf_spin_lock(&v->lock);
	v->count += skb->cb[1];
	n = v->count;
	bpf_spin_unlock(&v->lock);
	put(0, n);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
