package skb

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// CtxSize is sizeof(struct __sk_buff).
const CtxSize = 192

// Offsets of the struct __sk_buff fields (include/uapi/linux/bpf.h).
const (
	CtxLen            = 0
	CtxPktType        = 4
	CtxMark           = 8
	CtxQueueMapping   = 12
	CtxProtocol       = 16
	CtxVlanPresent    = 20
	CtxVlanTCI        = 24
	CtxVlanProto      = 28
	CtxPriority       = 32
	CtxIngressIfindex = 36
	CtxIfindex        = 40
	CtxTCIndex        = 44
	CtxCB             = 48 // __u32 cb[5]
	CtxHash           = 68
	CtxTCClassid      = 72
	CtxData           = 76
	CtxDataEnd        = 80
	CtxNapiID         = 84
	CtxFamily         = 88 // family .. local_port: sockets only, not tc
	CtxRemoteIP4      = 92
	CtxLocalIP4       = 96
	CtxRemoteIP6      = 100
	CtxLocalIP6       = 116
	CtxRemotePort     = 132
	CtxLocalPort      = 136
	CtxDataMeta       = 140
	CtxFlowKeys       = 144 // pointer, 8 bytes
	CtxTstamp         = 152 // __u64
	CtxWireLen        = 160
	CtxGSOSegs        = 164
	CtxSk             = 168 // pointer, 8 bytes
	CtxGSOSize        = 176
	CtxTstampType     = 180 // __u8, then 3 bytes of padding
	CtxHWTstamp       = 184 // __u64

	cbSize = 20
)

// noQueueMapping is NO_QUEUE_MAPPING: a queue_mapping store of this value or
// more is dropped.
const noQueueMapping = 0xffff

// CtxAccess reports whether a SCHED_CLS program may load (write false) or
// store (write true) size bytes at offset off of its struct __sk_buff, as
// tc_cls_act_is_valid_access, bpf_skb_is_valid_access and the verifier's
// context conversion decide it. Accesses it rejects make the kernel refuse
// the program at load time.
func CtxAccess(off, size int, write bool) bool {
	if size != 1 && size != 2 && size != 4 && size != 8 {
		return false
	}
	if off < 0 || off >= CtxSize {
		return false
	}
	if write {
		switch {
		case in(off, CtxMark, 4), in(off, CtxTCIndex, 4), in(off, CtxPriority, 4),
			in(off, CtxTCClassid, 4), in(off, CtxCB, cbSize), in(off, CtxTstamp, 8),
			in(off, CtxQueueMapping, 4):
		default:
			return false
		}
	}
	switch {
	case off >= CtxFamily && off < CtxDataMeta:
		return false
	case off == CtxTstampType:
		return size == 1 && !write
	}
	if off%size != 0 {
		return false
	}
	switch {
	case in(off, CtxCB, cbSize):
		return off+size <= CtxCB+cbSize
	case in(off, CtxData, 4), in(off, CtxDataEnd, 4), in(off, CtxDataMeta, 4):
		return size == 4
	case in(off, CtxFlowKeys, 8):
		return false
	case in(off, CtxHWTstamp, 8):
		return !write && size == 8
	case in(off, CtxTstamp, 8):
		return size == 8
	case in(off, CtxSk, 8):
		// Only the whole pointer; the verifier has no conversion for a
		// narrow load inside it.
		return off == CtxSk && !write && size == 8
	case off > CtxTstampType && off < CtxHWTstamp:
		return false // padding
	}
	if write {
		return size == 4
	}
	return size <= 4
}

func in(off, start, n int) bool { return off >= start && off < start+n }

// narrowTarget is the target_size convert_ctx_access reports for the 32-bit
// context field at start: the width of the sk_buff field behind it.
func narrowTarget(start int) int {
	switch start {
	case CtxPktType:
		return 1
	case CtxQueueMapping, CtxProtocol, CtxVlanTCI, CtxVlanProto, CtxTCIndex,
		CtxTCClassid, CtxGSOSegs, CtxGSOSize:
		return 2
	}
	return 4
}

