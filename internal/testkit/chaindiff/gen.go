package chaindiff

import (
	"fmt"
	"math/rand/v2"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/skb"
)

// Sizes of the record maps.
const (
	// BatchSlots is how many frames are in flight between two reads of the
	// maps; a frame's slot is in its tail.
	BatchSlots = 128
	// MaxSteps is how many program runs of one frame are recorded.
	MaxSteps = 64
	// NWords is the size of one record in 32-bit words.
	NWords = 40
)

// Record words: what a program saw when it started, what its helpers
// returned and the verdict it gave.
const (
	wVariant        = 0
	wLen            = 1
	wPktType        = 2
	wMark           = 3
	wQueueMapping   = 4
	wProtocol       = 5
	wVlanPresent    = 6
	wVlanTCI        = 7
	wVlanProto      = 8
	wPriority       = 9
	wIngressIfindex = 10
	wIfindex        = 11
	wTCIndex        = 12
	wCB0            = 13 // cb[0..4]: 13..17
	wHash           = 18
	wTCClassid      = 19
	wNapiID         = 20
	wWireLen        = 21
	wGSOSegs        = 22
	wGSOSize        = 23
	wTstamp         = 24 // u64 at byte 96: words 24, 25
	wTstampHi       = 25
	wHWTstamp       = 26 // u64 at byte 104: words 26, 27
	wHWTstampHi     = 27
	wTstampType     = 28
	wStep           = 29
	wData           = 30 // the first 16 bytes: words 30..33
	wTTL            = 34
	wResult         = 35 // three helper results: 35..37
	wVerdict        = 38
)

// WordNames names the record words in divergence reports.
func WordNames() [NWords]string {
	var n [NWords]string
	names := map[int]string{
		wVariant: "variant", wLen: "len", wPktType: "pkt_type", wMark: "mark",
		wQueueMapping: "queue_mapping", wProtocol: "protocol", wVlanPresent: "vlan_present",
		wVlanTCI: "vlan_tci", wVlanProto: "vlan_proto", wPriority: "priority",
		wIngressIfindex: "ingress_ifindex", wIfindex: "ifindex", wTCIndex: "tc_index",
		wHash: "hash", wTCClassid: "tc_classid", wNapiID: "napi_id", wWireLen: "wire_len",
		wGSOSegs: "gso_segs", wTstamp: "tstamp", wTstampHi: "tstamp(hi)", wHWTstamp: "hwtstamp",
		wHWTstampHi: "hwtstamp(hi)", wGSOSize: "gso_size", wTstampType: "tstamp_type",
		wStep: "step", wTTL: "ttl", wVerdict: "verdict",
	}
	for i := range n {
		switch {
		case names[i] != "":
			n[i] = names[i]
		case i >= wCB0 && i < wCB0+5:
			n[i] = fmt.Sprintf("cb[%d]", i-wCB0)
		case i >= wData && i < wData+4:
			n[i] = fmt.Sprintf("data[%d:%d]", 4*(i-wData), 4*(i-wData)+4)
		case i >= wResult && i < wResult+3:
			n[i] = fmt.Sprintf("helper result %d", i-wResult)
		}
	}
	return n
}

// ctxWords are the __sk_buff fields recorded with a 4-byte load.
var ctxWords = []struct{ word, off int }{
	{wLen, skb.CtxLen}, {wPktType, skb.CtxPktType}, {wMark, skb.CtxMark},
	{wQueueMapping, skb.CtxQueueMapping}, {wProtocol, skb.CtxProtocol},
	{wVlanPresent, skb.CtxVlanPresent}, {wVlanTCI, skb.CtxVlanTCI}, {wVlanProto, skb.CtxVlanProto},
	{wPriority, skb.CtxPriority}, {wIngressIfindex, skb.CtxIngressIfindex}, {wIfindex, skb.CtxIfindex},
	{wTCIndex, skb.CtxTCIndex}, {wCB0, skb.CtxCB}, {wCB0 + 1, skb.CtxCB + 4}, {wCB0 + 2, skb.CtxCB + 8},
	{wCB0 + 3, skb.CtxCB + 12}, {wCB0 + 4, skb.CtxCB + 16}, {wHash, skb.CtxHash},
	{wTCClassid, skb.CtxTCClassid}, {wNapiID, skb.CtxNapiID}, {wWireLen, skb.CtxWireLen},
	{wGSOSegs, skb.CtxGSOSegs}, {wGSOSize, skb.CtxGSOSize},
}

