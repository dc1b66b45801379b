/* dp_peer: sends every frame to the peer of a veth with bpf_redirect_peer
 * (peer_ifindex, peer_flags from .rodata): into the ingress of the veth's
 * other end, in another namespace, without a trip through the backlog. The
 * kernel allows it only from tc ingress, only to a veth (or netkit) whose
 * peer is in another namespace, and only with flags 0 (else TC_ACT_SHOT);
 * anything else drops. With peer_ifindex 0 the frame continues down the
 * chain. Verdicts: TC_ACT_REDIRECT, TC_ACT_SHOT, TCX_NEXT (TC_ACT_UNSPEC). */
#include "tcx_bpf.h"

/* Helper 155; tcx_bpf.h leaves it out. */
static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)155;

const volatile __u32 peer_ifindex = 0;
const volatile __u64 peer_flags = 0;

SEC("tc")
int dp_peer(struct __sk_buff *skb)
{
	if (!peer_ifindex)
		return TC_ACT_UNSPEC;
	return bpf_redirect_peer(peer_ifindex, peer_flags);
}

char LICENSE[] SEC("license") = "GPL";
