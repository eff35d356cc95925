/*
 * test_seal: AES-256-GCM sealing of cache values.  Values round-trip
 * (empty, 1 byte, 1 MiB); a flipped bit anywhere, another aad or another
 * key is refused and never yields plaintext; a two-key ring seals with the
 * first key and opens with either; the layout is nonce || ciphertext ||
 * tag (checked by decrypting with EVP directly, and against the GCM spec's
 * test vectors); key ids are stable, derived and distinct; key files are
 * parsed strictly and refused when group or others may read them.  Each
 * run has a temp directory of its own.
 */
#include "seal.h"
#include "tap.h"
#include "testlib.h"
#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define BIG_BYTES ((size_t)RS_MIB)
#define THREADS 4
#define THREAD_ROUNDS 200
/* unsigned char[n][32] as the const-qualified parameter (ISO C before C23
 * does not convert it implicitly). */
#define KEYS(a) ((const unsigned char (*)[RS_SEAL_KEY_BYTES])(a))

static const char forged_tail[] =
	"does not authenticate (wrong key or corrupted)";

static void make_key(unsigned char k[RS_SEAL_KEY_BYTES], unsigned seed)
{
	for (unsigned i = 0; i < RS_SEAL_KEY_BYTES; i++)
		k[i] = (unsigned char)(seed * 131 + i * 7 + 1);
}

static void key_hex(char out[2 * RS_SEAL_KEY_BYTES + 1],
		    const unsigned char *k, bool upper)
{
	for (int i = 0; i < RS_SEAL_KEY_BYTES; i++)
		snprintf(out + 2 * i, 3, upper ? "%02X" : "%02x", k[i]);
}

static struct rs_keyring *ring_of(const unsigned char (*keys)[RS_SEAL_KEY_BYTES],
				  size_t n)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_keyring *k;

	if (rs_keyring_from_keys(&k, keys, n, &err) < 0) {
		printf("# rs_keyring_from_keys: %s\n", err.msg);
		exit(1);
	}
	return k;
}

/* Write text to t/name with the given mode; the full path goes to path. */
static void write_keyfile(char *path, const struct tmpdir *t,
			  const char *name, const char *text, mode_t mode)
{
	int fd;

	join(path, t, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fchmod(fd, mode) < 0) {
		printf("# cannot write '%s'\n", path);
		exit(1);
	}
	close(fd);
}

/* Decrypt with EVP directly, splitting the layout here: 0 when the tag
 * checks and out (slen - overhead bytes) holds the plaintext. */
static int ref_open(const unsigned char *key, const unsigned char *sealed,
		    size_t slen, const void *aad, size_t aadlen,
		    unsigned char *out)
{
	size_t clen = slen - RS_SEAL_OVERHEAD;
	unsigned char tag[RS_SEAL_TAG_BYTES];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	memcpy(tag, sealed + RS_SEAL_NONCE_BYTES + clen, sizeof(tag));
	ok = ctx &&
	     EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, sealed) &&
	     (!aadlen || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen)) &&
	     EVP_DecryptUpdate(ctx, out, &n, sealed + RS_SEAL_NONCE_BYTES,
			       (int)clen) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) &&
	     EVP_DecryptFinal_ex(ctx, out + clen, &n) > 0;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

static void test_round_trip(const struct rs_keyring *k)
{
	static const size_t sizes[] = { 0, 1, BIG_BYTES };
	unsigned char *in = malloc(BIG_BYTES);

	for (size_t i = 0; i < BIG_BYTES; i++)
		in[i] = (unsigned char)(i * 2654435761u >> 13);
	for (size_t s = 0; s < RS_ARRAY_SIZE(sizes); s++) {
		struct rs_err err = RS_ERR_INIT;
		char id[RS_SEAL_ID_CHARS + 1] = "", name[96];
		void *sealed = NULL, *out = NULL;
		size_t slen = 0, olen = 99;
		size_t n = sizes[s];
		int rc;

		rc = rs_seal(k, "key", 3, n ? in : NULL, n, &sealed, &slen, id,
			     &err);
		snprintf(name, sizeof(name), "%zu-byte value: seals", n);
		if (!ok(rc == 0, name))
			printf("#   %s\n", err.msg);
		snprintf(name, sizeof(name), "%zu-byte value: sealed length is %zu + 28",
			 n, n);
		is_int(slen, n + RS_SEAL_OVERHEAD, name);
		is_str(id, rs_keyring_current_id(k), "seal reports the current key id");
		rc = rs_unseal(k, id, "key", 3, sealed, slen, &out, &olen, &err);
		snprintf(name, sizeof(name), "%zu-byte value: opens", n);
		if (!ok(rc == 0, name))
			printf("#   %s\n", err.msg);
		snprintf(name, sizeof(name), "%zu-byte value: same bytes back", n);
		ok(olen == n && out && !memcmp(out, in, n), name);
		ok(out && ((char *)out)[olen] == '\0', "plaintext is NUL-terminated");
		free(sealed);
		free(out);
	}
	free(in);
}

