/* trim_tail: a packet sampler that hands a bounded, tagged copy to a
 * collector. Frames longer than snap_len are cut to snap_len with
 * bpf_skb_change_tail; every frame then grows by an 8-byte trailer
 * (magic, original length) that the program writes itself with
 * bpf_skb_store_bytes, because the kernel does not define the contents of
 * grown bytes. mark = the original length, cb[0] = the length after
 * trimming, cb[1] = the final length as seen through skb->len and through
 * data_end - data. Verdicts: TC_ACT_OK, TC_ACT_SHOT if a helper fails. */
#include "tcx_bpf.h"

const volatile __u32 snap_len = 256;

struct trailer {
	__be32 magic;
	__be32 orig_len;
};

SEC("tc")
int trim_tail(struct __sk_buff *skb)
{
	__u32 orig = skb->len, len = orig;
	struct trailer t = {
		.magic = bpf_htonl(0x54435854), /* "TCXT" */
		.orig_len = bpf_htonl(orig),
	};

	if (len > snap_len) {
		if (bpf_skb_change_tail(skb, snap_len, 0))
			return TC_ACT_SHOT;
		len = snap_len;
	}
	skb->cb[0] = skb->len;
	if (bpf_skb_change_tail(skb, len + sizeof(t), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, len, &t, sizeof(t), 0))
		return TC_ACT_SHOT;
	skb->mark = orig;
	skb->cb[1] = skb->len << 16 | (skb->data_end - skb->data);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
