package skb

import (
	"math/bits"
	"unsafe"
)

// CtxFields is a set of __sk_buff fields, chosen by the image words a
// program accesses (CtxFieldsOf), and what CtxCache.Shows must compare to
// vouch for them: a program that reads only data and data_end needs the
// packet's length and the image's base compared before a run, not the
// 104 bytes of fields that Lay compares.
type CtxFields struct {
	words uint64 // the image words of every field in the set
	pkt   uint16 // ctxWords of the Packet that feed them, bit i for word i
	tail  bool   // and the bytes past the last whole word
	// off is pkt as byte offsets into the Packet, the last one repeated
	// into the unused ones, so that Shows compares its words without a
	// loop or bounds checks; n is how many there are, beyond len(off)
	// Shows cannot be used.
	off [maxShowsCompares]uintptr
	n   int
}

// maxShowsCompares is how many Packet words Shows compares at most.
const maxShowsCompares = 6

// Words is the set of 4-byte image words f vouches for (bit i for the
// word at 4*i): the words asked for, widened to whole fields.
func (f *CtxFields) Words() uint64 { return f.words }

// Compares is how many 8-byte words of the Packet Shows compares for f
// besides the length and base; Lay compares 13. Shows takes at most
// maxShowsCompares (a set of more reports false: compare whole, as Lay
// does).
func (f *CtxFields) Compares() int {
	if f.tail {
		return f.n + 1
	}
	return f.n
}

// CtxFields.pkt has a bit for every whole word of ctxFields.
const _ uint16 = 1 << (len(ctxWords{}) - 1)

// ctxField is one field of the image: n bytes at off, shown from the
// Packet's field at pktOff (from ctxFieldsStart), pktN bytes; pktN 0 is a
// field the image computes from the length and the base alone (len,
// data, data_end, data_meta).
type ctxField struct {
	off, n       int
	pktOff, pktN uintptr
}

// ctxFieldTable is WriteCtx's map from image fields to Packet fields.
// Words it does not list (the socket fields, flow_keys, sk) are always
// zero in a tc program's image.
func ctxFieldTable() []ctxField {
	var p Packet
	f := func(off, n int, field unsafe.Pointer, size uintptr) ctxField {
		return ctxField{off: off, n: n, pktOff: uintptr(field) - uintptr(unsafe.Pointer(&p)) - ctxFieldsStart, pktN: size}
	}
	return []ctxField{
		{off: CtxLen, n: 4},
		f(CtxPktType, 4, unsafe.Pointer(&p.PktType), unsafe.Sizeof(p.PktType)),
		f(CtxMark, 4, unsafe.Pointer(&p.Mark), unsafe.Sizeof(p.Mark)),
		f(CtxQueueMapping, 4, unsafe.Pointer(&p.QueueMapping), unsafe.Sizeof(p.QueueMapping)),
		f(CtxProtocol, 4, unsafe.Pointer(&p.Protocol), unsafe.Sizeof(p.Protocol)),
		f(CtxVlanPresent, 4, unsafe.Pointer(&p.VlanPresent), unsafe.Sizeof(p.VlanPresent)),
		f(CtxVlanTCI, 4, unsafe.Pointer(&p.VlanTCI), unsafe.Sizeof(p.VlanTCI)),
		f(CtxVlanProto, 4, unsafe.Pointer(&p.VlanProto), unsafe.Sizeof(p.VlanProto)),
		f(CtxPriority, 4, unsafe.Pointer(&p.Priority), unsafe.Sizeof(p.Priority)),
		f(CtxIngressIfindex, 4, unsafe.Pointer(&p.IngressIfindex), unsafe.Sizeof(p.IngressIfindex)),
		f(CtxIfindex, 4, unsafe.Pointer(&p.Ifindex), unsafe.Sizeof(p.Ifindex)),
		f(CtxTCIndex, 4, unsafe.Pointer(&p.TCIndex), unsafe.Sizeof(p.TCIndex)),
		// cb is one field: a store to any of its words is pulled back
		// whole (ReadCtxWords), so all of it must be fresh.
		f(CtxCB, cbSize, unsafe.Pointer(&p.CB), unsafe.Sizeof(p.CB)),
		f(CtxHash, 4, unsafe.Pointer(&p.Hash), unsafe.Sizeof(p.Hash)),
		f(CtxTCClassid, 4, unsafe.Pointer(&p.TCClassid), unsafe.Sizeof(p.TCClassid)),
		{off: CtxData, n: 4},
		{off: CtxDataEnd, n: 4},
		f(CtxNapiID, 4, unsafe.Pointer(&p.NapiID), unsafe.Sizeof(p.NapiID)),
		{off: CtxDataMeta, n: 4},
		f(CtxTstamp, 8, unsafe.Pointer(&p.Tstamp), unsafe.Sizeof(p.Tstamp)),
		f(CtxWireLen, 4, unsafe.Pointer(&p.WireLen), unsafe.Sizeof(p.WireLen)),
		f(CtxGSOSegs, 4, unsafe.Pointer(&p.GSOSegs), unsafe.Sizeof(p.GSOSegs)),
		f(CtxGSOSize, 4, unsafe.Pointer(&p.GSOSize), unsafe.Sizeof(p.GSOSize)),
		f(CtxTstampType, 4, unsafe.Pointer(&p.TstampType), unsafe.Sizeof(p.TstampType)),
		f(CtxHWTstamp, 8, unsafe.Pointer(&p.HWTstamp), unsafe.Sizeof(p.HWTstamp)),
	}
}