static void test_tamper(const struct rs_keyring *k)
{
	static const struct {
		const char *what;
		size_t at;                /* from the start; SIZE_MAX: last byte */
	} flips[] = {
		{ "a flipped bit in the nonce", 0 },
		{ "a flipped bit in the ciphertext", RS_SEAL_NONCE_BYTES + 2 },
		{ "a flipped bit in the tag", SIZE_MAX },
	};
	const char *msg = "sixteen bytes..!";
	struct rs_err err = RS_ERR_INIT;
	char id[RS_SEAL_ID_CHARS + 1], want[RS_ERR_MSG_MAX], name[96];
	void *sealed, *out;
	size_t slen, olen;

	rs_seal(k, "k1", 2, msg, strlen(msg), &sealed, &slen, id, &err);
	snprintf(want, sizeof(want), "value sealed with key %s %s", id,
		 forged_tail);
	for (size_t i = 0; i < RS_ARRAY_SIZE(flips); i++) {
		unsigned char *p = sealed;
		size_t at = flips[i].at == SIZE_MAX ? slen - 1 : flips[i].at;

		p[at] ^= 0x10;
		out = (void *)1;
		snprintf(name, sizeof(name), "%s is refused", flips[i].what);
		ok(rs_unseal(k, id, "k1", 2, sealed, slen, &out, &olen, &err) < 0,
		   name);
		is_str(err.msg, want, "the error says it does not authenticate");
		ok(out == NULL, "no plaintext comes back");
		p[at] ^= 0x10;
	}
	ok(rs_unseal(k, id, "k1", 2, sealed, slen, &out, &olen, &err) == 0,
	   "the restored value opens again");
	free(out);

	ok(rs_unseal(k, id, "k2", 2, sealed, slen, &out, &olen, &err) < 0,
	   "another aad is refused");
	is_str(err.msg, want, "another aad: says it does not authenticate");
	ok(rs_unseal(k, id, NULL, 0, sealed, slen, &out, &olen, &err) < 0,
	   "no aad is refused when one was sealed");
	ok(rs_unseal(k, id, "k1", 2, sealed, RS_SEAL_OVERHEAD - 1, &out, &olen,
		     &err) < 0,
	   "an input shorter than the overhead is refused");
	is_str(err.msg, want, "short input: says it does not authenticate");
	ok(rs_unseal(k, id, "k1", 2, sealed, slen - 1, &out, &olen, &err) < 0,
	   "a truncated value is refused");
	ok(rs_unseal(k, "../../etc\x1b[2J", "k1", 2, sealed, slen, &out, &olen,
		     &err) < 0,
	   "a malformed key id is refused");
	is_str(err.msg, "value has a malformed key id",
	       "a malformed key id is not echoed");
	free(sealed);
}

