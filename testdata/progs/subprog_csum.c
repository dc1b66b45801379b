/* subprog_csum: validates IPv4 header checksums and fingerprints flows with
 * real BPF-to-BPF calls. csum_fold and ipv4_header_sum are static
 * __noinline subprograms (verified in the caller's context, packet pointers
 * as arguments); flow_hash calls mix, a three-deep call chain; account is
 * a global function, verified on its own with only the context as
 * argument. A bad IPv4 header checksum drops the packet; otherwise mark =
 * the flow hash and cb[0] = the header sum. Non-IPv4 frames pass.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "parse.h"

__u64 packets_seen;
__u64 bad_checksums;

static __noinline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* ipv4_header_sum adds up the header as 16-bit words; hdr has been checked
 * to hold words*2 bytes. */
static __noinline __u32 ipv4_header_sum(__u16 *hdr, __u32 words, void *data_end)
{
	__u32 sum = 0;

	for (int i = 0; i < 30; i++) {
		if (i >= words)
			break;
		if ((void *)(hdr + i + 1) > data_end)
			break;
		sum += hdr[i];
	}
	return sum;
}

static __noinline __u32 mix(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0x01000193;
	return h ^ (h >> 15);
}

static __noinline __u32 flow_hash(struct iphdr *ip)
{
	__u32 h = 0x811c9dc5;

	h = mix(h, ip->saddr);
	h = mix(h, ip->daddr);
	return mix(h, ip->protocol);
}

__noinline int account(struct __sk_buff *skb)
{
	if (!skb)
		return 0;
	packets_seen++;
	return skb->len > 1500;
}

SEC("tc")
int subprog_csum(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct iphdr *ip;
	struct l2 l2;
	__u32 sum;

	account(skb);
	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.proto != ETH_P_IP)
		return TC_ACT_OK;
	ip = parse_ipv4(&c);
	if (!ip)
		return TC_ACT_OK;
	sum = ipv4_header_sum((__u16 *)ip, ip->ihl * 2, c.end);
	if (csum_fold(sum) != 0) {
		bad_checksums++;
		return TC_ACT_SHOT;
	}
	skb->cb[0] = sum;
	skb->mark = flow_hash(ip);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