// CtxLoad returns what a load of size bytes at off from a struct __sk_buff
// image written by WriteCtx yields in the kernel, including its narrow-load
// rules: a load narrower than the sk_buff field shifts and masks, a load at
// least as wide as the field returns the whole field wherever it starts
// (a 2-byte load at protocol+2 reads the protocol, not zero). off and size
// must pass CtxAccess(off, size, false); img must hold CtxSize bytes.
func CtxLoad(img []byte, off, size int) uint64 {
	switch {
	case in(off, CtxCB, cbSize):
		return loadLE(img[off:], size)
	case off == CtxTstamp, off == CtxHWTstamp, off == CtxSk:
		return binary.LittleEndian.Uint64(img[off:])
	case off == CtxTstampType:
		return uint64(img[off])
	}
	start := off &^ 3
	target := narrowTarget(start)
	v := uint64(binary.LittleEndian.Uint32(img[start:])) & mask(target)
	if size < target {
		v = v >> (uint(off&3) * 8) & mask(size)
	}
	return v
}

func mask(size int) uint64 { return 1<<(uint(size)*8) - 1 }

// CtxPlainLoad reports whether CtxLoad(img, off, size) is the
// little-endian value of img[off:off+size] for every image WriteCtx,
// StoreCtx and plain stores (CtxPlainStore) produce, so that an engine may
// read the image directly: cb[] at any width, the 8-byte fields whole,
// tstamp_type as a byte, and within a 32-bit slot any load narrower than
// the sk_buff field behind it, or starting at the slot. Those images hold
// a field narrower than 32 bits zero-extended in its slot, so a narrow
// load past the field's bytes reads the zeros the kernel's shift and mask
// yield, and a load at the slot at least as wide as the field reads the
// whole field. A load at least as wide as the field starting inside the
// slot (2 bytes at protocol+2) returns the whole field in the kernel, not
// the bytes there, so it is not plain.
func CtxPlainLoad(off, size int) bool {
	switch {
	case off < 0 || off+size > CtxSize:
		return false
	case in(off, CtxCB, cbSize):
		return in(off+size-1, CtxCB, cbSize)
	case off == CtxTstamp, off == CtxHWTstamp, off == CtxSk:
		return size == 8
	case off == CtxTstampType:
		return size == 1
	case size > 4 || off&3+size > 4:
		return false
	}
	return off&3 == 0 || size < narrowTarget(off&^3)
}

// CtxPlainStore reports whether StoreCtx(img, off, size, v) changes
// exactly the little-endian bytes img[off:off+size] (and the one packet
// field ReadCtx reads back from there), so that an engine may store into
// the image and call ReadCtx later: cb[] at any width, mark and priority
// whole, tstamp whole. tc_index and tc_classid keep 16 bits and
// queue_mapping drops large values, so they are not plain.
func CtxPlainStore(off, size int) bool {
	switch {
	case off < 0 || off+size > CtxSize || !CtxAccess(off, size, true):
		return false
	case in(off, CtxCB, cbSize):
		return in(off+size-1, CtxCB, cbSize)
	case off == CtxMark, off == CtxPriority:
		return size == 4
	case off == CtxTstamp:
		return size == 8
	}
	return false
}

// CtxImageAccess says how an engine may perform a load (or store, if
// write) of size bytes at off directly on an image written by WriteCtx:
// on the size bytes at src, keeping their low width bytes (a load as wide
// as a 16-bit or 8-bit sk_buff field reads the whole field from where it
// starts; a tc_index or tc_classid store keeps 16 bits), so that the
// result is what CtxLoad returns or StoreCtx leaves in the image. A store
// with below != 0 changes nothing when the whole source value is below or
// more: queue_mapping's, which the kernel drops from NO_QUEUE_MAPPING up
// (ReadCtx then reads back what StoreCtx would have left). ok is false
// for accesses that need CtxLoad or StoreCtx themselves.
func CtxImageAccess(off, size int, write bool) (src, width int, below uint64, ok bool) {
	if write {
		switch {
		case CtxPlainStore(off, size):
			return off, size, 0, true
		case (off == CtxTCIndex || off == CtxTCClassid) && size == 4:
			return off, 2, 0, true
		case off == CtxQueueMapping && size == 4:
			return off, 2, noQueueMapping, true
		}
		return 0, 0, 0, false
	}
	switch {
	case !CtxAccess(off, size, false):
		return 0, 0, 0, false
	case CtxPlainLoad(off, size):
		return off, size, 0, true
	case in(off, CtxCB, cbSize):
		return 0, 0, 0, false
	}
	start := off &^ 3
	switch target := narrowTarget(start); {
	case target == 4:
	case size >= target:
		return start, target, 0, true
	case off-start+size <= target: // inside the field: its bytes as they are
		return off, size, 0, true
	}
	return 0, 0, 0, false
}