// OpKind is one thing a generated program does to the packet.
type OpKind uint8

const (
	OpMark         OpKind = iota // mark ^= imm
	OpPriority                   // priority += imm
	OpTCIndex                    // tc_index = imm
	OpCB                         // cb[i] += imm
	OpTCClassid                  // tc_classid = imm
	OpQueueMapping               // queue_mapping = imm
	OpTstamp                     // tstamp = imm64
	OpSetHash                    // bpf_set_hash(imm), then maybe bpf_get_hash_recalc
	OpHashInvalid                // bpf_set_hash_invalid
	OpVlanPush                   // bpf_skb_vlan_push(proto, tci) unless a tag is out of band
	OpVlanPop                    // bpf_skb_vlan_pop if a tag is out of band
	OpChangeType                 // bpf_skb_change_type(imm)
	OpCsumLevel                  // bpf_csum_level(imm)
	OpStoreBytes                 // bpf_skb_store_bytes(off, 2 bytes)
	OpEcnSetCE                   // bpf_skb_ecn_set_ce
	OpChangeProto                // bpf_skb_change_proto(IPv4 or IPv6, 0)
	OpAdjustRoom                 // bpf_skb_adjust_room(imm, BPF_ADJ_ROOM_NET or _MAC, 0)
	OpSetTunnelKey               // bpf_skb_set_tunnel_key(id imm, remote imm2)
	OpGetTunnelKey               // bpf_skb_get_tunnel_key, its tunnel_id into cb[3]
	numOps
)

// Op is an operation with its arguments.
type Op struct {
	Kind   OpKind
	Index  int    // cb index, store offset
	Imm    uint64 // value
	Imm2   uint32 // second argument (vlan tci, hash recalc flag)
	Result bool   // its helper's result is recorded
}

// VerdictKind is how a generated program ends.
type VerdictKind uint8

const (
	VerdictConst    VerdictKind = iota // return Code
	VerdictCond                        // return Code if cb[0] (or mark) has bit 0 set, else TCX_NEXT
	VerdictRedirect                    // bpf_redirect/_peer(Target, Flags) and return its result, while the frame's TTL lasts
	VerdictSetter                      // bpf_redirect(Target, Flags), return TCX_NEXT
	VerdictFire                        // return TC_ACT_REDIRECT while the TTL lasts (after a setter), else TCX_NEXT
)

// Variant is one generated tc program.
type Variant struct {
	ID      int
	Ops     []Op
	Verdict VerdictKind
	Code    int32 // VerdictConst, VerdictCond
	OnMark  bool  // VerdictCond tests the mark instead of cb[0]
	Target  uint32
	Flags   uint64
	Peer    bool // VerdictRedirect uses bpf_redirect_peer
}

// Name is the variant's program name.
func (v *Variant) Name() string { return fmt.Sprintf("v%d", v.ID) }

