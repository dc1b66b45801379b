// Package dptraffic builds the frames the datapath's demo, tests and
// benchmarks send: a small readable demo capture and a large mixed one,
// deterministic for a seed, serialised with gopacket's layers.
package dptraffic
