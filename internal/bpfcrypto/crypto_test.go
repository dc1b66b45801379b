package bpfcrypto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

func params(typ, algo string, key []byte, keyLen, authsize uint32) []byte {
	p := make([]byte, ParamsSize)
	copy(p[offType:], typ)
	copy(p[offAlgo:], algo)
	copy(p[offKey:], key)
	binary.LittleEndian.PutUint32(p[offKeyLen:], keyLen)
	binary.LittleEndian.PutUint32(p[offAuthsize:], authsize)
	return p
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The checks come in bpf_crypto_ctx_create's order: a request wrong in
// several ways gets the errno of the first check it fails.
func TestNew_Errnos(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	reserved := params("skcipher", "nope", key, 0, 1)
	reserved[offReserved+1] = 1
	for _, tc := range []struct {
		name   string
		params []byte
		size   uint32
		want   int
	}{
		{"ok", params("skcipher", "ecb(aes)", key, 16, 0), ParamsSize, 0},
		{"ok cbc 32", params("skcipher", "cbc(aes)", key, 32, 0), ParamsSize, 0},
		{"ok driver name", params("skcipher", "cbc(ecb(aes-fixed-time))", key, 24, 0), ParamsSize, 0},
		{"reserved first", reserved, ParamsSize, -linuxerr.EINVAL},
		{"params__sz", params("skcipher", "ecb(aes)", key, 16, 0), ParamsSize - 8, -linuxerr.EINVAL},
		{"short params", params("skcipher", "ecb(aes)", key, 16, 0)[:16], 16, -linuxerr.EINVAL},
		{"unknown type", params("aead", "ecb(aes)", key, 16, 0), ParamsSize, -linuxerr.ENOENT},
		{"unknown algo before key_len", params("skcipher", "arc4", key, 0, 0), ParamsSize, -linuxerr.EOPNOTSUPP},
		{"unknown algo", params("skcipher", "ecb(arc4)", key, 16, 0), ParamsSize, -linuxerr.EOPNOTSUPP},
		{"authsize", params("skcipher", "ecb(aes)", key, 0, 16), ParamsSize, -linuxerr.EOPNOTSUPP},
		{"key_len 0", params("skcipher", "ecb(aes)", key, 0, 0), ParamsSize, -linuxerr.EINVAL},
		{"key_len 257", params("skcipher", "ecb(aes)", key, 257, 0), ParamsSize, -linuxerr.EINVAL},
		{"aes key size", params("skcipher", "ecb(aes)", key, 17, 0), ParamsSize, -linuxerr.EINVAL},
		{"skcipher only", params("skcipher", "ctr(aes)", key, 16, 0), ParamsSize, -linuxerr.EINVAL},
	} {
		c, e := New(tc.params, tc.size)
		if e != tc.want || (c != nil) != (tc.want == 0) {
			t.Errorf("%s: New = %v, %d; want errno %d", tc.name, c, e, tc.want)
		}
	}
}

// FIPS-197 appendix C.1 (ECB, one block) and NIST SP 800-38A F.2.1 and
// F.2.2 (CBC-AES128, two blocks), with the IV updated as the kernel's cbc
// template leaves it.
func TestCrypt_Vectors(t *testing.T) {
	c, e := New(params("skcipher", "ecb(aes)", unhex(t, "000102030405060708090a0b0c0d0e0f"), 16, 0), ParamsSize)
	if e != 0 || c.IVSize() != 0 {
		t.Fatalf("New: %d, IVSize %d", e, c.IVSize())
	}
	plain := unhex(t, "00112233445566778899aabbccddeeff")
	out := make([]byte, 16)
	if e := c.Crypt(plain, out, nil, false); e != 0 || hex.EncodeToString(out) != "69c4e0d86a7b0430d8cdb78070b4c55a" {
		t.Errorf("ecb encrypt: %d % x", e, out)
	}
	back := make([]byte, 16)
	if e := c.Crypt(out, back, nil, true); e != 0 || !bytes.Equal(back, plain) {
		t.Errorf("ecb decrypt: %d % x", e, back)
	}

	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	cbc, e := New(params("skcipher", "cbc(aes)", key, 16, 0), ParamsSize)
	if e != 0 || cbc.IVSize() != 16 {
		t.Fatalf("New cbc: %d, IVSize %d", e, cbc.IVSize())
	}
	plain = unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
	want := "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
	iv := unhex(t, "000102030405060708090a0b0c0d0e0f")
	out = make([]byte, 32)
	if e := cbc.Crypt(plain, out, iv, false); e != 0 || hex.EncodeToString(out) != want || !bytes.Equal(iv, out[16:]) {
		t.Errorf("cbc encrypt: %d % x, iv % x", e, out, iv)
	}
	iv = unhex(t, "000102030405060708090a0b0c0d0e0f")
	back = make([]byte, 32)
	if e := cbc.Crypt(out, back, iv, true); e != 0 || !bytes.Equal(back, plain) || !bytes.Equal(iv, out[16:]) {
		t.Errorf("cbc decrypt: %d % x, iv % x", e, back, iv)
	}
	// In place, as when src and dst are one dynptr.
	buf := bytes.Clone(plain)
	iv = unhex(t, "000102030405060708090a0b0c0d0e0f")
	if e := cbc.Crypt(buf, buf, iv, false); e != 0 || hex.EncodeToString(buf) != want {
		t.Errorf("cbc in place: %d % x", e, buf)
	}
}

// A partial last block: the whole blocks are written, then -EINVAL
// (crypto_ecb_crypt and crypto_cbc_encrypt with the FINAL flag).
func TestCrypt_PartialBlock(t *testing.T) {
	c, _ := New(params("skcipher", "ecb(aes)", make([]byte, 16), 16, 0), ParamsSize)
	src := bytes.Repeat([]byte{1}, 20)
	dst := bytes.Repeat([]byte{0xee}, 20)
	if e := c.Crypt(src, dst, nil, false); e != -linuxerr.EINVAL {
		t.Fatalf("Crypt = %d, want -EINVAL", e)
	}
	whole := make([]byte, 16)
	c.Crypt(src[:16], whole, nil, false)
	if !bytes.Equal(dst[:16], whole) || !bytes.Equal(dst[16:], []byte{0xee, 0xee, 0xee, 0xee}) {
		t.Errorf("dst % x: want the first block encrypted, the rest untouched", dst)
	}
}

func TestCtx_Refs(t *testing.T) {
	c, _ := New(params("skcipher", "ecb(aes)", make([]byte, 16), 16, 0), ParamsSize)
	if !c.Acquire() || c.Refs() != 2 {
		t.Fatalf("Acquire: refs %d", c.Refs())
	}
	if c.Release() || !c.Release() {
		t.Fatal("the second Release must drop the last reference")
	}
	if c.Acquire() {
		t.Error("Acquire after the last Release succeeded (refcount_inc_not_zero)")
	}
}

// src and dst overlapping at different starts (two dynptrs into one
// buffer): the result is that of a copy of src.
func TestCrypt_InexactOverlap(t *testing.T) {
	c, _ := New(params("skcipher", "cbc(aes)", make([]byte, 16), 16, 0), ParamsSize)
	buf := make([]byte, 48)
	for i := range buf {
		buf[i] = byte(i)
	}
	want := make([]byte, 32)
	c.Crypt(bytes.Clone(buf[:32]), want, make([]byte, 16), false)
	if e := c.Crypt(buf[:32], buf[8:40], make([]byte, 16), false); e != 0 || !bytes.Equal(buf[8:40], want) {
		t.Errorf("overlapping: %d % x, want % x", e, buf[8:40], want)
	}
}