// Generate returns n random program variants whose redirects aim at the
// ifindexes in targets (some of which may not exist).
func Generate(rng *rand.Rand, n int, targets []uint32) []Variant {
	vs := make([]Variant, n)
	for i := range vs {
		v := &vs[i]
		v.ID = i
		nops := 1 + rng.IntN(6)
		results := 0
		for range nops {
			op := Op{Kind: OpKind(rng.IntN(int(numOps)))}
			switch op.Kind {
			case OpMark, OpPriority:
				op.Imm = uint64(rng.Uint32() & 0xff)
			case OpTCIndex, OpTCClassid:
				op.Imm = uint64(rng.Uint32() & 0x1ffff)
			case OpCB:
				op.Index, op.Imm = rng.IntN(5), uint64(rng.Uint32()&0xffff)
			case OpQueueMapping:
				op.Imm = []uint64{0, 1, 3, 7, 0xfffe, 0xffff, 0x10003}[rng.IntN(7)]
			case OpTstamp:
				op.Imm = []uint64{0, 1000, 1 << 40, rng.Uint64() >> 2}[rng.IntN(4)]
			case OpSetHash:
				op.Imm = uint64(rng.Uint32())
				op.Imm2 = uint32(rng.IntN(2)) // 1: bpf_get_hash_recalc after it
			case OpVlanPush:
				op.Imm = []uint64{skb.EthP8021Q, skb.EthP8021AD, 0x0800}[rng.IntN(3)]
				op.Imm2 = 1 + uint32(rng.IntN(0xffff)) // never VID 0 with PCP 0 (priority tags untag again)
				if op.Imm2&0xfff == 0 {
					op.Imm2 |= 1
				}
			case OpChangeType:
				op.Imm = uint64(rng.IntN(5))
			case OpCsumLevel:
				op.Imm = uint64(rng.IntN(5))
			case OpStoreBytes:
				// Past any ethertype of a frame with two tags: the
				// kernel side sees deliveries only for the ethertypes
				// it listens for.
				op.Index, op.Imm = 22+rng.IntN(24), uint64(rng.Uint32()&0xffff)
			case OpChangeProto:
				op.Imm = []uint64{skb.EthPIP, skb.EthPIPv6}[rng.IntN(2)]
			case OpSetTunnelKey:
				op.Imm, op.Imm2 = uint64(rng.Uint32()), rng.Uint32()
			case OpAdjustRoom:
				// Growth only: shrinking, run after run, would eat the
				// frame's tail where the slot and sequence travel.
				op.Imm = uint64(int64([]int32{8, 4}[rng.IntN(2)]))
				op.Imm2 = uint32(rng.IntN(2)) // BPF_ADJ_ROOM_NET, BPF_ADJ_ROOM_MAC
			}
			switch op.Kind {
			case OpSetHash, OpVlanPush, OpVlanPop, OpChangeType, OpCsumLevel, OpStoreBytes, OpEcnSetCE, OpChangeProto, OpAdjustRoom, OpSetTunnelKey, OpGetTunnelKey:
				if results < 3 {
					op.Result = true
					results++
				}
			}
			v.Ops = append(v.Ops, op)
		}
		switch r := rng.IntN(20); {
		case r < 8:
			v.Verdict, v.Code = VerdictConst, -1 // TCX_NEXT
		case r < 11:
			v.Verdict, v.Code = VerdictConst, []int32{0, 0, 2, 2, 1, 3, 99}[rng.IntN(7)]
		case r < 13:
			v.Verdict, v.Code, v.OnMark = VerdictCond, []int32{0, 2}[rng.IntN(2)], rng.IntN(2) == 0
		case r < 17:
			v.Verdict = VerdictRedirect
		case r < 19:
			v.Verdict = VerdictSetter
		default:
			v.Verdict = VerdictFire
		}
		if v.Verdict == VerdictRedirect || v.Verdict == VerdictSetter {
			v.Target = targets[rng.IntN(len(targets))]
			if rng.IntN(2) == 0 {
				v.Flags = skb.FIngress
			}
			v.Peer = v.Verdict == VerdictRedirect && rng.IntN(4) == 0
		}
	}
	return vs
}

// Spec returns one collection with a program per variant and the maps
// they share: "steps" (per slot, the number of runs so far) and "rec"
// (per slot and step, a record of NWords words).
func Spec(vs []Variant) *ebpf.CollectionSpec {
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			"steps": {Name: "steps", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: BatchSlots},
			"rec":   {Name: "rec", Type: ebpf.Array, KeySize: 4, ValueSize: 4 * NWords, MaxEntries: BatchSlots * MaxSteps},
		},
		Programs: make(map[string]*ebpf.ProgramSpec, len(vs)),
	}
	for i := range vs {
		v := &vs[i]
		spec.Programs[v.Name()] = &ebpf.ProgramSpec{
			Name: v.Name(), Type: ebpf.SchedCLS, SectionName: "tc", License: "GPL",
			Instructions: v.program(),
		}
	}
	return spec
}

