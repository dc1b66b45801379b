package skb_test

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

// imageFields is every exported field of Packet the image shows
// (PktType..HWTstamp, as Lay compares them).
func imageFields(t *testing.T) []reflect.StructField {
	t.Helper()
	typ := reflect.TypeFor[skb.Packet]()
	first, _ := typ.FieldByName("PktType")
	last, _ := typ.FieldByName("HWTstamp")
	var fs []reflect.StructField
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.IsExported() && f.Offset >= first.Offset && f.Offset <= last.Offset {
			fs = append(fs, f)
		}
	}
	if len(fs) < 20 {
		t.Fatalf("%d image fields found; the Packet layout changed", len(fs))
	}
	return fs
}

// perturb gives field f of p a value it did not have.
func perturb(p *skb.Packet, f reflect.StructField, r *rand.Rand) {
	v := reflect.ValueOf(p).Elem().FieldByIndex(f.Index)
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		old := v.Uint()
		for v.Uint() == old {
			v.SetUint(r.Uint64())
		}
	case reflect.Array:
		i := r.IntN(v.Len())
		v.Index(i).SetUint(v.Index(i).Uint() ^ uint64(1+r.IntN(255)))
	default:
		panic("field kind " + v.Kind().String())
	}
}

func newCtxPacket(t *testing.T, n int) *skb.Packet {
	t.Helper()
	frame := make([]byte, n)
	copy(frame[12:], []byte{0x08, 0x00})
	p, err := skb.New(frame, skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wordsDiffer is the set of image words where a and b differ.
func wordsDiffer(a, b []byte) uint64 {
	var w uint64
	for i := range a {
		if a[i] != b[i] {
			w |= 1 << (i / 4)
		}
	}
	return w
}

// TestCtxFields_CoverWriteCtx changes each field the image shows and
// asks, for every image word WriteCtx then writes differently, whether
// the cache still shows the packet in that word's fields: it must not.
// So CtxFieldsOf's table agrees with WriteCtx, field by field.
func TestCtxFields_CoverWriteCtx(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const base = 0x1000
	for _, f := range imageFields(t) {
		for range 8 {
			p := newCtxPacket(t, 64)
			var c skb.CtxCache
			img := make([]byte, skb.CtxSize)
			c.Lay(img, p, base)
			perturb(p, f, r)
			now := make([]byte, skb.CtxSize)
			p.WriteCtx(now, base)
			changed := wordsDiffer(img, now)
			for w := range 64 {
				if changed&(1<<w) == 0 {
					continue
				}
				fs := skb.CtxFieldsOf(1 << w)
				if fs.Words()&(1<<w) == 0 {
					t.Errorf("%s: CtxFieldsOf(word %d) does not hold the word: %#x", f.Name, w, fs.Words())
				}
				if c.Shows(p, base, &fs) {
					t.Errorf("%s changed image word %d (offset %d), but the cache still shows it", f.Name, w, 4*w)
				}
			}
		}
	}
}

// TestCtxFields_Shows checks what a partial comparison may skip and what
// it must not: a changed mark leaves data and data_end shown, a changed
// length or base does not, and neither does a cache never laid out.
func TestCtxFields_Shows(t *testing.T) {
	const base = 0x1000
	data := skb.CtxFieldsOf(1<<(skb.CtxData/4) | 1<<(skb.CtxDataEnd/4))
	mark := skb.CtxFieldsOf(1 << (skb.CtxMark / 4))
	cb := skb.CtxFieldsOf(1 << (skb.CtxCB/4 + 2))
	if want := uint64(0x1f) << (skb.CtxCB / 4); cb.Words() != want {
		t.Errorf("cb[2]'s fields are words %#x, want all of cb's %#x", cb.Words(), want)
	}
	var c skb.CtxCache
	p := newCtxPacket(t, 64)
	if c.Shows(p, base, &data) {
		t.Fatal("a cache never laid out shows the packet")
	}
	img := make([]byte, skb.CtxSize)
	c.Lay(img, p, base)
	if !c.Shows(p, base, &data) || !c.Shows(p, base, &mark) || !c.Shows(p, base, &cb) {
		t.Fatal("the packet just laid out is not shown")
	}
	p.Mark++
	if !c.Shows(p, base, &data) {
		t.Error("a changed mark hides data and data_end")
	}
	if c.Shows(p, base, &mark) {
		t.Error("a changed mark is shown")
	}
	p.CB[19]++
	if c.Shows(p, base, &cb) {
		t.Error("a change in cb[4] is shown for cb[2]")
	}
	if c.Shows(p, base+64, &data) {
		t.Error("data is shown at another base")
	}
	// Every field: more Packet words than Shows compares, so it never
	// vouches; the six words of cb, vlan and hash it does, to the last.
	all := skb.CtxFieldsOf(skb.CtxAllWords)
	if all.Compares() <= 6 || c.Shows(p, base, &all) {
		t.Errorf("all fields: %d compares, shown %v; want more than 6 and never shown", all.Compares(), c.Shows(p, base, &all))
	}
	six := skb.CtxFieldsOf(1<<(skb.CtxCB/4) | 1<<(skb.CtxVlanTCI/4) | 1<<(skb.CtxHash/4) | 1<<(skb.CtxHWTstamp/4))
	if n := six.Compares(); n < 5 || n > 6 {
		t.Fatalf("cb, vlan_tci, hash and hwtstamp: %d compares, want 5 or 6", n)
	}
	c.Lay(img, p, base)
	if !c.Shows(p, base, &six) {
		t.Errorf("%d compares: the packet just laid out is not shown", six.Compares())
	}
	p.HWTstamp++
	if c.Shows(p, base, &six) {
		t.Errorf("%d compares: a changed hwtstamp is shown", six.Compares())
	}
	if c.Shows(newCtxPacket(t, 65), base, &data) {
		t.Error("data_end is shown for a packet of another length")
	}
}

// TestCtxFields_Property: whatever fields change, when the cache says
// it shows a set of words, WriteCtx agrees with the image there.
func TestCtxFields_Property(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fields := imageFields(t)
	const base = 0x1000
	var shown, hidden int
	for range 4000 {
		p := newCtxPacket(t, 64)
		var c skb.CtxCache
		img := make([]byte, skb.CtxSize)
		c.Lay(img, p, base)
		for range r.IntN(4) {
			perturb(p, fields[r.IntN(len(fields))], r)
		}
		var words uint64
		for range 1 + r.IntN(4) {
			words |= 1 << r.IntN(skb.CtxSize/4)
		}
		fs := skb.CtxFieldsOf(words)
		now := make([]byte, skb.CtxSize)
		p.WriteCtx(now, base)
		if !c.Shows(p, base, &fs) {
			hidden++
			continue
		}
		shown++
		for w := range skb.CtxSize / 4 {
			if fs.Words()&(1<<w) != 0 && !bytes.Equal(img[4*w:4*w+4], now[4*w:4*w+4]) {
				t.Fatalf("words %#x shown, but word %d is %x in the image and %x now", fs.Words(), w, img[4*w:4*w+4], now[4*w:4*w+4])
			}
		}
	}
	if shown < 400 || hidden < 400 {
		t.Errorf("shown %d, hidden %d: the cases do not exercise both answers", shown, hidden)
	}
}
