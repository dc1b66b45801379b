package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/maps"
)

// mapDump is one map's contents after the run, as --dump-maps prints them.
type mapDump struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	KeySize    uint32 `json:"key_size"`
	ValueSize  uint32 `json:"value_size"`
	MaxEntries uint32 `json:"max_entries"`
	// Entries in key order; zero-valued array slots are left out and
	// counted in ZeroSlots (an array always has MaxEntries keys).
	Entries   []mapEntryDump `json:"entries"`
	ZeroSlots int            `json:"zero_slots_omitted,omitempty"`
	// Records are the samples waiting in a ring buffer, oldest first.
	Records []string `json:"records,omitempty"`
}

// mapEntryDump is one key and its value(s), as hex and, when the map has
// BTF for them, formatted.
type mapEntryDump struct {
	Key      string   `json:"key"`
	Value    string   `json:"value,omitempty"`
	Values   []string `json:"values,omitempty"` // per-CPU maps, by CPU
	KeyBTF   string   `json:"key_formatted,omitempty"`
	ValueBTF []string `json:"value_formatted,omitempty"` // one per value
	Program  string   `json:"program,omitempty"`         // prog arrays
}

// mapType names a map type as bpftool does ("hash", "percpu_array" ...).
func mapType(t ebpf.MapType) string {
	switch t {
	case ebpf.Hash:
		return "hash"
	case ebpf.Array:
		return "array"
	case ebpf.ProgramArray:
		return "prog_array"
	case ebpf.PerfEventArray:
		return "perf_event_array"
	case ebpf.PerCPUHash:
		return "percpu_hash"
	case ebpf.PerCPUArray:
		return "percpu_array"
	case ebpf.LRUHash:
		return "lru_hash"
	case ebpf.LRUCPUHash:
		return "lru_percpu_hash"
	case ebpf.LPMTrie:
		return "lpm_trie"
	case ebpf.RingBuf:
		return "ringbuf"
	}
	return strings.ToLower(t.String())
}

func isPerCPU(t ebpf.MapType) bool {
	return t == ebpf.PerCPUArray || t == ebpf.PerCPUHash || t == ebpf.LRUCPUHash
}

// dumpMap reads every entry of m. spec supplies the BTF of keys and values;
// numCPU is how many values a per-CPU map keeps.
func dumpMap(m maps.Map, spec *ebpf.MapSpec, numCPU int) (mapDump, error) {
	info := m.Info()
	d := mapDump{Name: info.Name, Type: mapType(info.Type), KeySize: info.KeySize,
		ValueSize: info.ValueSize, MaxEntries: info.MaxEntries, Entries: []mapEntryDump{}}
	var keyType, valueType btf.Type
	if spec != nil {
		keyType, valueType = spec.Key, spec.Value
	}
	switch mm := m.(type) {
	case *maps.RingBuf:
		recs, err := drainRing(mm)
		d.Records = recs
		return d, err
	case *maps.ProgramArray:
		for i := range info.MaxEntries {
			if p := mm.Get(i); p != nil {
				e := mapEntryDump{Key: fmt.Sprintf("%x", le32(i)), KeyBTF: fmt.Sprint(i), Program: programName(p)}
				d.Entries = append(d.Entries, e)
			}
		}
		return d, nil
	case *maps.PerfEventArray:
		return d, nil
	}
	keys, err := mapKeys(m, int(info.KeySize))
	if err != nil {
		return d, err
	}
	perCPU := isPerCPU(info.Type)
	stride := int(info.ValueSize)
	nvals := 1
	if perCPU {
		stride = (stride + 7) &^ 7
		nvals = numCPU
	}
	buf := make([]byte, stride*nvals)
	for _, k := range keys {
		if err := m.Lookup(k, buf); err != nil {
			if errors.Is(err, syscall.ENOENT) { // deleted meanwhile (LRU)
				continue
			}
			return d, fmt.Errorf("dump map %s: key %x: %w", info.Name, k, err)
		}
		vals := make([][]byte, nvals)
		for cpu := range nvals {
			vals[cpu] = buf[cpu*stride : cpu*stride+int(info.ValueSize)]
		}
		if (info.Type == ebpf.Array || info.Type == ebpf.PerCPUArray) && allZeroValues(vals) {
			d.ZeroSlots++
			continue
		}
		e := mapEntryDump{Key: fmt.Sprintf("%x", k), KeyBTF: formatBTF(keyType, k)}
		if e.KeyBTF == "" && (info.Type == ebpf.Array || info.Type == ebpf.PerCPUArray) && len(k) == 4 {
			e.KeyBTF = fmt.Sprint(binary.NativeEndian.Uint32(k)) // global data has no key BTF
		}
		for _, v := range vals {
			if perCPU {
				e.Values = append(e.Values, fmt.Sprintf("%x", v))
			} else {
				e.Value = fmt.Sprintf("%x", v)
			}
			if f := formatBTF(valueType, v); f != "" {
				e.ValueBTF = append(e.ValueBTF, f)
			}
		}
		if len(e.ValueBTF) != nvals {
			e.ValueBTF = nil
		}
		d.Entries = append(d.Entries, e)
	}
	return d, nil
}

