/* ctx_fields: a context snapshot for debugging tc programs. It copies every
 * __sk_buff field a tc program may read into an array map entry (slot =
 * number of packets seen modulo 4), including the values the kernel derives
 * from the frame and the device (pkt_type from the destination MAC,
 * protocol from the ethertype, ifindex of the device, vlan fields,
 * data_meta == data) and narrow 1- and 2-byte loads of 4-byte fields, which
 * the kernel rewrites per field. The packet is not changed.
 * Verdict: TC_ACT_OK. */
#include "tcx_bpf.h"

struct snapshot {
	__u32 len, pkt_type, mark, queue_mapping;
	__u32 protocol, vlan_present, vlan_tci, vlan_proto;
	__u32 priority, ingress_ifindex, ifindex, tc_index;
	__u32 cb[5];
	__u32 hash, tc_classid;
	__u32 data_len;  /* data_end - data */
	__u32 meta_len;  /* data - data_meta */
	__u32 napi_id;
	__u64 tstamp;
	__u32 wire_len, gso_segs, gso_size;
	__u32 tstamp_type;
	__u64 hwtstamp;
	/* narrow loads */
	__u32 mark_b0, mark_b3, protocol_h0, len_h1, cb0_b1, priority_h0;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct snapshot);
} snapshots SEC(".maps");

__u32 packets;

SEC("tc")
int ctx_fields(struct __sk_buff *skb)
{
	__u32 key = packets++ & 3;
	struct snapshot *s = bpf_map_lookup_elem(&snapshots, &key);

	if (!s)
		return TC_ACT_OK;
	s->len = skb->len;
	s->pkt_type = skb->pkt_type;
	s->mark = skb->mark;
	s->queue_mapping = skb->queue_mapping;
	s->protocol = skb->protocol;
	s->vlan_present = skb->vlan_present;
	s->vlan_tci = skb->vlan_tci;
	s->vlan_proto = skb->vlan_proto;
	s->priority = skb->priority;
	s->ingress_ifindex = skb->ingress_ifindex;
	s->ifindex = skb->ifindex;
	s->tc_index = skb->tc_index;
	for (int i = 0; i < 5; i++)
		s->cb[i] = skb->cb[i];
	s->hash = skb->hash;
	s->tc_classid = skb->tc_classid;
	s->data_len = skb->data_end - skb->data;
	s->meta_len = skb->data - skb->data_meta;
	s->napi_id = skb->napi_id;
	s->tstamp = skb->tstamp;
	s->wire_len = skb->wire_len;
	s->gso_segs = skb->gso_segs;
	s->gso_size = skb->gso_size;
	s->tstamp_type = skb->tstamp_type;
	s->hwtstamp = skb->hwtstamp;

	s->mark_b0 = *(volatile __u8 *)((void *)skb + offsetof(struct __sk_buff, mark));
	s->mark_b3 = *(volatile __u8 *)((void *)skb + offsetof(struct __sk_buff, mark) + 3);
	s->protocol_h0 = *(volatile __u16 *)((void *)skb + offsetof(struct __sk_buff, protocol));
	s->len_h1 = *(volatile __u16 *)((void *)skb + offsetof(struct __sk_buff, len) + 2);
	s->cb0_b1 = *(volatile __u8 *)((void *)skb + offsetof(struct __sk_buff, cb) + 1);
	s->priority_h0 = *(volatile __u16 *)((void *)skb + offsetof(struct __sk_buff, priority));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
