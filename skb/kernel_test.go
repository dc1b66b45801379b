package skb_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// The kernel is the oracle: testdata/helpers.c runs a list of skb helper
// calls under BPF_PROG_TEST_RUN and records every return value and a
// snapshot of struct __sk_buff; goOps performs the same calls on a Packet.

// Op codes of testdata/helpers.c.
const (
	opEnd = iota
	opStore
	opLoad
	opLoadRel
	opL3
	opL4
	opCsumDiff
	opCsumUpdate
	opCsumLevel
	opChangeProto
	opChangeType
	opChangeHead
	opChangeTail
	opAdjustRoom
	opPull
	opVlanPush
	opVlanPop
	opHashRecalc
	opSetHash
	opHashInvalid
	opEcn
	opRedirect
	opClone
	opCtxWrite
	opRedirectPeer
	opCtxWrite2
	opSetTstamp
	opCount
)

// op is struct op of helpers.c (104 bytes).
type op struct {
	Code, A, B, C uint32
	D, E, F       uint64
	Buf           [64]byte
}

func (o op) bytes() []byte {
	b := make([]byte, 104)
	le := binary.LittleEndian
	le.PutUint32(b[0:], o.Code)
	le.PutUint32(b[4:], o.A)
	le.PutUint32(b[8:], o.B)
	le.PutUint32(b[12:], o.C)
	le.PutUint64(b[16:], o.D)
	le.PutUint64(b[24:], o.E)
	le.PutUint64(b[32:], o.F)
	copy(b[40:], o.Buf[:])
	return b
}

func (o op) String() string {
	return fmt.Sprintf("{op %d a=%#x b=%#x c=%#x d=%#x e=%#x f=%#x}", o.Code, o.A, o.B, o.C, o.D, o.E, o.F)
}

// res is struct res of helpers.c: a return value and a __sk_buff snapshot.
type res struct {
	Ret int64
	F   [22]uint32
	Buf [64]byte
}

const resSize = 8 + 22*4 + 64

type runResult struct {
	errno   syscall.Errno
	retval  uint32
	data    []byte
	ctx     []byte
	res     []res
	unknown int // ops from this index on depend on memory the kernel never initialised
}