static void test_rotation(void)
{
	unsigned char keys[3][RS_SEAL_KEY_BYTES], pair[2][RS_SEAL_KEY_BYTES];
	struct rs_keyring *old, *new, *both, *other;
	struct rs_err err = RS_ERR_INIT;
	char id_old[RS_SEAL_ID_CHARS + 1], id_new[RS_SEAL_ID_CHARS + 1], want[256];
	void *s_old, *s_new, *out;
	size_t l_old, l_new, olen;

	for (unsigned i = 0; i < 3; i++)
		make_key(keys[i], i + 10);
	memcpy(pair[0], keys[1], RS_SEAL_KEY_BYTES);     /* new key first */
	memcpy(pair[1], keys[0], RS_SEAL_KEY_BYTES);
	old = ring_of(KEYS(keys), 1);
	new = ring_of(KEYS(keys) + 1, 1);
	other = ring_of(KEYS(keys) + 2, 1);
	both = ring_of(KEYS(pair), 2);

	is_int(rs_keyring_count(both), 2, "a two-key ring counts 2");
	is_str(rs_keyring_current_id(both), rs_keyring_current_id(new),
	       "the first key is current");
	ok(rs_keyring_has(both, rs_keyring_current_id(old)) &&
	   rs_keyring_has(both, rs_keyring_current_id(new)),
	   "the ring has both ids");
	ok(!rs_keyring_has(both, rs_keyring_current_id(other)) &&
	   !rs_keyring_has(both, NULL),
	   "the ring has no other id");

	rs_seal(old, "a", 1, "x", 1, &s_old, &l_old, id_old, &err);
	rs_seal(both, "a", 1, "y", 1, &s_new, &l_new, id_new, &err);
	is_str(id_new, rs_keyring_current_id(new), "the ring seals with its first key");
	ok(rs_unseal(both, id_old, "a", 1, s_old, l_old, &out, &olen, &err) == 0 &&
	   !strcmp(out, "x"), "the ring opens a value sealed with the old key");
	free(out);
	ok(rs_unseal(both, id_new, "a", 1, s_new, l_new, &out, &olen, &err) == 0 &&
	   !strcmp(out, "y"), "the ring opens a value sealed with the new key");
	free(out);

	ok(rs_unseal(old, id_new, "a", 1, s_new, l_new, &out, &olen, &err) < 0,
	   "the old ring cannot open a value sealed with the new key");
	snprintf(want, sizeof(want),
		 "value sealed with key %s, which is not in the key file", id_new);
	is_str(err.msg, want, "unknown key id: the error names it");
	ok(out == NULL, "unknown key id: no plaintext");
	/* A key id that is present but wrong for the data (ids swapped). */
	ok(rs_unseal(both, id_new, "a", 1, s_old, l_old, &out, &olen, &err) < 0,
	   "a value opened with the wrong key of the ring is refused");
	has_str(err.msg, forged_tail, "wrong key: says it does not authenticate");

	free(s_old);
	free(s_new);
	rs_keyring_free(old);
	rs_keyring_free(new);
	rs_keyring_free(other);
	rs_keyring_free(both);
}

static bool is_id(const char *id)
{
	if (strlen(id) != RS_SEAL_ID_CHARS)
		return false;
	for (; *id; id++)
		if (!strchr("0123456789abcdef", *id))
			return false;
	return true;
}

static void test_ids_and_layout(void)
{
	/* ids computed with Python: sha256(b"resync-seal-key-id" + key)[:8] */
	unsigned char k0[1][RS_SEAL_KEY_BYTES] = { { 0 } }, seq[1][RS_SEAL_KEY_BYTES];
	/* The GCM spec's test cases 13 and 14 (256-bit zero key, zero IV). */
	static const unsigned char tc13[RS_SEAL_OVERHEAD] = {
		[RS_SEAL_NONCE_BYTES] = 0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45,
		0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb, 0x73, 0x8b,
	};
	static const unsigned char tc14[RS_SEAL_OVERHEAD + 16] = {
		[RS_SEAL_NONCE_BYTES] = 0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60,
		0x6b, 0x6e, 0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18,
		0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0, 0x26, 0x5b,
		0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19,
	};
	static const unsigned char zero16[16];
	struct rs_keyring *zero, *ks, *again;
	struct rs_err err = RS_ERR_INIT;
	const char *msg = "the layout is nonce || ciphertext || tag";
	unsigned char ref[64];
	void *s1, *s2, *out;
	size_t l1, l2, olen;

	for (int i = 0; i < RS_SEAL_KEY_BYTES; i++)
		seq[0][i] = (unsigned char)i;
	zero = ring_of(KEYS(k0), 1);
	ks = ring_of(KEYS(seq), 1);
	again = ring_of(KEYS(seq), 1);
	is_str(rs_keyring_current_id(zero), "4d430bdb24f03bbf", "id of the zero key");
	is_str(rs_keyring_current_id(ks), "200c764c344ea478", "id of the key 00..1f");
	is_str(rs_keyring_current_id(again), rs_keyring_current_id(ks),
	       "the same key gets the same id");
	ok(is_id(rs_keyring_current_id(ks)), "an id is 16 lowercase hex chars");
	ok(strcmp(rs_keyring_current_id(zero), rs_keyring_current_id(ks)),
	   "different keys get different ids");

	ok(rs_unseal(zero, rs_keyring_current_id(zero), NULL, 0, tc13,
		     sizeof(tc13), &out, &olen, &err) == 0 && olen == 0,
	   "GCM test case 13 (empty plaintext) opens");
	free(out);
	ok(rs_unseal(zero, rs_keyring_current_id(zero), NULL, 0, tc14,
		     sizeof(tc14), &out, &olen, &err) == 0 && olen == 16 &&
	   !memcmp(out, zero16, 16),
	   "GCM test case 14 opens to 16 zero bytes");
	free(out);

	rs_seal(ks, "aad", 3, msg, strlen(msg), &s1, &l1, NULL, &err);
	ok(ref_open(seq[0], s1, l1, "aad", 3, ref) == 0 &&
	   !memcmp(ref, msg, strlen(msg)),
	   "EVP alone opens a sealed value split as nonce || ciphertext || tag");
	rs_seal(ks, "aad", 3, msg, strlen(msg), &s2, &l2, NULL, &err);
	ok(l1 == l2 && memcmp(s1, s2, RS_SEAL_NONCE_BYTES) &&
	   memcmp(s1, s2, l1), "two seals of the same value differ (random nonce)");
	free(s1);
	free(s2);

	ok(rs_seal(ks, NULL, 0, msg, SIZE_MAX - 3, &s1, &l1, NULL, &err) < 0 &&
	   s1 == NULL, "a length that overflows with the overhead is refused");
	rs_keyring_free(zero);
	rs_keyring_free(ks);
	rs_keyring_free(again);
}

