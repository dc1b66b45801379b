/* tunnel_md: steering into a collect-metadata tunnel device (a Geneve or
 * VXLAN device created "external"). IPv4 packets to 198.51.100.0/24 get
 * tunnel metadata with bpf_skb_set_tunnel_key: the remote end is
 * 192.0.2.<last byte of the inner destination>, the VNI the inner
 * source's last byte plus vni_base, TTL 64, TOS copied from the inner
 * header, no UDP checksum for odd VNIs (BPF_F_ZERO_CSUM_TX). Packets with
 * DSCP set also carry an 8-byte Geneve option (class 0x0102, type 0x80,
 * the DSCP as data) through bpf_skb_set_tunnel_opt. The program reads the
 * key back with bpf_skb_get_tunnel_key (the receive view swaps remote and
 * local) into cb[0..2], redirects to the tunnel device (tunnel_ifindex)
 * and counts packets per VNI. Verdicts: TC_ACT_REDIRECT for tunnelled
 * packets, TC_ACT_OK for the rest, TC_ACT_SHOT if a helper fails. */
#include "parse.h"

const volatile __u32 tunnel_ifindex = 42;
const volatile __u32 vni_base = 5000;
const volatile __be32 tun_prefix = 0x006433c6; /* 198.51.100.0 */
const volatile __be32 tun_mask = 0x00ffffff;   /* /24 */

struct bpf_tunnel_key {
	__u32 tunnel_id;
	union {
		__u32 remote_ipv4;
		__u32 remote_ipv6[4];
	};
	__u8 tunnel_tos;
	__u8 tunnel_ttl;
	union {
		__u16 tunnel_ext;
		__be16 tunnel_flags;
	};
	__u32 tunnel_label;
	union {
		__u32 local_ipv4;
		__u32 local_ipv6[4];
	};
};

#define BPF_F_ZERO_CSUM_TX (1ULL << 1)

static long (*bpf_skb_get_tunnel_key)(struct __sk_buff *skb, struct bpf_tunnel_key *key, __u32 size, __u64 flags) = (void *)20;
static long (*bpf_skb_set_tunnel_key)(struct __sk_buff *skb, struct bpf_tunnel_key *key, __u32 size, __u64 flags) = (void *)21;
static long (*bpf_skb_set_tunnel_opt)(struct __sk_buff *skb, void *opt, __u32 size) = (void *)30;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} vni_packets SEC(".maps");

SEC("tc")
int tunnel_md(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct bpf_tunnel_key key = {};
	struct iphdr *ip;
	__u8 opt[8];
	__u64 one = 1, *n;
	__u32 daddr;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return TC_ACT_OK;
	daddr = ip->daddr;
	if ((daddr & tun_mask) != tun_prefix)
		return TC_ACT_OK;

	key.tunnel_id = vni_base + (ip->saddr >> 24);
	key.remote_ipv4 = 0xc0000200 | (daddr >> 24); /* 192.0.2.x, host order */
	key.local_ipv4 = 0xc0000201;                  /* 192.0.2.1 */
	key.tunnel_tos = ip->tos;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), key.tunnel_id & 1 ? BPF_F_ZERO_CSUM_TX : 0))
		return TC_ACT_SHOT;
	if (ip->tos >> 2) {
		opt[0] = 0x01;
		opt[1] = 0x02;
		opt[2] = 0x80;
		opt[3] = 1; /* length in 4-byte words, after the header */
		opt[4] = ip->tos >> 2;
		opt[5] = opt[6] = opt[7] = 0;
		if (bpf_skb_set_tunnel_opt(skb, opt, sizeof(opt)))
			return TC_ACT_SHOT;
	}
	__builtin_memset(&key, 0, sizeof(key));
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return TC_ACT_SHOT;
	skb->cb[0] = key.tunnel_id;
	skb->cb[1] = key.remote_ipv4;
	skb->cb[2] = key.local_ipv4;

	n = bpf_map_lookup_elem(&vni_packets, &key.tunnel_id);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&vni_packets, &key.tunnel_id, &one, BPF_NOEXIST);
	return bpf_redirect(tunnel_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
