package engine

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
)

// maxTraceBuf is MAX_BPRINTF_BUF: the longest message (and %s argument)
// bpf_trace_printk produces.
const maxTraceBuf = 1024

// tracePrintk is bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3). The
// format is checked as bpf_bprintf_prepare checks it (a NUL within
// fmt_size, printable ASCII, at most three conversions among %d %i %u %x
// %X with l/ll, %c, %s, %p, %pK, %px, %pks, %pus, %pi4/%pI4/%pi6/%pI6,
// flags "0+- " and a width); the message goes to Options.Trace in one
// write. Its result is the message length, -EINVAL for a bad format.
func tracePrintk(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	x := executor(m)
	fmtb, err := memArg(m, r1, r2, false)
	if err != nil {
		return 0, err
	}
	msg, ok, err := bprintf(m, fmtb, [3]uint64{r3, r4, r5})
	if err != nil {
		return 0, err
	}
	if !ok {
		return errno(linuxerr.EINVAL), nil
	}
	if len(msg) > maxTraceBuf-1 {
		msg = msg[:maxTraceBuf-1]
	}
	if w := x.coll.opts.Trace; w != nil {
		x.coll.traceMu.Lock()
		_, _ = w.Write(msg)
		x.coll.traceMu.Unlock()
	}
	return uint64(len(msg)), nil
}

// bprintf formats like bstr_printf after bpf_bprintf_prepare. ok is false
// for a format the kernel refuses; err is a fault reading an argument.
func bprintf(m *vm.Machine, f []byte, args [3]uint64) (out []byte, ok bool, err error) {
	end := -1
	for i, c := range f {
		if c == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, false, nil
	}
	f = f[:end]
	at := func(i int) byte { // the NUL terminator reads as 0, like fmt[i+1]
		if i < len(f) {
			return f[i]
		}
		return 0
	}
	nspec := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c > 0x7e || (c < 0x20 && !isSpace(c)) {
			return nil, false, nil
		}
		if c != '%' {
			out = append(out, c)
			continue
		}
		if at(i+1) == '%' {
			out = append(out, '%')
			i++
			continue
		}
		if nspec == len(args) {
			return nil, false, nil
		}
		arg := args[nspec]
		nspec++
		i++
		start := i
		for at(i) == '0' || at(i) == '+' || at(i) == '-' || at(i) == ' ' {
			i++
		}
		if at(i) >= '1' && at(i) <= '9' {
			for at(i) >= '0' && at(i) <= '9' {
				i++
			}
		}
		flags := string(f[start:i])
		var s []byte
		numeric := false
		switch conv := at(i); {
		case conv == 'p' && (at(i+1) == 'k' || at(i+1) == 'u') && at(i+2) == 's':
			i += 2
			if !strEnd(at(i + 1)) {
				return nil, false, nil
			}
			if s, err = cString(m, arg); err != nil {
				return nil, false, err
			}
		case conv == 'p' && (at(i+1) == 'i' || at(i+1) == 'I') && (at(i+2) == '4' || at(i+2) == '6'):
			if s, err = ipString(m, arg, at(i+1) == 'I', at(i+2) == '6'); err != nil {
				return nil, false, err
			}
			i += 2
		case conv == 'p':
			switch n := at(i + 1); {
			case n == 0 || isSpace(n) || isPunct(n) || n == 'K' || n == 'x' || n == 's' || n == 'S' || n == 'B':
				if n == 'K' || n == 'x' || n == 's' || n == 'S' || n == 'B' {
					i++
				}
			default:
				return nil, false, nil
			}
			s = fmt.Appendf(nil, "%016x", arg)
		case conv == 's':
			if !strEnd(at(i + 1)) {
				return nil, false, nil
			}
			if s, err = cString(m, arg); err != nil {
				return nil, false, err
			}
		case conv == 'c':
			s = []byte{byte(arg)}
		default:
			size := 4
			if at(i) == 'l' {
				size, i = 8, i+1
			}
			if at(i) == 'l' {
				i++
			}
			var ok bool
			if s, ok = intString(at(i), arg, size); !ok {
				return nil, false, nil
			}
			numeric = true
		}
		out = append(out, pad(s, flags, numeric)...)
	}
	return out, true, nil
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func isPunct(c byte) bool {
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~')
}

// strEnd is what may follow %s: the end, white space or punctuation.
func strEnd(c byte) bool { return c == 0 || isSpace(c) || isPunct(c) }

func intString(conv byte, v uint64, size int) ([]byte, bool) {
	if size == 4 {
		v = uint64(uint32(v))
	}
	switch conv {
	case 'd', 'i':
		if size == 4 {
			return strconv.AppendInt(nil, int64(int32(v)), 10), true
		}
		return strconv.AppendInt(nil, int64(v), 10), true
	case 'u':
		return strconv.AppendUint(nil, v, 10), true
	case 'x':
		return strconv.AppendUint(nil, v, 16), true
	case 'X':
		return fmt.Appendf(nil, "%X", v), true
	}
	return nil, false
}

// pad applies the "[0 +-][width]" field of a conversion; numeric
// conversions take the sign and zero flags.
func pad(s []byte, flags string, numeric bool) []byte {
	width, left, zero, plus, space := 0, false, false, false, false
	j := 0
	for ; j < len(flags); j++ {
		switch flags[j] {
		case '-':
			left = true
		case '0':
			zero = true
		case '+':
			plus = true
		case ' ':
			space = true
		default:
			width, _ = strconv.Atoi(flags[j:])
			j = len(flags)
		}
	}
	if numeric && s[0] != '-' {
		if plus {
			s = append([]byte{'+'}, s...)
		} else if space {
			s = append([]byte{' '}, s...)
		}
	}
	for len(s) < width {
		switch {
		case left:
			s = append(s, ' ')
		case zero && numeric && (s[0] == '-' || s[0] == '+' || s[0] == ' '):
			s = append([]byte{s[0], '0'}, s[1:]...)
		case zero && numeric:
			s = append([]byte{'0'}, s...)
		default:
			s = append([]byte{' '}, s...)
		}
	}
	return s
}

// cString reads a NUL-terminated string of at most maxTraceBuf-1 bytes.
// A string that runs into memory the program does not hold aborts the run.
func cString(m *vm.Machine, addr uint64) ([]byte, error) {
	var s []byte
	for len(s) < maxTraceBuf-1 {
		b, err := m.Mem(addr+uint64(len(s)), 1, false)
		if err != nil {
			return nil, err
		}
		if b[0] == 0 {
			break
		}
		s = append(s, b[0])
	}
	return s, nil
}

// ipString formats %pI4 (dotted), %pi4 (zero-padded dotted), %pI6 (eight
// colon-separated groups) and %pi6 (32 hex digits).
func ipString(m *vm.Machine, addr uint64, upper, v6 bool) ([]byte, error) {
	n := uint64(4)
	if v6 {
		n = 16
	}
	b, err := m.Mem(addr, n, false)
	if err != nil {
		return nil, err
	}
	switch {
	case !v6 && upper:
		return netip.AddrFrom4([4]byte(b)).AppendTo(nil), nil
	case !v6:
		return fmt.Appendf(nil, "%03d.%03d.%03d.%03d", b[0], b[1], b[2], b[3]), nil
	case upper:
		var out []byte
		for i := 0; i < 16; i += 2 {
			if i > 0 {
				out = append(out, ':')
			}
			out = fmt.Appendf(out, "%04x", binary.BigEndian.Uint16(b[i:]))
		}
		return out, nil
	}
	return fmt.Appendf(nil, "%x", b), nil
}
