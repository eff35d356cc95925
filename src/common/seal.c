/*
 * seal: AES-256-GCM over cache values, keys from a key file.  See seal.h.
 *
 * The key file is read with read(2) into one buffer of fixed size, not with
 * stdio or getline: their internal and reallocated buffers would leave
 * copies of the keys in freed memory that nothing can wipe.  Keys are
 * decoded straight into the keyring, so the read buffer is the only other
 * copy, and it is wiped before it is freed.
 */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "util.h"

#define KEY_HEX_CHARS (2 * RS_SEAL_KEY_BYTES)
#define ID_BYTES (RS_SEAL_ID_CHARS / 2)
/* EVP takes int lengths: larger inputs go through in pieces this size. */
#define CHUNK_BYTES (1 << 30)

static const char id_label[] = "resync-seal-key-id";

struct rs_key {
	unsigned char key[RS_SEAL_KEY_BYTES];
	char id[RS_SEAL_ID_CHARS + 1];
};

struct rs_keyring {
	size_t n;
	struct rs_key keys[RS_SEAL_MAX_KEYS];
};

/* Fill err from the thread's OpenSSL error queue, and empty the queue so
 * a later failure does not report this one. */
static int ossl_fail(struct rs_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[256];

	ERR_clear_error();
	if (!e)
		return rs_err_set(err, "%s: libcrypto gave no reason", what);
	ERR_error_string_n(e, reason, sizeof(reason));
	return rs_err_set(err, "%s: %s", what, reason);
}

