package maps

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/sock"
)

// sockCreateFlags is SOCK_CREATE_FLAG_MASK: the only creation flags a
// sockmap or sockhash takes.
const sockCreateFlags = FlagNumaNode | FlagRdonly | FlagWronly

// SockMap is BPF_MAP_TYPE_SOCKMAP (an array of sockets by index) or
// BPF_MAP_TYPE_SOCKHASH (sockets by key). Programs look sockets up (a
// socket pointer they must release), put the sockets of their lookups in
// and delete them, with the kernel's checks and errnos; userspace puts
// sockets in with SetSocket (or Update with a handle that
// Options.ResolveSocket turns into a socket, as the kernel takes a socket
// fd), and its Lookup reads the socket's cookie as the kernel's does for
// 8-byte values (ENOSPC for 4-byte ones). A socket removed from its
// sock.Table (closed) reads as absent, as the kernel unlinks a closing
// socket from its maps; in a sockhash its entry still counts towards
// max_entries until it is deleted or overwritten. Program updates and
// deletes of a sockhash take a lock; lookups do not.
type SockMap struct {
	base
	hash    bool
	resolve func(uint64) (*sock.Socket, error)

	// A sockmap's sockets by index; a sockhash's by the slot of its key
	// in index, whose value is the socket's cookie (a lookup checks it,
	// so a slot reused under a concurrent update never yields a socket
	// of another key).
	socks []atomic.Pointer[sock.Socket]
	index *Hash
	mu    sync.Mutex // sockhash writers
}

func newSockMap(i Info, opts Options) (*SockMap, error) {
	invalid := func(why string) error {
		return fmt.Errorf("create map %q: %s: %w", i.Name, why, syscall.EINVAL)
	}
	hash := i.Type == ebpf.SockHash
	switch {
	case i.MaxEntries == 0:
		return nil, invalid("max_entries is 0")
	case !hash && i.MaxEntries > 1<<31-1:
		return nil, invalid("max_entries beyond INT_MAX")
	case !hash && i.KeySize != 4:
		return nil, invalid("a sockmap's key is a 4-byte index")
	case hash && i.KeySize == 0:
		return nil, invalid("key size is 0")
	case i.ValueSize != 4 && i.ValueSize != 8:
		return nil, invalid("the value is a 4- or 8-byte socket fd")
	case i.Flags&^sockCreateFlags != 0:
		return nil, invalid(fmt.Sprintf("flags %#x", i.Flags))
	case hash && i.KeySize > 512:
		return nil, fmt.Errorf("create map %q: key size %d beyond MAX_BPF_STACK: %w", i.Name, i.KeySize, syscall.E2BIG)
	}
	if int64(i.MaxEntries)*16 > opts.memoryLimit() {
		return nil, fmt.Errorf("create map %q: %d entries: %w", i.Name, i.MaxEntries, syscall.ENOMEM)
	}
	s := &SockMap{base: base{info: i}, hash: hash, resolve: opts.ResolveSocket,
		socks: make([]atomic.Pointer[sock.Socket], i.MaxEntries)}
	if hash {
		ii := Info{Name: i.Name, Type: ebpf.Hash, KeySize: i.KeySize, ValueSize: 8, MaxEntries: i.MaxEntries}
		h, err := newHash(ii, Options{NumCPU: 1, MemoryLimit: opts.MemoryLimit})
		if err != nil {
			return nil, err
		}
		s.index = h
	}
	return s, nil
}

// LookupSocket is bpf_map_lookup_elem from a program: the socket under
// key, or nil.
func (s *SockMap) LookupSocket(key []byte) *sock.Socket {
	if !s.hash {
		i := binary.NativeEndian.Uint32(key)
		if i >= s.info.MaxEntries {
			return nil
		}
		return live(s.socks[i].Load())
	}
	slot, ok := s.index.LookupSlot(key, 0)
	if !ok {
		return nil
	}
	sk := live(s.socks[slot].Load())
	if sk == nil || binary.NativeEndian.Uint64(s.index.Slots(0)[slot*s.index.Stride():]) != sk.Cookie {
		return nil
	}
	return sk
}

func live(sk *sock.Socket) *sock.Socket {
	if sk == nil || sk.Closed() {
		return nil
	}
	return sk
}

// UpdateSocketElem is bpf_map_update_elem from a program with a socket
// (sock_map_update_elem): 0 or a negative Linux errno.
func (s *SockMap) UpdateSocketElem(key []byte, sk *sock.Socket, flags uint64) int64 {
	if sk == nil {
		return -linuxerr.EINVAL
	}
	if !stateAllowed(sk) {
		return -linuxerr.EOPNOTSUPP
	}
	return s.update(key, sk, flags)
}

// stateAllowed is sock_map_sk_state_allowed as 6.18 answers it: an
// established TCP socket or a bound UDP one. 6.12's source also takes TCP
// listeners; 6.18.44 answers -EOPNOTSUPP for them, from programs and
// userspace alike (TestKernel_SockMapStates).
func stateAllowed(sk *sock.Socket) bool {
	if sk.Protocol == sock.ProtoTCP {
		return sk.State == sock.StateEstablished
	}
	return sk.Hashed()
}

