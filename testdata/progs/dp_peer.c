/* dp_peer: sends every frame to the peer of a veth with bpf_redirect_peer
 * (peer_ifindex, peer_flags from .rodata): into the ingress of the veth's
 * other end, in another namespace, without a trip through the backlog. The
 * kernel allows it only from tc ingress, only to a veth (or netkit) whose
 * peer is in another namespace, and only with flags 0 (else TC_ACT_SHOT);
 * anything else drops. With peer_ifindex 0 the frame continues down the
 * chain. Before redirecting IPv4 it sets mark and priority to set_mark and
 * set_mark + 1 (when set_mark is not 0) and keeps the pkt_type it saw in
 * dp_peer_seen.pkt_type_before.
 * dp_peer_seen, on the peer's ingress, records what arrived (IPv4 only):
 * frames, pkt_type, mark, priority, whether ingress_ifindex is the device.
 * Verdicts: TC_ACT_REDIRECT, TC_ACT_SHOT, TCX_NEXT (TC_ACT_UNSPEC). */
#include "tcx_bpf.h"

/* Helper 155; tcx_bpf.h leaves it out. */
static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)155;

const volatile __u32 peer_ifindex = 0;
const volatile __u64 peer_flags = 0;
const volatile __u32 set_mark = 0;

struct peer_seen {
	__u32 frames;
	__u32 pkt_type_before;
	__u32 pkt_type;
	__u32 mark;
	__u32 priority;
	__u32 ingress_is_dev;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct peer_seen);
} dp_peer_seen_map SEC(".maps");

static __always_inline struct peer_seen *seen(struct __sk_buff *skb)
{
	__u32 zero = 0;

	if (skb->protocol != bpf_htons(0x0800))
		return 0;
	return bpf_map_lookup_elem(&dp_peer_seen_map, &zero);
}

SEC("tc")
int dp_peer(struct __sk_buff *skb)
{
	struct peer_seen *s;

	if (!peer_ifindex)
		return TC_ACT_UNSPEC;
	s = seen(skb);
	if (s) {
		s->pkt_type_before = skb->pkt_type;
		if (set_mark) {
			skb->mark = set_mark;
			skb->priority = set_mark + 1;
		}
	}
	return bpf_redirect_peer(peer_ifindex, peer_flags);
}

SEC("tc")
int dp_peer_seen(struct __sk_buff *skb)
{
	struct peer_seen *s = seen(skb);

	if (s) {
		s->frames++;
		s->pkt_type = skb->pkt_type;
		s->mark = skb->mark;
		s->priority = skb->priority;
		s->ingress_is_dev = skb->ingress_ifindex == skb->ifindex;
	}
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
