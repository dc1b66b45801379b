// SPDX-License-Identifier: GPL-2.0
/* bpf_dynptr_slice_rdwr from tc programs, over an skb dynptr and over a
 * local one: Linux 6.18 refuses both at load ("bpf_dynptr_slice_rdwr() is
 * not allowed"), and so must the engine (TestKernel_SliceRdwrRefused). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice_rdwr(const struct bpf_dynptr *ptr, __u32 offset, void *buffer__opt, __u32 buffer__szk) __ksym;

char mem[16];

SEC("tc")
int rdwr_skb(struct __sk_buff *skb)
{
	struct bpf_dynptr d;
	char buf[4];
	char *s;

	if (bpf_dynptr_from_skb(skb, 0, &d))
		return 1;
	s = bpf_dynptr_slice_rdwr(&d, 0, buf, sizeof(buf));
	if (!s)
		return 2;
	s[0] = 1;
	return 0;
}

SEC("tc")
int rdwr_local(struct __sk_buff *skb)
{
	struct bpf_dynptr d;
	char buf[4];
	char *s;

	bpf_dynptr_from_mem(mem, sizeof(mem), 0, &d);
	s = bpf_dynptr_slice_rdwr(&d, 0, buf, sizeof(buf));
	if (!s)
		return 2;
	s[0] = 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
