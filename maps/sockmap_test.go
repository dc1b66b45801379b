package maps_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/sock"
)

func sockets(t *testing.T) (*sock.Table, *sock.Socket, *sock.Socket, *sock.Socket) {
	t.Helper()
	tb := &sock.Table{}
	add := func(s sock.Socket) *sock.Socket {
		n, err := tb.Add(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ap := netip.MustParseAddrPort
	est := add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateEstablished, Local: ap("10.0.0.1:80"), Remote: ap("10.0.0.2:999")})
	lis := add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("10.0.0.1:81")})
	udp := add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoUDP, State: sock.StateClose, Local: ap("10.0.0.1:53")})
	return tb, est, lis, udp
}

func TestSockMap_Create(t *testing.T) {
	for _, c := range []struct {
		spec ebpf.MapSpec
		want error
	}{
		{ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: 1}, nil},
		{ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 4, MaxEntries: 1}, nil},
		{ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 8, ValueSize: 8, MaxEntries: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 16, MaxEntries: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: 0}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: maps.FlagNoPrealloc}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 16, ValueSize: 8, MaxEntries: 4}, nil},
		{ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 0, ValueSize: 8, MaxEntries: 4}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 513, ValueSize: 8, MaxEntries: 4}, syscall.E2BIG},
	} {
		_, err := maps.New(&c.spec, maps.Options{})
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.spec, err, c.want)
		}
	}
}

// TestSockMap_Ops: the errnos of program and userspace operations on a
// sockmap and a sockhash, as sock_map.c answers them.
func TestSockMap_Ops(t *testing.T) {
	_, est, lis, udp := sockets(t)
	key := func(i uint32) []byte { return binary.NativeEndian.AppendUint32(nil, i) }
	for _, typ := range []ebpf.MapType{ebpf.SockMap, ebpf.SockHash} {
		m, err := maps.New(&ebpf.MapSpec{Name: "s", Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 2}, maps.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sm := m.(*maps.SockMap)
		hash := typ == ebpf.SockHash
		check := func(what string, got int64, want int) {
			t.Helper()
			if got != -int64(want) {
				t.Errorf("%s %s: %d, want -%d", typ, what, got, want)
			}
		}
		check("update with nil", sm.UpdateSocketElem(key(0), nil, 0), linuxerr.EINVAL)
		check("update with a listener", sm.UpdateSocketElem(key(0), lis, 0), linuxerr.EOPNOTSUPP)
		check("update with BPF_EXIST, absent", sm.UpdateSocketElem(key(0), est, maps.UpdateExist), linuxerr.ENOENT)
		check("update flags", sm.UpdateSocketElem(key(0), est, 4), linuxerr.EINVAL)
		check("update", sm.UpdateSocketElem(key(0), est, 0), 0)
		check("update with BPF_NOEXIST, present", sm.UpdateSocketElem(key(0), udp, maps.UpdateNoExist), linuxerr.EEXIST)
		check("update UDP", sm.UpdateSocketElem(key(1), udp, 0), 0)
		check("update beyond max_entries", sm.UpdateSocketElem(key(7), est, 0), linuxerr.E2BIG)
		if got := sm.LookupSocket(key(0)); got != est {
			t.Errorf("%s lookup: %v", typ, got)
		}
		v := make([]byte, 8)
		if err := sm.Lookup(key(1), v); err != nil || binary.NativeEndian.Uint64(v) != udp.Cookie {
			t.Errorf("%s userspace lookup: %v %x, want cookie %d", typ, err, v, udp.Cookie)
		}
		check("delete", sm.DeleteSocketElem(key(0)), 0)
		if hash {
			check("delete absent", sm.DeleteSocketElem(key(0)), linuxerr.ENOENT)
		} else {
			check("delete absent", sm.DeleteSocketElem(key(0)), linuxerr.EINVAL)
			check("delete beyond", sm.DeleteSocketElem(key(9)), linuxerr.EINVAL)
		}
		if err := sm.Lookup(key(0), v); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("%s lookup of a deleted key: %v", typ, err)
		}
		if err := sm.SetSocket(key(0), lis, 0); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("%s SetSocket with a listener: %v", typ, err)
		}
		if err := sm.Update(key(0), v, 0); !errors.Is(err, syscall.EBADF) {
			t.Errorf("%s Update without a resolver: %v", typ, err)
		}
	}
}

func TestSockMap_ClosedAndSmallValues(t *testing.T) {
	tb, est, _, _ := sockets(t)
	resolve := func(h uint64) (*sock.Socket, error) {
		if s := tb.Get(h); s != nil {
			return s, nil
		}
		return nil, syscall.EBADF
	}
	m, err := maps.New(&ebpf.MapSpec{Name: "s", Type: ebpf.SockMap, KeySize: 4, ValueSize: 4, MaxEntries: 1}, maps.Options{ResolveSocket: resolve})
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 4)
	if err := m.Update(k, binary.NativeEndian.AppendUint32(nil, uint32(est.Cookie)), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Lookup(k, make([]byte, 4)); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("lookup of a 4-byte sockmap: %v, want ENOSPC", err)
	}
	sm := m.(*maps.SockMap)
	if sm.LookupSocket(k) != est {
		t.Fatal("the socket is not in the map")
	}
	if err := tb.Remove(est.Cookie); err != nil {
		t.Fatal(err)
	}
	if sm.LookupSocket(k) != nil {
		t.Error("a closed socket is still in the map")
	}
}
