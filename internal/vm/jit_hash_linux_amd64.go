package vm

import (
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// This file compiles bpf_map_lookup_elem on the hash maps of
// AddressSpace.NewHashHandle: the key hashed and the bucket's sorted list
// walked in machine code, as the map's own lookup does, so the helper
// programs call most does not leave compiled code.

var (
	offRHash  = int32(unsafe.Offsetof(region{}.hash))
	offHSpill = offJIT + int32(unsafe.Offsetof(jitState{}.hash))

	offHDHeads  = int32(unsafe.Offsetof(hashDesc{}.heads))
	offHDMask   = int32(unsafe.Offsetof(hashDesc{}.mask))
	offHDNodes  = int32(unsafe.Offsetof(hashDesc{}.nodes))
	offHDNodeB  = int32(unsafe.Offsetof(hashDesc{}.nodeBytes))
	offHDN      = int32(unsafe.Offsetof(hashDesc{}.n))
	offHDKey    = int32(unsafe.Offsetof(hashDesc{}.keySize))
	offHDFull   = int32(unsafe.Offsetof(hashDesc{}.full))
	offHDTail   = int32(unsafe.Offsetof(hashDesc{}.tail))
	offHDSeed   = int32(unsafe.Offsetof(hashDesc{}.seed))
	offHDHMask  = int32(unsafe.Offsetof(hashDesc{}.hmask))
	offHDRef    = int32(unsafe.Offsetof(hashDesc{}.ref))
	offHDBases  = int32(unsafe.Offsetof(hashDesc{}.bases))
	offHDNCPU   = int32(unsafe.Offsetof(hashDesc{}.ncpu))
	offHDStride = int32(unsafe.Offsetof(hashDesc{}.stride))
	offHDJHash  = int32(unsafe.Offsetof(hashDesc{}.jhash))
)

// The routine's spill slots (jitState.hash).
const (
	hsRegs  = 0 // rax, rdi, rsi, rdx, r8, r9: r0-r5 survive a helper call
	hsTail  = 6 // the key's last, zero-padded word
	hsTries = 7 // walks started: a list changing under every one goes to Go
	hsJTail = 8 // jhash's last 1-12 bytes, zero-padded (two words)
)

// hashSpilled are the registers the routine uses besides r10, r11 and rcx.
var hashSpilled = [...]x.Reg{x.RAX, x.RDI, x.RSI, x.RDX, x.R8, x.R9}

// hashRoutineKey names the lookup routine among c.translators (shared
// out-of-line code, emitted once per program).
const hashRoutineKey = -1

// maxHashTries bounds the walks of one lookup: a walk restarts when the
// link it came through changed meanwhile, and the map's own lookup, which
// retries without end but can be preempted, takes over after these.
const maxHashTries = 64

// mapLookup emits the Options.ArrayLookup helper call at op pc: the hash
// handles of NewHashHandle here, the array handles by arrayLookup (by
// arrayMemo when r1 is proven to hold one), every other case by the
// helper in Go.
func (c *jitc) mapLookup(pc int) {
	a := &c.a
	if h, ok := c.arrayHandle(pc); ok {
		c.helperEntry(pc)
		c.arrayMemo(pc, h)
		return
	}
	slow := c.stub(pc, exitHelper)
	array, done := a.NewLabel(), a.NewLabel()
	c.helperEntry(pc)
	c.handleRegion(slow)
	a.ALUMI(true, x.CMP, x.M(jCX, offRHash), 0)
	a.Jcc(x.CondE, array)
	a.MovRR(true, jT0, jitReg[2])
	a.Call(c.hashRoutine())
	a.TestRR(false, jT1, jT1)
	a.Jcc(x.CondNE, slow)
	a.Jmp(done)
	a.Bind(array)
	c.arrayLookup(pc)
	a.Bind(done)
}

// helperEntry records what runNative records at a helper call at op pc:
// the steps so far and the call's op index.
func (c *jitc) helperEntry(pc int) {
	a := &c.a
	a.Load(8, jT0, x.M(jState, offLimit))
	a.ALURR(true, x.SUB, jT0, jBudget)
	a.ALURI(true, x.ADD, jT0, int32(pc+1))
	a.Store(8, x.M(jState, offSteps), jT0)
	a.StoreImm(8, x.M(jState, offMPC), int32(pc))
}

// handleRegion points rcx at the region of the handle in r1, or jumps
// to slow if r1 is no handle of the region table.
func (c *jitc) handleRegion(slow x.Label) {
	a := &c.a
	a.MovRR(true, jCX, jitReg[1])
	a.TestRR(false, jCX, jCX) // a handle's low half is 0
	a.Jcc(x.CondNE, slow)
	a.ShiftRI(true, x.SHR, jCX, 32)
	a.ALURM(true, x.CMP, jCX, x.M(jState, offRegions+8))
	a.Jcc(x.CondAE, slow)
	a.ImulRRI(true, jCX, jCX, regionSize)
	a.ALURM(true, x.ADD, jCX, x.M(jState, offRegions))
}

// hashRoutine returns the label of the lookup routine, emitting it after
// the body the first time. It takes the handle's region in rcx and the
// key's address in r11, and returns r10 = 0 with the value's address or
// NULL in rax, or r10 = 1 with every BPF register as it was when it
// declines (a CPU without a base, a key Machine.Mem would not read
// straight, a list that kept changing): the helper in Go then answers.
// It clobbers rcx and r11.
func (c *jitc) hashRoutine() x.Label {
	if l, ok := c.translators[hashRoutineKey]; ok {
		return l
	}
	a := &c.a
	l := a.NewLabel()
	c.translators[hashRoutineKey] = l
	c.late = append(c.late, func() {
		a.Bind(l)
		c.hashBody()
	})
	return l
}

func spill(i int) x.Mem { return x.M(jState, offHSpill+8*int32(i)) }

func (c *jitc) hashBody() {
	a := &c.a
	fail, null, out := a.NewLabel(), a.NewLabel(), a.NewLabel()
	for i, r := range hashSpilled {
		a.Store(8, spill(hsRegs+i), r)
	}
	d := x.RSI // the hashDesc throughout
	a.Load(8, d, x.M(jCX, offRHash))
	a.Load(8, x.RAX, x.M(jState, offCPU))
	a.ALURM(true, x.CMP, x.RAX, x.M(d, offHDNCPU))
	a.Jcc(x.CondAE, fail)

	// The key: Machine.access's fast path for keySize bytes at r11 (plain
	// regions: the stack, the packet); the rest goes to Go.
	a.MovRR(true, jCX, jT0)
	a.ShiftRI(true, x.SHR, jCX, 32)
	a.ALURM(true, x.CMP, jCX, x.M(jState, offRegions+8))
	a.Jcc(x.CondAE, fail)
	a.ImulRRI(true, jCX, jCX, regionSize)
	a.ALURM(true, x.ADD, jCX, x.M(jState, offRegions))
	a.Load(1, x.RAX, x.M(jCX, offRPerm))
	a.ALURI(false, x.AND, x.RAX, int32(permRead|permSlow))
	a.ALURI(false, x.CMP, x.RAX, int32(permRead))
	a.Jcc(x.CondNE, fail)
	a.MovRR(false, x.RAX, jT0) // the offset
	a.ALURM(false, x.CMP, x.RAX, x.M(jCX, offRLo))
	a.Jcc(x.CondB, fail)
	a.MovRR(true, x.RDI, x.RAX)
	a.ALURM(true, x.ADD, x.RDI, x.M(d, offHDKey))
	a.Load(4, x.RDX, x.M(jCX, offRHi))
	a.ALURR(true, x.CMP, x.RDI, x.RDX)
	a.Jcc(x.CondA, fail)
	a.ALURM(false, x.SUB, x.RAX, x.M(jCX, offRBase))
	a.ALURM(true, x.ADD, x.RAX, x.M(jCX, offRBuf))
	key := jT0
	a.MovRR(true, key, x.RAX)

	// The hash (HashLayout.Seed) in rdx.
	h := x.RDX
	hloop, htail, hdone := a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Load(8, h, x.M(d, offHDSeed))
	a.ALURR(false, x.XOR, x.R9, x.R9)
	a.Bind(hloop)
	a.ALURM(true, x.CMP, x.R9, x.M(d, offHDFull))
	a.Jcc(x.CondAE, htail)
	a.Load(8, x.RAX, x.MI(key, x.R9, 0))
	c.mum()
	a.ALURI(true, x.ADD, x.R9, 8)
	a.Jmp(hloop)
	a.Bind(htail)
	// The last 1-7 bytes, little-endian, in 4-, 2- and 1-byte loads
	// (the key may end where its region does).
	a.Load(8, x.RDI, x.M(d, offHDTail))
	a.TestRR(true, x.RDI, x.RDI)
	a.Jcc(x.CondE, hdone)
	a.ALURR(false, x.XOR, jT1, jT1)
	a.ALURR(false, x.XOR, jCX, jCX) // the bits loaded so far
	for _, n := range []int{4, 2, 1} {
		skip := a.NewLabel()
		a.TestRI(false, x.RDI, int32(n))
		a.Jcc(x.CondE, skip)
		a.Load(n, x.RAX, x.MI(key, x.R9, 0))
		a.ShiftRCL(true, x.SHL, x.RAX)
		a.ALURR(true, x.OR, jT1, x.RAX)
		a.ALURI(true, x.ADD, x.R9, int32(n))
		a.ALURI(false, x.ADD, jCX, int32(8*n))
		a.Bind(skip)
	}
	a.Store(8, spill(hsTail), jT1)
	a.MovRR(true, x.RAX, jT1)
	c.mum()
	a.Bind(hdone)
	c.jhash()
	a.ALURM(true, x.AND, h, x.M(d, offHDHMask))

	// The walk: index.lookup with plain loads (x86 loads are acquire).
	// r8 is the link word's address, r9 the link word read there, rdi the
	// node, r10 its link word.
	prev, pw, nd, cw := x.R8, x.R9, x.RDI, jT1
	retry, loop, less, greater, equal, kloop, ktail, kdiff := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.StoreImm(8, spill(hsTries), 0)
	a.Bind(retry)
	a.ALUMI(true, x.ADD, spill(hsTries), 1)
	a.ALUMI(true, x.CMP, spill(hsTries), maxHashTries)
	a.Jcc(x.CondA, fail)
	a.MovRR(true, x.RAX, h)
	a.ALURM(true, x.AND, x.RAX, x.M(d, offHDMask))
	a.ShiftRI(true, x.SHL, x.RAX, 3)
	a.Load(8, prev, x.M(d, offHDHeads))
	a.ALURR(true, x.ADD, prev, x.RAX)
	a.Load(8, pw, x.M(prev, 0))
	a.Bind(loop)
	a.MovRR(false, x.RAX, pw) // slot + 1
	a.TestRR(false, x.RAX, x.RAX)
	a.Jcc(x.CondE, null)
	a.ALURI(false, x.SUB, x.RAX, 1)
	a.ALURM(true, x.CMP, x.RAX, x.M(d, offHDN))
	a.Jcc(x.CondAE, fail) // never: links name slots
	a.Load(8, nd, x.M(d, offHDNodeB))
	a.ImulRR(true, nd, x.RAX)
	a.ALURM(true, x.ADD, nd, x.M(d, offHDNodes))
	a.Load(8, cw, x.M(nd, 8*HashNodeNext))
	a.Load(8, x.RAX, x.M(nd, 8*HashNodeHash))
	a.ALURR(true, x.CMP, x.RAX, h)
	a.Jcc(x.CondA, greater)
	a.Jcc(x.CondB, less)
	// Equal hashes: the key words decide, unsigned, in order.
	a.ALURR(false, x.XOR, jCX, jCX)
	a.Bind(kloop)
	a.ALURM(true, x.CMP, jCX, x.M(d, offHDFull))
	a.Jcc(x.CondAE, ktail)
	a.Load(8, x.RAX, x.MI(nd, jCX, 8*HashNodeKey))
	a.ALURM(true, x.CMP, x.RAX, x.MI(key, jCX, 0))
	a.Jcc(x.CondNE, kdiff)
	a.ALURI(true, x.ADD, jCX, 8)
	a.Jmp(kloop)
	a.Bind(ktail)
	a.ALUMI(true, x.CMP, x.M(d, offHDTail), 0)
	a.Jcc(x.CondE, equal)
	a.Load(8, x.RAX, x.MI(nd, jCX, 8*HashNodeKey))
	a.ALURM(true, x.CMP, x.RAX, spill(hsTail))
	a.Jcc(x.CondE, equal)
	a.Bind(kdiff) // the flags of the node's word against the key's
	a.Jcc(x.CondB, less)

	// Each outcome stands only if the link still points at the node.
	a.Bind(greater)
	a.ALUMR(true, x.CMP, x.M(prev, 0), pw)
	a.Jcc(x.CondNE, retry)
	a.Jmp(null)

	a.Bind(less)
	a.ALUMR(true, x.CMP, x.M(prev, 0), pw)
	a.Jcc(x.CondNE, retry)
	a.Lea(true, prev, x.M(nd, 8*HashNodeNext))
	a.MovRR(true, pw, cw)
	a.Jmp(loop)

	a.Bind(equal)
	a.ALUMR(true, x.CMP, x.M(prev, 0), pw)
	a.Jcc(x.CondNE, retry)
	// A marked node is deleted, and no live copy of the key follows it.
	a.MovRR(true, x.RAX, cw)
	a.ShiftRI(true, x.SHR, x.RAX, 32)
	a.TestRI(false, x.RAX, 1)
	a.Jcc(x.CondNE, null)
	a.MovRR(false, x.RAX, pw)
	a.ALURI(false, x.SUB, x.RAX, 1) // the slot
	noRef := a.NewLabel()
	a.Load(8, jCX, x.M(d, offHDRef))
	a.TestRR(true, jCX, jCX)
	a.Jcc(x.CondE, noRef)
	a.MovRR(true, x.RDI, x.RAX)
	a.ShiftRI(true, x.SHL, x.RDI, 2)
	a.ALURR(true, x.ADD, jCX, x.RDI)
	a.ALUMI(false, x.CMP, x.M(jCX, 0), 0)
	a.Jcc(x.CondNE, noRef)
	a.StoreImm(4, x.M(jCX, 0), 1)
	a.Bind(noRef)
	a.Load(8, x.RDI, x.M(d, offHDStride))
	a.ImulRR(true, x.RAX, x.RDI)
	a.Load(8, jCX, x.M(jState, offCPU))
	a.ShiftRI(true, x.SHL, jCX, 3)
	a.ALURM(true, x.ADD, jCX, x.M(d, offHDBases))
	a.ALURM(true, x.ADD, x.RAX, x.M(jCX, 0))
	a.Jmp(out)

	a.Bind(null)
	a.ALURR(false, x.XOR, x.RAX, x.RAX)
	a.Bind(out)
	for i, r := range hashSpilled[1:] {
		a.Load(8, r, spill(hsRegs+1+i))
	}
	a.ALURR(false, x.XOR, jT1, jT1)
	a.Ret()

	a.Bind(fail)
	for i, r := range hashSpilled {
		a.Load(8, r, spill(hsRegs+i))
	}
	a.MovRI64(jT1, 1)
	a.Ret()
}

// mum folds the word in rax into the hash in rdx: rdx = mum(rdx ^ rax,
// seed[1]) (HashLayout.Seed). The hashDesc is in rsi.
func (c *jitc) mum() {
	a := &c.a
	a.ALURR(true, x.XOR, x.RAX, x.RDX)
	a.Load(8, x.RDX, x.M(x.RSI, offHDSeed+8))
	a.MulRDX()
	a.ALURR(true, x.XOR, x.RDX, x.RAX)
}

// jhash replaces the hash in rdx, for a HashLayout.JHash map, with the
// kernel's jhash of the key at r11 with seed 0 (maps' htabHash: for a key
// of whole 32-bit words jhash2's value is jhash's). a, b and c are r8, r9
// and rdi, 32-bit; rcx counts the bytes left, r10 is their offset.
func (c *jitc) jhash() {
	a := &c.a
	skip, loop, tail, bytes, copied := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	ja, jb, jc, t := x.R8, x.R9, x.RDI, x.RAX
	d := x.RSI
	a.ALUMI(true, x.CMP, x.M(d, offHDJHash), 0)
	a.Jcc(x.CondE, skip)
	a.Load(4, ja, x.M(d, offHDKey))
	a.ALURI(false, x.ADD, ja, -0x21524111) // 0xdeadbeef + len
	a.MovRR(false, jb, ja)
	a.MovRR(false, jc, ja)
	a.Load(8, jCX, x.M(d, offHDKey))
	a.ALURR(false, x.XOR, jT1, jT1)
	rot := func(op x.ALU, dst, src x.Reg, k uint8) { // dst op= rol(src, k)
		a.MovRR(false, t, src)
		a.ShiftRI(false, x.ROL, t, k)
		a.ALURR(false, op, dst, t)
	}
	a.Bind(loop)
	a.ALURI(true, x.CMP, jCX, 12)
	a.Jcc(x.CondBE, tail)
	for i, r := range []x.Reg{ja, jb, jc} {
		a.ALURM(false, x.ADD, r, x.MI(jT0, jT1, int32(4*i)))
	}
	// __jhash_mix
	for _, s := range []struct {
		x, y, z x.Reg
		k       uint8
	}{{ja, jc, jb, 4}, {jb, ja, jc, 6}, {jc, jb, ja, 8}, {ja, jc, jb, 16}, {jb, ja, jc, 19}, {jc, jb, ja, 4}} {
		a.ALURR(false, x.SUB, s.x, s.y) // x -= y; x ^= rol(y, k); y += z
		rot(x.XOR, s.x, s.y, s.k)
		a.ALURR(false, x.ADD, s.y, s.z)
	}
	a.ALURI(true, x.ADD, jT1, 12)
	a.ALURI(true, x.SUB, jCX, 12)
	a.Jmp(loop)

	// The last 1-12 bytes, copied into zeroed spill words.
	a.Bind(tail)
	a.StoreImm(8, spill(hsJTail), 0)
	a.StoreImm(8, spill(hsJTail+1), 0)
	a.ALURR(true, x.ADD, jT1, jT0)
	a.ALURR(false, x.XOR, t, t)
	a.Bind(bytes)
	a.ALURR(true, x.CMP, t, jCX)
	a.Jcc(x.CondAE, copied)
	a.Load(1, x.RDX, x.MI(jT1, t, 0))
	a.Store(1, x.MI(jState, t, offHSpill+8*hsJTail), x.RDX)
	a.ALURI(true, x.ADD, t, 1)
	a.Jmp(bytes)
	a.Bind(copied)
	for i, r := range []x.Reg{ja, jb, jc} {
		a.ALURM(false, x.ADD, r, x.M(jState, offHSpill+8*hsJTail+int32(4*i)))
	}
	// __jhash_final
	for _, s := range []struct {
		x, y x.Reg
		k    uint8
	}{{jc, jb, 14}, {ja, jc, 11}, {jb, ja, 25}, {jc, jb, 16}, {ja, jc, 4}, {jb, ja, 14}, {jc, jb, 24}} {
		a.ALURR(false, x.XOR, s.x, s.y) // x ^= y; x -= rol(y, k)
		rot(x.SUB, s.x, s.y, s.k)
	}
	a.MovRR(false, x.RDX, jc)
	a.Bind(skip)
}
