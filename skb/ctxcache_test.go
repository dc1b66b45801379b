package skb

import (
	"math/rand/v2"
	"reflect"
	"testing"
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
