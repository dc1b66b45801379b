/* pin_counter: counts the packets of a hook in a map pinned by name
 * (LIBBPF_PIN_BY_NAME), so that several attachments of this object share
 * one counter the way libbpf loaders share pinned maps. The verdict is the
 * const volatile knob `verdict` (default TC_ACT_UNSPEC: tcx runs the next
 * program), which `tcx attach --set verdict=N` changes. */
#include "../include/tcx_bpf.h"

#define LIBBPF_PIN_BY_NAME 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tcx_ops_packets SEC(".maps");

const volatile __s32 verdict = TC_ACT_UNSPEC;

SEC("tc")
int pin_counter(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&tcx_ops_packets, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
