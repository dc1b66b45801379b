/* v4_signed_math: TCP sequence-space monitoring, built with -mcpu=v4 so
 * that clang emits the v4 instructions for signed arithmetic: sign-
 * extending loads (the s8/s16/s32 fields of the flow state and signed bytes
 * of a UDP payload), sign-extending moves (s32 -> s64), signed division and
 * modulo (sdiv/smod, 32 and 64 bit, by run-time divisors from .rodata) and
 * unconditional byte swaps (bswap16/32/64). Per TCP flow it keeps the last
 * sequence number, the signed delta, a signed EWMA of the deltas and a
 * trend; deltas <= 0 count as retransmission or reordering. For UDP it sums
 * the first payload byte (s8) and the next 16-bit word (s16, little
 * endian) as signed samples. mark = the mean delta, cb[0] = the EWMA,
 * cb[1] = delta smod mss, cb[2] = the trend, cb[3] = bswap of the sequence
 * number, cb[4] = the delta's change since the previous segment (folded to
 * 32 bits); for UDP cb[2] = the mean sample (sdiv) and cb[4] = the low half
 * of the byte-swapped 64-bit sample sum.
 * Verdict: TC_ACT_OK. */
#include "parse.h"

const volatile __s32 ewma_weight = 8;
const volatile __s32 mss = 1448;

struct flow_key {
	__be32 saddr, daddr;
	__be16 sport, dport;
};

struct flow_state {
	__u32 last_seq;
	__s32 last_delta;
	__s16 ewma;
	__s8 trend;
	__u8 pad;
	__u32 packets;
	__s64 sum_delta;
	__s64 reordered;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} seq_flows SEC(".maps");

__s64 sample_sum;
__s64 sample_count;

static __always_inline int on_udp(struct __sk_buff *skb, struct cursor *c)
{
	struct udphdr *uh = c->pos;
	__s8 *payload = (void *)(uh + 1);
	__s64 s8v, s16v;

	if ((void *)(payload + 3) > c->end)
		return TC_ACT_OK;
	s8v = payload[0];
	s16v = *(__s16 *)(payload + 1);
	sample_sum += s8v + s16v;
	sample_count++;
	skb->cb[2] = sample_sum / sample_count;
	skb->cb[4] = (__u32)__builtin_bswap64(sample_sum);
	return TC_ACT_OK;
}

SEC("tc")
int v4_signed_math(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct flow_state *st, fresh = {};
	struct flow_key k = {};
	struct cursor c;
	struct tcphdr *th;
	struct iphdr *ip;
	struct l2 l2;
	__s32 delta, step;
	__s64 mean, jitter;
	__u32 seq;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return TC_ACT_OK;
	ip = parse_ipv4(&c);
	if (!ip || ipv4_is_fragment(ip))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_UDP)
		return on_udp(skb, &c);
	if (ip->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	th = c.pos;
	if ((void *)(th + 1) > c.end)
		return TC_ACT_OK;

	k.saddr = ip->saddr;
	k.daddr = ip->daddr;
	k.sport = th->source;
	k.dport = th->dest;
	seq = bpf_ntohl(th->seq);
	skb->cb[3] = __builtin_bswap32(seq ^ bpf_ntohs(th->window));

	st = bpf_map_lookup_elem(&seq_flows, &k);
	if (!st) {
		fresh.last_seq = seq;
		fresh.packets = 1;
		bpf_map_update_elem(&seq_flows, &k, &fresh, BPF_NOEXIST);
		return TC_ACT_OK;
	}
	delta = (__s32)(seq - st->last_seq);
	jitter = delta - (__s64)st->last_delta; /* 64-bit from a sign-extended s32 load */
	st->last_seq = seq;
	st->last_delta = delta;
	st->packets++;
	st->sum_delta += delta; /* sign-extending move */
	if (delta <= 0)
		st->reordered += -(__s64)delta;
	mean = st->sum_delta / (__s64)st->packets;

	/* EWMA in the s16 field: load sign-extended, divide signed. */
	step = (delta - st->ewma) / ewma_weight;
	st->ewma = (__s16)(st->ewma + step);
	if (step > 0 && st->trend < 127)
		st->trend++;
	else if (step < 0 && st->trend > -128)
		st->trend--;

	skb->mark = (__u32)mean;
	skb->cb[0] = (__s32)st->ewma;
	skb->cb[1] = delta % mss;
	skb->cb[2] = (__s32)st->trend;
	skb->cb[4] = (__u32)(jitter >> 32) ^ (__u32)jitter;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
