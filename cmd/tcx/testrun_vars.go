package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// setVariables applies --set NAME=VALUE to the global variables of spec
// (const volatile .rodata knobs, .data and .bss variables) before the
// collection is loaded, as a loader using cilium/ebpf's VariableSpec.Set
// would.
func setVariables(spec *ebpf.CollectionSpec, sets []string) error {
	for _, s := range sets {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return fmt.Errorf("--set %q: want NAME=VALUE", s)
		}
		v, ok := spec.Variables[name]
		if !ok {
			names := sortedNames(spec.Variables)
			if len(names) == 0 {
				return fmt.Errorf("--set %s: the object has no global variables", name)
			}
			return fmt.Errorf("--set %s: no such variable; available: %s", name, strings.Join(names, ", "))
		}
		b, err := variableBytes(v, value)
		if err != nil {
			return fmt.Errorf("--set %s=%s: %w", name, value, err)
		}
		if err := v.Set(b); err != nil {
			return fmt.Errorf("--set %s: %w", name, err)
		}
	}
	return nil
}

// variableBytes encodes value for v: an integer for 1-, 2-, 4- and 8-byte
// variables (in network order when the type is a __be typedef, else in the
// host's), an IPv4 or IPv6 address or a MAC address when the size fits, or
// hex bytes of exactly the variable's size.
func variableBytes(v *ebpf.VariableSpec, value string) ([]byte, error) {
	size := int(v.Size())
	bigEndian, signed := false, false
	if vt := v.Type; vt != nil {
		t := btf.QualifiedType(vt.Type)
		if td, ok := t.(*btf.Typedef); ok && strings.HasPrefix(td.Name, "__be") {
			bigEndian = true
		}
		if i, ok := btf.UnderlyingType(t).(*btf.Int); ok && i.Encoding&btf.Signed != 0 {
			signed = true
		}
	}
	if size == 1 && (value == "true" || value == "false") { // _Bool knobs
		return []byte{map[string]byte{"false": 0, "true": 1}[value]}, nil
	}
	if size == 1 || size == 2 || size == 4 || size == 8 {
		if n, ok := parseInteger(value, size, signed); ok {
			var order binary.ByteOrder = binary.NativeEndian
			if bigEndian {
				order = binary.BigEndian
			}
			b := make([]byte, size)
			switch size {
			case 1:
				b[0] = byte(n)
			case 2:
				order.PutUint16(b, uint16(n))
			case 4:
				order.PutUint32(b, uint32(n))
			case 8:
				order.PutUint64(b, n)
			}
			return b, nil
		}
	}
	if ip := net.ParseIP(value); ip != nil {
		if ip4 := ip.To4(); ip4 != nil && size == 4 {
			return ip4, nil
		}
		if size == 16 {
			return ip.To16(), nil
		}
	}
	if mac, err := net.ParseMAC(value); err == nil && len(mac) == size {
		return mac, nil
	}
	if b, err := parseHex(value); err == nil && len(b) == size {
		return b, nil
	}
	if byteArray(v) {
		if str, ok := quoted(value); ok && len(str) < size {
			b := make([]byte, size) // NUL-padded, as a C string in a char array
			copy(b, str)
			return b, nil
		}
		return nil, fmt.Errorf("the variable is %d bytes: give %s, or a \"string\" of at most %d characters", size, variableForms(size), size-1)
	}
	return nil, fmt.Errorf("the variable is %d bytes: give %s", size, variableForms(size))
}

// quoted is the string inside double quotes: the quotes make a value a
// string, never hex bytes or an address.
func quoted(value string) (string, bool) {
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return "", false
	}
	return value[1 : len(value)-1], true
}

// byteArray reports a char or u8 array variable (a name, a key), which
// --set also takes as a "string".
func byteArray(v *ebpf.VariableSpec) bool {
	if v.Type == nil {
		return false
	}
	a, ok := btf.UnderlyingType(v.Type.Type).(*btf.Array)
	if !ok {
		return false
	}
	i, ok := btf.UnderlyingType(a.Type).(*btf.Int)
	return ok && i.Size == 1
}

func parseInteger(s string, size int, signed bool) (uint64, bool) {
	bits := 8 * size
	if signed {
		n, err := strconv.ParseInt(s, 0, bits)
		return uint64(n), err == nil
	}
	n, err := strconv.ParseUint(s, 0, bits)
	return n, err == nil
}

func variableForms(size int) string {
	forms := []string{}
	switch size {
	case 1, 2, 4, 8:
		forms = append(forms, fmt.Sprintf("an integer that fits %d bits", 8*size))
	}
	switch size {
	case 4:
		forms = append(forms, "an IPv4 address")
	case 6:
		forms = append(forms, "a MAC address")
	case 16:
		forms = append(forms, "an IPv6 address")
	}
	return strings.Join(append(forms, fmt.Sprintf("%d hex bytes", size)), ", or ")
}
