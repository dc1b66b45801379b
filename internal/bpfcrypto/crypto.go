package bpfcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// ParamsSize is sizeof(struct bpf_crypto_params): type[14], reserved[2],
// algo[128], key[256], key_len, authsize.
const ParamsSize = 408

// Offsets of struct bpf_crypto_params.
const (
	offType     = 0
	offReserved = 14
	offAlgo     = 16
	offKey      = 144
	offKeyLen   = 400
	offAuthsize = 404
	maxKey      = 256
)

// mode is a block cipher mode the skcipher type runs.
type mode int

const (
	modeECB mode = iota
	modeCBC
)

// aesNames are the names the crypto API finds AES under on Linux 6.18
// (x86-64 without AES-NI): the algorithm and its two drivers.
var aesNames = []string{"aes", "aes-generic", "aes-fixed-time"}

// algorithm is what the "skcipher" type answers for a name.
type algorithm struct {
	mode mode
	// errno, if non-zero, is what bpf_crypto_ctx_create answers once the
	// key checks pass: the crypto API knows the name as an skcipher but
	// has no lskcipher of it, so allocating the transform fails.
	errno int
}

// lookup is the "skcipher" type's has_algo and alloc_tfm: ok false is
// crypto_has_skcipher failing (-EOPNOTSUPP). Measured on Linux 6.18.44
// (CONFIG_CRYPTO_{AES,ECB,CBC,CTR,CTS,XTS}=y, no modules): ecb and cbc of
// AES are lskciphers; ctr, xts and cts of AES and the null cipher's ecb
// and cbc are skciphers only (-EINVAL); every other name (arc4, des,
// upper case, a template the kernel lacks) is unknown.
func lookup(name string) (algorithm, bool) {
	inner := func(prefix string) (string, bool) {
		if !strings.HasPrefix(name, prefix+"(") || !strings.HasSuffix(name, ")") {
			return "", false
		}
		return name[len(prefix)+1 : len(name)-1], true
	}
	isAES := func(s string) bool {
		for _, n := range aesNames {
			if s == n {
				return true
			}
		}
		return false
	}
	if s, ok := inner("ecb"); ok && isAES(s) {
		return algorithm{mode: modeECB}, true
	}
	if s, ok := inner("cbc"); ok && (isAES(s) || s == "ecb(aes-fixed-time)") {
		// cbc(ecb(aes-fixed-time)) is the driver name of cbc(aes).
		return algorithm{mode: modeCBC}, true
	}
	for _, t := range []string{"ctr", "xts"} {
		if s, ok := inner(t); ok && isAES(s) {
			return algorithm{errno: linuxerr.EINVAL}, true
		}
	}
	if s, ok := inner("cts"); ok && strings.HasPrefix(s, "cbc(") && isAES(s[4:len(s)-1]) && strings.HasSuffix(s, ")") {
		return algorithm{errno: linuxerr.EINVAL}, true
	}
	if name == "ecb(cipher_null)" || name == "cbc(cipher_null)" {
		return algorithm{errno: linuxerr.EINVAL}, true
	}
	return algorithm{}, false
}

// Ctx is a struct bpf_crypto_ctx: a keyed transform and its reference
// count. Encrypt and Decrypt are safe for concurrent use.
type Ctx struct {
	mode  mode
	block cipher.Block
	refs  atomic.Int64
}

// cstring is a NUL-terminated char array (the whole array without a NUL).
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// New is bpf_crypto_ctx_create(params, params__sz, err): a context holding
// one reference, or nil and the negative errno the kernel stores in *err,
// checked in the kernel's order. params holds at least ParamsSize bytes
// (the verifier sees to that for params__sz of them).
func New(params []byte, size uint32) (*Ctx, int) {
	if len(params) < ParamsSize || params[offReserved] != 0 || params[offReserved+1] != 0 || size != ParamsSize {
		return nil, -linuxerr.EINVAL
	}
	if cstring(params[offType:offReserved]) != "skcipher" {
		return nil, -linuxerr.ENOENT // no such bpf_crypto_type
	}
	alg, ok := lookup(cstring(params[offAlgo:offKey]))
	if !ok {
		return nil, -linuxerr.EOPNOTSUPP
	}
	le := binary.LittleEndian
	keyLen, authsize := le.Uint32(params[offKeyLen:]), le.Uint32(params[offAuthsize:])
	if authsize != 0 { // the skcipher type has no setauthsize
		return nil, -linuxerr.EOPNOTSUPP
	}
	if keyLen == 0 || keyLen > maxKey {
		return nil, -linuxerr.EINVAL
	}
	if alg.errno != 0 {
		return nil, -alg.errno
	}
	block, err := aes.NewCipher(params[offKey : offKey+keyLen])
	if err != nil { // aes_expandkey: only 16, 24 and 32 bytes
		return nil, -linuxerr.EINVAL
	}
	c := &Ctx{mode: alg.mode, block: block}
	c.refs.Store(1)
	return c, 0
}

// IVSize is the context's siv_len: ivsize + statesize of the transform
// (16 for cbc, 0 for ecb).
func (c *Ctx) IVSize() int {
	if c.mode == modeCBC {
		return c.block.BlockSize()
	}
	return 0
}

// Acquire is bpf_crypto_ctx_acquire: false if the count already reached
// zero (refcount_inc_not_zero).
func (c *Ctx) Acquire() bool {
	for {
		n := c.refs.Load()
		if n <= 0 {
			return false
		}
		if c.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release is bpf_crypto_ctx_release: true when it dropped the last
// reference (the kernel then frees the context after an RCU grace period).
func (c *Ctx) Release() bool { return c.refs.Add(-1) == 0 }

// Refs is the reference count.
func (c *Ctx) Refs() int64 { return c.refs.Load() }

// Crypt is the transform's lskcipher encrypt or decrypt of src into dst
// (len(dst) >= len(src)) with iv (IVSize bytes, updated as the kernel
// updates it): whole blocks are processed and written, and a partial last
// block makes it answer -EINVAL after them, as the kernel's ecb and cbc
// templates do. src and dst may be the same memory. It allocates nothing
// unless they overlap otherwise.
func (c *Ctx) Crypt(src, dst, iv []byte, decrypt bool) int {
	if inexactOverlap(src, dst) {
		src = bytes.Clone(src)
	}
	bs := c.block.BlockSize()
	n := len(src) / bs * bs
	for off := 0; off < n; off += bs {
		in, out := src[off:off+bs], dst[off:off+bs]
		switch {
		case c.mode == modeECB && decrypt:
			c.block.Decrypt(out, in)
		case c.mode == modeECB:
			c.block.Encrypt(out, in)
		case decrypt:
			var prev [aes.BlockSize]byte
			copy(prev[:], in) // the next IV, before an in-place decrypt overwrites it
			c.block.Decrypt(out, in)
			xorInto(out, iv)
			copy(iv, prev[:])
		default:
			copy(out, in)
			xorInto(out, iv)
			c.block.Encrypt(out, out)
			copy(iv, out)
		}
	}
	if len(src) != n {
		return -linuxerr.EINVAL
	}
	return 0
}

// xorInto xors x into dst (crypto_xor).
func xorInto(dst, x []byte) {
	for i := range dst {
		dst[i] ^= x[i]
	}
}

// inexactOverlap reports whether x and y share memory without starting at
// the same byte (which cipher.Block does not allow).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	xs, ys := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return xs != ys && xs < ys+uintptr(len(y)) && ys < xs+uintptr(len(x))
}
