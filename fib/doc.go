// Package fib is a network namespace's routing tables, devices, addresses
// and neighbour cache as bpf_fib_lookup sees them, and the helper's lookup
// with the kernel's result codes.
//
// A Table is built from Go (NewNamespace, AddAddress for the routes the
// kernel adds with an address, then Routes and Neighbours) or from a
// datapath topology (package topology: devices' addresses, routes:,
// neighbours:, rules:, one Table per namespace). Lookup follows Linux
// 6.18's bpf_ipv4_fib_lookup and bpf_ipv6_fib_lookup. Without fib rules
// IPv4 looks in main with the local table merged into it, then in the
// default table when main has no route or a throw route, and IPv6 in
// local, then main; with Rules (ip rule: prefixes, input and output
// device, mark under a mask, not; a table, blackhole, unreachable or
// prohibit) the rules decide, and IPv4's local table stands apart;
// BPF_FIB_LOOKUP_DIRECT (with TBID: any table, tbid 0 being main), OUTPUT
// (IPv4 skips routes leaving by another device, IPv6 only prefers the
// named one), SKIP_NEIGH, SRC (the route's preferred source, else the
// kernel's choice: inet_select_addr, RFC 6724 as ipv6_dev_get_saddr),
// MARK (which only rules read); the MTU check with tot_len (a locked
// route MTU, else the device's; FRAG_NEEDED with mtu_result) and without
// (the frame against the device's MTU). Every answer it gives is compared
// with a kernel namespace built the same way (kerneldiff's
// TestKernel_FibLookup, random params over both families and every flag;
// datapath's TestFibRouter_Kernel, a forwarding program on tcx).
//
// Not modelled: rule selectors on TOS/DSCP, protocol, ports, tunnel ID
// or UID, goto and nop rules, suppress_prefixlength; multipath routes (the kernel picks a
// path by a flow hash keyed with a random per-boot seed unless
// fib_multipath_hash_seed is set), lightweight tunnel encapsulation
// (UNSUPP_LWT), PMTU exceptions learnt from ICMP, unlocked route MTUs
// with net.ipv4.ip_forward_use_pmtu, VRFs, and an IPv6 namespace without
// ::1 on lo, the only way to NO_SRC_ADDR.
package fib
