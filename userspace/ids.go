package userspace

// maxID bounds the ID spaces like the kernel's idr_alloc_cyclic(.., 1,
// INT_MAX): IDs run from 1 to INT_MAX-1 and wrap.
const maxID = 1<<31 - 1

// idSpace hands out cyclic IDs the way the kernel's program and link IDRs
// do: always the next free ID after the last one handed out, so a freed ID
// is not reused until the space wraps.
type idSpace[T any] struct {
	next uint32
	m    map[uint32]T
}

func newIDSpace[T any]() idSpace[T] { return idSpace[T]{next: 1, m: map[uint32]T{}} }

func (s *idSpace[T]) alloc(v T) uint32 {
	for {
		id := s.next
		s.next++
		if s.next >= maxID {
			s.next = 1
		}
		if _, used := s.m[id]; !used {
			s.m[id] = v
			return id
		}
	}
}

func (s *idSpace[T]) lookup(id uint32) (T, bool) {
	v, ok := s.m[id]
	return v, ok
}

func (s *idSpace[T]) free(id uint32) { delete(s.m, id) }
