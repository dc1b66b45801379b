package engine

import (
	"encoding/binary"

	"github.com/tcxgo/tcx/fib"
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// The helpers that look beyond the packet: tunnel metadata, device MTUs
// and the map iteration helper (sockets: helpers_sock.go).

func skbGetTunnelKey(m *vm.Machine, _, r2, r3, r4, _ uint64) (uint64, error) {
	_, p := packet(m)
	to, err := memArg(m, r2, r3, true)
	if err != nil {
		return 0, err
	}
	return ret(p.GetTunnelKey(to, r4)), nil
}

func skbSetTunnelKey(m *vm.Machine, _, r2, r3, r4, _ uint64) (uint64, error) {
	_, p := packet(m)
	from, err := memArg(m, r2, r3, false)
	if err != nil {
		return 0, err
	}
	return ret(p.SetTunnelKey(from, r4)), nil
}

func skbGetTunnelOpt(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	to, err := memArg(m, r2, r3, true)
	if err != nil {
		return 0, err
	}
	return ret(p.GetTunnelOpt(to)), nil
}

func skbSetTunnelOpt(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	from, err := memArg(m, r2, r3, false)
	if err != nil {
		return 0, err
	}
	return ret(p.SetTunnelOpt(from)), nil
}

func skbSetTstamp(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	return x.changed(p.SetTstamp(r2, uint32(r3)))
}

// device is dev_get_by_index in the namespace the engine models.
func (c *Collection) device(ifindex uint32) (skb.Device, bool) {
	if ifindex == 1 {
		return skb.Loopback(), true
	}
	if c.opts.Devices == nil {
		return skb.Device{}, false
	}
	d, ok := c.opts.Devices(ifindex)
	d.Ifindex = ifindex
	return d, ok
}

// checkMTU is bpf_check_mtu(ctx, ifindex, *mtu_len, len_diff, flags):
// ifindex 0 is the packet's own device.
func checkMTU(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	b, err := m.Mem(r3, 4, true)
	if err != nil {
		return 0, err
	}
	ifindex := uint32(r2)
	if ifindex == 0 {
		ifindex = p.Ifindex
	}
	var dev *skb.Device
	if d, ok := x.coll.device(ifindex); ok {
		dev = &d
	}
	mtuLen := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	r := p.CheckMTU(dev, &mtuLen, int32(r4), r5)
	b[0], b[1], b[2], b[3] = byte(mtuLen), byte(mtuLen>>8), byte(mtuLen>>16), byte(mtuLen>>24)
	return ret(r), nil
}

// fibLookup is bpf_fib_lookup(ctx, params, plen, flags) against the
// runner's FIB (Runner.WithFIB), else Options.FIB (nil: a new namespace,
// no routes, forwarding off).
func fibLookup(m *vm.Machine, _, r2, r3, r4, _ uint64) (uint64, error) {
	x, p := packet(m)
	if int32(r3) < fib.ParamsSize {
		return errno(linuxerr.EINVAL), nil
	}
	params, err := memArg(m, r2, r3, true)
	if err != nil {
		return 0, err
	}
	tbl := x.fib
	if tbl == nil {
		tbl = x.coll.opts.FIB
	}
	return ret(tbl.Lookup(params, uint32(r4), p.Len(), p.GSOSize != 0)), nil
}

// forEachMapElem is bpf_for_each_map_elem(map, callback, ctx, flags): the
// callback runs as callback(map, &key, &value, ctx) for each element until
// it returns non-zero; the result is the number of elements visited.
// Arrays go in index order, hash maps in the kernel's bucket order
// (maps.Cursor), which is the kernel's exactly for a map made with
// BPF_F_ZERO_SEED and, like the kernel's, a per-map random one otherwise.
func forEachMapElem(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	x := executor(m)
	if r4 != 0 {
		return errno(linuxerr.EINVAL), nil
	}
	e, err := x.slotMap(r1)
	if err != nil {
		return 0, err
	}
	ks := int(e.keySize)
	if cap(x.iterKey) < 3*ks {
		x.iterKey = make([]byte, 3*ks) // once per executor and key size
	}
	// The callback sees key; the walk goes on from its own copy, prev.
	key, next, prev := x.iterKey[:ks], x.iterKey[ks:2*ks], x.iterKey[2*ks:3*ks]
	keyAddr, err := m.MapDynamic(key, true)
	if err != nil {
		return 0, err
	}
	defer m.UnmapDynamic(keyAddr) //nolint:errcheck // the region is ours
	var n uint64
	limit := uint64(e.m.Info().MaxEntries)
	if isArray(e) {
		// Arrays go by index, without the userspace iteration API (whose
		// end of iteration is an error value).
		for i := range uint32(limit) {
			binary.LittleEndian.PutUint32(key, i)
			n++
			r0, err := m.Call(r2, r1, keyAddr, e.valueAddr(x.cpu, int(i)), r3, 0)
			if err != nil {
				return 0, err
			}
			if r0 != 0 {
				break
			}
		}
		return n, nil
	}
	if h, ok := e.m.(*maps.Hash); ok {
		// The walk ends by itself: a bucket's elements come in one
		// direction, and the buckets once each.
		var c maps.Cursor
		for {
			slot, ok := h.NextSlot(&c, prev, next)
			if !ok {
				break
			}
			copy(prev, next)
			copy(key, next)
			n++
			r0, err := m.Call(r2, r1, keyAddr, e.valueAddr(x.cpu, slot), r3, 0)
			if err != nil {
				return 0, err
			}
			if r0 != 0 {
				break
			}
		}
		return n, nil
	}
	for prev, steps := []byte(nil), uint64(0); n < limit && steps < 2*limit; prev, steps = key, steps+1 {
		if e.m.NextKey(prev, next) != nil {
			break
		}
		copy(key, next)
		slot, ok := e.slots.LookupSlot(key, x.cpu)
		if !ok {
			continue // deleted meanwhile
		}
		n++
		r0, err := m.Call(r2, r1, keyAddr, e.valueAddr(x.cpu, slot), r3, 0)
		if err != nil {
			return 0, err
		}
		if r0 != 0 {
			break
		}
	}
	return n, nil
}
