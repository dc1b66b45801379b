package skb

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/tcxgo/tcx/internal/vm"
)

// TestCtxCache_Lay checks that Lay skips WriteCtx only when the image
// would not change: after a change to any exported field of the packet
// (found by reflection, so a field WriteCtx reads that lies outside the
// compared range fails here), to its length or to the data address, the
// image Lay leaves is the one WriteCtx lays out.
func TestCtxCache_Lay(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	p, err := New(make([]byte, 80), Loopback())
	if err != nil {
		t.Fatal(err)
	}
	randomFields(rng, p)
	var c CtxCache
	var img, want [CtxSize]byte
	check := func(what string, base uint32) {
		t.Helper()
		c.Lay(img[:], p, base)
		p.WriteCtx(want[:], base)
		if img != want {
			t.Fatalf("after %s: the image is not the packet's", what)
		}
	}
	check("the first Lay", 0x10000)
	img[CtxMark] ^= 0xff // only Lay writes img: an unchanged packet must not rewrite it
	c.Lay(img[:], p, 0x10000)
	if img == want {
		t.Fatal("Lay rewrote the image of an unchanged packet")
	}
	img[CtxMark] ^= 0xff
	v := reflect.ValueOf(p).Elem()
	changed := 0
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() || !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(f.Uint() + 1 + uint64(rng.IntN(100)))
		case reflect.Array:
			f.Index(rng.IntN(f.Len())).SetUint(f.Index(0).Uint() + 1)
		default:
			continue // Quirks, OnClone: nothing the image shows
		}
		changed++
		check("a change of "+v.Type().Field(i).Name, 0x10000)
	}
	if changed < 20 {
		t.Fatalf("%d fields changed; want every field WriteCtx reads", changed)
	}
	q, err := New(make([]byte, 60), Loopback())
	if err != nil {
		t.Fatal(err)
	}
	*q.ctxFields() = *p.ctxFields()
	p = q
	check("a shorter packet showing the same fields", 0x10000)
	check("another data address", 0x20000)
	// Changes made to the packet and the image alike keep the image
	// known: Lay skips it, and it is the packet's.
	known := func(what string) {
		t.Helper()
		if !c.ok || *c.snap.ctxFields() != *p.ctxFields() {
			t.Errorf("after %s: the cache does not know the image", what)
		}
		check(what, 0x20000)
	}
	for _, st := range []struct{ off, size int }{{CtxTCIndex, 4}, {CtxCB + 2, 2}, {CtxQueueMapping, 4}, {CtxMark, 4}} {
		if !c.StoreCtx(p, img[:], st.off, st.size, rng.Uint64()&0xfff) {
			t.Fatalf("StoreCtx %d@%d refused", st.size, st.off)
		}
		known("StoreCtx")
	}
	img[CtxMark], img[CtxCB+5], img[CtxPriority+1] = 9, 8, 7 // plain stores
	c.ReadCtx(p, img[:])
	if p.Mark&0xff != 9 || p.CB[5] != 8 {
		t.Fatal("ReadCtx did not read the plain stores back")
	}
	known("plain stores read back")
	c.Forget()
	img[CtxMark] ^= 0xff
	check("Forget", 0x20000)
}

// writable is the fields a program may store into, as values, with the
// bits of the image words whose store converts each (vm.CtxDirtyWords
// numbering; any word of cb converts all of it).
func writable(p *Packet) (vals [11]uint64, words [11]uint64) {
	vals = [11]uint64{uint64(p.Mark), uint64(p.Priority), uint64(p.QueueMapping), uint64(p.TCIndex), uint64(p.TCClassid), p.Tstamp}
	words = [11]uint64{
		vm.CtxDirtyWords(CtxMark, 4), vm.CtxDirtyWords(CtxPriority, 4), vm.CtxDirtyWords(CtxQueueMapping, 4),
		vm.CtxDirtyWords(CtxTCIndex, 4), vm.CtxDirtyWords(CtxTCClassid, 4), vm.CtxDirtyWords(CtxTstamp, 8),
	}
	for i := range 5 {
		vals[6+i] = uint64(binary.LittleEndian.Uint32(p.CB[4*i:]))
		words[6+i] = vm.CtxDirtyWords(CtxCB, cbSize) // cb is read whole
	}
	return vals, words
}

