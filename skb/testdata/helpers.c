// SPDX-License-Identifier: MIT
//
// helpers.c: the kernel side of package skb's differential test. Program
// "run" executes up to 8 skb helper calls described in the array map "ops"
// and records each return value plus a snapshot of struct __sk_buff in the
// array map "out". The Go test performs the same calls on a skb.Packet and
// compares return values, snapshots, data_out and ctx_out.
//
// Build: make -C skb/testdata (clang-19, see Makefile).

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define BPF_MAP_TYPE_ARRAY 2

// struct __sk_buff as in include/uapi/linux/bpf.h (192 bytes).
struct __sk_buff {
	__u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto;
	__u32 priority, ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid;
	__u32 data, data_end, napi_id, family, remote_ip4, local_ip4, remote_ip6[4], local_ip6[4];
	__u32 remote_port, local_port, data_meta;
	__u64 flow_keys, tstamp;
	__u32 wire_len, gso_segs;
	__u64 sk;
	__u32 gso_size;
	__u8 tstamp_type;
	__u32 : 24;
	__u64 hwtstamp;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_skb_store_bytes)(void *skb, __u32 off, const void *from, __u32 len, __u64 flags) = (void *)9;
static long (*bpf_l3_csum_replace)(void *skb, __u32 off, __u64 from, __u64 to, __u64 flags) = (void *)10;
static long (*bpf_l4_csum_replace)(void *skb, __u32 off, __u64 from, __u64 to, __u64 flags) = (void *)11;
static long (*bpf_clone_redirect)(void *skb, __u32 ifindex, __u64 flags) = (void *)13;
static long (*bpf_skb_vlan_push)(void *skb, __u16 proto, __u16 tci) = (void *)18;
static long (*bpf_skb_vlan_pop)(void *skb) = (void *)19;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 off, void *to, __u32 len) = (void *)26;
static long (*bpf_csum_diff)(void *from, __u32 from_size, void *to, __u32 to_size, __u32 seed) = (void *)28;
static long (*bpf_skb_change_proto)(void *skb, __u16 proto, __u64 flags) = (void *)31;
static long (*bpf_skb_change_type)(void *skb, __u32 type) = (void *)32;
static long (*bpf_get_hash_recalc)(void *skb) = (void *)34;
static long (*bpf_skb_change_tail)(void *skb, __u32 len, __u64 flags) = (void *)38;
static long (*bpf_skb_pull_data)(void *skb, __u32 len) = (void *)39;
static long (*bpf_csum_update)(void *skb, __u32 csum) = (void *)40;
static long (*bpf_set_hash_invalid)(void *skb) = (void *)41;
static long (*bpf_skb_change_head)(void *skb, __u32 len, __u64 flags) = (void *)43;
static long (*bpf_set_hash)(void *skb, __u32 hash) = (void *)48;
static long (*bpf_skb_adjust_room)(void *skb, __s32 len_diff, __u32 mode, __u64 flags) = (void *)50;
static long (*bpf_skb_load_bytes_relative)(const void *skb, __u32 off, void *to, __u32 len, __u32 hdr) = (void *)68;
static long (*bpf_skb_ecn_set_ce)(void *skb) = (void *)97;
static long (*bpf_csum_level)(void *skb, __u64 level) = (void *)135;
static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)155;
static long (*bpf_skb_set_tstamp)(void *skb, __u64 tstamp, __u32 type) = (void *)192;

// Op codes; keep in step with opCode in kernel_test.go.
enum {
	OP_END, OP_STORE, OP_LOAD, OP_LOAD_REL, OP_L3, OP_L4, OP_CSUM_DIFF,
	OP_CSUM_UPDATE, OP_CSUM_LEVEL, OP_CHANGE_PROTO, OP_CHANGE_TYPE,
	OP_CHANGE_HEAD, OP_CHANGE_TAIL, OP_ADJUST_ROOM, OP_PULL, OP_VLAN_PUSH,
	OP_VLAN_POP, OP_HASH_RECALC, OP_SET_HASH, OP_HASH_INVALID, OP_ECN,
	OP_REDIRECT, OP_CLONE, OP_CTX_WRITE, OP_REDIRECT_PEER, OP_CTX_WRITE2,
	OP_SET_TSTAMP,
};

struct op {
	__u32 code, a, b, c;
	__u64 d, e, f;
	__u8 buf[64];
};

struct res {
	__s64 ret;
	__u32 f[22];
	__u8 buf[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct op);
} ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct res);
} out SEC(".maps");

