package datapath_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/topology"
)

const replayFrames = 20000

// replayTopology is pcap in, a chain of three programs (counter, ACL,
// NAT; none decides, so frames are delivered), pcap out.
func replayTopology(in, out string, chain bool) *topology.Topology {
	t := chainTopology()
	t.Devices = t.Devices[:1]
	t.Objects = t.Objects[:3]
	d := &t.Devices[0]
	d.Wire = "pcap:" + in
	d.Record.Delivered = out
	d.Ingress = d.Ingress[:3]
	if !chain {
		d.Ingress = nil
	}
	return t
}

// BenchmarkReplay is pcap-to-pcap replay on one worker: with the
// three-program chain, and the baseline of the same replay with an empty
// chain (file reading, the runtime's hook and hop path, pcap writing).
// frames/s is per core.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "in.pcap")
	if err := dptraffic.WritePcap(in, dptraffic.Mixed(replayFrames, 11)); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		chain bool
	}{{"chain3", true}, {"empty", false}} {
		b.Run(bc.name, func(b *testing.B) {
			var frames uint64
			var elapsed, cpu time.Duration
			for range b.N {
				built, err := replayTopology(in, filepath.Join(dir, "out.pcap"), bc.chain).Build(topology.BuildOptions{})
				if err != nil {
					b.Fatal(err)
				}
				dp, err := datapath.New(datapath.Config{Runtime: built.Runtime, Devices: built.Devices})
				if err != nil {
					b.Fatal(err)
				}
				start, cpu0 := time.Now(), cpuTime()
				if err := dp.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				cpu += cpuTime() - cpu0
				frames += dp.Stats()[0].RxFrames
				built.Close()
			}
			b.ReportMetric(float64(frames)/elapsed.Seconds(), "frames/s")
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(frames), "ns/frame")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(frames), "cpu-ns/frame")
		})
	}
}
