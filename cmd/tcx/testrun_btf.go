package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// formatBTF renders a map key or value through its BTF type, the way
// bpftool's "formatted" output does: integers in decimal, __be16/__be32/
// __be64 typedefs and byte arrays in hex (they are addresses and ports in
// network order), enums by name, structs and datasecs as {name=value ...}.
// It returns "" when t is missing or does not describe b, so that callers
// fall back to plain hex.
func formatBTF(t btf.Type, b []byte) string {
	if t == nil {
		return ""
	}
	if _, ok := t.(*btf.Void); ok {
		return ""
	}
	if n, err := btf.Sizeof(t); err != nil || n != len(b) {
		if _, ok := btf.UnderlyingType(t).(*btf.Datasec); !ok {
			return ""
		}
	}
	var sb strings.Builder
	if !writeBTF(&sb, t, b, 0) {
		return ""
	}
	return sb.String()
}

// maxBTFDepth stops pathological (or cyclic through pointers never
// followed here, but still) type graphs.
const maxBTFDepth = 16

func writeBTF(sb *strings.Builder, t btf.Type, b []byte, depth int) bool {
	if depth > maxBTFDepth {
		return false
	}
	// Typedef names matter (__be32 is shown in hex), so peel qualifiers
	// and typedefs one at a time instead of with btf.UnderlyingType.
	bigEndian := false
	for t = btf.QualifiedType(t); ; t = btf.QualifiedType(t) {
		td, ok := t.(*btf.Typedef)
		if !ok {
			break
		}
		bigEndian = bigEndian || strings.HasPrefix(td.Name, "__be")
		t = td.Type
	}
	switch tt := t.(type) {
	case *btf.Int:
		if int(tt.Size) > len(b) || tt.Size == 0 || tt.Size > 8 {
			return false
		}
		v := readUint(b[:tt.Size])
		switch {
		case bigEndian:
			fmt.Fprintf(sb, "0x%x", b[:tt.Size])
		case tt.Encoding&btf.Bool != 0:
			fmt.Fprint(sb, v != 0)
		case tt.Encoding&btf.Signed != 0:
			fmt.Fprint(sb, signExtend(v, int(tt.Size)))
		default:
			fmt.Fprint(sb, v)
		}
		return true
	case *btf.Enum:
		if int(tt.Size) > len(b) || tt.Size == 0 || tt.Size > 8 {
			return false
		}
		v := readUint(b[:tt.Size])
		for _, ev := range tt.Values {
			if ev.Value == v || (tt.Signed && ev.Value == uint64(signExtend(v, int(tt.Size)))) {
				sb.WriteString(ev.Name)
				return true
			}
		}
		if tt.Signed {
			fmt.Fprint(sb, signExtend(v, int(tt.Size)))
		} else {
			fmt.Fprint(sb, v)
		}
		return true
	case *btf.Float:
		switch tt.Size {
		case 4:
			fmt.Fprint(sb, math.Float32frombits(uint32(readUint(b[:4]))))
		case 8:
			fmt.Fprint(sb, math.Float64frombits(readUint(b[:8])))
		default:
			return false
		}
		return true
	case *btf.Pointer:
		if len(b) < 8 {
			return false
		}
		fmt.Fprintf(sb, "0x%x", readUint(b[:8]))
		return true
	case *btf.Array:
		return writeArray(sb, tt, b, depth)
	case *btf.Struct:
		return writeMembers(sb, tt.Members, b, depth)
	case *btf.Union:
		return writeMembers(sb, tt.Members, b, depth)
	case *btf.Datasec:
		return writeDatasec(sb, tt, b, depth)
	}
	return false
}

func writeArray(sb *strings.Builder, a *btf.Array, b []byte, depth int) bool {
	size, err := btf.Sizeof(a.Type)
	if err != nil || size <= 0 || int(a.Nelems)*size > len(b) {
		return false
	}
	if size == 1 {
		// char name[16] and __u8 addr[16] alike: hex keeps addresses
		// readable and never prints control characters.
		fmt.Fprintf(sb, "0x%x", b[:a.Nelems])
		return true
	}
	sb.WriteByte('[')
	for i := range int(a.Nelems) {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if !writeBTF(sb, a.Type, b[i*size:(i+1)*size], depth+1) {
			return false
		}
	}
	sb.WriteByte(']')
	return true
}

func writeMembers(sb *strings.Builder, members []btf.Member, b []byte, depth int) bool {
	sb.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if m.Name != "" {
			sb.WriteString(m.Name)
			sb.WriteByte('=')
		}
		if m.BitfieldSize > 0 {
			if !writeBitfield(sb, m, b) {
				return false
			}
			continue
		}
		if m.Offset%8 != 0 {
			return false
		}
		off := int(m.Offset / 8)
		size, err := btf.Sizeof(m.Type)
		if err != nil || off+size > len(b) {
			return false
		}
		if !writeBTF(sb, m.Type, b[off:off+size], depth+1) {
			return false
		}
	}
	sb.WriteByte('}')
	return true
}

// writeBitfield extracts a little-endian bitfield (the only byte order
// tc programs are built for here) as an unsigned number.
func writeBitfield(sb *strings.Builder, m btf.Member, b []byte) bool {
	first, last := int(m.Offset/8), int((m.Offset+m.BitfieldSize-1)/8)
	if last >= len(b) || m.BitfieldSize > 64 || last-first >= 8 {
		return false
	}
	var v uint64
	for i := last; i >= first; i-- {
		v = v<<8 | uint64(b[i])
	}
	v >>= uint(m.Offset % 8)
	if m.BitfieldSize < 64 {
		v &= 1<<uint(m.BitfieldSize) - 1
	}
	fmt.Fprint(sb, v)
	return true
}

func writeDatasec(sb *strings.Builder, ds *btf.Datasec, b []byte, depth int) bool {
	sb.WriteByte('{')
	n := 0
	for _, v := range ds.Vars {
		vr, ok := v.Type.(*btf.Var)
		if !ok || int(v.Offset+v.Size) > len(b) {
			continue
		}
		if n > 0 {
			sb.WriteByte(' ')
		}
		n++
		sb.WriteString(vr.Name)
		sb.WriteByte('=')
		if !writeBTF(sb, vr.Type, b[v.Offset:v.Offset+v.Size], depth+1) {
			fmt.Fprintf(sb, "0x%x", b[v.Offset:v.Offset+v.Size])
		}
	}
	sb.WriteByte('}')
	return true
}

// readUint reads a 1-, 2-, 4- or 8-byte integer in the host's byte order,
// the order programs and maps use (clang's bpf target follows the host).
func readUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.NativeEndian.Uint16(b))
	case 4:
		return uint64(binary.NativeEndian.Uint32(b))
	case 8:
		return binary.NativeEndian.Uint64(b)
	}
	var v uint64 // odd sizes (3-byte ints do not occur in C): little-endian
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func signExtend(v uint64, size int) int64 {
	shift := uint(64 - 8*size)
	return int64(v<<shift) >> shift
}
