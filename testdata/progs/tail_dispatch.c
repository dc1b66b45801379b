/* tail_dispatch: a protocol dispatcher built on tail calls. The entry
 * program parses up to L3, stores the L4 offset in cb[0] and the protocol
 * in cb[1], and tail-calls through the prog array "dispatch" (slot = IP
 * protocol class). The array is initialised in the ELF (BTF __array values),
 * so loaders populate it without code. The TCP handler tail-calls once more
 * into the SYN handler for connection attempts (a chain of two). Slot
 * SLOT_ICMP is deliberately left empty: the tail call then falls through
 * and the entry program handles the packet itself. mark carries a trace of
 * the programs that ran (one nibble each).
 * Verdicts: TC_ACT_OK, TC_ACT_SHOT (TCP SYN to a closed port, UDP to port 0). */
#include "parse.h"

enum { SLOT_TCP, SLOT_UDP, SLOT_ICMP, SLOT_TCP_SYN, SLOT_MAX };

int handle_tcp(struct __sk_buff *skb);
int handle_udp(struct __sk_buff *skb);
int handle_tcp_syn(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SLOT_MAX);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} dispatch SEC(".maps") = {
	.values = {
		[SLOT_TCP] = (void *)&handle_tcp,
		[SLOT_UDP] = (void *)&handle_udp,
		[SLOT_TCP_SYN] = (void *)&handle_tcp_syn,
	},
};

const volatile __u16 open_ports[4] = {22, 80, 443, 8080};

static __always_inline void trace(struct __sk_buff *skb, __u32 step)
{
	skb->mark = skb->mark << 4 | step;
}

SEC("tc")
int tail_dispatch(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct cursor c;
	struct l2 l2;
	__u32 slot;
	__u8 proto;

	skb->mark = 0;
	trace(skb, 1);
	cursor_init(&c, skb);
	if (parse_l2(&c, data, &l2) < 0)
		return TC_ACT_OK;
	if (l2.proto == ETH_P_IP) {
		struct iphdr *ip = parse_ipv4(&c);

		if (!ip || (ip->frag_off & bpf_htons(IP_OFFSET)))
			return TC_ACT_OK;
		proto = ip->protocol;
	} else if (l2.proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		if (!ip6)
			return TC_ACT_OK;
		proto = ip6->nexthdr;
	} else {
		return TC_ACT_OK;
	}

	switch (proto) {
	case IPPROTO_TCP:
		slot = SLOT_TCP;
		break;
	case IPPROTO_UDP:
		slot = SLOT_UDP;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		slot = SLOT_ICMP;
		break;
	default:
		return TC_ACT_OK;
	}
	skb->cb[0] = c.pos - data;
	skb->cb[1] = proto;
	bpf_tail_call(skb, &dispatch, slot);
	/* Only reached when the slot is empty. */
	trace(skb, 0xf);
	return TC_ACT_OK;
}

static __always_inline void *l4_header(struct __sk_buff *skb, __u32 size)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 off = skb->cb[0];

	if (off > 1024)
		return NULL;
	if (data + off + size > data_end)
		return NULL;
	return data + off;
}

SEC("tc")
int handle_tcp(struct __sk_buff *skb)
{
	struct tcphdr *th;

	trace(skb, 2);
	th = l4_header(skb, sizeof(*th));
	if (!th)
		return TC_ACT_OK;
	if ((th->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		bpf_tail_call(skb, &dispatch, SLOT_TCP_SYN);
	return TC_ACT_OK;
}

SEC("tc")
int handle_tcp_syn(struct __sk_buff *skb)
{
	struct tcphdr *th;
	__u16 port;

	trace(skb, 3);
	th = l4_header(skb, sizeof(*th));
	if (!th)
		return TC_ACT_OK;
	port = bpf_ntohs(th->dest);
	for (int i = 0; i < ARRAY_SIZE(open_ports); i++)
		if (open_ports[i] == port)
			return TC_ACT_OK;
	return TC_ACT_SHOT;
}

SEC("tc")
int handle_udp(struct __sk_buff *skb)
{
	struct udphdr *uh;

	trace(skb, 4);
	uh = l4_header(skb, sizeof(*uh));
	if (!uh)
		return TC_ACT_OK;
	if (uh->dest == 0)
		return TC_ACT_SHOT;
	skb->priority = bpf_ntohs(uh->dest) == 53 ? 5 : 0;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
