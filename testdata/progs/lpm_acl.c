/* lpm_acl: a source-address ACL on longest-prefix-match tries, one for
 * IPv4 and one for IPv6. The rule set ships in .rodata and is installed
 * into the tries by the program itself on its first run (a .bss flag
 * remembers that), so the object is self-contained; a control plane may add
 * rules too. The most specific rule wins: ACL_DENY drops, ACL_MARK passes
 * and sets skb->mark to the rule's mark, ACL_ALLOW passes. Every rule
 * counts its hits. Unknown sources and non-IP frames pass.
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT. */
#include "parse.h"

enum { ACL_ALLOW, ACL_DENY, ACL_MARK };

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct acl_rule {
	__u32 action;
	__u32 mark;
	__u64 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, struct acl_rule);
} acl_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6);
	__type(value, struct acl_rule);
} acl_v6 SEC(".maps");

struct rule_v4 {
	__u32 prefixlen;
	__u8 addr[4];
	__u32 action;
	__u32 mark;
};

struct rule_v6 {
	__u32 prefixlen;
	__u8 addr[16];
	__u32 action;
	__u32 mark;
};

const volatile struct rule_v4 rules_v4[] = {
	{8, {10, 0, 0, 0}, ACL_ALLOW, 0},
	{16, {10, 1, 0, 0}, ACL_DENY, 0},
	{24, {10, 1, 2, 0}, ACL_MARK, 0x102},
	{32, {10, 1, 2, 3}, ACL_DENY, 0},
	{12, {172, 16, 0, 0}, ACL_MARK, 0x172},
	{16, {192, 168, 0, 0}, ACL_ALLOW, 0},
	{24, {198, 51, 100, 0}, ACL_DENY, 0},
	{0, {0, 0, 0, 0}, ACL_MARK, 0xdef},
};

const volatile struct rule_v6 rules_v6[] = {
	{8, {0xfd}, ACL_ALLOW, 0},
	{32, {0x20, 0x01, 0x0d, 0xb8}, ACL_MARK, 0xdb8},
	{48, {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01}, ACL_DENY, 0},
	{10, {0xfe, 0x80}, ACL_DENY, 0},
};

bool installed;

static __always_inline void install_rules(void)
{
	for (int i = 0; i < ARRAY_SIZE(rules_v4); i++) {
		struct lpm_v4 k = {.prefixlen = rules_v4[i].prefixlen};
		struct acl_rule r = {.action = rules_v4[i].action, .mark = rules_v4[i].mark};

		__builtin_memcpy(k.addr, (void *)rules_v4[i].addr, 4);
		bpf_map_update_elem(&acl_v4, &k, &r, BPF_NOEXIST);
	}
	for (int i = 0; i < ARRAY_SIZE(rules_v6); i++) {
		struct lpm_v6 k = {.prefixlen = rules_v6[i].prefixlen};
		struct acl_rule r = {.action = rules_v6[i].action, .mark = rules_v6[i].mark};

		__builtin_memcpy(k.addr, (void *)rules_v6[i].addr, 16);
		bpf_map_update_elem(&acl_v6, &k, &r, BPF_NOEXIST);
	}
	installed = true;
}

static __always_inline int apply(struct __sk_buff *skb, struct acl_rule *r)
{
	if (!r)
		return TC_ACT_OK;
	__sync_fetch_and_add(&r->hits, 1);
	switch (r->action) {
	case ACL_DENY:
		return TC_ACT_SHOT;
	case ACL_MARK:
		skb->mark = r->mark;
		return TC_ACT_OK;
	}
	return TC_ACT_OK;
}

SEC("tc")
int lpm_acl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct l2 l2;

	if (!installed)
		install_rules();

	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0)
		return TC_ACT_OK;
	if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);
		struct lpm_v4 k = {.prefixlen = 32};

		if (!ip)
			return TC_ACT_OK;
		__builtin_memcpy(k.addr, &ip->saddr, 4);
		return apply(skb, bpf_map_lookup_elem(&acl_v4, &k));
	}
	if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);
		struct lpm_v6 k = {.prefixlen = 128};

		if (!ip6)
			return TC_ACT_OK;
		__builtin_memcpy(k.addr, &ip6->saddr, 16);
		return apply(skb, bpf_map_lookup_elem(&acl_v6, &k));
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