static void test_from_keys(void)
{
	unsigned char keys[RS_SEAL_MAX_KEYS + 1][RS_SEAL_KEY_BYTES];
	const unsigned char (*ck)[RS_SEAL_KEY_BYTES] = KEYS(keys);
	struct rs_err err = RS_ERR_INIT;
	struct rs_keyring *k = (void *)1;

	for (unsigned i = 0; i <= RS_SEAL_MAX_KEYS; i++)
		make_key(keys[i], i);
	ok(rs_keyring_from_keys(&k, ck, 0, &err) < 0 && !k, "no key is refused");
	ok(rs_keyring_from_keys(&k, ck, RS_SEAL_MAX_KEYS + 1, &err) < 0 && !k,
	   "17 keys are refused");
	ok(rs_keyring_from_keys(&k, ck, RS_SEAL_MAX_KEYS, &err) == 0 &&
	   rs_keyring_count(k) == RS_SEAL_MAX_KEYS, "16 keys are accepted");
	rs_keyring_free(k);
	memcpy(keys[2], keys[0], RS_SEAL_KEY_BYTES);
	ok(rs_keyring_from_keys(&k, ck, 3, &err) < 0 && !k,
	   "a repeated key is refused");
	is_str(err.msg, "key 3 is the same as key 1", "repeated key: names both");
	rs_keyring_free(NULL);
	ok(1, "rs_keyring_free(NULL) is fine");
}

static void expect_load_error(const char *path, const char *want,
			      const char *name)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_keyring *k = (void *)1;

	char what[160];

	ok(rs_keyring_load(&k, path, &err) < 0 && k == NULL, name);
	snprintf(what, sizeof(what), "%s: the message", name);
	is_str(err.msg, want, what);
}