// imageWords is the set of image words of n bytes at off.
func imageWords(off, n int) uint64 {
	lo, hi := off>>2, (off+n-1)>>2
	return 2<<hi - 1<<lo
}

// CtxFieldsOf is the set of fields that the image words words (bit i for
// the word at 4*i, as vm.CtxDirtyWords) belong to: what an image must
// show for a program that accesses those words, stores included (a store
// to a field's word is pulled back with the field's other words). Words
// past the image or of no field (always zero) need nothing.
func CtxFieldsOf(words uint64) CtxFields {
	var f CtxFields
	for _, fl := range ctxFieldTable() {
		w := imageWords(fl.off, fl.n)
		if words&w == 0 {
			continue
		}
		f.words |= w
		if fl.pktN == 0 {
			continue
		}
		for i := fl.pktOff / 8; i <= (fl.pktOff+fl.pktN-1)/8; i++ {
			if i >= uintptr(len(ctxWords{})) {
				f.tail = true
				continue
			}
			f.pkt |= 1 << i
		}
	}
	for m := f.pkt; m != 0; m &= m - 1 {
		if f.n < len(f.off) {
			f.off[f.n] = ctxFieldsStart + 8*uintptr(bits.TrailingZeros16(m))
		}
		f.n++
	}
	for i := min(f.n, len(f.off)); i > 0 && i < len(f.off); i++ {
		f.off[i] = f.off[i-1]
	}
	return f
}

// Shows reports whether the image c last laid out (at base) still shows
// p in the words of f, so that a run of a program that accesses only
// those may use it without Lay: the length and base are the same and so
// is every Packet word behind f's fields. The image's other words may be
// stale; Lay brings them up to date.
func (c *CtxCache) Shows(p *Packet, base uint32, f *CtxFields) bool {
	if !c.ok || c.base != base || c.len != p.Len() {
		return false
	}
	// Words at offsets CtxFieldsOf computed inside ctxFields, unrolled:
	// a loop over the set's bits cost more than Lay's whole comparison
	// for six words (vlan_pop), bounds checks as much as the compares.
	x, y := unsafe.Pointer(&c.snap), unsafe.Pointer(p)
	w := func(off uintptr) uint64 { return *(*uint64)(unsafe.Add(x, off)) ^ *(*uint64)(unsafe.Add(y, off)) }
	o := &f.off
	var d uint64
	switch f.n {
	case 0:
	case 1:
		d = w(o[0])
	case 2:
		d = w(o[0]) | w(o[1])
	case 3:
		d = w(o[0]) | w(o[1]) | w(o[2])
	case 4:
		d = w(o[0]) | w(o[1]) | w(o[2]) | w(o[3])
	case 5, 6:
		d = w(o[0]) | w(o[1]) | w(o[2]) | w(o[3]) | w(o[4]) | w(o[5])
	default:
		return false
	}
	return d == 0 && (!f.tail || *c.snap.ctxTail() == *p.ctxTail())
}
