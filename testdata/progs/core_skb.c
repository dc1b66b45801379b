/* core_skb: a CO-RE program, as libbpf-style programs built against
 * vmlinux.h are. It sees the context through its own view of struct
 * __sk_buff (a ___local flavour, fields in another order, one field no
 * kernel has) marked preserve_access_index, so every access is a CO-RE
 * field relocation the loader must move to the UAPI offset; plus a type
 * size, an enum value and two field-existence relocations, and a guarded
 * read of the missing field that the loader poisons (dead code).
 * Writes: mark = len + 1, priority = the ethertype (0 on a short frame),
 * cb[0] = len, cb[1] = sizeof(struct ethhdr) in the target (14),
 * cb[2] = BPF_FUNC_map_lookup_elem in the target (1; 7 locally),
 * cb[3] = gso_size exists (1), cb[4] = no_such_field exists (0);
 * in .bss: gso_size_bytes = its size in the target (4), len_signed = its
 * signedness (0).
 * Verdict: TC_ACT_OK. */
#include "tcx_bpf.h"

struct __sk_buff___local {
	__u32 cb[5];
	__u32 no_such_field;
	__u32 priority;
	__u32 mark;
	__s32 len; /* signed here: the target's signedness wins */
	__u32 data_end;
	__u32 data;
	__u16 gso_size; /* 2 bytes here, 4 in the target */
} __attribute__((preserve_access_index));

struct ethhdr___local {
	unsigned char h_dest[6];
	unsigned char h_source[6];
	__be16 h_proto;
} __attribute__((preserve_access_index));

enum bpf_func_id___local {
	BPF_FUNC_map_lookup_elem___local = 7,
};

#define FIELD_BYTE_SIZE 1
#define FIELD_EXISTS 2
#define FIELD_SIGNED 3
#define TYPE_SIZE 1
#define ENUMVAL_VALUE 1

__u32 gso_size_bytes, len_signed;

SEC("tc")
int core_skb(struct __sk_buff *ctx)
{
	struct __sk_buff___local *skb = (void *)ctx;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr___local *eth = data;
	__u32 len = skb->len;

	skb->mark = len + 1;
	skb->priority = 0;
	if ((void *)(eth + 1) <= data_end)
		skb->priority = bpf_ntohs(eth->h_proto);
	skb->cb[0] = len;
	skb->cb[1] = __builtin_preserve_type_info(*(struct ethhdr___local *)0, TYPE_SIZE);
	skb->cb[2] = __builtin_preserve_enum_value(*(enum bpf_func_id___local *)BPF_FUNC_map_lookup_elem___local, ENUMVAL_VALUE);
	skb->cb[3] = __builtin_preserve_field_info(skb->gso_size, FIELD_EXISTS);
	skb->cb[4] = __builtin_preserve_field_info(skb->no_such_field, FIELD_EXISTS);
	gso_size_bytes = __builtin_preserve_field_info(skb->gso_size, FIELD_BYTE_SIZE);
	len_signed = __builtin_preserve_field_info(skb->len, FIELD_SIGNED);
	if (__builtin_preserve_field_info(skb->no_such_field, FIELD_EXISTS))
		skb->mark = skb->no_such_field;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
