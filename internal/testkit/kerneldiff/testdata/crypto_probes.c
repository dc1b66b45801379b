// SPDX-License-Identifier: GPL-2.0
/*
 * Probes of the BPF crypto kfuncs (kernel/bpf/crypto.c) for the kerneldiff
 * tests, beyond what the selftests' crypto_sanity and crypto_bench reach:
 * every field of struct bpf_crypto_params from .bss, acquire and release,
 * a CBC IV, the packet as destination (in place), a local source, and
 * dynptrs adjusted out of range. Each run leaves its results in .bss and
 * the packet, so comparing the two sides compares the kfuncs.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define __kptr __attribute__((btf_type_tag("kptr")))

/* The kernel's types, by name (the verifier resolves them in vmlinux). */
struct bpf_crypto_ctx {
	int opaque;
};

struct bpf_crypto_params {
	char type[14];
	__u8 reserved[2];
	char algo[128];
	__u8 key[256];
	__u32 key_len;
	__u32 authsize;
};

extern struct bpf_crypto_ctx *bpf_crypto_ctx_create(const struct bpf_crypto_params *params,
						     __u32 params__sz, int *err) __ksym;
extern struct bpf_crypto_ctx *bpf_crypto_ctx_acquire(struct bpf_crypto_ctx *ctx) __ksym;
extern void bpf_crypto_ctx_release(struct bpf_crypto_ctx *ctx) __ksym;
extern int bpf_crypto_encrypt(struct bpf_crypto_ctx *ctx, const struct bpf_dynptr *src,
			      const struct bpf_dynptr *dst, const struct bpf_dynptr *siv__nullable) __ksym;
extern int bpf_crypto_decrypt(struct bpf_crypto_ctx *ctx, const struct bpf_dynptr *src,
			      const struct bpf_dynptr *dst, const struct bpf_dynptr *siv__nullable) __ksym;
extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern int bpf_dynptr_adjust(const struct bpf_dynptr *ptr, __u32 start, __u32 end) __ksym;

struct ctx_value {
	struct bpf_crypto_ctx __kptr *ctx;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ctx_value);
} ctxs SEC(".maps");

/* Set by the test before create runs. */
struct bpf_crypto_params params_in;
/* What create saw: bpf_crypto_ctx_create's *err, whether acquire gave a
 * reference. */
int create_err, acquired;

/* The crypt program's buffers and results. */
__u8 dst_buf[128];
__u8 iv_buf[32];
__u8 src_buf[64];
int status, adjust_err;

/* create: bpf_crypto_ctx_create from params_in; on success a second
 * reference is acquired and released, and the context replaces the one in
 * ctxs (the update drops the old one's reference). */
SEC("syscall")
int create(void *unused)
{
	struct ctx_value zero = {}, *v;
	struct bpf_crypto_ctx *c, *c2;
	__u32 key = 0;
	int err = 0;

	c = bpf_crypto_ctx_create(&params_in, sizeof(params_in), &err);
	create_err = err;
	if (!c)
		return 0;
	c2 = bpf_crypto_ctx_acquire(c);
	acquired = c2 != 0;
	if (c2)
		bpf_crypto_ctx_release(c2);
	if (bpf_map_update_elem(&ctxs, &key, &zero, BPF_ANY)) {
		bpf_crypto_ctx_release(c);
		return 1;
	}
	v = bpf_map_lookup_elem(&ctxs, &key);
	if (!v) {
		bpf_crypto_ctx_release(c);
		return 2;
	}
	c = bpf_kptr_xchg(&v->ctx, c);
	if (c) {
		bpf_crypto_ctx_release(c);
		return 3;
	}
	return 0;
}

/* crypt: cb[0] bit 0 decrypts, bit 1 writes into the packet at the
 * source's offset (else dst_buf), bit 2 passes iv_buf as the IV, bit 3
 * reads src_buf (else the packet); cb[1] is the source's offset in the
 * packet, cb[2] its length, cb[3] the destination's, cb[4] the IV's. */
SEC("tc")
int crypt(struct __sk_buff *skb)
{
	__u32 mode = skb->cb[0], off = skb->cb[1], len = skb->cb[2];
	__u32 dlen = skb->cb[3] & 127, ivlen = skb->cb[4] & 31, key = 0;
	struct bpf_dynptr src, dst, siv;
	struct bpf_crypto_ctx *c;
	struct ctx_value *v;

	v = bpf_map_lookup_elem(&ctxs, &key);
	if (!v)
		return 1;
	c = v->ctx;
	if (!c) {
		status = -1000;
		return 2;
	}
	if (mode & 8) {
		bpf_dynptr_from_mem(src_buf, len & 63, 0, &src);
	} else {
		bpf_dynptr_from_skb(skb, 0, &src);
		adjust_err = bpf_dynptr_adjust(&src, off, off + len);
	}
	if (mode & 2) {
		bpf_dynptr_from_skb(skb, 0, &dst);
		bpf_dynptr_adjust(&dst, off, off + dlen);
	} else {
		bpf_dynptr_from_mem(dst_buf, dlen, 0, &dst);
	}
	if (mode & 4) {
		bpf_dynptr_from_mem(iv_buf, ivlen, 0, &siv);
		status = mode & 1 ? bpf_crypto_decrypt(c, &src, &dst, &siv) :
				    bpf_crypto_encrypt(c, &src, &dst, &siv);
	} else {
		status = mode & 1 ? bpf_crypto_decrypt(c, &src, &dst, NULL) :
				    bpf_crypto_encrypt(c, &src, &dst, NULL);
	}
	return 0;
}

char _license[] SEC("license") = "GPL";
