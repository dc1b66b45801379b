/* vlan_push: tags untagged traffic for a trunk port. Every untagged frame
 * gets an 802.1Q tag (VID access_vid, PCP from the IP precedence) with
 * bpf_skb_vlan_push; IPv6 frames additionally get an outer 802.1ad service
 * tag (QinQ). The kernel keeps the most recently pushed tag out of band
 * (skb->vlan_tci) and moves an earlier one into the packet bytes, so one
 * push leaves the data unchanged while two pushes insert the inner tag into
 * it. The program reports what it sees afterwards: cb[0] = vlan_present,
 * cb[1] = vlan_tci, cb[2] = vlan_proto, cb[3] = skb->protocol, cb[4] = the
 * ethertype now in the packet. Already tagged frames only get that report.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT if a push fails. */
#include "parse.h"

const volatile __u16 access_vid = 100;
const volatile __u16 service_vid = 3000;

static __always_inline void report(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 ethertype = 0;

	if ((void *)(eth + 1) <= data_end)
		ethertype = bpf_ntohs(eth->h_proto);
	skb->cb[0] = skb->vlan_present;
	skb->cb[1] = skb->vlan_tci;
	skb->cb[2] = bpf_ntohs(skb->vlan_proto);
	skb->cb[3] = bpf_ntohs(skb->protocol);
	skb->cb[4] = ethertype;
}

SEC("tc")
int vlan_push(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u16 proto, pcp = 0;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD || skb->vlan_present) {
		report(skb);
		return TC_ACT_OK;
	}
	if (proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) <= data_end)
			pcp = ip->tos >> 5;
	}
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), pcp << 13 | access_vid))
		return TC_ACT_SHOT;
	if (proto == ETH_P_IPV6 &&
	    bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021AD), service_vid))
		return TC_ACT_SHOT;
	report(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
