package engine

import (
	"fmt"
	"syscall"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
)

// helperTable is the helper set of tc programs the engine implements,
// indexed by helper ID. Programs calling anything else are refused at load.
func helperTable() []vm.HelperFunc {
	fns := map[asm.BuiltinFunc]vm.HelperFunc{
		asm.FnMapLookupElem:       mapLookupElem,
		asm.FnMapUpdateElem:       mapUpdateElem,
		asm.FnMapDeleteElem:       mapDeleteElem,
		asm.FnMapLookupPercpuElem: mapLookupPercpuElem,
		asm.FnTailCall:            tailCall,

		asm.FnKtimeGetNs:           ktimeGetNs,
		asm.FnKtimeGetBootNs:       ktimeGetNs,
		asm.FnKtimeGetCoarseNs:     ktimeGetNs,
		asm.FnKtimeGetTaiNs:        ktimeGetTaiNs,
		asm.FnGetPrandomU32:        getPrandomU32,
		asm.FnGetSmpProcessorId:    getSmpProcessorID,
		asm.FnGetNumaNodeId:        getNumaNodeID,
		asm.FnTracePrintk:          tracePrintk,
		asm.FnLoop:                 loop,
		asm.FnSpinLock:             spinLockHelper,
		asm.FnSpinUnlock:           spinUnlockHelper,
		asm.FnRingbufOutput:        ringbufOutput,
		asm.FnRingbufReserve:       ringbufReserve,
		asm.FnRingbufSubmit:        ringbufSubmit,
		asm.FnRingbufDiscard:       ringbufDiscard,
		asm.FnRingbufQuery:         ringbufQuery,
		asm.FnPerfEventOutput:      perfEventOutput,
		asm.FnCsumDiff:             csumDiff,
		asm.FnRedirect:             redirect,
		asm.FnRedirectPeer:         redirectPeer,
		asm.FnRedirectNeigh:        redirectNeigh,
		asm.FnSkbLoadBytes:         skbLoadBytes,
		asm.FnSkbLoadBytesRelative: skbLoadBytesRelative,
		asm.FnSkbStoreBytes:        skbStoreBytes,
		asm.FnL3CsumReplace:        l3CsumReplace,
		asm.FnL4CsumReplace:        l4CsumReplace,
		asm.FnCsumUpdate:           csumUpdate,
		asm.FnCsumLevel:            csumLevel,
		asm.FnCloneRedirect:        cloneRedirect,
		asm.FnSkbChangeProto:       skbChangeProto,
		asm.FnSkbChangeType:        skbChangeType,
		asm.FnSkbChangeHead:        skbChangeHead,
		asm.FnSkbChangeTail:        skbChangeTail,
		asm.FnSkbAdjustRoom:        skbAdjustRoom,
		asm.FnSkbPullData:          skbPullData,
		asm.FnSkbVlanPush:          skbVlanPush,
		asm.FnSkbVlanPop:           skbVlanPop,
		asm.FnGetHashRecalc:        getHashRecalc,
		asm.FnSetHash:              setHash,
		asm.FnSetHashInvalid:       setHashInvalid,
		asm.FnSkbEcnSetCe:          skbEcnSetCE,
		asm.FnSkbSetTstamp:         skbSetTstamp,
		asm.FnSkbGetTunnelKey:      skbGetTunnelKey,
		asm.FnSkbSetTunnelKey:      skbSetTunnelKey,
		asm.FnSkbGetTunnelOpt:      skbGetTunnelOpt,
		asm.FnSkbSetTunnelOpt:      skbSetTunnelOpt,
		asm.FnCheckMtu:             checkMTU,
		asm.FnSkLookupTcp:          skLookupTCP,
		asm.FnSkLookupUdp:          skLookupUDP,
		asm.FnSkcLookupTcp:         skLookupTCP,
		asm.FnSkRelease:            skRelease,
		asm.FnSkFullsock:           skFullsock,
		asm.FnTcpSock:              tcpSock,
		asm.FnGetNetnsCookie:       getNetnsCookie,
		asm.FnGetListenerSock:      getListenerSock,
		asm.FnSkAssign:             skAssign,
		asm.FnTcpCheckSyncookie:    tcpCheckSyncookie,
		asm.FnTcpGenSyncookie:      tcpGenSyncookie,
		asm.FnForEachMapElem:       forEachMapElem,
		asm.FnFibLookup:            fibLookup,
		asm.FnDynptrRead:           dynptrRead,
		asm.FnTimerInit:            timerInit,
		asm.FnTimerSetCallback:     timerSetCallback,
		asm.FnTimerStart:           timerStart,
		asm.FnTimerCancel:          timerCancel,
		asm.FnDynptrWrite:          dynptrWrite,
		asm.FnDynptrFromMem:        dynptrFromMem,
		asm.FnKptrXchg:             kptrXchg,
	}
	n := 0
	for id := range fns {
		n = max(n, int(id)+1)
	}
	t := make([]vm.HelperFunc, n)
	for id, fn := range fns {
		t[id] = fn
	}
	return t
}

