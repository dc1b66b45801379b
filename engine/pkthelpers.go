package engine

import (
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/skb"
)

// plainCsum are the ip_summed states in which a packet carries no
// checksum the helpers must keep in step (CHECKSUM_NONE, _UNNECESSARY):
// there l4_csum_replace's pseudo-header flag and store_bytes'
// BPF_F_RECOMPUTE_CSUM change nothing but the bytes.
const plainCsum = 1<<skb.ChecksumNone | 1<<skb.ChecksumUnnecessary

// packetHelpers are the skb helpers compiled code performs itself in
// their common case (vm.PacketHelper), with the semantics of skb's
// methods the Go wrappers call: every other case (error returns, flags
// not listed, CHECKSUM_COMPLETE or _PARTIAL where it matters, memory the
// helper may not read plainly) calls the wrapper. The state they read
// and write is the packet's own (skb.Packet.HelperState, published per
// packet by Executor.Run). They must match helperTable's wrappers: the
// kernel differential runs the corpus through both against the kernel, and
// internal/vm's TestPacketHelpers_BothEngines runs a copy of this table
// against skb's methods, case by case, on both engines.
var packetHelpers = map[int32]vm.PacketHelper{
	int32(asm.FnL3CsumReplace): {Op: vm.PacketCsumReplace},
	int32(asm.FnL4CsumReplace): {
		Op:       vm.PacketCsumReplace,
		Flags:    skb.FMarkMangled0 | skb.FMarkEnforce | skb.FPseudoHdr | skb.FIPv6,
		GuardAll: true, Plain: plainCsum,
		Mangled0: skb.FMarkMangled0, Enforce: skb.FMarkEnforce,
		Wide2: true, // inet_proto_csum_replace2
	},
	int32(asm.FnSkbStoreBytes): {Op: vm.PacketStore, Flags: skb.FRecomputeCsum, Guarded: skb.FRecomputeCsum, Plain: plainCsum},
	int32(asm.FnSkbLoadBytes):  {Op: vm.PacketLoad},
	int32(asm.FnRedirect): {
		Op: vm.PacketRecord, Flags: skb.FIngress, Shift: skb.RedirectIngressShift,
		Tag: skb.RedirectWord(skb.RedirectDev, 0, false), Ret: uint64(skb.ActRedirect),
	},
	int32(asm.FnRedirectPeer): {
		Op: vm.PacketRecord, Tag: skb.RedirectWord(skb.RedirectPeer, 0, false), Ret: uint64(skb.ActRedirect),
	},
}

// bindPacket publishes pkt's helper state to the machine, once per packet
// object (its fields stay where they are across Reset).
func (x *Executor) bindPacket(pkt *skb.Packet) {
	x.statePkt = pkt
	x.m.SetPacketState(pkt.HelperState())
}