func loadLE(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func storeLE(b []byte, size int, v uint64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// be16 is how a __be16 sk_buff field reads through a little-endian load.
func be16(v uint16) uint32 { return uint32(bits.ReverseBytes16(v)) }

// WriteCtx lays out the struct __sk_buff image of p in img (at least CtxSize
// bytes) with the packet bytes (Data) mapped at virtual address base: every
// readable field as the kernel's context conversion reads it, zero elsewhere.
// family..local_port stay zero (tc may not read them) and so does sk: there
// is no socket (BPF_PROG_TEST_RUN attaches a dummy one).
func (p *Packet) WriteCtx(img []byte, base uint32) {
	img = img[:CtxSize]
	clear(img)
	le := binary.LittleEndian
	le.PutUint32(img[CtxLen:], uint32(p.Len()))
	le.PutUint32(img[CtxPktType:], uint32(p.PktType&7))
	le.PutUint32(img[CtxMark:], p.Mark)
	le.PutUint32(img[CtxQueueMapping:], uint32(p.QueueMapping))
	le.PutUint32(img[CtxProtocol:], be16(p.Protocol))
	if p.VlanPresent {
		img[CtxVlanPresent] = 1
	}
	le.PutUint32(img[CtxVlanTCI:], uint32(p.VlanTCI))
	le.PutUint32(img[CtxVlanProto:], be16(p.VlanProto))
	le.PutUint32(img[CtxPriority:], p.Priority)
	le.PutUint32(img[CtxIngressIfindex:], p.IngressIfindex)
	le.PutUint32(img[CtxIfindex:], p.Ifindex)
	le.PutUint32(img[CtxTCIndex:], uint32(p.TCIndex))
	copy(img[CtxCB:CtxCB+cbSize], p.CB[:])
	le.PutUint32(img[CtxHash:], p.Hash)
	le.PutUint32(img[CtxTCClassid:], uint32(p.TCClassid))
	meta, data, end := p.Pointers(base)
	le.PutUint32(img[CtxData:], data)
	le.PutUint32(img[CtxDataEnd:], end)
	le.PutUint32(img[CtxDataMeta:], meta)
	le.PutUint32(img[CtxNapiID:], p.NapiID)
	le.PutUint64(img[CtxTstamp:], p.Tstamp)
	le.PutUint32(img[CtxWireLen:], p.WireLen)
	le.PutUint32(img[CtxGSOSegs:], uint32(p.GSOSegs))
	le.PutUint32(img[CtxGSOSize:], uint32(p.GSOSize))
	img[CtxTstampType] = p.TstampType
	le.PutUint64(img[CtxHWTstamp:], p.HWTstamp)
}

// StoreCtx performs a program's store of the low size bytes of v at off of
// its context as the kernel's conversion does, on p and on img: tc_index and
// tc_classid keep 16 bits, a queue_mapping store of 0xffff or more (the full
// 64-bit register) is dropped, cb takes the raw bytes. img then reads back
// what the kernel would read. It reports false, changing nothing, when
// CtxAccess(off, size, true) is false.
func (p *Packet) StoreCtx(img []byte, off, size int, v uint64) bool {
	if !CtxAccess(off, size, true) {
		return false
	}
	le := binary.LittleEndian
	switch {
	case in(off, CtxCB, cbSize):
		storeLE(p.CB[off-CtxCB:], size, v)
		storeLE(img[off:], size, v)
	case off == CtxMark:
		p.Mark = uint32(v)
		le.PutUint32(img[off:], p.Mark)
	case off == CtxPriority:
		p.Priority = uint32(v)
		le.PutUint32(img[off:], p.Priority)
	case off == CtxTCIndex:
		p.TCIndex = uint16(v)
		le.PutUint32(img[off:], uint32(p.TCIndex))
	case off == CtxTCClassid:
		p.TCClassid = uint16(v)
		le.PutUint32(img[off:], uint32(p.TCClassid))
	case off == CtxQueueMapping:
		if v < noQueueMapping {
			p.QueueMapping = uint16(v)
			le.PutUint32(img[off:], uint32(p.QueueMapping))
		}
	case off == CtxTstamp:
		p.Tstamp = v
		le.PutUint64(img[off:], v)
	}
	return true
}

// StoreCtxImm is StoreCtx for an immediate store (BPF_ST) of imm: the
// kernel's conversion drops a queue_mapping immediate of NO_QUEUE_MAPPING
// or more as a signed number and stores the low 16 bits of any other (-1
// is 0xffff), where a register store is dropped from 0xffff up unsigned.
func (p *Packet) StoreCtxImm(img []byte, off, size int, imm int32) bool {
	if off == CtxQueueMapping && CtxAccess(off, size, true) {
		if imm < noQueueMapping {
			p.QueueMapping = uint16(imm)
			binary.LittleEndian.PutUint32(img[off:], uint32(p.QueueMapping))
		}
		return true
	}
	return p.StoreCtx(img, off, size, uint64(int64(imm)))
}

// ReadCtx pulls the fields a program may write back from an image it stored
// to directly (mark, priority, tc_index, tc_classid, queue_mapping, cb,
// tstamp), with the kernel's store widths. img is a whole image, CtxSize
// bytes. A queue_mapping store the kernel drops must not have reached the
// image (CtxImageAccess's bound), so the image's queue_mapping is the
// field's.
func (p *Packet) ReadCtx(img []byte) { p.ReadCtxWords(img, CtxAllWords) }

// CtxAllWords is every word of the image as ReadCtxWords takes them.
const CtxAllWords = ^uint64(0)

// ReadCtxWords is ReadCtx for only the fields that hold a word whose bit
// is set in words (bit i: the 4 bytes at 4*i, the dirty record of the
// engine's context image): the stores of a program that wrote only
// skb->mark cost the mark's conversion, not every field's. cb is read
// whole when any of its words is set: its other words must hold the
// packet's values, as every image Lay, WriteCtx and StoreCtx leave does.
func (p *Packet) ReadCtxWords(img []byte, words uint64) { readCtxWords(img, words, p, p) }

// Bits of the writable fields' words (CtxDirtyWords in the VM).
const (
	wordMark     = 1 << (CtxMark / 4)
	wordQueue    = 1 << (CtxQueueMapping / 4)
	wordPriority = 1 << (CtxPriority / 4)
	wordTCIndex  = 1 << (CtxTCIndex / 4)
	wordCB       = (1<<(cbSize/4) - 1) << (CtxCB / 4)
	wordClassid  = 1 << (CtxTCClassid / 4)
	wordTstamp   = 3 << (CtxTstamp / 4)
)

// readCtxWords sets the fields of p whose words are set, and the same in
// q (the cache's packet, or p again): each field at the width it was
// written with, since a wider load of bytes just stored narrowly stalls.
// A queue_mapping the image holds from NO_QUEUE_MAPPING up is not what
// the packet's field is known to be, so q does not take it.
func readCtxWords(b []byte, words uint64, p, q *Packet) {
	le := binary.LittleEndian
	// One bounds check for every field (a whole image, as every caller
	// has), instead of two per field.
	img := (*[CtxSize]byte)(b)
	if words&wordMark != 0 {
		setChanged(&p.Mark, &q.Mark, le.Uint32(img[CtxMark:]))
	}
	if words&wordPriority != 0 {
		setChanged(&p.Priority, &q.Priority, le.Uint32(img[CtxPriority:]))
	}
	if words&(wordQueue|wordTCIndex|wordClassid|wordTstamp) != 0 {
		if words&wordQueue != 0 {
			v := le.Uint32(img[CtxQueueMapping:])
			p.QueueMapping = uint16(v)
			if v < noQueueMapping {
				q.QueueMapping = p.QueueMapping
			}
		}
		if words&wordTCIndex != 0 {
			p.TCIndex = uint16(le.Uint32(img[CtxTCIndex:]))
			q.TCIndex = p.TCIndex
		}
		if words&wordClassid != 0 {
			p.TCClassid = uint16(le.Uint32(img[CtxTCClassid:]))
			q.TCClassid = p.TCClassid
		}
		if words&wordTstamp != 0 {
			p.Tstamp = le.Uint64(img[CtxTstamp:])
			q.Tstamp = p.Tstamp
		}
	}
	if words&wordCB != 0 {
		// All of cb, word by word (a program stores it in 4- or 8-byte
		// pieces, and a wider load of narrower stores stalls): five
		// moves cost less than choosing among them, and a word not
		// stored holds the packet's value, as after Lay. Unrolled over
		// an array, without a bounds check each: the loop was a sixth
		// of vlan_push's run.
		cb := (*[cbSize]byte)(img[CtxCB:])
		v0, v1, v2 := le.Uint32(cb[0:]), le.Uint32(cb[4:]), le.Uint32(cb[8:])
		v3, v4 := le.Uint32(cb[12:]), le.Uint32(cb[16:])
		// A program mostly stores what the fields already held (the
		// same flow's classification again): then nothing is written,
		// and nothing that reads the packet next (the next run's
		// CtxCache.Shows, 8-byte loads) waits on these 4-byte stores.
		pc, qc := &p.CB, &q.CB
		dp := (v0 ^ le.Uint32(pc[0:])) | (v1 ^ le.Uint32(pc[4:])) | (v2 ^ le.Uint32(pc[8:])) |
			(v3 ^ le.Uint32(pc[12:])) | (v4 ^ le.Uint32(pc[16:]))
		dq := (v0 ^ le.Uint32(qc[0:])) | (v1 ^ le.Uint32(qc[4:])) | (v2 ^ le.Uint32(qc[8:])) |
			(v3 ^ le.Uint32(qc[12:])) | (v4 ^ le.Uint32(qc[16:]))
		if dp|dq == 0 {
			return
		}
		le.PutUint32(p.CB[0:], v0)
		le.PutUint32(p.CB[4:], v1)
		le.PutUint32(p.CB[8:], v2)
		le.PutUint32(p.CB[12:], v3)
		le.PutUint32(p.CB[16:], v4)
		le.PutUint32(q.CB[0:], v0)
		le.PutUint32(q.CB[4:], v1)
		le.PutUint32(q.CB[8:], v2)
		le.PutUint32(q.CB[12:], v3)
		le.PutUint32(q.CB[16:], v4)
	}
}

// setChanged sets *p and *q to v, writing only those that differ (see
// readCtxWords' cb).
func setChanged(p, q *uint32, v uint32) {
	if *p != v {
		*p = v
	}
	if *q != v {
		*q = v
	}
}

// CtxCache remembers what a struct __sk_buff image was laid out from, so
// that laying out the image of an unchanged packet again (the next run on
// the same packet, a helper that changed nothing the image shows) costs a
// comparison instead of WriteCtx. The image is a function of the packet's
// length, its fields PktType..HWTstamp and the data address, nothing else;
// the cache keeps a packet whose fields are those the image shows. The
// zero value knows nothing.
type CtxCache struct {
	ok   bool
	base uint32
	len  int
	snap Packet // only PktType..HWTstamp are used
}

// ctxFields is the bytes of the fields PktType..HWTstamp of a Packet,
// every field WriteCtx reads but the length.
type ctxFields [ctxFieldsEnd - ctxFieldsStart]byte

const (
	ctxFieldsStart = unsafe.Offsetof(Packet{}.PktType)
	ctxFieldsEnd   = unsafe.Offsetof(Packet{}.HWTstamp) + unsafe.Sizeof(Packet{}.HWTstamp)
)

func (p *Packet) ctxFields() *ctxFields {
	return (*ctxFields)(unsafe.Add(unsafe.Pointer(p), ctxFieldsStart))
}

// ctxWords is ctxFields as words (ctxFieldsStart is a multiple of 8 where
// words are 8 bytes).
type ctxWords [len(ctxFields{}) / 8]uint64

// ctxTail is the bytes of ctxFields past its last whole word.
func (p *Packet) ctxTail() *[len(ctxFields{}) % 8]byte {
	return (*[len(ctxFields{}) % 8]byte)(unsafe.Add(unsafe.Pointer(p), ctxFieldsStart+uintptr(len(ctxWords{})*8)))
}

// Lay makes img (CtxSize bytes) p's image, as WriteCtx(img, base) does,
// unless c records that img already holds it. It runs before every run
// of a program that reads its context, so the comparison is word by
// word, unrolled, in this one call: the array comparison (*ctxFields ==)
// called memequal, whose setup cost more than comparing, and a call more
// is a tenth of a run's floor (BenchmarkCorpusProgram/vlan_pop).
func (c *CtxCache) Lay(img []byte, p *Packet, base uint32) {
	if c.ok && c.base == base && c.len == p.Len() {
		x := (*ctxWords)(unsafe.Add(unsafe.Pointer(&c.snap), ctxFieldsStart))
		y := (*ctxWords)(unsafe.Add(unsafe.Pointer(p), ctxFieldsStart))
		d0 := (x[0] ^ y[0]) | (x[4] ^ y[4]) | (x[8] ^ y[8])
		d1 := (x[1] ^ y[1]) | (x[5] ^ y[5]) | (x[9] ^ y[9])
		d2 := (x[2] ^ y[2]) | (x[6] ^ y[6]) | (x[10] ^ y[10])
		d3 := (x[3] ^ y[3]) | (x[7] ^ y[7]) | (x[11] ^ y[11])
		for i := 12; i < len(x); i++ {
			d0 |= x[i] ^ y[i]
		}
		if d0|d1|d2|d3 == 0 && *c.snap.ctxTail() == *p.ctxTail() {
			return
		}
	}
	c.lay(img, p, base)
}

func (c *CtxCache) lay(img []byte, p *Packet, base uint32) {
	p.WriteCtx(img, base)
	c.ok, c.base, c.len = true, base, p.Len()
	*c.snap.ctxFields() = *p.ctxFields()
}

// ReadCtx is p.ReadCtx(img) for an image Lay laid out, whose plain stores
// (CtxPlainStore) the cache then knows: they change p and the image
// alike.
func (c *CtxCache) ReadCtx(p *Packet, img []byte) { c.ReadCtxWords(p, img, CtxAllWords) }

// ReadCtxWords is p.ReadCtxWords(img, words) for an image Lay laid out:
// the cache's packet takes the same fields, one by one at the widths
// they were written with (a block copy would read them back wider than
// they were just stored, which stalls).
func (c *CtxCache) ReadCtxWords(p *Packet, img []byte, words uint64) {
	q := &c.snap
	if !c.ok {
		q = p
	}
	readCtxWords(img, words, p, q)
}

// StoreCtx is p.StoreCtx(img, off, size, v) for an image Lay laid out,
// which the cache then knows.
func (c *CtxCache) StoreCtx(p *Packet, img []byte, off, size int, v uint64) bool {
	if !p.StoreCtx(img, off, size, v) {
		return false
	}
	if c.ok {
		var scratch [CtxSize]byte
		c.snap.StoreCtx(scratch[:], off, size, v)
	}
	return true
}

// StoreCtxImm is StoreCtx for an immediate store (Packet.StoreCtxImm).
func (c *CtxCache) StoreCtxImm(p *Packet, img []byte, off, size int, imm int32) bool {
	if !p.StoreCtxImm(img, off, size, imm) {
		return false
	}
	if c.ok {
		var scratch [CtxSize]byte
		c.snap.StoreCtxImm(scratch[:], off, size, imm)
	}
	return true
}

// Forget makes the next Lay write the image.
func (c *CtxCache) Forget() { c.ok = false }