static void test_key_file(const struct tmpdir *t)
{
	unsigned char a[2][RS_SEAL_KEY_BYTES];
	char ha[65], hb[65], hb_lower[65], path[TEST_PATH_MAX], want[TEST_PATH_MAX + 256];
	char text[4096];
	struct rs_err err = RS_ERR_INIT;
	struct rs_keyring *k, *ref, *second;
	size_t n;

	make_key(a[0], 1);
	make_key(a[1], 2);
	key_hex(ha, a[0], false);
	key_hex(hb, a[1], true);
	key_hex(hb_lower, a[1], false);
	ref = ring_of(KEYS(a), 2);
	second = ring_of(KEYS(a) + 1, 1);

	snprintf(text, sizeof(text),
		 "# resync seal keys\r\n\r\n   %s  \r\n\t# old key\n\t%s", ha, hb);
	write_keyfile(path, t, "good", text, 0600);
	if (!ok(rs_keyring_load(&k, path, &err) == 0,
		"a mode 0600 file with comments, blank lines, CRLF, spaces and upper case loads"))
		printf("#   %s\n", err.msg);
	else {
		is_int(rs_keyring_count(k), 2, "the file holds 2 keys");
		is_str(rs_keyring_current_id(k), rs_keyring_current_id(ref),
		       "the first key in the file is current");
		ok(rs_keyring_has(k, rs_keyring_current_id(second)),
		   "the second key is the one written");
		rs_keyring_free(k);
	}
	write_keyfile(path, t, "good", text, 0400);
	ok(rs_keyring_load(&k, path, &err) == 0, "mode 0400 is accepted");
	rs_keyring_free(k);

	write_keyfile(path, t, "open", text, 0644);
	snprintf(want, sizeof(want),
		 "'%s' is readable by others (mode 0644); chmod 600 it", path);
	expect_load_error(path, want, "mode 0644 is refused");
	write_keyfile(path, t, "open", text, 0620);
	snprintf(want, sizeof(want),
		 "'%s' is writable by group (mode 0620); chmod 600 it", path);
	expect_load_error(path, want, "mode 0620 is refused");

	snprintf(text, sizeof(text), "# keys\n%s\n%.12s\n", ha, hb);
	write_keyfile(path, t, "short", text, 0600);
	snprintf(want, sizeof(want),
		 "'%s' line 3: a key is 64 hex digits (32 bytes), got 12 characters",
		 path);
	expect_load_error(path, want, "a short key names its line");

	snprintf(text, sizeof(text), "%s0\n", ha);
	write_keyfile(path, t, "long", text, 0600);
	snprintf(want, sizeof(want),
		 "'%s' line 1: a key is 64 hex digits (32 bytes), got 65 characters",
		 path);
	expect_load_error(path, want, "a long key is refused");

	snprintf(text, sizeof(text), "%s\n\n%s\n", ha, hb);
	text[65 + 1 + 9] = 'g';
	write_keyfile(path, t, "badhex", text, 0600);
	snprintf(want, sizeof(want),
		 "'%s' line 3: a key is 64 hex digits (32 bytes), character 10 of it is not one",
		 path);
	expect_load_error(path, want, "a non-hex digit is refused");

	write_keyfile(path, t, "empty", "# nothing here\n\n   \n", 0600);
	snprintf(want, sizeof(want), "'%s' holds no key", path);
	expect_load_error(path, want, "a file with no key is refused");

	snprintf(text, sizeof(text), "%s\n%s\n# again\n%s\n", ha, hb, hb_lower);
	write_keyfile(path, t, "dup", text, 0600);
	snprintf(want, sizeof(want), "'%s' line 4: the same key as line 2", path);
	expect_load_error(path, want, "a repeated key is refused (any case)");

	n = (size_t)snprintf(text, sizeof(text), "# too many\n");
	for (unsigned i = 0; i <= RS_SEAL_MAX_KEYS; i++) {
		unsigned char key[RS_SEAL_KEY_BYTES];

		make_key(key, 100 + i);
		key_hex(text + n, key, false);
		n += 64;
		text[n++] = '\n';
	}
	text[n] = '\0';
	write_keyfile(path, t, "many", text, 0600);
	snprintf(want, sizeof(want), "'%s' line 18: more than 16 keys", path);
	expect_load_error(path, want, "17 keys are refused");

	join(path, t, "missing");
	snprintf(want, sizeof(want),
		 "cannot open '%s': No such file or directory", path);
	expect_load_error(path, want, "a missing file names the path");
	snprintf(want, sizeof(want), "cannot read '%s': Is a directory", t->path);
	expect_load_error(t->path, want, "a directory is refused");
	rs_keyring_free(ref);
	rs_keyring_free(second);
}

struct worker {
	const struct rs_keyring *k;
	unsigned id;
	int failures;
};

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < THREAD_ROUNDS; i++) {
		char msg[64], aad[32], id[RS_SEAL_ID_CHARS + 1];
		void *s = NULL, *out = NULL;
		size_t sl, ol;

		snprintf(msg, sizeof(msg), "thread %u value %u", w->id, i);
		snprintf(aad, sizeof(aad), "key-%u-%u", w->id, i);
		if (rs_seal(w->k, aad, strlen(aad), msg, strlen(msg), &s, &sl, id,
			    NULL) < 0 ||
		    rs_unseal(w->k, id, aad, strlen(aad), s, sl, &out, &ol,
			      NULL) < 0 ||
		    strcmp(out, msg))
			w->failures++;
		free(s);
		free(out);
	}
	return NULL;
}

static void test_threads(const struct rs_keyring *k)
{
	pthread_t th[THREADS];
	struct worker w[THREADS];
	int failures = 0;

	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ k, i, 0 };
		pthread_create(&th[i], NULL, worker, &w[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
	}
	is_int(failures, 0, "threads seal and open with one ring at once");
}

int main(void)
{
	unsigned char keys[2][RS_SEAL_KEY_BYTES];
	struct rs_keyring *k;
	struct tmpdir t;

	if (make_tmpdir(&t, "seal") < 0) {
		printf("Bail out! cannot make a temp directory\n");
		return 1;
	}
	make_key(keys[0], 7);
	make_key(keys[1], 8);
	k = ring_of(KEYS(keys), 2);

	test_round_trip(k);
	test_tamper(k);
	test_rotation();
	test_ids_and_layout();
	test_from_keys();
	test_key_file(&t);
	test_threads(k);

	rs_keyring_free(k);
	remove_tmpdir(&t);
	return tap_done();
}