// TestReadCtxWords checks that ReadCtxWords, given the dirty words of
// one image store (the VM's numbering), converts exactly the fields
// behind those words, as ReadCtx converts them, and leaves every other
// field as it was though the image differs there too; CtxCache's keeps
// the cache's packet in step (Lay then skips the image).
func TestReadCtxWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 0
	for off := range CtxSize {
		for _, size := range []int{1, 2, 4, 8} {
			if _, _, _, ok := CtxImageAccess(off, size, true); !ok {
				continue
			}
			n++
			seed := rng.Uint64()
			fresh := func() (*Packet, [CtxSize]byte) {
				p, err := New(make([]byte, 80), Loopback())
				if err != nil {
					t.Fatal(err)
				}
				randomFields(rand.New(rand.NewPCG(seed, 1)), p)
				var img [CtxSize]byte
				p.WriteCtx(img[:], 0x1000)
				// Every writable field of the image differs from p's
				// (stores as the VM makes them, on a scratch packet).
				q, _ := New(make([]byte, 80), Loopback())
				r := rand.New(rand.NewPCG(seed, 2))
				for _, f := range []struct{ off, size int }{{CtxMark, 4}, {CtxPriority, 4}, {CtxQueueMapping, 4},
					{CtxTCIndex, 4}, {CtxTCClassid, 4}, {CtxTstamp, 8}, {CtxCB, 8}, {CtxCB + 8, 8}, {CtxCB + 16, 4}} {
					q.StoreCtx(img[:], f.off, f.size, r.Uint64()&0xfffe)
				}
				return p, img
			}
			full, img := fresh()
			full.ReadCtx(img[:])
			want, _ := writable(full)
			p, img := fresh()
			before, words := writable(p)
			dirty := vm.CtxDirtyWords(off, size)
			p.ReadCtxWords(img[:], dirty)
			got, _ := writable(p)
			for i := range got {
				w := before[i]
				if words[i]&dirty != 0 {
					w = want[i]
				}
				if got[i] != w {
					t.Errorf("store of %d at %d: field %d = %#x, want %#x", size, off, i, got[i], w)
				}
			}
			// The cache: the same fields, and it still knows the image.
			var c CtxCache
			p, img = fresh()
			c.Lay(img[:], p, 0x1000)
			var st [8]byte
			binary.LittleEndian.PutUint64(st[:], rng.Uint64()&0x7fff)
			copy(img[off:off+size], st[:size]) // a plain store the VM made
			c.ReadCtxWords(p, img[:], dirty)
			if *c.snap.ctxFields() != *p.ctxFields() {
				t.Errorf("store of %d at %d: the cache's packet is not the packet's", size, off)
			}
			var want2 [CtxSize]byte
			p.WriteCtx(want2[:], 0x1000)
			if c.Lay(img[:], p, 0x1000); img != want2 {
				t.Errorf("store of %d at %d: the image is not the packet's after ReadCtxWords", size, off)
			}
		}
	}
	if n < 20 {
		t.Fatalf("%d image stores; want every one CtxImageAccess allows", n)
	}
}

// TestReadCtxWords_Unchanged: ReadCtxWords writes only the fields whose
// image words differ from the packet's or the cache's, and a field the
// program stored again unchanged must still bring a cache's packet that
// differs back to the image's value (cb, mark, priority).
func TestReadCtxWords_Unchanged(t *testing.T) {
	p, err := New(make([]byte, 80), Loopback())
	if err != nil {
		t.Fatal(err)
	}
	randomFields(rand.New(rand.NewPCG(3, 4)), p)
	var img [CtxSize]byte
	var c CtxCache
	c.Lay(img[:], p, 0x1000)
	before := *p
	words := vm.CtxDirtyWords(CtxCB, cbSize) | vm.CtxDirtyWords(CtxMark, 4) | vm.CtxDirtyWords(CtxPriority, 4)
	c.ReadCtxWords(p, img[:], words) // the same values stored again
	if *p.ctxFields() != *before.ctxFields() || *c.snap.ctxFields() != *p.ctxFields() {
		t.Fatal("storing the packet's own values changed the packet or the cache")
	}
	for name, spoil := range map[string]func(q *Packet){
		"cb[0]":    func(q *Packet) { q.CB[0]++ },
		"cb[4]":    func(q *Packet) { q.CB[19]++ },
		"mark":     func(q *Packet) { q.Mark++ },
		"priority": func(q *Packet) { q.Priority++ },
	} {
		spoil(&c.snap)
		c.ReadCtxWords(p, img[:], words)
		if *c.snap.ctxFields() != *p.ctxFields() {
			t.Errorf("%s: the cache's packet still differs after an unchanged store", name)
		}
		spoil(p)
		c.ReadCtxWords(p, img[:], words)
		if *p.ctxFields() != *before.ctxFields() {
			t.Errorf("%s: the packet still differs from the image after an unchanged store", name)
		}
	}
}

// TestReadCtxWords_FreshIsIdentity: pulling back every word of an image
// laid out from the packet changes nothing, in the packet or the cache's
// copy; compiled code relies on it when it marks all of a program's store
// sites' words dirty once per entry, stored or not (vm's ctxLiveEntry).
func TestReadCtxWords_FreshIsIdentity(t *testing.T) {
	for seed := range uint64(200) {
		p, err := New(make([]byte, 80), Loopback())
		if err != nil {
			t.Fatal(err)
		}
		randomFields(rand.New(rand.NewPCG(seed, 9)), p)
		var img [CtxSize]byte
		var c CtxCache
		c.Lay(img[:], p, 0x1000)
		before := *p
		c.ReadCtxWords(p, img[:], CtxAllWords)
		if *p.ctxFields() != *before.ctxFields() || *c.snap.ctxFields() != *p.ctxFields() {
			t.Fatalf("seed %d: pulling back a fresh image changed the packet or the cache", seed)
		}
	}
}