// Stack layout of a generated program (offsets from r10).
const (
	stTail  = -8  // the frame's last 8 bytes: slot (u32 LE), TTL, sequence
	stTTL   = -4  //
	stKey   = -16 // map key
	stData  = -32 // the first 16 bytes of the packet
	stBytes = -40 // bpf_skb_store_bytes source
	stTun   = -96 // struct bpf_tunnel_key (44 bytes)
)

// Registers: r6 ctx, r7 slot, r8 record (or 0), r9 step.
func (v *Variant) program() asm.Instructions {
	const (
		ctx, slot, rec, step = asm.R6, asm.R7, asm.R8, asm.R9
	)
	var in asm.Instructions
	add := func(is ...asm.Instruction) { in = append(in, is...) }
	label := 0
	newLabel := func() string { label++; return fmt.Sprintf("l%d", label) }

	add(asm.Mov.Reg(ctx, asm.R1),
		// bpf_skb_load_bytes(skb, len - 8, fp-8, 8)
		asm.LoadMem(asm.R2, ctx, skb.CtxLen, asm.Word),
		asm.Add.Imm(asm.R2, -8),
		asm.Mov.Reg(asm.R1, ctx),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, stTail),
		asm.Mov.Imm(asm.R4, 8),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "abort"),
		asm.LoadMem(slot, asm.RFP, stTail, asm.Word),
		asm.JGE.Imm(slot, BatchSlots, "abort"),
		asm.StoreMem(asm.RFP, stKey, slot, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("steps"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.LoadMem(step, asm.R0, 0, asm.Word),
		asm.Mov.Reg(asm.R1, step),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.Word),
		asm.Mov.Imm(rec, 0),
		asm.JGE.Imm(step, MaxSteps, "body"),
		asm.Mov.Reg(asm.R1, slot),
		asm.LSh.Imm(asm.R1, 6), // MaxSteps
		asm.Add.Reg(asm.R1, step),
		asm.StoreMem(asm.RFP, stKey, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("rec"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Reg(rec, asm.R0),
		asm.JEq.Imm(rec, 0, "body"),
		asm.StoreImm(rec, 4*wVariant, int64(v.ID), asm.Word),
	)
	for _, f := range ctxWords {
		add(asm.LoadMem(asm.R1, ctx, int16(f.off), asm.Word), asm.StoreMem(rec, int16(4*f.word), asm.R1, asm.Word))
	}
	add(asm.LoadMem(asm.R1, ctx, skb.CtxTstamp, asm.DWord), asm.StoreMem(rec, 4*wTstamp, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, ctx, skb.CtxHWTstamp, asm.DWord), asm.StoreMem(rec, 4*wHWTstamp, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, ctx, skb.CtxTstampType, asm.Byte), asm.StoreMem(rec, 4*wTstampType, asm.R1, asm.Word),
		asm.StoreMem(rec, 4*wStep, step, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stTTL, asm.Byte), asm.StoreMem(rec, 4*wTTL, asm.R1, asm.Word),
		// bpf_skb_load_bytes(skb, 0, fp-32, 16)
		asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm(asm.R2, 0), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, stData),
		asm.Mov.Imm(asm.R4, 16), asm.FnSkbLoadBytes.Call(),
	)
	for i := range 4 {
		add(asm.LoadMem(asm.R1, asm.RFP, int16(stData+4*i), asm.Word), asm.StoreMem(rec, int16(4*(wData+i)), asm.R1, asm.Word))
	}
	for w := wResult; w <= wVerdict; w++ {
		add(asm.StoreImm(rec, int16(4*w), 0, asm.Word))
	}

	// The body runs with or without a record (rec 0).
	body := len(in)
	result := 0
	record := func(word int) {
		skip := newLabel()
		add(asm.JEq.Imm(rec, 0, skip), asm.StoreMem(rec, int16(4*word), asm.R0, asm.Word), asm.Mov.Imm(asm.R0, 0).WithSymbol(skip))
	}
	call := func(fn asm.BuiltinFunc, op Op) {
		add(fn.Call())
		if op.Result {
			record(wResult + result)
			result++
		}
	}
	for _, op := range v.Ops {
		switch op.Kind {
		case OpMark:
			add(asm.LoadMem(asm.R1, ctx, skb.CtxMark, asm.Word), asm.Xor.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(ctx, skb.CtxMark, asm.R1, asm.Word))
		case OpPriority:
			add(asm.LoadMem(asm.R1, ctx, skb.CtxPriority, asm.Word), asm.Add.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(ctx, skb.CtxPriority, asm.R1, asm.Word))
		case OpTCIndex:
			add(asm.Mov.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(ctx, skb.CtxTCIndex, asm.R1, asm.Word))
		case OpTCClassid:
			add(asm.Mov.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(ctx, skb.CtxTCClassid, asm.R1, asm.Word))
		case OpCB:
			off := int16(skb.CtxCB + 4*op.Index)
			add(asm.LoadMem(asm.R1, ctx, off, asm.Word), asm.Add.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(ctx, off, asm.R1, asm.Word))
		case OpQueueMapping:
			add(asm.Mov.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(ctx, skb.CtxQueueMapping, asm.R1, asm.Word))
		case OpTstamp:
			add(asm.LoadImm(asm.R1, int64(op.Imm), asm.DWord), asm.StoreMem(ctx, skb.CtxTstamp, asm.R1, asm.DWord))
		case OpSetHash:
			add(asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm32(asm.R2, int32(uint32(op.Imm))))
			call(asm.FnSetHash, op)
			if op.Imm2 == 1 {
				add(asm.Mov.Reg(asm.R1, ctx), asm.FnGetHashRecalc.Call(), asm.StoreMem(ctx, skb.CtxCB+16, asm.R0, asm.Word))
			}
		case OpHashInvalid:
			add(asm.Mov.Reg(asm.R1, ctx))
			call(asm.FnSetHashInvalid, op)
		case OpVlanPush, OpVlanPop:
			skip := newLabel()
			add(asm.LoadMem(asm.R1, ctx, skb.CtxVlanPresent, asm.Word))
			if op.Kind == OpVlanPush {
				add(asm.JNE.Imm(asm.R1, 0, skip), asm.Mov.Reg(asm.R1, ctx),
					asm.Mov.Imm(asm.R2, int32(htons(uint16(op.Imm)))), asm.Mov.Imm(asm.R3, int32(op.Imm2)))
				call(asm.FnSkbVlanPush, op)
			} else {
				add(asm.JEq.Imm(asm.R1, 0, skip), asm.Mov.Reg(asm.R1, ctx))
				call(asm.FnSkbVlanPop, op)
			}
			add(asm.Mov.Imm(asm.R0, 0).WithSymbol(skip))
		case OpChangeType:
			add(asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm(asm.R2, int32(op.Imm)))
			call(asm.FnSkbChangeType, op)
		case OpCsumLevel:
			add(asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm(asm.R2, int32(op.Imm)))
			call(asm.FnCsumLevel, op)
		case OpStoreBytes:
			add(asm.Mov.Imm(asm.R1, int32(op.Imm)), asm.StoreMem(asm.RFP, stBytes, asm.R1, asm.Half),
				asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm(asm.R2, int32(op.Index)), asm.Mov.Reg(asm.R3, asm.RFP),
				asm.Add.Imm(asm.R3, stBytes), asm.Mov.Imm(asm.R4, 2), asm.Mov.Imm(asm.R5, 0))
			call(asm.FnSkbStoreBytes, op)
		case OpEcnSetCE:
			add(asm.Mov.Reg(asm.R1, ctx))
			call(asm.FnSkbEcnSetCe, op)
		case OpChangeProto:
			add(asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm(asm.R2, int32(htons(uint16(op.Imm)))), asm.Mov.Imm(asm.R3, 0))
			call(asm.FnSkbChangeProto, op)
		case OpSetTunnelKey:
			for off := int16(0); off < skb.TunnelKeySize; off += 4 {
				add(asm.StoreImm(asm.RFP, stTun+off, 0, asm.Word))
			}
			add(asm.Mov.Imm32(asm.R1, int32(uint32(op.Imm))), asm.StoreMem(asm.RFP, stTun, asm.R1, asm.Word),
				asm.Mov.Imm32(asm.R1, int32(op.Imm2)), asm.StoreMem(asm.RFP, stTun+4, asm.R1, asm.Word),
				asm.StoreImm(asm.RFP, stTun+21, 64, asm.Byte), // tunnel_ttl
				asm.Mov.Reg(asm.R1, ctx), asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, stTun),
				asm.Mov.Imm(asm.R3, skb.TunnelKeySize), asm.Mov.Imm(asm.R4, 0))
			call(asm.FnSkbSetTunnelKey, op)
		case OpGetTunnelKey:
			add(asm.Mov.Reg(asm.R1, ctx), asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, stTun),
				asm.Mov.Imm(asm.R3, skb.TunnelKeySize), asm.Mov.Imm(asm.R4, 0))
			call(asm.FnSkbGetTunnelKey, op)
			add(asm.LoadMem(asm.R1, asm.RFP, stTun, asm.Word), asm.StoreMem(ctx, skb.CtxCB+12, asm.R1, asm.Word))
		case OpAdjustRoom:
			add(asm.Mov.Reg(asm.R1, ctx), asm.Mov.Imm(asm.R2, int32(op.Imm)), asm.Mov.Imm(asm.R3, int32(op.Imm2)), asm.Mov.Imm(asm.R4, 0))
			call(asm.FnSkbAdjustRoom, op)
		}
	}
	in[body] = in[body].WithSymbol("body")

	// The verdict, recorded in wVerdict.
	switch v.Verdict {
	case VerdictConst:
		add(asm.Mov.Imm(asm.R0, v.Code))
	case VerdictCond:
		off, next, done := int16(skb.CtxCB), newLabel(), newLabel()
		if v.OnMark {
			off = skb.CtxMark
		}
		add(asm.LoadMem(asm.R1, ctx, off, asm.Word), asm.And.Imm(asm.R1, 1), asm.JEq.Imm(asm.R1, 0, next),
			asm.Mov.Imm(asm.R0, v.Code), asm.Ja.Label(done),
			asm.Mov.Imm(asm.R0, -1).WithSymbol(next), asm.Mov.Reg(asm.R0, asm.R0).WithSymbol(done))
	case VerdictSetter:
		add(asm.Mov.Imm(asm.R1, int32(v.Target)), asm.Mov.Imm(asm.R2, int32(v.Flags)), asm.FnRedirect.Call(),
			asm.Mov.Imm(asm.R0, -1))
	case VerdictRedirect, VerdictFire:
		none, done := newLabel(), newLabel()
		// While the TTL in the frame's tail lasts: decrement it in the
		// frame (bpf_skb_store_bytes at len - 4), then redirect.
		add(asm.LoadMem(asm.R1, asm.RFP, stTTL, asm.Byte), asm.JEq.Imm(asm.R1, 0, none),
			asm.Add.Imm(asm.R1, -1), asm.StoreMem(asm.RFP, stTTL, asm.R1, asm.Byte),
			asm.LoadMem(asm.R2, ctx, skb.CtxLen, asm.Word), asm.Add.Imm(asm.R2, -4),
			asm.Mov.Reg(asm.R1, ctx), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, stTTL),
			asm.Mov.Imm(asm.R4, 1), asm.Mov.Imm(asm.R5, 0), asm.FnSkbStoreBytes.Call())
		if v.Verdict == VerdictFire {
			add(asm.Mov.Imm(asm.R0, int32(skb.ActRedirect)))
		} else {
			fn := asm.FnRedirect
			if v.Peer {
				fn = asm.FnRedirectPeer
			}
			flags := int32(v.Flags)
			if v.Peer {
				flags = 0
			}
			add(asm.Mov.Imm(asm.R1, int32(v.Target)), asm.Mov.Imm(asm.R2, flags), fn.Call())
		}
		add(asm.Ja.Label(done), asm.Mov.Imm(asm.R0, -1).WithSymbol(none), asm.Mov.Reg(asm.R0, asm.R0).WithSymbol(done))
	}
	skip := newLabel()
	add(asm.JEq.Imm(rec, 0, skip), asm.StoreMem(rec, 4*wVerdict, asm.R0, asm.Word),
		asm.Return().WithSymbol(skip),
		asm.Mov.Imm(asm.R0, -1).WithSymbol("abort"), asm.Return())
	return in
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
