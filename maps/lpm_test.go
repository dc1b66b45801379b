package maps

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

type lpmEntry struct {
	plen  uint32
	data  []byte
	value uint32
}

// naiveLPM is the reference: a list scanned for the longest match.
type naiveLPM []lpmEntry

func (n naiveLPM) find(plen uint32, data []byte) int {
	for i, e := range n {
		if e.plen == plen && prefixMatch(e.data, data, plen) == plen {
			return i
		}
	}
	return -1
}

func (n naiveLPM) longest(plen uint32, data []byte) (lpmEntry, bool) {
	best, ok := lpmEntry{}, false
	for _, e := range n {
		if e.plen <= plen && prefixMatch(e.data, data, e.plen) == e.plen && (!ok || e.plen > best.plen) {
			best, ok = e, true
		}
	}
	return best, ok
}

func TestLPMTrie_Model(t *testing.T) {
	for _, dataSize := range []int{1, 2, 4, 8, 9, 16} { // 8: the longest key matched in one word (lpmHead)
		t.Run(fmt.Sprintf("data%d", dataSize), func(t *testing.T) {
			const max = 48
			m := mustNew(t, &ebpf.MapSpec{Name: "l", Type: ebpf.LPMTrie, KeySize: uint32(4 + dataSize), ValueSize: 4, MaxEntries: max, Flags: FlagNoPrealloc}).(*LPMTrie)
			maxPrefix := uint32(8 * dataSize)
			rng := rand.New(rand.NewPCG(uint64(dataSize), 3))
			randData := func() []byte {
				d := make([]byte, dataSize)
				for i := range d {
					d[i] = byte(rng.IntN(4)) << 6 // few distinct prefixes: lots of overlap
				}
				d[dataSize-1] |= byte(rng.IntN(256))
				return d
			}
			var model naiveLPM
			for i := 0; i < 6000; i++ {
				plen := uint32(rng.IntN(int(maxPrefix) + 1))
				data := randData()
				key := lpmKey(plen, data...)
				idx := model.find(plen, data)
				switch rng.IntN(5) {
				case 0, 1:
					flags := uint64(rng.IntN(3))
					want := syscall.Errno(0)
					switch {
					case flags == UpdateNoExist && idx >= 0:
						want = syscall.EEXIST
					case flags == UpdateExist && idx < 0:
						want = syscall.ENOENT
					case idx < 0 && len(model) == max:
						want = syscall.ENOSPC
					}
					var err error
					if i%2 == 0 {
						err = m.Update(key, u32b(uint32(i)), flags)
					} else {
						err = errnoOf("update", m.UpdateElem(key, u32b(uint32(i)), flags, 0))
					}
					wantErrno(t, fmt.Sprintf("op %d update %x flags %d", i, key, flags), err, want)
					if want == 0 && idx >= 0 {
						model[idx].value, model[idx].data = uint32(i), data
					} else if want == 0 {
						model = append(model, lpmEntry{plen, data, uint32(i)})
					}
				case 2:
					want := syscall.Errno(0)
					if idx < 0 {
						want = syscall.ENOENT
					}
					wantErrno(t, fmt.Sprintf("op %d delete %x", i, key), m.Delete(key), want)
					if idx >= 0 {
						model = append(model[:idx], model[idx+1:]...)
					}
				default:
					// Look up a full-length and a random-length key both ways.
					for _, pl := range []uint32{maxPrefix, plen} {
						k := lpmKey(pl, data...)
						e, ok := model.longest(pl, data)
						out := make([]byte, 4)
						err := m.Lookup(k, out)
						slot, found := m.LookupSlot(k, 0)
						if ok != (err == nil) || ok != found {
							t.Fatalf("op %d lookup %x: model %v, Lookup %v, LookupSlot %v", i, k, ok, err, found)
						}
						if ok && (binary.NativeEndian.Uint32(out) != e.value || binary.NativeEndian.Uint32(m.Slots(0)[slot*8:]) != e.value) {
							t.Fatalf("op %d lookup %x: got %x, want /%d %x = %d", i, k, out, e.plen, e.data, e.value)
						}
					}
				}
				if i%100 == 0 {
					checkLPMIteration(t, m, model)
				}
			}
			checkLPMIteration(t, m, model)
		})
	}
}

// checkLPMIteration wants every entry exactly once, each after all the
// more specific entries inside it (the kernel's postorder).
func checkLPMIteration(t *testing.T, m *LPMTrie, model naiveLPM) {
	t.Helper()
	var seen []lpmEntry
	for _, next := range iterate(t, m, len(model)) {
		plen := binary.NativeEndian.Uint32(next)
		data := append([]byte(nil), next[4:]...)
		i := model.find(plen, data)
		if i < 0 {
			t.Fatalf("NextKey returned /%d %x, not in the map", plen, data)
		}
		if !bytes.Equal(model[i].data, data) {
			t.Fatalf("NextKey returned data %x, last stored %x", data, model[i].data)
		}
		for _, s := range seen {
			if s.plen == plen && prefixMatch(s.data, data, plen) == plen {
				t.Fatalf("NextKey returned /%d %x twice", plen, data)
			}
			if s.plen < plen && prefixMatch(s.data, data, s.plen) == s.plen {
				t.Fatalf("/%d %x came before the more specific /%d %x", s.plen, s.data, plen, data)
			}
		}
		seen = append(seen, lpmEntry{plen: plen, data: data})
	}
	if len(seen) != len(model) {
		t.Fatalf("iteration saw %d entries, map has %d", len(seen), len(model))
	}
}

// TestLPMTrie_ConcurrentLookups runs lock-free lookups against a writer
// that keeps republishing the trie; /8 is always there, so every lookup
// inside 10/8 must succeed.
func TestLPMTrie_ConcurrentLookups(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "l", Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 256, Flags: FlagNoPrealloc}).(*LPMTrie)
	if err := m.Update(lpmKey(8, 10, 0, 0, 0), u64b(8), UpdateAny); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if _, ok := m.LookupSlot(lpmKey(32, 10, byte(i), byte(i>>8), 1), 0); !ok {
					t.Error("lookup inside 10/8 failed")
					return
				}
			}
		}()
	}
	for i := 0; i < 5000; i++ {
		k := lpmKey(uint32(16+i%17), 10, byte(i), byte(i>>3), 0)
		if i%3 == 2 {
			m.DeleteElem(k, 0)
		} else {
			m.UpdateElem(k, u64b(uint64(i)), UpdateAny, 0)
		}
	}
	stop.Store(true)
	wg.Wait()
}