func loadHelpersSpec(t testing.TB) *ebpf.CollectionSpec {
	spec, err := ebpf.LoadCollectionSpec(filepath.Join("testdata", "helpers.o"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// kernelOracle loads helpers.o in a fresh network namespace (clones then
// only reach its loopback device). quirks are the running kernel's, for
// the model to follow.
type kernelOracle struct {
	ns     *kernel.NetNS
	r      *kernel.TestRunner
	quirks skb.Quirks
}

func newKernelOracle(t *testing.T) *kernelOracle {
	kerneltest.RequireKernel(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	r, err := kernel.NewTestRunner(loadHelpersSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	k := &kernelOracle{ns: ns, r: r}
	k.quirks = k.kernelQuirks(t)
	return k
}

// kernelQuirks picks the model's behaviour for the running kernel from its
// release; for a release skb.QuirksFor has no record of, it asks the
// kernel with the directed case that tells each quirk apart.
func (k *kernelOracle) kernelQuirks(t *testing.T) skb.Quirks {
	rel, q, known := kerneltest.Quirks(t)
	if known&skb.QuirkGrowPastTail == 0 {
		// NET-mode growth on a packet cut to its MAC header: the offset
		// (34) lies past the tail (14).
		ops := []op{{Code: opChangeTail, A: 14}, {Code: opAdjustRoom, A: 20, B: skb.AdjRoomNet}}
		got := k.run(t, testFrame(skb.EthPIP, 60), nil, ops)
		if got.errno != 0 || len(got.res) != 2 {
			t.Fatalf("probe QuirkGrowPastTail: %v", got.errno)
		}
		q &^= skb.QuirkGrowPastTail
		if got.res[1].Ret == 0 {
			q |= skb.QuirkGrowPastTail
		}
		t.Logf("kernel %s: no record of QuirkGrowPastTail, asked the kernel: adjust_room past the tail = %d", rel, got.res[1].Ret)
	}
	t.Logf("kernel %s: model quirks %#x", rel, q)
	return q
}

func (k *kernelOracle) run(t *testing.T, data, ctx []byte, ops []op) runResult {
	for i := range 8 {
		var o op
		if i < len(ops) {
			o = ops[i]
		}
		key := binary.LittleEndian.AppendUint32(nil, uint32(i))
		if err := k.r.SetMap("ops", key, o.bytes()); err != nil {
			t.Fatal(err)
		}
		if err := k.r.SetMap("out", key, make([]byte, resSize)); err != nil {
			t.Fatal(err)
		}
	}
	var out kernel.RunOutput
	runErr := k.ns.Do(func() error {
		var err error
		out, err = k.r.Run("run", kernel.RunInput{Data: data, Ctx: ctx})
		return err
	})
	rr := runResult{unknown: len(ops)}
	if runErr != nil {
		if !errors.As(runErr, &rr.errno) {
			t.Fatal(runErr)
		}
		return rr
	}
	rr.retval, rr.data, rr.ctx = out.Retval, out.Data, out.Ctx
	kvs, err := k.r.MapContents("out")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ops {
		v := kvs[i].Values[0]
		var r res
		r.Ret = int64(binary.LittleEndian.Uint64(v))
		for j := range r.F {
			r.F[j] = binary.LittleEndian.Uint32(v[8+4*j:])
		}
		copy(r.Buf[:], v[8+22*4:])
		rr.res = append(rr.res, r)
	}
	return rr
}

// cloneVerdict stands for the transmit result of a clone of a GSO packet:
// the kernel reports dev_queue_xmit's verdict, which skb leaves to OnClone.
const cloneVerdict = 1 << 40

// goOps performs ops on a Packet built like test_run's skb, with the
// behaviour of the kernel quirks name.
func goOps(data, ctx []byte, ops []op, quirks skb.Quirks) runResult {
	p := skb.Packet{Quirks: quirks}
	if err := p.ResetTestRun(data, ctx, nil); err != nil {
		var rr runResult
		errors.As(err, &rr.errno)
		return rr
	}
	rr := runResult{unknown: len(ops)}
	var img [skb.CtxSize]byte
	for i, o := range ops {
		var r res
		n := int(o.B&63) + 1
		switch o.Code {
		case opStore:
			r.Ret = p.StoreBytes(o.A, o.Buf[:n], o.D)
		case opLoad:
			r.Ret = p.LoadBytes(o.A, r.Buf[:n])
		case opLoadRel:
			r.Ret = p.LoadBytesRelative(o.A, r.Buf[:n], o.C)
		case opL3:
			r.Ret = p.L3CsumReplace(o.A, o.D, o.E, o.F)
		case opL4:
			r.Ret = p.L4CsumReplace(o.A, o.D, o.E, o.F)
		case opCsumDiff:
			r.Ret = skb.CsumDiff(o.Buf[:o.A&31], o.Buf[32:32+o.B&31], o.C)
		case opCsumUpdate:
			r.Ret = p.CsumUpdate(o.A)
		case opCsumLevel:
			r.Ret = p.CsumLevel(o.D)
		case opChangeProto:
			r.Ret = p.ChangeProto(uint16(o.A), o.D)
		case opChangeType:
			r.Ret = p.ChangeType(o.A)
		case opChangeHead:
			r.Ret = p.ChangeHead(o.A, o.D)
		case opChangeTail:
			r.Ret = p.ChangeTail(o.A, o.D)
		case opAdjustRoom:
			// Growing at an offset beyond the packet makes kernels with
			// QuirkGrowPastTail copy whatever memory follows the tail;
			// nothing after that compares.
			off := p.NetworkOffset() - p.MACOffset()
			if o.B == skb.AdjRoomNet {
				off += map[uint16]int{skb.EthPIP: 20, skb.EthPIPv6: 40}[p.Protocol]
			}
			pastTail := int32(o.A) > 0 && off > p.Len()
			r.Ret = p.AdjustRoom(int32(o.A), o.B, o.D)
			if quirks&skb.QuirkGrowPastTail != 0 && pastTail && r.Ret == 0 && rr.unknown == len(ops) {
				rr.unknown = i
			}
		case opPull:
			r.Ret = p.PullData(o.A)
		case opVlanPush:
			r.Ret = p.VlanPush(uint16(o.A), uint16(o.B))
		case opVlanPop:
			r.Ret = p.VlanPop()
		case opHashRecalc:
			r.Ret = p.GetHashRecalc()
		case opSetHash:
			r.Ret = p.SetHash(o.A)
		case opHashInvalid:
			p.SetHashInvalid()
		case opEcn:
			r.Ret = p.EcnSetCE()
		case opRedirect:
			r.Ret = p.Redirect(o.A, o.D)
		case opClone:
			switch {
			case o.D&^skb.FIngress == 0 && p.GSOSize != 0 && p.GSOType == 0:
				r.Ret = p.CloneRedirect(o.A, o.D) // -EBADMSG precedes the device lookup
			case o.A != 1 && o.D&^skb.FIngress == 0:
				r.Ret = -linuxerr.EINVAL // no such device in the namespace
			default:
				r.Ret = p.CloneRedirect(o.A, o.D)
				if r.Ret == 0 && p.GSOSize != 0 {
					r.Ret = cloneVerdict
				}
			}
		case opCtxWrite:
			p.WriteCtx(img[:], 0)
			p.StoreCtx(img[:], skb.CtxMark, 4, uint64(o.A))
			p.StoreCtx(img[:], skb.CtxPriority, 4, uint64(o.B))
			p.StoreCtx(img[:], skb.CtxTCIndex, 4, uint64(o.C))
			p.StoreCtx(img[:], skb.CtxQueueMapping, 4, uint64(uint32(o.D)))
			p.StoreCtx(img[:], skb.CtxTCClassid, 4, uint64(uint32(o.E)))
		case opRedirectPeer:
			r.Ret = p.RedirectPeer(o.A, o.D)
		case opSetTstamp:
			r.Ret = p.SetTstamp(o.D, o.A)
		case opCtxWrite2:
			p.WriteCtx(img[:], 0)
			p.StoreCtx(img[:], skb.CtxTstamp, 8, o.D)
			p.StoreCtx(img[:], skb.CtxCB, 4, uint64(o.A))
			p.StoreCtx(img[:], skb.CtxCB+16, 4, uint64(o.B))
		}
		p.WriteCtx(img[:], 0x1000)
		ld := func(off int) uint32 { return uint32(skb.CtxLoad(img[:], off, 4)) }
		for j, off := range []int{skb.CtxLen, skb.CtxProtocol, skb.CtxVlanPresent, skb.CtxVlanTCI,
			skb.CtxVlanProto, skb.CtxPktType} {
			r.F[j] = ld(off)
		}
		r.F[6] = ld(skb.CtxDataEnd) - ld(skb.CtxData)
		for j, off := range []int{skb.CtxQueueMapping, skb.CtxTCIndex, skb.CtxHash, skb.CtxMark,
			skb.CtxPriority, skb.CtxTCClassid, skb.CtxWireLen, skb.CtxGSOSegs, skb.CtxGSOSize} {
			r.F[7+j] = ld(off)
		}
		r.F[16] = ld(skb.CtxData) - ld(skb.CtxDataMeta)
		r.F[17] = ld(skb.CtxIfindex)
		r.F[18] = ld(skb.CtxIngressIfindex)
		r.F[19] = ld(skb.CtxNapiID)
		r.F[20] = uint32(skb.CtxLoad(img[:], skb.CtxTstampType, 1))
		r.F[21] = uint32(skb.CtxLoad(img[:], skb.CtxTstamp, 8))
		rr.res = append(rr.res, r)
		rr.retval = uint32(r.Ret)
	}
	rr.data = bytes.Clone(p.Data())
	if ctx != nil {
		rr.ctx = make([]byte, skb.CtxSize)
		p.CtxOut(rr.ctx)
	}
	return rr
}

// diff describes the first difference between the kernel's and Go's run.
func diff(k, g runResult, ops []op) string {
	if k.errno != g.errno {
		return fmt.Sprintf("test run error: kernel %v, go %v", k.errno, g.errno)
	}
	if k.errno != 0 {
		return ""
	}
	known := min(g.unknown+1, len(ops))
	hashKnown := true
	for i := range known {
		kr, gr := k.res[i], g.res[i]
		if ops[i].Code == opHashRecalc {
			hashKnown = false // the kernel's flow hash is keyed with a boot-time secret
			kr.Ret, gr.Ret = 0, 0
		}
		if !hashKnown {
			kr.F[9], gr.F[9] = 0, 0
		}
		if gr.Ret == cloneVerdict {
			kr.Ret, gr.Ret = 0, 0
		}
		if ops[i].Code != opLoad && ops[i].Code != opLoadRel {
			kr.Buf, gr.Buf = [64]byte{}, [64]byte{}
		}
		if kr != gr {
			return fmt.Sprintf("after %v:\n kernel ret=%d ctx=%v buf=%x\n go     ret=%d ctx=%v buf=%x",
				ops[i], kr.Ret, kr.F, kr.Buf[:8], gr.Ret, gr.F, gr.Buf[:8])
		}
	}
	if g.unknown < len(ops) {
		return ""
	}
	if last := len(ops) - 1; last >= 0 && ops[last].Code != opHashRecalc && g.res[last].Ret != cloneVerdict && k.retval != g.retval {
		return fmt.Sprintf("retval: kernel %d, go %d", k.retval, g.retval)
	}
	if !bytes.Equal(k.data, g.data) {
		return fmt.Sprintf("data_out (%d/%d bytes):\n kernel %x\n go     %x", len(k.data), len(g.data), k.data, g.data)
	}
	if !bytes.Equal(k.ctx, g.ctx) {
		return fmt.Sprintf("ctx_out:\n kernel %x\n go     %x", k.ctx, g.ctx)
	}
	return ""
}

func TestPacket_Helpers_KernelDirected(t *testing.T) {
	k := newKernelOracle(t)
	ipv4 := testFrame(skb.EthPIP, 60)
	ipv6 := testFrame(skb.EthPIPv6, 80)
	gsoCtx := make([]byte, skb.CtxSize)
	binary.LittleEndian.PutUint32(gsoCtx[skb.CtxGSOSize:], 873)
	for _, c := range []struct {
		name string
		data []byte
		ctx  []byte
		ops  []op
	}{
		{"QinQ push moves the first tag into the packet, pops restore", ipv4, nil, []op{
			{Code: opVlanPush, A: 0x0081, B: 0x1234}, {Code: opVlanPush, A: 0xa888, B: 0x567},
			{Code: opLoadRel, B: 7, C: skb.HdrStartNet}, {Code: opVlanPop}, {Code: opVlanPop}, {Code: opVlanPop}}},
		{"a reallocating push sets the transport header change_tail bounds by", ipv4, nil, []op{
			{Code: opAdjustRoom, A: 100, B: skb.AdjRoomMAC}, {Code: opChangeTail, A: 34}, {Code: opChangeTail, A: 35}}},
		{"encap flags are checked before headroom grows", ipv4, nil, []op{
			{Code: opAdjustRoom, A: 4095, B: skb.AdjRoomMAC, D: skb.FAdjRoomEncapL3IPv4 | skb.FAdjRoomEncapL4GRE | skb.FAdjRoomEncapL4UDP},
			{Code: opChangeTail, A: 14}}},
		{"decap flags: growing and both versions are EINVAL, after the mode", ipv6, nil, []op{
			{Code: opAdjustRoom, A: 8, B: 2, D: skb.FAdjRoomDecapL3IPv4}, {Code: opAdjustRoom, A: 8, B: 1, D: skb.FAdjRoomDecapL3IPv4},
			{Code: opAdjustRoom, A: 0xfffffff8, B: 1, D: skb.FAdjRoomDecapL3IPv4 | skb.FAdjRoomDecapL3IPv6}}},
		{"GSO without gso_type: clone is EBADMSG until change_proto marks it", ipv6, gsoCtx, []op{
			{Code: opClone, A: 9999}, {Code: opChangeProto, A: 0x0008}, {Code: opClone, A: 9999}}},
		{"csum_level counts and resets", ipv4, nil, []op{
			{Code: opCsumLevel, D: 0}, {Code: opCsumLevel, D: 1}, {Code: opCsumLevel, D: 1}, {Code: opCsumLevel, D: 0},
			{Code: opAdjustRoom, A: 4, B: 1}, {Code: opCsumLevel, D: 0}, {Code: opCsumLevel, D: 9}}},
		{"growth past the tail: -ENOMEM (6.18.44) after the encap flag checks, or bytes moved (QuirkGrowPastTail)", ipv4, nil, []op{
			{Code: opChangeTail, A: 14},
			{Code: opAdjustRoom, A: 40, B: skb.AdjRoomNet, D: skb.FAdjRoomEncapL3IPv4 | skb.FAdjRoomEncapL3IPv6},
			{Code: opAdjustRoom, A: 40, B: skb.AdjRoomMAC, D: skb.FAdjRoomEncapL3IPv6 | skb.FAdjRoomEncapL4UDP},
			{Code: opAdjustRoom, A: 40, B: skb.AdjRoomNet, D: skb.FAdjRoomEncapL3IPv6 | skb.FAdjRoomEncapL4UDP}}},
		{"NAT64 room and back", ipv4, nil, []op{
			{Code: opChangeProto, A: 0xdd86}, {Code: opLoadRel, B: 40, C: skb.HdrStartNet}, {Code: opChangeProto, A: 0x0008}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := diff(k.run(t, c.data, c.ctx, c.ops), goOps(c.data, c.ctx, c.ops, k.quirks), c.ops); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestPacket_Helpers_KernelRandom compares random helper sequences with the
// kernel: a fixed seed (1) every run, so that a failure once seen stays, and
// a seed that changes every UTC day, so that CI keeps covering new ground.
// Each failure prints the seed and iteration; SKB_KERNEL_SEED=<seed>
// SKB_KERNEL_ITERS=<n> replays one. Under TCX_REQUIRE_KERNEL (CI) both
// seeds run 20,000 iterations, else 4,000 (500 with -short).
func TestPacket_Helpers_KernelRandom(t *testing.T) {
	k := newKernelOracle(t)
	iters := 4000
	if os.Getenv("TCX_REQUIRE_KERNEL") == "1" {
		iters = 20000
	}
	if testing.Short() {
		iters = 500
	}
	if s := os.Getenv("SKB_KERNEL_ITERS"); s != "" {
		fmt.Sscan(s, &iters)
	}
	seeds := []uint64{1, uint64(time.Now().UTC().Unix() / 86400)}
	if s := os.Getenv("SKB_KERNEL_SEED"); s != "" {
		var seed uint64
		fmt.Sscan(s, &seed)
		seeds = []uint64{seed}
	}
	for _, seed := range seeds {
		t.Logf("seed %d, %d iterations (replay: SKB_KERNEL_SEED=%d SKB_KERNEL_ITERS=%d)", seed, iters, seed, iters)
		r := rand.New(rand.NewPCG(seed, 2))
		fails := 0
		for it := range iters {
			data, ctx := randFrame(r), randCtx(r)
			ops := make([]op, 1+r.IntN(8))
			for i := range ops {
				ops[i] = randOp(r, len(data))
			}
			if d := diff(k.run(t, data, ctx, ops), goOps(data, ctx, ops, k.quirks), ops); d != "" {
				t.Errorf("seed %d iteration %d\nframe %x\nctx %x\nops %v\n%s", seed, it, data, ctx, ops, d)
				if fails++; fails == 5 {
					break
				}
			}
		}
	}
}

func TestHelpersObject_UpToDate(t *testing.T) {
	if _, err := exec.LookPath("clang-19"); err != nil {
		t.Skip("clang-19 not installed: cannot rebuild testdata/helpers.o to compare")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed: cannot rebuild testdata/helpers.o to compare")
	}
	tmp := t.TempDir()
	if out, err := exec.Command("make", "-s", "-B", "-C", "testdata", "OUT="+tmp).CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(tmp, "helpers.o"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("testdata", "helpers.o"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("testdata/helpers.o is stale: run make -C skb/testdata")
	}
}
