// SPDX-License-Identifier: GPL-2.0
/*
 * fib_probe: bpf_fib_lookup with a struct bpf_fib_lookup read from the
 * packet (the 64 bytes after the Ethernet header) and flags from cb[0].
 * The params are written back to the packet where they came from and the
 * result goes to cb[1], so that comparing data_out and ctx_out of the
 * kernel's and the engine's runs compares every byte the helper wrote.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int fib_probe(struct __sk_buff *skb)
{
	struct bpf_fib_lookup p;

	if (bpf_skb_load_bytes(skb, 14, &p, sizeof(p)))
		return TC_ACT_SHOT;
	skb->cb[1] = bpf_fib_lookup(skb, &p, sizeof(p), skb->cb[0]);
	bpf_skb_store_bytes(skb, 14, &p, sizeof(p), 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