// mapKeys walks m with NextKey and returns its keys sorted, so dumps of
// hash maps do not depend on bucket order.
func mapKeys(m maps.Map, keySize int) ([][]byte, error) {
	var keys [][]byte
	var cur []byte
	for {
		next := make([]byte, keySize)
		err := m.NextKey(cur, next)
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dump map %s: %w", m.Info().Name, err)
		}
		keys = append(keys, next)
		cur = next
		if len(keys) > int(m.Info().MaxEntries) {
			return nil, fmt.Errorf("dump map %s: more keys than max_entries", m.Info().Name)
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys, nil
}

func allZeroValues(vals [][]byte) bool {
	for _, v := range vals {
		for _, c := range v {
			if c != 0 {
				return false
			}
		}
	}
	return true
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func programName(p any) string {
	if n, ok := p.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", p)
}

// drainRing reads the records waiting in a ring buffer without blocking.
func drainRing(rb *maps.RingBuf) ([]string, error) {
	r, err := rb.NewReader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var recs []string
	for r.AvailableBytes() > 0 {
		r.SetDeadline(time.Now()) // the records are already there: never wait
		rec, err := r.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, fmt.Sprintf("%x", rec.RawSample))
	}
	return recs, nil
}

// writeMapDumps prints dumps for people: one block per map, entries as
// "key => value" with the BTF form when there is one.
func writeMapDumps(w io.Writer, dumps []mapDump) {
	for _, d := range dumps {
		fmt.Fprintf(w, "map %s (%s, key %d B, value %d B, max %d)", d.Name, d.Type, d.KeySize, d.ValueSize, d.MaxEntries)
		switch {
		case d.Type == "ringbuf":
			fmt.Fprintf(w, ": %d record(s) waiting\n", len(d.Records))
			for i, r := range d.Records {
				fmt.Fprintf(w, "  record %d (%d bytes): %s\n", i+1, len(r)/2, r)
			}
			continue
		case len(d.Entries) == 0 && d.ZeroSlots > 0:
			fmt.Fprintf(w, ": %d slot%s, all zero\n", d.ZeroSlots, plural(d.ZeroSlots, "", "s"))
			continue
		case len(d.Entries) == 0:
			fmt.Fprintln(w, ": empty")
			continue
		}
		fmt.Fprintf(w, ": %d entr%s", len(d.Entries), plural(len(d.Entries), "y", "ies"))
		if d.ZeroSlots > 0 {
			fmt.Fprintf(w, " (+%d zero slots not shown)", d.ZeroSlots)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
		for _, e := range d.Entries {
			key := e.Key
			if e.KeyBTF != "" {
				key = e.KeyBTF
			}
			switch {
			case e.Program != "":
				fmt.Fprintf(tw, "  %s\t=> program %s\n", key, e.Program)
			case len(e.Values) > 0:
				for cpu, v := range e.Values {
					if e.ValueBTF != nil {
						v = e.ValueBTF[cpu]
					}
					fmt.Fprintf(tw, "  %s\t=> cpu%d %s\n", key, cpu, v)
					key = ""
				}
			default:
				v := e.Value
				if e.ValueBTF != nil {
					v = e.ValueBTF[0]
				}
				fmt.Fprintf(tw, "  %s\t=> %s\n", key, v)
			}
		}
		tw.Flush()
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
