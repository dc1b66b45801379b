/* dp_redirect: forwards every frame with bpf_redirect to out_ifindex
 * (.rodata), to its egress, or to its ingress when to_ingress is set
 * (BPF_F_INGRESS). With out_ifindex 0 the frame continues down the chain.
 * Verdicts: TC_ACT_REDIRECT, TCX_NEXT (TC_ACT_UNSPEC). */
#include "tcx_bpf.h"

const volatile __u32 out_ifindex = 0;
const volatile __u8 to_ingress = 0;

SEC("tc")
int dp_redirect(struct __sk_buff *skb)
{
	if (!out_ifindex)
		return TC_ACT_UNSPEC;
	return bpf_redirect(out_ifindex, to_ingress ? BPF_F_INGRESS : 0);
}

char LICENSE[] SEC("license") = "GPL";
