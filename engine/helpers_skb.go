package engine

import (
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/skb"
)

// The skb helpers: thin wrappers around skb.Packet's methods, which carry
// the kernel's semantics and return codes. Arguments are truncated to the
// C parameter types the kernel's BPF_CALL_x wrappers cast them to. Every
// helper that may change the packet's bytes, layout or a field visible in
// __sk_buff re-publishes the packet and the context image afterwards, the
// moment the kernel invalidates the program's packet pointers.

// packet returns the executor and the packet of the current run, its
// fields up to date.
func packet(m *vm.Machine) (*Executor, *skb.Packet) {
	x := executor(m)
	x.ctx.sync() // the program's plain context stores, first
	return x, x.ctx.pkt
}

// memArg is a pointer argument with an ARG_CONST_SIZE companion, which the
// kernel's helper receives as a u32.
func memArg(m *vm.Machine, addr, size uint64, write bool) ([]byte, error) {
	return m.Mem(addr, uint64(uint32(size)), write)
}

// changed re-publishes after a helper that may have changed the packet.
func (x *Executor) changed(v int64) (uint64, error) {
	x.publish()
	return uint64(v), nil
}

func skbLoadBytes(m *vm.Machine, _, r2, r3, r4, _ uint64) (uint64, error) {
	_, p := packet(m)
	to, err := memArg(m, r3, r4, true)
	if err != nil {
		return 0, err
	}
	return ret(p.LoadBytes(uint32(r2), to)), nil
}

func skbLoadBytesRelative(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	_, p := packet(m)
	to, err := memArg(m, r3, r4, true)
	if err != nil {
		return 0, err
	}
	return ret(p.LoadBytesRelative(uint32(r2), to, uint32(r5))), nil
}

func skbStoreBytes(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	from, err := memArg(m, r3, r4, false)
	if err != nil {
		return 0, err
	}
	return x.changed(p.StoreBytes(uint32(r2), from, r5))
}

func l3CsumReplace(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.L3CsumReplace(uint32(r2), r3, r4, r5))
}

func l4CsumReplace(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.L4CsumReplace(uint32(r2), r3, r4, r5))
}

// csumDiff is bpf_csum_diff(from, from_size, to, to_size, seed); either
// buffer may be NULL with size 0.
func csumDiff(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	from, err := memArg(m, r1, r2, false)
	if err != nil {
		return 0, err
	}
	to, err := memArg(m, r3, r4, false)
	if err != nil {
		return 0, err
	}
	return ret(skb.CsumDiff(from, to, uint32(r5))), nil
}

func csumUpdate(m *vm.Machine, _, r2, _, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	return ret(p.CsumUpdate(uint32(r2))), nil
}

func csumLevel(m *vm.Machine, _, r2, _, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	return ret(p.CsumLevel(r2)), nil
}

// redirect is bpf_redirect(ifindex, flags): no ctx argument; the target
// is kept in the packet (the kernel's per-CPU bpf_redirect_info) and
// reported in Result.Redirect.
func redirect(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	return ret(p.Redirect(uint32(r1), r2)), nil
}

func redirectPeer(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	return ret(p.RedirectPeer(uint32(r1), r2)), nil
}

// redirectNeigh is bpf_redirect_neigh(ifindex, params, plen, flags).
func redirectNeigh(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	_, p := packet(m)
	params, err := memArg(m, r2, r3, false)
	if err != nil {
		return 0, err
	}
	return ret(p.RedirectNeigh(uint32(r1), params, r4)), nil
}

// cloneRedirect is bpf_clone_redirect(ctx, ifindex, flags): after the
// flags, the kernel looks the device up in the packet's namespace and
// fails with -EINVAL when there is none.
// cloneRedirect is bpf_clone_redirect: the flag and GSO checks come before
// the device lookup, as in the kernel (a type-less GSO packet gets -EBADMSG
// even for a device that does not exist).
func cloneRedirect(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	if err := p.CloneChecks(r3); err != 0 {
		return ret(err), nil
	}
	if !x.coll.deviceExists(uint32(r2)) {
		return errno(linuxerr.EINVAL), nil
	}
	return x.changed(p.CloneRedirect(uint32(r2), r3))
}

// deviceExists is dev_get_by_index in the namespace the engine models.
func (c *Collection) deviceExists(ifindex uint32) bool {
	if ifindex == 1 {
		return true
	}
	if c.opts.Devices == nil {
		return false
	}
	_, ok := c.opts.Devices(ifindex)
	return ok
}

func skbChangeProto(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.ChangeProto(uint16(r2), r3))
}

func skbChangeType(m *vm.Machine, _, r2, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.ChangeType(uint32(r2)))
}

func skbChangeHead(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.ChangeHead(uint32(r2), r3))
}

func skbChangeTail(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.ChangeTail(uint32(r2), r3))
}

func skbAdjustRoom(m *vm.Machine, _, r2, r3, r4, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.AdjustRoom(int32(r2), uint32(r3), r4))
}

func skbPullData(m *vm.Machine, _, r2, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.PullData(uint32(r2)))
}

func skbVlanPush(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.VlanPush(uint16(r2), uint16(r3)))
}

func skbVlanPop(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.VlanPop())
}

func getHashRecalc(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.GetHashRecalc())
}

func setHash(m *vm.Machine, _, r2, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.SetHash(uint32(r2)))
}

func setHashInvalid(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.SetHashInvalid())
}

func skbEcnSetCE(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.EcnSetCE())
}