static __attribute__((noinline)) long step(struct __sk_buff *s, __u32 i)
{
	__u32 k = i;
	struct op *o = bpf_map_lookup_elem(&ops, &k);
	struct res *r = bpf_map_lookup_elem(&out, &k);
	long ret = 0;

	if (!o || !r)
		return -1000;
	__u32 n = (o->b & 63) + 1;
	switch (o->code) {
	case OP_END: return -2000;
	case OP_STORE: ret = bpf_skb_store_bytes(s, o->a, o->buf, n, o->d); break;
	case OP_LOAD: ret = bpf_skb_load_bytes(s, o->a, r->buf, n); break;
	case OP_LOAD_REL: ret = bpf_skb_load_bytes_relative(s, o->a, r->buf, n, o->c); break;
	case OP_L3: ret = bpf_l3_csum_replace(s, o->a, o->d, o->e, o->f); break;
	case OP_L4: ret = bpf_l4_csum_replace(s, o->a, o->d, o->e, o->f); break;
	case OP_CSUM_DIFF: {
		__u32 fs = o->a & 31, ts = o->b & 31;
		ret = bpf_csum_diff(fs ? (void *)o->buf : 0, fs, ts ? (void *)(o->buf + 32) : 0, ts, o->c);
		break;
	}
	case OP_CSUM_UPDATE: ret = bpf_csum_update(s, o->a); break;
	case OP_CSUM_LEVEL: ret = bpf_csum_level(s, o->d); break;
	case OP_CHANGE_PROTO: ret = bpf_skb_change_proto(s, o->a, o->d); break;
	case OP_CHANGE_TYPE: ret = bpf_skb_change_type(s, o->a); break;
	case OP_CHANGE_HEAD: ret = bpf_skb_change_head(s, o->a, o->d); break;
	case OP_CHANGE_TAIL: ret = bpf_skb_change_tail(s, o->a, o->d); break;
	case OP_ADJUST_ROOM: ret = bpf_skb_adjust_room(s, (__s32)o->a, o->b, o->d); break;
	case OP_PULL: ret = bpf_skb_pull_data(s, o->a); break;
	case OP_VLAN_PUSH: ret = bpf_skb_vlan_push(s, o->a, o->b); break;
	case OP_VLAN_POP: ret = bpf_skb_vlan_pop(s); break;
	case OP_HASH_RECALC: ret = bpf_get_hash_recalc(s); break;
	case OP_SET_HASH: ret = bpf_set_hash(s, o->a); break;
	case OP_HASH_INVALID: bpf_set_hash_invalid(s); break;
	case OP_ECN: ret = bpf_skb_ecn_set_ce(s); break;
	case OP_REDIRECT: ret = bpf_redirect(o->a, o->d); break;
	case OP_CLONE: ret = bpf_clone_redirect(s, o->a, o->d); break;
	case OP_CTX_WRITE:
		s->mark = o->a;
		s->priority = o->b;
		s->tc_index = o->c;
		s->queue_mapping = (__u32)o->d;
		s->tc_classid = (__u32)o->e;
		break;
	case OP_REDIRECT_PEER: ret = bpf_redirect_peer(o->a, o->d); break;
	case OP_CTX_WRITE2:
		s->tstamp = o->d;
		s->cb[0] = o->a;
		s->cb[4] = o->b;
		break;
	case OP_SET_TSTAMP: ret = bpf_skb_set_tstamp(s, o->d, o->a); break;
	default: return -3000;
	}
	r->ret = ret;
	r->f[0] = s->len;
	r->f[1] = s->protocol;
	r->f[2] = s->vlan_present;
	r->f[3] = s->vlan_tci;
	r->f[4] = s->vlan_proto;
	r->f[5] = s->pkt_type;
	r->f[6] = s->data_end - s->data;
	r->f[7] = s->queue_mapping;
	r->f[8] = s->tc_index;
	r->f[9] = s->hash;
	r->f[10] = s->mark;
	r->f[11] = s->priority;
	r->f[12] = s->tc_classid;
	r->f[13] = s->wire_len;
	r->f[14] = s->gso_segs;
	r->f[15] = s->gso_size;
	r->f[16] = s->data - s->data_meta;
	r->f[17] = s->ifindex;
	r->f[18] = s->ingress_ifindex;
	r->f[19] = s->napi_id;
	r->f[20] = s->tstamp_type;
	r->f[21] = (__u32)s->tstamp;
	return ret;
}

SEC("tc")
int run(struct __sk_buff *s)
{
	long ret = 0;

	for (__u32 i = 0; i < 8; i++) {
		long r = step(s, i);

		if (r == -2000)
			break;
		ret = r;
	}
	return ret;
}

char _license[] SEC("license") = "GPL";