// errno is a helper's negative errno result for the Linux errno e
// (package linuxerr): programs see Linux's numbers on every host OS.
func errno(e int) uint64 { return uint64(-int64(e)) }

// ret converts an skb or maps result (0 or a negative errno) to r0.
func ret(v int64) uint64 { return uint64(v) }

// mapArg resolves a map handle argument (ld_imm64 src 1). The verifier
// only lets map pointers through; here anything else aborts the run.
func (x *Executor) mapArg(handle uint64) (*mapEntry, error) {
	obj, _ := x.coll.as.Object(handle)
	e, ok := obj.(*mapEntry)
	if !ok {
		return nil, fmt.Errorf("argument %#x is not a map: %w", handle, syscall.EINVAL)
	}
	return e, nil
}

// slotMap is mapArg for the helpers that need value slots.
func (x *Executor) slotMap(handle uint64) (*mapEntry, error) {
	e, err := x.mapArg(handle)
	if err != nil {
		return nil, err
	}
	if e.slots == nil {
		return nil, noSlots(e)
	}
	return e, nil
}

// noSlots is the error of a map helper on a map without value slots.
func noSlots(e *mapEntry) error {
	return fmt.Errorf("map %q (%s): not accessible from programs this way: %w", e.name, e.m.Info().Type, syscall.EINVAL)
}

// valueAddr is the address of slot on cpu.
func (e *mapEntry) valueAddr(cpu, slot int) uint64 {
	if !e.percpu {
		cpu = 0
	}
	return e.base[cpu] + uint64(slot)*e.stride
}

// mapKey resolves the (map, key) arguments every map helper starts with.
func mapKey(m *vm.Machine, handle, keyAddr uint64) (*Executor, *mapEntry, []byte, error) {
	x := executor(m)
	e, err := x.slotMap(handle)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := m.Mem(keyAddr, uint64(e.keySize), false)
	if err != nil {
		return nil, nil, nil, err
	}
	return x, e, key, nil
}

// lookup is the value address of key as cpu sees it, 0 (NULL) if absent.
func (e *mapEntry) lookup(key []byte, cpu int) uint64 {
	slot, ok := e.slots.LookupSlot(key, cpu)
	if !ok {
		return 0
	}
	return e.valueAddr(cpu, slot)
}

// mapLookupElem resolves the map once: it is the helper programs call
// most, and every call leaves compiled code for it.
func mapLookupElem(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	x := executor(m)
	e, err := x.mapArg(r1)
	if err != nil {
		return 0, err
	}
	if o, ok := e.m.(*maps.MapOfMaps); ok {
		return x.lookupInnerMap(m, e, o, r2)
	}
	if sm, ok := e.m.(*maps.SockMap); ok {
		return x.lookupSockMap(m, e, sm, r2)
	}
	if e.slots == nil {
		return 0, noSlots(e)
	}
	key, err := m.Mem(r2, uint64(e.keySize), false)
	if err != nil {
		return 0, err
	}
	return e.lookup(key, x.cpu), nil
}

