// Package pktgen generates realistic, seeded, deterministic Ethernet frames
// for differential tests of tc programs: the same seed always yields the same
// frames, and every frame fits BPF_PROG_TEST_RUN's limits.
//
// The mix covers untagged, 802.1Q and QinQ frames carrying IPv4 (options and
// fragments sometimes), IPv6 (extension headers sometimes), TCP (SYNs with
// options, data, FIN, RST), UDP (DNS queries, NTP, bulk), ICMP and ICMPv6
// (echo, errors), IP-in-IP tunnels, ARP and unknown ethertypes, with payload
// sizes from empty to jumbo. A few percent of frames are deliberately
// malformed: truncated, bad header lengths, bad checksums.
package pktgen
