package engine

import (
	"encoding/binary"
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
//
// The message is formatted into the executor's own buffers, so a
// bpf_printk on the packet path allocates nothing; the writer gets a
// slice it must not keep (io.Writer's contract).
func tracePrintk(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	x := executor(m)
	fmtb, err := memArg(m, r1, r2, false)
	if err != nil {
		return 0, err
	}
	msg, ok, err := x.bprintf(m, fmtb, [3]uint64{r3, r4, r5})
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

// printBufs are an executor's bpf_trace_printk buffers: the message and
// one conversion's text, grown once and reused.
type printBufs struct {
	out, arg []byte
}

// bprintf formats like bstr_printf after bpf_bprintf_prepare, into x's
// buffers. ok is false for a format the kernel refuses; err is a fault
// reading an argument.
func (x *Executor) bprintf(m *vm.Machine, f []byte, args [3]uint64) (out []byte, ok bool, err error) {
	if x.print.out == nil {
		x.print.out = make([]byte, 0, 2*maxTraceBuf)
		x.print.arg = make([]byte, 0, maxTraceBuf)
	}
	out = x.print.out[:0]
	defer func() { x.print.out = out[:0] }()
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
		flags := f[start:i]
		s := x.print.arg[:0]
		numeric, signed := false, false
		switch conv := at(i); {
		case conv == 'p' && (at(i+1) == 'k' || at(i+1) == 'u') && at(i+2) == 's':
			i += 2
			if !strEnd(at(i + 1)) {
				return nil, false, nil
			}
			if s, err = cString(m, s, arg); err != nil {
				return nil, false, err
			}
		case conv == 'p' && (at(i+1) == 'i' || at(i+1) == 'I') && (at(i+2) == '4' || at(i+2) == '6'):
			if s, err = ipString(m, s, arg, at(i+1) == 'I', at(i+2) == '6'); err != nil {
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
			s = appendHex(s, arg, 16, false)
		case conv == 's':
			if !strEnd(at(i + 1)) {
				return nil, false, nil
			}
			if s, err = cString(m, s, arg); err != nil {
				return nil, false, err
			}
		case conv == 'c':
			s = append(s, byte(arg))
		default:
			size := 4
			if at(i) == 'l' {
				size, i = 8, i+1
			}
			if at(i) == 'l' {
				i++
			}
			var ok bool
			if s, ok = intString(s, at(i), arg, size); !ok {
				return nil, false, nil
			}
			numeric, signed = true, at(i) == 'd' || at(i) == 'i'
		}
		x.print.arg = s[:0]
		out = appendPadded(out, s, flags, numeric, signed)
	}
	return out, true, nil
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func isPunct(c byte) bool {
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~')
}

// strEnd is what may follow %s: the end, white space or punctuation.
func strEnd(c byte) bool { return c == 0 || isSpace(c) || isPunct(c) }

func intString(dst []byte, conv byte, v uint64, size int) ([]byte, bool) {
	if size == 4 {
		v = uint64(uint32(v))
	}
	switch conv {
	case 'd', 'i':
		if size == 4 {
			return strconv.AppendInt(dst, int64(int32(v)), 10), true
		}
		return strconv.AppendInt(dst, int64(v), 10), true
	case 'u':
		return strconv.AppendUint(dst, v, 10), true
	case 'x':
		return strconv.AppendUint(dst, v, 16), true
	case 'X':
		return appendHex(dst, v, 0, true), true
	}
	return dst, false
}

// appendHex appends v in hex, at least width digits (zero-padded).
func appendHex(dst []byte, v uint64, width int, upper bool) []byte {
	digits := "0123456789abcdef"
	if upper {
		digits = "0123456789ABCDEF"
	}
	n := 1
	for u := v >> 4; u != 0; u >>= 4 {
		n++
	}
	for ; width > n; width-- {
		dst = append(dst, '0')
	}
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, digits[(v>>(4*uint(i)))&0xf])
	}
	return dst
}

// appendPadded appends s with the "[0 +-][width]" field of its
// conversion applied: numeric conversions take the zero flag, signed ones
// (%d, %i) the sign flags too, as in the kernel's number().
func appendPadded(dst, s, flags []byte, numeric, signed bool) []byte {
	width, left, zero, plus, space := 0, false, false, false, false
	for j := 0; j < len(flags); j++ {
		switch c := flags[j]; c {
		case '-':
			left = true
		case '0':
			zero = true
		case '+':
			plus = true
		case ' ':
			space = true
		default:
			for ; j < len(flags); j++ {
				width = width*10 + int(flags[j]-'0')
			}
		}
	}
	var sign byte
	if signed {
		switch {
		case len(s) > 0 && s[0] == '-':
			sign, s = '-', s[1:]
		case plus:
			sign = '+'
		case space:
			sign = ' '
		}
	}
	n := len(s)
	if sign != 0 {
		n++
	}
	fill := max(width-n, 0)
	switch {
	case left:
		dst = appendSign(dst, sign)
		dst = append(dst, s...)
		for range fill {
			dst = append(dst, ' ')
		}
	case zero && numeric:
		dst = appendSign(dst, sign)
		for range fill {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	default:
		for range fill {
			dst = append(dst, ' ')
		}
		dst = appendSign(dst, sign)
		dst = append(dst, s...)
	}
	return dst
}

func appendSign(dst []byte, sign byte) []byte {
	if sign != 0 {
		dst = append(dst, sign)
	}
	return dst
}

// cString appends a NUL-terminated string of at most maxTraceBuf-1 bytes.
// A string that runs into memory the program does not hold aborts the run.
func cString(m *vm.Machine, dst []byte, addr uint64) ([]byte, error) {
	for i := uint64(0); i < maxTraceBuf-1; i++ {
		b, err := m.Mem(addr+i, 1, false)
		if err != nil {
			return dst, err
		}
		if b[0] == 0 {
			break
		}
		dst = append(dst, b[0])
	}
	return dst, nil
}

// ipString appends %pI4 (dotted), %pi4 (zero-padded dotted), %pI6 (eight
// colon-separated groups) and %pi6 (32 hex digits).
func ipString(m *vm.Machine, dst []byte, addr uint64, upper, v6 bool) ([]byte, error) {
	n := uint64(4)
	if v6 {
		n = 16
	}
	b, err := m.Mem(addr, n, false)
	if err != nil {
		return dst, err
	}
	switch {
	case !v6 && upper:
		return netip.AddrFrom4([4]byte(b)).AppendTo(dst), nil
	case !v6:
		for i, o := range b {
			if i > 0 {
				dst = append(dst, '.')
			}
			dst = append(dst, '0'+o/100, '0'+o/10%10, '0'+o%10)
		}
		return dst, nil
	case upper:
		for i := 0; i < 16; i += 2 {
			if i > 0 {
				dst = append(dst, ':')
			}
			dst = appendHex(dst, uint64(binary.BigEndian.Uint16(b[i:])), 4, false)
		}
		return dst, nil
	}
	for _, o := range b {
		dst = appendHex(dst, uint64(o), 2, false)
	}
	return dst, nil
}