// lookupInnerMap is bpf_map_lookup_elem on a map of maps: the inner map,
// as a map pointer the program passes to the map helpers, or NULL. An
// inner map that is not one of the collection's (put in from Go) has no
// address for programs and fails the run.
func (x *Executor) lookupInnerMap(m *vm.Machine, e *mapEntry, o *maps.MapOfMaps, keyAddr uint64) (uint64, error) {
	key, err := m.Mem(keyAddr, uint64(e.keySize), false)
	if err != nil {
		return 0, err
	}
	slot, ok := o.LookupSlot(key)
	if !ok {
		return 0, nil
	}
	inner := o.MapAt(slot)
	if inner == nil {
		return 0, nil
	}
	ie := x.coll.entryOf(inner)
	if ie == nil {
		return 0, fmt.Errorf("map of maps %q: inner map %q is not a map of this collection: %w", e.name, inner.Info().Name, syscall.EINVAL)
	}
	return ie.handle, nil
}

// mapLookupPercpuElem is bpf_map_lookup_percpu_elem: another CPU's value,
// NULL for a CPU that does not exist.
func mapLookupPercpuElem(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
	_, e, key, err := mapKey(m, r1, r2)
	if err != nil {
		return 0, err
	}
	if !e.percpu {
		return 0, fmt.Errorf("map %q is not per-CPU: %w", e.name, syscall.EINVAL)
	}
	if cpu := uint32(r3); cpu < uint32(len(e.base)) {
		return e.lookup(key, int(cpu)), nil
	}
	return 0, nil
}

func mapUpdateElem(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	if e, sm := sockMapArg(m, r1); sm != nil {
		return executor(m).updateSockMap(m, e, sm, r2, r3, r4)
	}
	x, e, key, err := mapKey(m, r1, r2)
	if err != nil {
		return 0, err
	}
	value, err := m.Mem(r3, uint64(e.valueSize), false)
	if err != nil {
		return 0, err
	}
	return ret(e.slots.UpdateElem(key, value, r4, x.cpu)), nil
}

func mapDeleteElem(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	if e, sm := sockMapArg(m, r1); sm != nil {
		return deleteSockMap(m, e, sm, r2)
	}
	x, e, key, err := mapKey(m, r1, r2)
	if err != nil {
		return 0, err
	}
	return ret(e.slots.DeleteElem(key, x.cpu)), nil
}

// tailCall is bpf_tail_call(ctx, prog_array, index). On success the
// interpreter replaces the running program once the helper returns; on
// failure (index out of range, empty slot, 33 tail calls made, a program
// of another collection) the program continues with r0 = -ENOENT.
func tailCall(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x := executor(m)
	e, err := x.mapArg(r2)
	if err != nil {
		return 0, err
	}
	pa, ok := e.m.(*maps.ProgramArray)
	if !ok {
		return 0, fmt.Errorf("tail call through map %q (%s): %w", e.name, e.m.Info().Type, syscall.EINVAL)
	}
	next, _ := pa.Get(uint32(r3)).(*Program)
	if next == nil || !m.TailCall(next.vm) {
		return errno(linuxerr.ENOENT), nil
	}
	return 0, nil
}

func ktimeGetNs(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	return executor(m).coll.now(), nil
}

// ktimeGetTaiNs is bpf_ktime_get_tai_ns: CLOCK_TAI, not the monotonic clock.
func ktimeGetTaiNs(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	return executor(m).coll.tai(), nil
}

func getPrandomU32(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	x := executor(m)
	if x.coll.opts.Rand != nil {
		return uint64(x.coll.opts.Rand()), nil
	}
	return uint64(uint32(x.rng.Uint64())), nil
}

func getSmpProcessorID(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	return uint64(executor(m).cpu), nil
}

func getNumaNodeID(*vm.Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) {
	return 0, nil
}

// bpfMaxLoops is BPF_MAX_LOOPS, the most iterations bpf_loop runs.
const bpfMaxLoops = 1 << 23

// loop is bpf_loop(nr_loops, callback, callback_ctx, flags): the callback
// runs as a subprogram frame with (index, callback_ctx) until it returns
// non-zero; the result is the number of iterations.
func loop(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	n := uint32(r1)
	if r4 != 0 {
		return errno(linuxerr.EINVAL), nil
	}
	if n > bpfMaxLoops {
		return errno(linuxerr.E2BIG), nil
	}
	for i := range uint64(n) {
		r0, err := m.Call(r2, i, r3, 0, 0, 0)
		if err != nil {
			return 0, err
		}
		if r0 != 0 {
			return i + 1, nil
		}
	}
	return uint64(n), nil
}