// update is sock_map_update_common and sock_hash_update_common.
func (s *SockMap) update(key []byte, sk *sock.Socket, flags uint64) int64 {
	if flags > UpdateExist {
		return -linuxerr.EINVAL
	}
	if !s.hash {
		i := binary.NativeEndian.Uint32(key)
		if i >= s.info.MaxEntries {
			return -linuxerr.E2BIG
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		old := live(s.socks[i].Load())
		switch {
		case old != nil && flags == UpdateNoExist:
			return -linuxerr.EEXIST
		case old == nil && flags == UpdateExist:
			return -linuxerr.ENOENT
		}
		s.socks[i].Store(sk)
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cookie [8]byte
	binary.NativeEndian.PutUint64(cookie[:], sk.Cookie)
	if r := s.index.UpdateElem(key, cookie[:], flags, 0); r != 0 {
		return r
	}
	slot, _ := s.index.LookupSlot(key, 0)
	s.socks[slot].Store(sk)
	return 0
}

// DeleteSocketElem is bpf_map_delete_elem from a program: a sockmap
// answers EINVAL for an index beyond it or an empty slot, a sockhash
// ENOENT for a missing key.
func (s *SockMap) DeleteSocketElem(key []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hash {
		i := binary.NativeEndian.Uint32(key)
		if i >= s.info.MaxEntries || live(s.socks[i].Swap(nil)) == nil {
			return -linuxerr.EINVAL
		}
		return 0
	}
	slot, ok := s.index.LookupSlot(key, 0)
	if !ok {
		return -linuxerr.ENOENT
	}
	s.socks[slot].Store(nil)
	return s.index.DeleteElem(key, 0)
}

// SetSocket puts sk under key from userspace (BPF_MAP_UPDATE_ELEM with
// the socket's fd): EOPNOTSUPP for a socket in a state the kernel does not
// take (a TCP listener, a UDP socket without a port).
func (s *SockMap) SetSocket(key []byte, sk *sock.Socket, flags uint64) error {
	if err := s.canWrite("update"); err != nil {
		return err
	}
	if err := s.checkKey("update", key); err != nil {
		return err
	}
	if sk == nil {
		return fmt.Errorf("map update: nil socket: %w", syscall.EINVAL)
	}
	if !stateAllowed(sk) {
		return fmt.Errorf("map update: socket %s is neither an established TCP socket nor a bound UDP one: %w", sk, syscall.EOPNOTSUPP)
	}
	return errnoOf("update", s.update(key, sk, flags))
}

// Lookup writes the cookie of the socket under key (sock_map_lookup_sys):
// ENOSPC for a map of 4-byte values, ENOENT for no socket.
func (s *SockMap) Lookup(key, valueOut []byte) error {
	if err := s.userLookup("lookup", key, valueOut, int(s.info.ValueSize)); err != nil {
		return err
	}
	if s.info.ValueSize != 8 {
		return errnoErr("lookup", syscall.ENOSPC)
	}
	sk := s.LookupSocket(key)
	if sk == nil {
		return errnoErr("lookup", syscall.ENOENT)
	}
	binary.NativeEndian.PutUint64(valueOut, sk.Cookie)
	return nil
}

// Update resolves value (the kernel's socket fd) with
// Options.ResolveSocket and stores that socket.
func (s *SockMap) Update(key, value []byte, flags uint64) error {
	if err := s.userUpdate(key, value, int(s.info.ValueSize), flags); err != nil {
		return err
	}
	var h uint64
	if len(value) == 8 {
		h = binary.NativeEndian.Uint64(value)
	} else {
		h = uint64(binary.NativeEndian.Uint32(value))
	}
	if h > 1<<31-1 {
		return fmt.Errorf("map update: socket fd %d: %w", h, syscall.EINVAL)
	}
	if s.resolve == nil {
		return fmt.Errorf("map update: no socket resolver for handle %d: %w", h, syscall.EBADF)
	}
	sk, err := s.resolve(h)
	if err != nil {
		return fmt.Errorf("map update: %w", err)
	}
	return s.SetSocket(key, sk, flags)
}

func (s *SockMap) Delete(key []byte) error {
	if err := s.userDelete(key); err != nil {
		return err
	}
	return errnoOf("delete", s.DeleteSocketElem(key))
}

// NextKey walks every index of a sockmap (empty ones too, as the kernel's
// does) and the keys of a sockhash.
func (s *SockMap) NextKey(key, nextOut []byte) error {
	if !s.hash {
		return arrayNextKey(&s.base, s.info.MaxEntries, key, nextOut)
	}
	if err := s.userNextKey(key, nextOut); err != nil {
		return err
	}
	return s.index.NextKey(key, nextOut)
}

func (s *SockMap) LookupAndDelete(key, valueOut []byte) error {
	return (&unsupported{&s.base}).LookupAndDelete(key, valueOut)
}