static int make_id(const unsigned char *key, char id[RS_SEAL_ID_CHARS + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(ctx, id_label, strlen(id_label)) &&
		 EVP_DigestUpdate(ctx, key, RS_SEAL_KEY_BYTES) &&
		 EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen >= ID_BYTES;

	EVP_MD_CTX_free(ctx);
	if (ok)
		rs_hex_encode(md, ID_BYTES, id);
	OPENSSL_cleanse(md, sizeof(md));
	return ok ? 0 : -1;
}

/* Take the key already written to slot r->n into the ring: 0, -1 with err
 * on an OpenSSL failure, or 1 with *dup the index of an equal key (the
 * slot is wiped then). */
static int ring_commit(struct rs_keyring *r, size_t *dup, struct rs_err *err)
{
	struct rs_key *k = &r->keys[r->n];

	if (make_id(k->key, k->id) < 0)
		return ossl_fail(err, "cannot derive a key id");
	for (size_t i = 0; i < r->n; i++) {
		/* Equal ids with different keys (a 2^-64 chance) would make
		 * the id ambiguous, so they are refused alike. */
		if (!CRYPTO_memcmp(r->keys[i].key, k->key, RS_SEAL_KEY_BYTES) ||
		    !strcmp(r->keys[i].id, k->id)) {
			OPENSSL_cleanse(k, sizeof(*k));
			*dup = i;
			return 1;
		}
	}
	r->n++;
	return 0;
}

int rs_keyring_from_keys(struct rs_keyring **out,
			 const unsigned char (*keys)[RS_SEAL_KEY_BYTES],
			 size_t n, struct rs_err *err)
{
	struct rs_keyring *r;
	size_t dup;
	int rc;

	*out = NULL;
	if (n == 0)
		return rs_err_set(err, "no key");
	if (n > RS_SEAL_MAX_KEYS)
		return rs_err_set(err, "%zu keys; a keyring holds at most %d",
				  n, RS_SEAL_MAX_KEYS);
	r = calloc(1, sizeof(*r));
	if (!r)
		return rs_err_errno(err, ENOMEM, "cannot build a keyring");
	for (size_t i = 0; i < n; i++) {
		memcpy(r->keys[i].key, keys[i], RS_SEAL_KEY_BYTES);
		rc = ring_commit(r, &dup, err);
		if (rc) {
			if (rc > 0)
				rs_err_set(err, "key %zu is the same as key %zu",
					   i + 1, dup + 1);
			rs_keyring_free(r);
			return -1;
		}
	}
	*out = r;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Parse buf (len bytes) into r; errors name path and line. */
static int parse_keys(struct rs_keyring *r, const char *path, const char *buf,
		      size_t len, struct rs_err *err)
{
	const char *p = buf, *end = buf + len;
	int key_line[RS_SEAL_MAX_KEYS];
	int line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e = nl ? nl : end;
		size_t dup, n;
		int rc;

		p = nl ? nl + 1 : end;
		line++;
		while (s < e && is_blank(*s))
			s++;
		while (e > s && is_blank(e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;
		n = (size_t)(e - s);
		if (n != KEY_HEX_CHARS)
			return rs_err_set(err,
					  "'%s' line %d: a key is %d hex digits (%d bytes), got %zu character%s",
					  path, line, KEY_HEX_CHARS,
					  RS_SEAL_KEY_BYTES, n, n == 1 ? "" : "s");
		if (r->n == RS_SEAL_MAX_KEYS)
			return rs_err_set(err, "'%s' line %d: more than %d keys",
					  path, line, RS_SEAL_MAX_KEYS);
		for (size_t i = 0; i < KEY_HEX_CHARS; i += 2) {
			int hi = rs_hex_value(s[i]), lo = rs_hex_value(s[i + 1]);

			if (hi < 0 || lo < 0)
				return rs_err_set(err,
						  "'%s' line %d: a key is %d hex digits (%d bytes), character %zu of it is not one",
						  path, line, KEY_HEX_CHARS,
						  RS_SEAL_KEY_BYTES,
						  i + (hi < 0 ? 1 : 2));
			r->keys[r->n].key[i / 2] = (unsigned char)(hi << 4 | lo);
		}
		key_line[r->n] = line;
		rc = ring_commit(r, &dup, err);
		if (rc < 0) {
			rs_err_prefix(err, "'%s' line %d", path, line);
			return -1;
		}
		if (rc > 0)
			return rs_err_set(err,
					  "'%s' line %d: the same key as line %d",
					  path, line, key_line[dup]);
	}
	if (r->n == 0)
		return rs_err_set(err, "'%s' holds no key", path);
	return 0;
}

/* Whole file into *buf (malloc'd, RS_SEAL_KEY_FILE_MAX_BYTES + 1 bytes,
 * the caller wipes and frees it even on error). */
static int read_key_file(int fd, const char *path, char **buf, size_t *len,
			 struct rs_err *err)
{
	size_t cap = RS_SEAL_KEY_FILE_MAX_BYTES + 1;

	*len = 0;
	*buf = malloc(cap);
	if (!*buf)
		return rs_err_errno(err, ENOMEM, "cannot read '%s'", path);
	for (;;) {
		ssize_t got = read(fd, *buf + *len, cap - *len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return rs_err_errno(err, errno, "cannot read '%s'", path);
		if (got == 0)
			return 0;
		*len += (size_t)got;
		if (*len == cap)
			return rs_err_set(err,
					  "'%s' is larger than %d bytes; a key file holds at most %d keys",
					  path, RS_SEAL_KEY_FILE_MAX_BYTES,
					  RS_SEAL_MAX_KEYS);
	}
}

int rs_keyring_load(struct rs_keyring **out, const char *path,
		    struct rs_err *err)
{
	struct rs_keyring *r = NULL;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd, rc = -1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return rs_err_errno(err, errno, "cannot open '%s'", path);
	if (fstat(fd, &st) < 0) {
		rs_err_errno(err, errno, "cannot read '%s'", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rs_err_errno(err, EISDIR, "cannot read '%s'", path);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		bool others = st.st_mode & (S_IROTH | S_IWOTH);
		bool readable = st.st_mode & (others ? S_IROTH : S_IRGRP);

		rs_err_set(err, "'%s' is %s by %s (mode %04o); chmod 600 it",
			   path, readable ? "readable" : "writable",
			   others ? "others" : "group",
			   (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (read_key_file(fd, path, &buf, &len, err) < 0)
		goto out;
	r = calloc(1, sizeof(*r));
	if (!r) {
		rs_err_errno(err, ENOMEM, "cannot load '%s'", path);
		goto out;
	}
	if (parse_keys(r, path, buf, len, err) < 0)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	rs_keyring_free(r);
	if (buf) {
		OPENSSL_cleanse(buf, RS_SEAL_KEY_FILE_MAX_BYTES + 1);
		free(buf);
	}
	close(fd);
	return rc;
}

void rs_keyring_free(struct rs_keyring *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

const char *rs_keyring_current_id(const struct rs_keyring *k)
{
	return k->keys[0].id;
}

static const struct rs_key *find_key(const struct rs_keyring *k,
				     const char *id)
{
	for (size_t i = 0; id && i < k->n; i++)
		if (!strcmp(k->keys[i].id, id))
			return &k->keys[i];
	return NULL;
}

bool rs_keyring_has(const struct rs_keyring *k, const char *id)
{
	return find_key(k, id) != NULL;
}

size_t rs_keyring_count(const struct rs_keyring *k)
{
	return k->n;
}

/* Feed len bytes through the cipher (out NULL: as aad). */
static int gcm_update(EVP_CIPHER_CTX *ctx, unsigned char *out,
		      const unsigned char *in, size_t len)
{
	while (len > 0) {
		int n = len > CHUNK_BYTES ? CHUNK_BYTES : (int)len, got = 0;

		if (!EVP_CipherUpdate(ctx, out, &got, in, n))
			return -1;
		if (out)
			out += got;
		in += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One AES-256-GCM pass.  Encrypting writes the tag to tag; decrypting
 * checks it.  0, -1 on an OpenSSL failure (the error queue holds why), or
 * 1 when the tag does not match. */
static int gcm(const struct rs_key *k, int enc, const unsigned char *nonce,
	       const void *aad, size_t aadlen, const unsigned char *in,
	       size_t len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int got = 0, rc = -1;

	if (!ctx ||
	    !EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
				 RS_SEAL_NONCE_BYTES, NULL) ||
	    !EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, enc) ||
	    gcm_update(ctx, NULL, aad, aadlen) < 0 ||
	    gcm_update(ctx, out, in, len) < 0)
		goto out;
	if (!enc) {
		if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
					 RS_SEAL_TAG_BYTES, tag))
			goto out;
		rc = EVP_CipherFinal_ex(ctx, out + len, &got) > 0 ? 0 : 1;
		goto out;
	}
	if (EVP_CipherFinal_ex(ctx, out + len, &got) > 0 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, RS_SEAL_TAG_BYTES,
				tag))
		rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int rs_seal(const struct rs_keyring *k, const void *aad, size_t aadlen,
	    const void *plain, size_t plen, void **out, size_t *olen,
	    char key_id[RS_SEAL_ID_CHARS + 1], struct rs_err *err)
{
	const struct rs_key *key = &k->keys[0];
	unsigned char *buf;

	*out = NULL;
	if (plen > SIZE_MAX - RS_SEAL_OVERHEAD)
		return rs_err_set(err, "cannot seal a value of %zu bytes", plen);
	buf = malloc(plen + RS_SEAL_OVERHEAD);
	if (!buf)
		return rs_err_errno(err, ENOMEM, "cannot seal a value of %zu bytes",
				    plen);
	if (RAND_bytes(buf, RS_SEAL_NONCE_BYTES) != 1 ||
	    gcm(key, 1, buf, aad, aadlen, plain, plen, buf + RS_SEAL_NONCE_BYTES,
		buf + RS_SEAL_NONCE_BYTES + plen) != 0) {
		OPENSSL_cleanse(buf, plen + RS_SEAL_OVERHEAD);
		free(buf);
		return ossl_fail(err, "cannot seal value");
	}
	*out = buf;
	*olen = plen + RS_SEAL_OVERHEAD;
	if (key_id)
		memcpy(key_id, key->id, RS_SEAL_ID_CHARS + 1);
	return 0;
}

static bool id_well_formed(const char *id)
{
	return id && strlen(id) == RS_SEAL_ID_CHARS &&
	       strspn(id, "0123456789abcdef") == RS_SEAL_ID_CHARS;
}

int rs_unseal(const struct rs_keyring *k, const char *key_id,
	      const void *aad, size_t aadlen, const void *sealed, size_t slen,
	      void **plain, size_t *plen, struct rs_err *err)
{
	const unsigned char *in = sealed;
	unsigned char tag[RS_SEAL_TAG_BYTES], *buf;
	const struct rs_key *key;
	size_t clen;
	int rc;

	*plain = NULL;
	/* The id comes from storage: it is echoed only once known harmless. */
	if (!id_well_formed(key_id))
		return rs_err_set(err, "value has a malformed key id");
	key = find_key(k, key_id);
	if (!key)
		return rs_err_set(err,
				  "value sealed with key %s, which is not in the key file",
				  key_id);
	if (slen < RS_SEAL_OVERHEAD)
		goto forged;
	clen = slen - RS_SEAL_OVERHEAD;
	buf = malloc(clen + 1);
	if (!buf)
		return rs_err_errno(err, ENOMEM,
				    "cannot open a value of %zu bytes", slen);
	memcpy(tag, in + RS_SEAL_NONCE_BYTES + clen, RS_SEAL_TAG_BYTES);
	rc = gcm(key, 0, in, aad, aadlen, in + RS_SEAL_NONCE_BYTES, clen, buf,
		 tag);
	if (rc != 0) {
		/* Never let unauthenticated plaintext out, even in freed
		 * memory. */
		OPENSSL_cleanse(buf, clen + 1);
		free(buf);
		if (rc < 0)
			return ossl_fail(err, "cannot open value");
		ERR_clear_error();
		goto forged;
	}
	buf[clen] = '\0';
	*plain = buf;
	*plen = clen;
	return 0;
forged:
	return rs_err_set(err,
			  "value sealed with key %s does not authenticate (wrong key or corrupted)",
			  key_id);
}

int rs_keyring_hmac(const struct rs_keyring *k, const char *key_id, const void *data,
		    size_t n, unsigned char out[32], char id_out[RS_SEAL_ID_CHARS + 1],
		    struct rs_err *err)
{
	const struct rs_key *key = key_id ? find_key(k, key_id) : (k->n ? &k->keys[0] : NULL);
	unsigned int len = 0;

	if (!key)
		return rs_err_set(err, "key %s is not in the key file", key_id ? key_id : "(none)");
	if (!HMAC(EVP_sha256(), key->key, RS_SEAL_KEY_BYTES, data, n, out, &len) || len != 32)
		return ossl_fail(err, "HMAC-SHA256");
	if (id_out)
		memcpy(id_out, key->id, RS_SEAL_ID_CHARS + 1);
	return 0;
}
