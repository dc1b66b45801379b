/* dns_guard: a DNS tunnelling detector for queries to port 53 over UDP
 * (IPv4 or IPv6, untagged). It walks the QNAME of the first question byte
 * by byte with direct packet access in bounded loops, lower-casing it into
 * an FNV-1a hash (names longer than MAX_NAME bytes are dropped), and drops names that look like tunnels: more than
 * max_labels labels, a label longer than max_label_len, or more than
 * max_name_len bytes. Queries per name hash are counted in a hash map
 * (new names stop being counted when it is full). mark = the name hash,
 * cb[0] = labels << 16 | name length. Malformed names are dropped.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "parse.h"

#define MAX_NAME 255
#define MAX_LABEL 63

const volatile __u32 max_labels = 8;
const volatile __u32 max_label_len = 40;
const volatile __u32 max_name_len = 96;

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

/* Per-CPU scratch for the name statistics. Counters kept in map memory
 * (volatile, so clang cannot cache them in registers) stay unknown to the
 * verifier, so the states of the byte loop do not multiply by every
 * possible label count and position. */
struct name_stats {
	__u32 labels;
	__u32 longest;
	__u32 name_len;
	__u32 rem; /* bytes left in the current label */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct name_stats);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} name_counts SEC(".maps");

SEC("tc")
int dns_guard(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u32 hash = 0x811c9dc5, zero = 0;
	volatile struct name_stats *st;
	bool done = false;
	struct dnshdr *dns;
	struct udphdr *uh;
	struct cursor c;
	struct l2 l2;
	__u8 *p;
	__u64 one = 1, *cnt;

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0 || l2.vlans)
		return TC_ACT_OK;
	if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);

		if (!ip || ip->protocol != IPPROTO_UDP || ipv4_is_fragment(ip))
			return TC_ACT_OK;
	} else if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		if (!ip6 || ip6->nexthdr != IPPROTO_UDP)
			return TC_ACT_OK;
	} else {
		return TC_ACT_OK;
	}
	uh = c.pos;
	if ((void *)(uh + 1) > c.end || uh->dest != bpf_htons(53))
		return TC_ACT_OK;
	dns = (void *)(uh + 1);
	if ((void *)(dns + 1) > c.end)
		return TC_ACT_SHOT;
	/* Only standard queries with one question. */
	if ((dns->flags & bpf_htons(0xf800)) != 0 || dns->qdcount != bpf_htons(1))
		return TC_ACT_OK;

	/* One flat loop over the name bytes; with the label state in map
	 * memory the verifier's work stays linear in MAX_NAME. */
	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return TC_ACT_OK;
	st->labels = st->longest = st->name_len = st->rem = 0;
	p = (void *)(dns + 1);
	for (int i = 0; i < MAX_NAME; i++) {
		__u8 ch;

		if ((void *)(p + 1) > c.end)
			return TC_ACT_SHOT;
		ch = *p++;
		if (st->rem == 0) {
			if (ch == 0) {
				done = true;
				break;
			}
			if (ch > MAX_LABEL)
				return TC_ACT_SHOT; /* no compression pointers in a query */
			if (st->labels++)
				hash = (hash ^ '.') * 0x01000193;
			if (ch > st->longest)
				st->longest = ch;
			st->name_len += ch + 1;
			st->rem = ch;
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			ch += 'a' - 'A';
		hash = (hash ^ ch) * 0x01000193;
		st->rem--;
	}
	if (!done)
		return TC_ACT_SHOT;
	skb->mark = hash;
	skb->cb[0] = st->labels << 16 | st->name_len;
	if (st->labels > max_labels || st->longest > max_label_len || st->name_len > max_name_len)
		return TC_ACT_SHOT;

	cnt = bpf_map_lookup_elem(&name_counts, &hash);
	if (cnt)
		(*cnt)++;
	else
		bpf_map_update_elem(&name_counts, &hash, &one, BPF_NOEXIST);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
