package vm

import (
	"encoding/binary"
	"runtime"

	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// Engine chooses how Load prepares a program to run.
type Engine uint8

// The engines. The zero value interprets. EngineJIT compiles to machine
// code and falls back to the interpreter, visibly (Program.Compiled),
// where it cannot; EngineAuto is EngineJIT where the compiler runs
// (linux/amd64) and the interpreter elsewhere.
const (
	EngineInterp Engine = iota
	EngineJIT
	EngineAuto
)

func (e Engine) String() string {
	switch e {
	case EngineInterp:
		return "interp"
	case EngineJIT:
		return "jit"
	}
	return "auto"
}

// prepare compiles p if the engine asks for it.
func prepare(p *Program, e Engine) {
	switch {
	case e == EngineInterp:
		p.nativeWhy = "interpreter chosen"
	case !amd64.Supported:
		p.nativeWhy = "no compiler for " + runtime.GOOS + "/" + runtime.GOARCH
	default:
		compileNative(p)
	}
}

// Compiled reports whether p runs as machine code, and if not, why.
func (p *Program) Compiled() (bool, string) {
	if p.native != nil {
		return true, ""
	}
	return false, p.nativeWhy
}

// Exit reasons of compiled code: the native code stops at op jitPC and
// hands that op to Go.
const (
	exitMem    uint32 = iota + 1 // a load, store, atomic or LD_ABS the fast path could not do
	exitHelper                   // a helper call (or callx)
	exitCall                     // a bpf-to-bpf call
	exitExit                     // exit
	exitLimit                    // a taken jump to jitPC went over the instruction limit
	exitDeopt                    // a packet pointer failed its check: the interpreter runs the frame on (jitpkt.go)
)

// memoWays is how many slot memos besides jitState.memo each direction
// keeps.
const memoWays = 3

// constMemos is how many verdicts on constant accesses each row of
// jitState.ways keeps after its memoWays slot memos (constMemoAt):
// they live there because Machine.forgetSlots, which every rebind calls,
// empties every way of both rows, and a verdict on a shared region must
// be forgotten exactly when a slot memo is.
const constMemos = 16

// siteMemos is how many site entries each direction keeps (a power of
// two, see siteMemoAt).
const siteMemos = 32

// maxCtxSites bounds the context sites a program gets short paths for
// (jitc.ctxShort); the rest take the full path, which decides the same way.
const maxCtxSites = 64

// jitState is the part of a Machine compiled code reads and writes.
type jitState struct {
	resume uintptr // where the entry stub jumps
	budget int64   // limit - acc (in rbp while compiled code runs): a taken jump to t is allowed while budget >= t
	code   uint32  // exit reason
	pc     uint32  // op index of the exit

	// The packet window, refreshed from the region table before every
	// entry (only Go code changes it): an access of 1<<k bytes at a is a
	// packet access iff pktLo <= a <= pktMax[k], at host address
	// a + pktDelta.
	pktLo    uint64
	pktMax   [4]uint64
	pktDelta uintptr

	// The context image of a ContextImage accessor: a load (store) the
	// plain read (write) table and the program's policy table, if any,
	// allow reads (writes) ctxImg + offset while *ctxFresh, and a store
	// sets the bits of its words in the uint64 at ctxDirty
	// (CtxDirtyWords); ctxFresh 0 means never.
	ctxFresh, ctxDirty, ctxImg uintptr
	ctxPlain, ctxPol           [2]uintptr // [load, store] tables
	ctxAlias                   [2]uintptr // the plain tables' aliases (CtxPolicy.alias)
	// The context window as addresses, as pktLo and pktMax (ctxLo
	// MaxUint64 while ctxFresh is 0): the inline context path of a load or
	// store, which then applies the rules above.
	ctxLo  uint64
	ctxMax [4]uint64
	// ctxLive is ctxImg while the image is fresh, else 0, as the entry
	// stubs found it; ctxSites[i] says that site i of sitesProg's
	// compiled code is a plain access inside the window (jitc.ctxShort,
	// jitCtxSites).
	ctxLive   uintptr
	ctxSites  [maxCtxSites]uint8
	sitesProg *Program
	// ctxNeed is the words of the image sitesProg's sites access
	// (native.siteWords): the entry stubs find the image live when all of
	// them are fresh, which is all an owner may vouch for (ContextImage).
	ctxNeed uint64

	save [2]uint64    // rax and rdx while the slot check multiplies
	hash [10]uint64   // the hash lookup's spills (jit_hash)
	ph   pktHelpState // compiled packet helpers (pkthelp.go)

	// memo is the slot of a slotted region (a map value) that compiled
	// code last translated, [0] for loads, [1] for stores (see
	// jitc.slotMemo); Machine.forgetSlots empties both.
	memo [2]slotMemo
	// ways are more memos, [0] for loads, [1] for stores: a slot
	// translated pushes the memo it replaces into way wayNext (round
	// robin), and an access that misses the memo but hits a way uses
	// it where it is (jitc.slotWays), so a run going through a few map values (a
	// counter per map) translates none of them once they have been
	// translated.
	// The constMemos entries after them in each row are not slot memos
	// but verdicts on constant accesses (constMemoAt).
	ways    [2][memoWays + constMemos]slotMemo
	wayNext [2]uint64
	// siteWay names, for access sites through a probable map value
	// (hintSlot), the memo that last served the site: [0] for loads, [1]
	// for stores, each site's entry chosen by a hash of its program and op
	// (jitc.siteMemoAt), as the byte offset of that memo from its row's
	// shared memo (0, the zero value: the shared memo; else one of the
	// row's ways). A run going through several map values in turn then
	// finds each one's slot at the first check instead of walking the
	// ways, and a site whose slot changed pays a check and a store, not a
	// copy. Compiled code writes only offsets of its row's memos here, so
	// the entry always names a memo, and an emptied memo only misses.
	siteWay [2][siteMemos]int64

	cpu   uint64 // SetCPU: the index into a region's arrBase
	limit int64  // runNative's limit: steps = limit - budget + pc

	// published says the packet and context windows above match the
	// regions; everything that changes those regions clears it.
	published bool

	// memExits counts the memory ops Go served for compiled code, so
	// tests can tell an access done in line from one that left.
	memExits uint64
}

// jitMem performs the memory op o at op index pc exactly as the interpreter
// does, for compiled code whose fast path declined it. ok is false when an
// LD_ABS/LD_IND went out of bounds, which ends the program with r0 = 0.
func (m *Machine) jitMem(o *op, pc int) (ok bool, err error) {
	m.jit.memExits++
	regs := &m.regs
	switch o.kind {
	case kLdxB, kLdxH, kLdxW, kLdxDW, kLdxSB, kLdxSH, kLdxSW:
		n := memSize(o.kind)
		a := regs[o.src] + uint64(int64(o.off))
		var v uint64
		if b := m.access(a, n, permRead); b != nil {
			var w [8]byte
			copy(w[:], b)
			v = binary.LittleEndian.Uint64(w[:])
		} else if v, err = m.loadSlow(a, n, pc); err != nil {
			return false, err
		}
		regs[o.dst] = loadExtend(o.kind, v)
	case kStB, kStH, kStW, kStDW, kStxB, kStxH, kStxW, kStxDW:
		n := memSize(o.kind)
		a := regs[o.dst] + uint64(int64(o.off))
		v := o.imm
		if o.kind >= kStxB {
			v = regs[o.src]
		}
		if b := m.access(a, n, permRead|permWrite); b != nil {
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], v)
			copy(b, w[:n])
		} else if err = m.storeSlow(a, n, v, pc); err != nil {
			return false, err
		}
	case kAtomic32, kAtomic64:
		n := uint32(4)
		if o.kind == kAtomic64 {
			n = 8
		}
		const need = permRead | permWrite | permAtomic
		a := regs[o.dst] + uint64(int64(o.off))
		b := m.access(a, n, need)
		if b == nil {
			return false, m.memFault(m.prog, pc, a, n, need)
		}
		if a&uint64(n-1) != 0 || !aligned(b, n) {
			return false, m.fault(m.prog, pc, FaultMisaligned, a, n, need)
		}
		atomicOp(o, b, regs, n)
	case kLdAbsB, kLdAbsH, kLdAbsW, kLdIndB, kLdIndH, kLdIndW:
		off := int64(o.off)
		if o.kind >= kLdIndB {
			off = int64(int32(uint32(regs[o.src]) + uint32(o.off)))
		}
		v, ok := m.ldAbs(off, int64(1)<<((o.kind-kLdAbsB)%3))
		if !ok {
			return false, nil
		}
		regs[0] = v
	default:
		panic("vm: jitMem: not a memory op")
	}
	return true, nil
}

// slotMemo is an address window as pktLo, pktMax and pktDelta are: an
// access of 1<<k bytes at a with lo <= a <= max[k] is at host address
// a + delta.
type slotMemo struct {
	lo    uint64
	max   [4]uint64
	delta uint64
}

// memSize is the access size of a load or store kind.
func memSize(kind uint8) uint32 {
	switch kind {
	case kLdxB, kLdxSB, kStB, kStxB:
		return 1
	case kLdxH, kLdxSH, kStH, kStxH:
		return 2
	case kLdxW, kLdxSW, kStW, kStxW:
		return 4
	}
	return 8
}

// loadExtend is what load kind leaves in its register of the n bytes v
// holds (zero-extended): the sign-extending loads (MEMSX) extend them.
func loadExtend(kind uint8, v uint64) uint64 {
	switch kind {
	case kLdxSB:
		return uint64(int64(int8(v)))
	case kLdxSH:
		return uint64(int64(int16(v)))
	case kLdxSW:
		return uint64(int64(int32(v)))
	}
	return v
}
