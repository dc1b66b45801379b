/* v4_long_jump: a payload fingerprinter whose byte loop clang unrolls
 * completely (SCAN_LEN bytes, a dozen instructions each), the shape DPI
 * programs take when they avoid loops. The unrolled body is longer than a
 * 16-bit jump offset can span, so with -mcpu=v4 clang emits gotol (BPF_JA
 * with a 32-bit offset, JMP32 class) for the branches around it. For the
 * TCP or UDP payload of untagged IPv4 it computes an FNV-1a hash and a
 * Fletcher-style sum over the first SCAN_LEN bytes and counts occurrences of
 * the 4-byte signature "tcx!". mark = FNV hash, cb[0] = Fletcher sum,
 * cb[1] = signature hits, cb[2] = bytes scanned. Payloads whose first
 * bytes are "DROP" are dropped. Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "parse.h"

#define SCAN_LEN 1024
#define SIGNATURE 0x74637821 /* "tcx!" */

SEC("tc")
int v4_long_jump(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u32 fnv = 0x811c9dc5, a = 1, b = 0, window = 0, hits = 0, n = 0;
	struct cursor c;
	struct iphdr *ip;
	struct l2 l2;
	__u8 *p;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.vlans || l2.proto != ETH_P_IP)
		return TC_ACT_OK;
	ip = parse_ipv4(&c);
	if (!ip || ipv4_is_fragment(ip))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = c.pos;

		if ((void *)(th + 1) > c.end || th->doff < 5)
			return TC_ACT_OK;
		p = c.pos + th->doff * 4;
	} else if (ip->protocol == IPPROTO_UDP) {
		p = c.pos + sizeof(struct udphdr);
	} else {
		return TC_ACT_OK;
	}

#pragma clang loop unroll(full)
	for (int i = 0; i < SCAN_LEN; i++) {
		__u8 byte;

		if ((void *)(p + i + 1) > c.end)
			break;
		byte = p[i];
		fnv = (fnv ^ byte) * 0x01000193;
		a = (a + byte) % 65521;
		b = (b + a) % 65521;
		window = window << 8 | byte;
		if (window == SIGNATURE)
			hits++;
		n++;
	}
	skb->mark = fnv;
	skb->cb[0] = b << 16 | a;
	skb->cb[1] = hits;
	skb->cb[2] = n;
	if (n >= 4 && p + 4 <= (__u8 *)c.end && p[0] == 'D' && p[1] == 'R' && p[2] == 'O' &&
	    p[3] == 'P')
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
