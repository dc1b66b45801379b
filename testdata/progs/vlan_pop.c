/* vlan_pop: strips VLAN tags on the way to an access port. A tagged frame
 * loses its outer tag through bpf_skb_vlan_pop; if another tag follows
 * (QinQ) the kernel moves that one out of band into skb->vlan_tci instead of
 * leaving it in the bytes. The program records the helper's return value
 * and the resulting state: cb[0] = return value, cb[1] = vlan_present,
 * cb[2] = vlan_tci, cb[3] = skb->protocol, cb[4] = ethertype in the packet;
 * mark = the popped VID. Untagged frames pass untouched.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT for a frame whose tag does not fit. */
#include "parse.h"

SEC("tc")
int vlan_pop(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vh;
	__u16 proto;
	__u32 vid;
	long ret;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	proto = bpf_ntohs(eth->h_proto);
	if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
		return TC_ACT_OK;
	vh = (void *)(eth + 1);
	if ((void *)(vh + 1) > data_end)
		return TC_ACT_SHOT;
	vid = bpf_ntohs(vh->h_vlan_TCI) & 0x0fff;

	ret = bpf_skb_vlan_pop(skb);

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	skb->cb[0] = ret;
	skb->cb[1] = skb->vlan_present;
	skb->cb[2] = skb->vlan_tci;
	skb->cb[3] = bpf_ntohs(skb->protocol);
	skb->cb[4] = (void *)(eth + 1) <= data_end ? bpf_ntohs(eth->h_proto) : 0;
	skb->mark = vid;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
