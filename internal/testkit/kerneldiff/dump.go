package kerneldiff

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/maps"
)

// Comparable reports whether the differential test can compare m's
// contents with the kernel's: everything but ring buffers (compared by
// record), prog arrays, perf event arrays and maps of maps (whose values
// are kernel object IDs) and sockmaps and sockhashes of 4-byte values
// (whose lookups from userspace answer ENOSPC; with 8-byte values they
// read socket cookies, which the mirrored sockets share).
func Comparable(m maps.Map) bool {
	switch i := m.Info(); i.Type {
	case ebpf.RingBuf, ebpf.ProgramArray, ebpf.PerfEventArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return false
	case ebpf.SockMap, ebpf.SockHash:
		return i.ValueSize == 8
	}
	return true
}

// Contents dumps an engine map the way kernel.TestRunner.MapContents dumps
// a kernel map: every entry, sorted by key bytes, with one value per CPU
// (of ValueSize bytes each) for per-CPU maps.
func Contents(m maps.Map) ([]kernel.KV, error) {
	info := m.Info()
	perCPU := info.Type == ebpf.PerCPUArray || info.Type == ebpf.PerCPUHash || info.Type == ebpf.LRUCPUHash
	ncpu := 1
	stride := int(info.ValueSize)
	if perCPU {
		sm, ok := m.(maps.SlotMap)
		if !ok {
			return nil, fmt.Errorf("dump %s: per-CPU map without slots: %w", info.Name, syscall.EINVAL)
		}
		ncpu, stride = sm.NumCPU(), sm.Stride()
	}
	var out []kernel.KV
	var key []byte
	next := make([]byte, info.KeySize)
	val := make([]byte, ncpu*stride)
	for {
		err := m.NextKey(key, next)
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dump %s: %w", info.Name, err)
		}
		key = bytes.Clone(next)
		if err := m.Lookup(key, val); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue // deleted meanwhile
			}
			return nil, fmt.Errorf("dump %s: %w", info.Name, err)
		}
		kv := kernel.KV{Key: key}
		for cpu := range ncpu {
			kv.Values = append(kv.Values, bytes.Clone(val[cpu*stride:cpu*stride+int(info.ValueSize)]))
		}
		out = append(out, kv)
	}
	slices.SortFunc(out, func(a, b kernel.KV) int { return bytes.Compare(a.Key, b.Key) })
	return out, nil
}

// DrainRing returns the records a reader has not consumed yet, oldest
// first, without waiting.
func DrainRing(r *maps.RingBufReader) ([][]byte, error) {
	r.SetDeadline(time.Now())
	var out [][]byte
	for {
		rec, err := r.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec.RawSample)
	}
}

// DiffKVs describes the first difference between a kernel dump and an
// engine dump of the same map, "" if they are equal.
func DiffKVs(kern, eng []kernel.KV) string {
	for i := 0; i < len(kern) || i < len(eng); i++ {
		switch {
		case i >= len(kern):
			return fmt.Sprintf("engine has extra key %x", eng[i].Key)
		case i >= len(eng):
			return fmt.Sprintf("engine lacks key %x", kern[i].Key)
		case !bytes.Equal(kern[i].Key, eng[i].Key):
			return fmt.Sprintf("entry %d: kernel key %x, engine key %x", i, kern[i].Key, eng[i].Key)
		case len(kern[i].Values) != len(eng[i].Values):
			return fmt.Sprintf("key %x: kernel has %d values (CPUs), engine %d", kern[i].Key, len(kern[i].Values), len(eng[i].Values))
		}
		for cpu := range kern[i].Values {
			if k, e := kern[i].Values[cpu], eng[i].Values[cpu]; !bytes.Equal(k, e) {
				return fmt.Sprintf("key %x cpu %d: kernel value %x, engine value %x", kern[i].Key, cpu, k, e)
			}
		}
	}
	return ""
}

// ctxField names the struct __sk_buff field holding byte off of ctx_out
// and returns where the field starts and its size.
func ctxField(off int) (string, int, int) {
	names := [...]string{"len", "pkt_type", "mark", "queue_mapping", "protocol", "vlan_present",
		"vlan_tci", "vlan_proto", "priority", "ingress_ifindex", "ifindex", "tc_index",
		"cb[0]", "cb[1]", "cb[2]", "cb[3]", "cb[4]", "hash", "tc_classid", "data", "data_end", "napi_id"}
	switch {
	case off < 4*len(names):
		return names[off/4], off &^ 3, 4
	case off >= 152 && off < 160:
		return "tstamp", 152, 8
	case off >= 184:
		return "hwtstamp", 184, 8
	}
	switch off &^ 3 {
	case 160:
		return "wire_len", 160, 4
	case 164:
		return "gso_segs", 164, 4
	case 176:
		return "gso_size", 176, 4
	case 180:
		return "tstamp_type", 180, 4
	}
	return fmt.Sprintf("byte %d", off), off, 1
}

// DiffCtx names the first __sk_buff field where two ctx_out images differ.
func DiffCtx(kern, eng []byte) string {
	switch {
	case kern == nil && eng == nil:
		return ""
	case kern == nil || eng == nil:
		return fmt.Sprintf("ctx_out: kernel %d bytes, engine %d bytes", len(kern), len(eng))
	case len(kern) != len(eng):
		return fmt.Sprintf("ctx_out length: kernel %d, engine %d", len(kern), len(eng))
	}
	for i := range kern {
		if kern[i] == eng[i] {
			continue
		}
		name, off, n := ctxField(i)
		return fmt.Sprintf("ctx_out.%s: kernel %x, engine %x", name, kern[off:off+n], eng[off:off+n])
	}
	return ""
}

// DiffData names the first difference between two output packets.
func DiffData(kern, eng []byte) string {
	if len(kern) != len(eng) {
		return fmt.Sprintf("data_out length: kernel %d, engine %d", len(kern), len(eng))
	}
	for i := range kern {
		if kern[i] != eng[i] {
			return fmt.Sprintf("data_out[%d]: kernel %#02x, engine %#02x", i, kern[i], eng[i])
		}
	}
	return ""
}

// DiffRecords describes the first difference between two lists of ring
// buffer records.
func DiffRecords(kern, eng [][]byte) string {
	if len(kern) != len(eng) {
		return fmt.Sprintf("kernel has %d records, engine %d", len(kern), len(eng))
	}
	for i := range kern {
		if !bytes.Equal(kern[i], eng[i]) {
			return fmt.Sprintf("record %d: kernel %x, engine %x", i, kern[i], eng[i])
		}
	}
	return ""
}
