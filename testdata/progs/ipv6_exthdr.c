/* ipv6_exthdr: an IPv6 extension header firewall built on bpf_loop. The
 * callback reads one extension header per iteration with
 * bpf_skb_load_bytes (the context pointer travels in the loop state) and
 * stops at the first upper-layer protocol. Dropped: a type 0 routing
 * header (RFC 5095), more than max_ext headers, a hop-by-hop header that is
 * not first, a non-first fragment. mark = the upper-layer protocol,
 * cb[0] = its offset, cb[1] = the number of extension headers, cb[2] = the
 * bpf_loop return value. Only untagged IPv6 is inspected.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "net.h"

#define MAX_WALK 8

const volatile __u32 max_ext = 4;

struct walk {
	struct __sk_buff *skb;
	__u32 off;
	__u32 count;
	__u8 nexthdr;
	bool drop;
	bool done;
};

static long walk_one(__u32 index, struct walk *w)
{
	__u8 hdr[8];
	__u32 len;

	switch (w->nexthdr) {
	case IPPROTO_HOPOPTS:
		if (index != 0) {
			w->drop = true;
			return 1;
		}
		/* fallthrough */
	case IPPROTO_DSTOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
		break;
	default:
		w->done = true;
		return 1;
	}
	if (bpf_skb_load_bytes(w->skb, w->off, hdr, sizeof(hdr))) {
		w->drop = true;
		return 1;
	}
	if (w->nexthdr == IPPROTO_ROUTING && hdr[2] == 0) {
		w->drop = true;
		return 1;
	}
	if (w->nexthdr == IPPROTO_FRAGMENT) {
		if ((hdr[2] << 8 | hdr[3]) & 0xfff8) {
			w->drop = true;
			return 1;
		}
		len = 8;
	} else if (w->nexthdr == IPPROTO_AH) {
		len = (hdr[1] + 2) * 4;
	} else {
		len = (hdr[1] + 1) * 8;
	}
	w->nexthdr = hdr[0];
	w->off += len;
	w->count++;
	return 0;
}

SEC("tc")
int ipv6_exthdr(struct __sk_buff *skb)
{
	struct walk w = {.skb = skb, .off = ETH_HLEN + sizeof(struct ipv6hdr)};
	struct ipv6hdr ip6;
	__be16 proto;
	long n;

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)) || proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
		return TC_ACT_SHOT;
	w.nexthdr = ip6.nexthdr;

	n = bpf_loop(MAX_WALK, walk_one, &w, 0);
	skb->cb[2] = n;
	if (w.drop || !w.done || w.count > max_ext)
		return TC_ACT_SHOT;
	skb->mark = w.nexthdr;
	skb->cb[0] = w.off;
	skb->cb[1] = w.count;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
