/* store_test.c: the object store (record format, sealing, tokens, objects, concurrency,
 * migrations) and the AES-GCM known answers it relies on. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/bytes.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "store/store.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

typedef struct {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/coffer-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* The store directory inside the fixture (a subdirectory, so mkdir -p is exercised). */
static void store_dir(fixture *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/a/b", f->dir);
}

static cf_store *open_store(fixture *f)
{
    char d[128];
    store_dir(f, d, sizeof d);
    cf_store *s = NULL;
    assert_int_equal(cf_store_open(d, &s), CF_OK);
    assert_non_null(s);
    return s;
}

static void fill_token(cf_store_token *t, uint64_t slot, const char *label)
{
    memset(t, 0, sizeof *t);
    t->slot = slot;
    snprintf(t->label, sizeof t->label, "%s", label);
    snprintf(t->serial, sizeof t->serial, "%016llu", (unsigned long long)slot);
    t->pin[CF_PIN_SO].set = true;
    memset(t->pin[CF_PIN_SO].salt, 0x11, 16);
    t->pin[CF_PIN_SO].iterations = 1000;
    memset(t->pin[CF_PIN_SO].wrapped, 0x22, CF_PIN_WRAPPED_LEN);
}

static uint64_t new_token(cf_store *s, const char *label)
{
    uint64_t slot;
    cf_store_token t;
    assert_int_equal(cf_store_free_slot(s, &slot), CF_OK);
    fill_token(&t, slot, label);
    assert_int_equal(cf_store_token_init(s, &t), CF_OK);
    return slot;
}

static const uint8_t dk1[CF_DATA_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t dk2[CF_DATA_KEY_LEN] = { 0xff };

/* A recognisable 32-byte secret. */
static const uint8_t secret32[32] = "SECRET-KEY-MATERIAL-0123456789!!";

static unsigned long cko_secret_key = 4;   /* CKO_SECRET_KEY */

/* A template: CKA_CLASS, CKA_LABEL, CKA_ID, an empty CKA_SUBJECT, and CKA_VALUE secret. */
static void make_attrs(cf_attr a[5], const char *label, const char *id)
{
    memset(a, 0, 5 * sizeof *a);
    a[0] = (cf_attr){ 0x0, 0, sizeof cko_secret_key, (uint8_t *)&cko_secret_key };
    a[1] = (cf_attr){ 0x3, 0, strlen(label), (uint8_t *)label };
    a[2] = (cf_attr){ 0x102, 0, strlen(id), (uint8_t *)id };
    a[3] = (cf_attr){ 0x101, 0, 0, NULL };
    a[4] = (cf_attr){ 0x11, CF_ATTR_SECRET, sizeof secret32, (uint8_t *)secret32 };
}

static const cf_attr *get(const cf_attr *a, size_t n, uint64_t type)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].type == type)
            return &a[i];
    return NULL;
}

/* Encodes to a heap buffer the caller frees. */
static uint8_t *encode(const cf_attr *a, size_t n, int64_t id, const uint8_t *dk, size_t *len)
{
    cf_writer w = cf_writer_heap();
    assert_int_equal(cf_store_record_encode(a, n, id, dk, &w), CF_OK);
    return cf_writer_take(&w, len);
}

/* ---- AES-GCM ----------------------------------------------------------------------------------- */

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 4 (AES-128, 60-byte P, AAD). */
static void test_gcm_kat(void **state)
{
    (void)state;
    uint8_t k[16], iv[12], p[60], a[20], c[60], t[16], ct[60], tag[16], pt[60];
    unhex("feffe9928665731c6d6a8f9467308308", k);
    unhex("cafebabefacedbaddecaf888", iv);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", p);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", a);
    unhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
          "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", c);
    unhex("5bc94fbc3221a5db94fae95ae7121a47", t);

    assert_int_equal(cf_aes_gcm_seal(k, 16, iv, 12, a, 20, p, 60, ct, tag, 16), CF_OK);
    assert_memory_equal(ct, c, 60);
    assert_memory_equal(tag, t, 16);
    assert_int_equal(cf_aes_gcm_open(k, 16, iv, 12, a, 20, c, 60, t, 16, pt), CF_OK);
    assert_memory_equal(pt, p, 60);
    /* A truncated tag is the tag's prefix (SP 800-38D 5.2.1.2). */
    assert_int_equal(cf_aes_gcm_seal(k, 16, iv, 12, a, 20, p, 60, ct, tag, 12), CF_OK);
    assert_memory_equal(tag, t, 12);
    assert_int_equal(cf_aes_gcm_open(k, 16, iv, 12, a, 20, c, 60, t, 12, pt), CF_OK);

    uint8_t bad[16];
    memcpy(bad, t, 16);
    bad[15] ^= 1;
    memset(pt, 0x5a, sizeof pt);
    assert_int_equal(cf_aes_gcm_open(k, 16, iv, 12, a, 20, c, 60, bad, 16, pt),
                     CF_E_ENCRYPTED_DATA_INVALID);
    static const uint8_t zero[60];
    assert_memory_equal(pt, zero, 60);   /* no unauthenticated plaintext */
    /* Wrong AAD fails too. */
    a[0] ^= 1;
    assert_int_equal(cf_aes_gcm_open(k, 16, iv, 12, a, 20, c, 60, t, 16, pt),
                     CF_E_ENCRYPTED_DATA_INVALID);
    /* Argument checks. */
    assert_int_equal(cf_aes_gcm_seal(k, 15, iv, 12, a, 20, p, 60, ct, tag, 16), CF_E_ARGS);
    assert_int_equal(cf_aes_gcm_seal(k, 16, iv, 12, a, 20, p, 60, ct, tag, 3), CF_E_ARGS);
    assert_int_equal(cf_aes_gcm_seal(k, 16, iv, 12, a, 20, p, 60, ct, tag, 17), CF_E_ARGS);
    /* Empty plaintext, 32-byte key, non-96-bit IV. */
    uint8_t k32[32] = { 7 }, iv8[8] = { 9 };
    assert_int_equal(cf_aes_gcm_seal(k32, 32, iv8, 8, NULL, 0, NULL, 0, NULL, tag, 16), CF_OK);
    assert_int_equal(cf_aes_gcm_open(k32, 32, iv8, 8, NULL, 0, NULL, 0, tag, 16, NULL), CF_OK);
}

static void test_random_ct_equal(void **state)
{
    (void)state;
    uint8_t a[32] = { 0 }, b[32] = { 0 };
    assert_int_equal(cf_random(a, sizeof a), CF_OK);
    assert_int_equal(cf_random(b, sizeof b), CF_OK);
    assert_memory_not_equal(a, b, 32);
    assert_true(cf_ct_equal(a, a, 32));
    assert_false(cf_ct_equal(a, b, 32));
    assert_true(cf_ct_equal(a, b, 0));
}

/* ---- records ----------------------------------------------------------------------------------- */

static void test_record_roundtrip(void **state)
{
    (void)state;
    cf_attr in[5];
    make_attrs(in, "my key", "\x01\x02");
    size_t len;
    uint8_t *rec = encode(in, 5, 42, dk1, &len);
    assert_null(memmem(rec, len, secret32, sizeof secret32));
    assert_int_equal(rec[0], 1);

    cf_reader r = cf_reader_init(rec, len);
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_OK);
    assert_true(cf_reader_done(&r));
    assert_int_equal(n, 5);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(out[i].type, in[i].type);
        assert_int_equal(out[i].flags, 0);
        assert_int_equal(out[i].len, in[i].len);
        if (in[i].len)
            assert_memory_equal(out[i].val, in[i].val, in[i].len);
    }
    assert_null(out[3].val);
    cf_attr *sec = &out[4];
    assert_int_equal(sec->flags, CF_ATTR_SECRET | CF_ATTR_SEALED);
    assert_int_equal(sec->len, 32 + 28);

    /* Re-encoding with sealed values kept needs no key and gives the same bytes. */
    size_t len2;
    uint8_t *rec2 = encode(out, n, 42, NULL, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(rec2, rec, len);
    free(rec2);

    assert_int_equal(cf_store_attr_unseal(dk1, 42, sec), CF_OK);
    assert_int_equal(sec->flags, CF_ATTR_SECRET);
    assert_int_equal(sec->len, 32);
    assert_memory_equal(sec->val, secret32, 32);
    /* Unsealing again is an argument error (not sealed). */
    assert_int_equal(cf_store_attr_unseal(dk1, 42, sec), CF_E_ARGS);
    cf_attrs_free(out, n);

    /* Two encodings of the same secret differ (fresh IV). */
    rec2 = encode(in, 5, 42, dk1, &len2);
    assert_int_equal(len2, len);
    assert_memory_not_equal(rec2, rec, len);
    free(rec2);
    free(rec);

    /* An empty record, and an empty secret. */
    rec = encode(NULL, 0, 1, NULL, &len);
    assert_int_equal(len, 5);
    r = cf_reader_init(rec, len);
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_OK);
    assert_int_equal(n, 0);
    cf_attrs_free(out, n);
    free(rec);
    cf_attr e = { 0x11, CF_ATTR_SECRET, 0, NULL };
    rec = encode(&e, 1, 7, dk1, &len);
    r = cf_reader_init(rec, len);
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_OK);
    assert_int_equal(out[0].len, 28);
    assert_int_equal(cf_store_attr_unseal(dk1, 7, &out[0]), CF_OK);
    assert_int_equal(out[0].len, 0);
    cf_attrs_free(out, n);
    free(rec);
}

static void test_record_encode_rejects(void **state)
{
    (void)state;
    cf_attr in[5];
    make_attrs(in, "x", "y");
    cf_writer w = cf_writer_heap();
    /* Secret without a key. */
    assert_int_equal(cf_store_record_encode(in, 5, 1, NULL, &w), CF_E_ARGS);
    /* Duplicate type. */
    in[1].type = 0x102;
    assert_int_equal(cf_store_record_encode(in, 4, 1, NULL, &w), CF_E_ARGS);
    in[1].type = 0x3;
    /* Unknown flag. */
    in[1].flags = 1u << 5;
    assert_int_equal(cf_store_record_encode(in, 4, 1, NULL, &w), CF_E_ARGS);
    in[1].flags = 0;
    /* A "sealed" value too short to be one. */
    in[1].flags = CF_ATTR_SECRET | CF_ATTR_SEALED;
    assert_int_equal(cf_store_record_encode(in, 4, 1, NULL, &w), CF_E_ARGS);
    cf_writer_free(&w);
    /* A fixed writer too small reports it. */
    uint8_t small[4];
    w = cf_writer_fixed(small, sizeof small);
    make_attrs(in, "x", "y");
    assert_int_equal(cf_store_record_encode(in, 4, 1, NULL, &w), CF_E_BUFFER_TOO_SMALL);
}

/* Every prefix of a valid record fails, and the reader does not move. */
static void test_record_truncations(void **state)
{
    (void)state;
    cf_attr in[5];
    make_attrs(in, "label", "id");
    size_t len;
    uint8_t *rec = encode(in, 5, 9, dk1, &len);
    uint8_t *buf = malloc(len + 2);
    assert_non_null(buf);
    buf[0] = 0xAA;   /* a byte read before the record, so the offset to keep is not 0 */
    memcpy(buf + 1, rec, len);
    for (size_t k = 0; k < len; k++) {
        cf_reader r = cf_reader_init(buf, 1 + k);
        uint8_t b;
        assert_int_equal(cf_get_u8(&r, &b), CF_OK);
        cf_attr *out = (cf_attr *)0x1;
        size_t n = 77;
        assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_E_STORE_CORRUPT);
        assert_int_equal(r.off, 1);
        assert_ptr_equal(out, (cf_attr *)0x1);
        assert_int_equal(n, 77);
    }
    /* The whole record parses; a trailing byte is rejected, reader unmoved. */
    cf_reader r = cf_reader_init(buf, 1 + len);
    uint8_t b;
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_get_u8(&r, &b), CF_OK);
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_OK);
    cf_attrs_free(out, n);
    buf[1 + len] = 0;
    r = cf_reader_init(buf, 2 + len);
    assert_int_equal(cf_get_u8(&r, &b), CF_OK);
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_E_STORE_CORRUPT);
    assert_int_equal(r.off, 1);
    free(buf);
    free(rec);
}

/* Hand-built records the encoder would never produce. */
static void expect_corrupt(cf_writer *w)
{
    assert_int_equal(cf_writer_status(w), CF_OK);
    cf_reader r = cf_reader_init(w->p, w->len);
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_E_STORE_CORRUPT);
    assert_int_equal(r.off, 0);
    cf_writer_free(w);
}

static void put_attr(cf_writer *w, uint64_t type, uint8_t flags, uint32_t len, uint8_t fill)
{
    cf_put_u64(w, type);
    cf_put_u8(w, flags);
    cf_put_u32(w, len);
    for (uint32_t i = 0; i < len; i++)
        cf_put_u8(w, fill);
}

static void test_record_decode_rejects(void **state)
{
    (void)state;
    cf_writer w;
    /* Duplicate type. */
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 2);
    put_attr(&w, 3, 0, 2, 'a');
    put_attr(&w, 3, 0, 2, 'b');
    expect_corrupt(&w);
    /* Unknown version. */
    w = cf_writer_heap();
    cf_put_u8(&w, 2);
    cf_put_u32(&w, 1);
    put_attr(&w, 3, 0, 2, 'a');
    expect_corrupt(&w);
    /* Unknown flags; the in-memory SEALED flag on disk. */
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 1);
    put_attr(&w, 3, 4, 2, 'a');
    expect_corrupt(&w);
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 1);
    put_attr(&w, 3, CF_ATTR_SECRET | CF_ATTR_SEALED, 40, 'a');
    expect_corrupt(&w);
    /* A secret shorter than iv + tag. */
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 1);
    put_attr(&w, 0x11, CF_ATTR_SECRET, 27, 'a');
    expect_corrupt(&w);
    /* Count beyond the input; count above the limit. */
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 3);
    put_attr(&w, 3, 0, 2, 'a');
    expect_corrupt(&w);
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 4097);
    for (int i = 0; i < 4097; i++)
        put_attr(&w, (uint64_t)i, 0, 0, 0);
    expect_corrupt(&w);
    /* Length beyond the input; length above 16 MiB. */
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 1);
    put_attr(&w, 3, 0, 0, 0);
    w.p[w.len - 1] = 5;
    expect_corrupt(&w);
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 1);
    put_attr(&w, 3, 0, 0, 0);
    w.len -= 4;
    cf_put_u32(&w, 16u * 1024 * 1024 + 1);
    expect_corrupt(&w);
    /* 4096 attributes is fine. */
    w = cf_writer_heap();
    cf_put_u8(&w, 1);
    cf_put_u32(&w, 4096);
    for (int i = 0; i < 4096; i++)
        put_attr(&w, (uint64_t)i, 0, 1, 'z');
    cf_reader r = cf_reader_init(w.p, w.len);
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_OK);
    assert_int_equal(n, 4096);
    cf_attrs_free(out, n);
    cf_writer_free(&w);
}

static void test_unseal_failures(void **state)
{
    (void)state;
    cf_attr in[5];
    make_attrs(in, "k", "i");
    size_t len;
    uint8_t *rec = encode(in, 5, 1000, dk1, &len);
    cf_reader r = cf_reader_init(rec, len);
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_store_record_decode(&r, &out, &n), CF_OK);
    cf_attr *sec = &out[4];
    uint8_t saved[60];
    memcpy(saved, sec->val, 60);

    assert_int_equal(cf_store_attr_unseal(dk2, 1000, sec), CF_E_STORE_CORRUPT);
    assert_int_equal(cf_store_attr_unseal(dk1, 1001, sec), CF_E_STORE_CORRUPT);
    /* Moved to another attribute type. */
    sec->type = 0x120;
    assert_int_equal(cf_store_attr_unseal(dk1, 1000, sec), CF_E_STORE_CORRUPT);
    sec->type = 0x11;
    /* A flipped bit anywhere: iv, ciphertext, tag. */
    size_t where[] = { 0, 12, 12 + 31, 12 + 32, 59 };
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        sec->val[where[i]] ^= 0x10;
        assert_int_equal(cf_store_attr_unseal(dk1, 1000, sec), CF_E_STORE_CORRUPT);
        sec->val[where[i]] ^= 0x10;
    }
    /* Failures left the attribute as it was. */
    assert_int_equal(sec->flags, CF_ATTR_SECRET | CF_ATTR_SEALED);
    assert_int_equal(sec->len, 60);
    assert_memory_equal(sec->val, saved, 60);
    assert_int_equal(cf_store_attr_unseal(dk1, 1000, sec), CF_OK);
    assert_memory_equal(sec->val, secret32, 32);
    cf_attrs_free(out, n);
    free(rec);
}

/* ---- database ------------------------------------------------------------------------------- */

static bool file_contains(const char *path, const void *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += k;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(fp);
    bool found = memmem(buf, len, needle, n) != NULL;
    free(buf);
    return found;
}

static void test_no_plaintext_on_disk(void **state)
{
    fixture *f = *state;
    char d[128], db[160], wal[170];
    store_dir(f, d, sizeof d);
    snprintf(db, sizeof db, "%s/coffer.db", d);
    snprintf(wal, sizeof wal, "%s/coffer.db-wal", d);
    cf_store *s = open_store(f);

    struct stat sb;
    assert_int_equal(stat(d, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);

    uint64_t slot = new_token(s, "tok");
    cf_attr in[5];
    make_attrs(in, "findme-label", "id");
    int64_t id;
    assert_int_equal(cf_store_obj_insert(s, slot, in, 5, dk1, &id), CF_OK);
    /* The label (public) is there: the search does see the data. The secret is not. */
    assert_true(file_contains(db, "findme-label", 12) || file_contains(wal, "findme-label", 12));
    assert_false(file_contains(db, secret32, 32));
    assert_false(file_contains(wal, secret32, 32));
    cf_store_close(s);
    assert_true(file_contains(db, "findme-label", 12));
    assert_false(file_contains(db, secret32, 32));
    assert_false(file_contains(wal, secret32, 32));

    /* The object still unseals after reopening. */
    s = open_store(f);
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_store_obj_load(s, id, &out, &n, NULL), CF_OK);
    cf_attr *sec = (cf_attr *)get(out, n, 0x11);
    assert_non_null(sec);
    assert_int_equal(cf_store_attr_unseal(dk1, id, sec), CF_OK);
    assert_memory_equal(sec->val, secret32, 32);
    cf_attrs_free(out, n);
    cf_store_close(s);
}

static void test_tokens(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    uint64_t free_slot;
    assert_int_equal(cf_store_free_slot(s, &free_slot), CF_OK);
    assert_int_equal(free_slot, 1);
    cf_store_token *list;
    size_t n;
    assert_int_equal(cf_store_tokens(s, &list, &n), CF_OK);
    assert_int_equal(n, 0);
    free(list);

    uint64_t a = new_token(s, "alpha");
    assert_int_equal(a, 1);
    assert_int_equal(cf_store_free_slot(s, &free_slot), CF_OK);
    assert_int_equal(free_slot, 2);
    uint64_t b = new_token(s, "beta");
    assert_int_equal(b, 2);

    cf_store_token t;
    assert_int_equal(cf_store_token_get(s, a, &t), CF_OK);
    assert_string_equal(t.label, "alpha");
    assert_string_equal(t.serial, "0000000000000001");
    assert_true(t.pin[CF_PIN_SO].set);
    assert_int_equal(t.pin[CF_PIN_SO].iterations, 1000);
    assert_int_equal(t.pin[CF_PIN_SO].wrapped[CF_PIN_WRAPPED_LEN - 1], 0x22);
    assert_false(t.pin[CF_PIN_USER].set);
    assert_int_equal(cf_store_token_get(s, 99, &t), CF_E_NOT_FOUND);

    assert_int_equal(cf_store_tokens(s, &list, &n), CF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].slot, 1);
    assert_string_equal(list[1].label, "beta");
    free(list);

    /* Neither the free slot nor a token. */
    fill_token(&t, 7, "nope");
    assert_int_equal(cf_store_token_init(s, &t), CF_E_SLOT_ID_INVALID);
    /* A 33-byte label is refused. */
    fill_token(&t, 3, "");
    memset(t.label, 'x', sizeof t.label);
    assert_int_equal(cf_store_token_init(s, &t), CF_E_ARGS);

    /* Re-init deletes the token's objects, not the other token's. */
    cf_attr in[5];
    make_attrs(in, "k", "i");
    int64_t ida, idb;
    assert_int_equal(cf_store_obj_insert(s, a, in, 5, dk1, &ida), CF_OK);
    assert_int_equal(cf_store_obj_insert(s, b, in, 5, dk1, &idb), CF_OK);
    fill_token(&t, a, "alpha2");
    assert_int_equal(cf_store_token_init(s, &t), CF_OK);
    assert_int_equal(cf_store_free_slot(s, &free_slot), CF_OK);
    assert_int_equal(free_slot, 3);
    cf_attr *out;
    size_t on;
    assert_int_equal(cf_store_obj_load(s, ida, &out, &on, NULL), CF_E_NOT_FOUND);
    assert_int_equal(cf_store_obj_load(s, idb, &out, &on, NULL), CF_OK);
    cf_attrs_free(out, on);
    assert_int_equal(cf_store_token_get(s, a, &t), CF_OK);
    assert_string_equal(t.label, "alpha2");

    /* Delete: objects go, the slot id is never handed out again. */
    assert_int_equal(cf_store_token_delete(s, b), CF_OK);
    assert_int_equal(cf_store_token_delete(s, b), CF_E_NOT_FOUND);
    assert_int_equal(cf_store_obj_load(s, idb, &out, &on, NULL), CF_E_NOT_FOUND);
    assert_int_equal(cf_store_token_get(s, b, &t), CF_E_NOT_FOUND);
    fill_token(&t, b, "again");
    assert_int_equal(cf_store_token_init(s, &t), CF_E_SLOT_ID_INVALID);
    uint64_t c = new_token(s, "gamma");
    assert_int_equal(c, 3);
    cf_store_close(s);
    s = open_store(f);
    assert_int_equal(cf_store_free_slot(s, &free_slot), CF_OK);
    assert_int_equal(free_slot, 4);
    assert_int_equal(cf_store_tokens(s, &list, &n), CF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].slot, 1);
    assert_int_equal(list[1].slot, 3);
    free(list);
    cf_store_close(s);
}

static void test_pins(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    uint64_t slot = new_token(s, "pins");
    uint32_t fails;
    assert_int_equal(cf_store_pin_result(s, slot, CF_PIN_USER, false, &fails), CF_OK);
    assert_int_equal(fails, 1);
    assert_int_equal(cf_store_pin_result(s, slot, CF_PIN_USER, false, &fails), CF_OK);
    assert_int_equal(fails, 2);
    assert_int_equal(cf_store_pin_result(s, slot, CF_PIN_SO, false, &fails), CF_OK);
    assert_int_equal(fails, 1);
    assert_int_equal(cf_store_pin_result(s, 99, CF_PIN_SO, false, &fails), CF_E_NOT_FOUND);
    cf_store_close(s);

    s = open_store(f);
    cf_store_token t;
    assert_int_equal(cf_store_token_get(s, slot, &t), CF_OK);
    assert_int_equal(t.fails[CF_PIN_USER], 2);
    assert_int_equal(t.fails[CF_PIN_SO], 1);
    assert_int_equal(cf_store_pin_result(s, slot, CF_PIN_USER, false, &fails), CF_OK);
    assert_int_equal(fails, 3);
    assert_int_equal(cf_store_pin_result(s, slot, CF_PIN_USER, true, &fails), CF_OK);
    assert_int_equal(fails, 0);

    /* set_pin replaces the record and resets that counter only. */
    cf_pin_record r = { .set = true, .iterations = 5 };
    memset(r.salt, 0x33, sizeof r.salt);
    memset(r.wrapped, 0x44, sizeof r.wrapped);
    assert_int_equal(cf_store_pin_result(s, slot, CF_PIN_USER, false, &fails), CF_OK);
    assert_int_equal(cf_store_token_set_pin(s, slot, CF_PIN_USER, &r), CF_OK);
    assert_int_equal(cf_store_token_set_pin(s, 99, CF_PIN_USER, &r), CF_E_NOT_FOUND);
    cf_store_close(s);
    s = open_store(f);
    assert_int_equal(cf_store_token_get(s, slot, &t), CF_OK);
    assert_true(t.pin[CF_PIN_USER].set);
    assert_int_equal(t.pin[CF_PIN_USER].iterations, 5);
    assert_memory_equal(t.pin[CF_PIN_USER].salt, r.salt, 16);
    assert_memory_equal(t.pin[CF_PIN_USER].wrapped, r.wrapped, CF_PIN_WRAPPED_LEN);
    assert_int_equal(t.fails[CF_PIN_USER], 0);
    assert_int_equal(t.fails[CF_PIN_SO], 1);
    /* Clearing a PIN. */
    cf_pin_record none = { .set = false };
    assert_int_equal(cf_store_token_set_pin(s, slot, CF_PIN_SO, &none), CF_OK);
    assert_int_equal(cf_store_token_get(s, slot, &t), CF_OK);
    assert_false(t.pin[CF_PIN_SO].set);
    assert_int_equal(t.fails[CF_PIN_SO], 0);
    cf_store_close(s);
}

typedef struct {
    int64_t ids[16];
    int64_t seqs[16];
    size_t n;
    int stop_after;
} scan_ctx;

static cf_err scan_cb(void *ctx, int64_t id, int64_t seq)
{
    scan_ctx *c = ctx;
    if (c->stop_after && (int)c->n == c->stop_after)
        return CF_E_CANT_LOCK;
    if (c->n < 16) {
        c->ids[c->n] = id;
        c->seqs[c->n] = seq;
    }
    c->n++;
    return CF_OK;
}

static void test_objects(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    uint64_t slot = new_token(s, "objs");
    uint64_t other = new_token(s, "other");
    cf_attr in[5];
    int64_t id1, id2, id3, id4;
    make_attrs(in, "one", "\x01");
    assert_int_equal(cf_store_obj_insert(s, slot, in, 5, dk1, &id1), CF_OK);
    make_attrs(in, "two", "\x01");
    assert_int_equal(cf_store_obj_insert(s, slot, in, 5, dk1, &id2), CF_OK);
    unsigned long cko_cert = 1;
    make_attrs(in, "one", "\x02");
    in[0].val = (uint8_t *)&cko_cert;
    assert_int_equal(cf_store_obj_insert(s, slot, in, 4, NULL, &id3), CF_OK);
    make_attrs(in, "one", "\x01");
    assert_int_equal(cf_store_obj_insert(s, other, in, 5, dk1, &id4), CF_OK);
    assert_true(id1 < id2 && id2 < id3 && id3 < id4);
    /* No such token; secret without key. */
    int64_t bad;
    assert_int_equal(cf_store_obj_insert(s, 77, in, 5, dk1, &bad), CF_E_SLOT_ID_INVALID);
    assert_int_equal(cf_store_obj_insert(s, slot, in, 5, NULL, &bad), CF_E_ARGS);

    /* Find. */
    int64_t *ids;
    size_t n;
    assert_int_equal(cf_store_obj_find(s, slot, (const uint8_t *)"\x01", 1, NULL, 0, -1, &ids, &n), CF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], id1);
    assert_int_equal(ids[1], id2);
    free(ids);
    assert_int_equal(cf_store_obj_find(s, slot, NULL, 0, (const uint8_t *)"one", 3, -1, &ids, &n), CF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], id1);
    assert_int_equal(ids[1], id3);
    free(ids);
    assert_int_equal(cf_store_obj_find(s, slot, NULL, 0, NULL, 0, 1, &ids, &n), CF_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id3);
    free(ids);
    assert_int_equal(cf_store_obj_find(s, slot, (const uint8_t *)"\x01", 1, (const uint8_t *)"one", 3, 4,
                                       &ids, &n), CF_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id1);
    free(ids);
    assert_int_equal(cf_store_obj_find(s, slot, NULL, 0, NULL, 0, -1, &ids, &n), CF_OK);
    assert_int_equal(n, 3);
    free(ids);
    /* An empty CKA_ID criterion matches an empty CKA_ID, not an absent one. */
    assert_int_equal(cf_store_obj_find(s, slot, (const uint8_t *)"", 0, NULL, 0, -1, &ids, &n), CF_OK);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(cf_store_obj_find(s, slot, (const uint8_t *)"\x09", 1, NULL, 0, -1, &ids, &n), CF_OK);
    assert_int_equal(n, 0);
    free(ids);

    /* Scan, in id order, with seq. */
    scan_ctx sc = { 0 };
    assert_int_equal(cf_store_obj_scan(s, slot, scan_cb, &sc), CF_OK);
    assert_int_equal(sc.n, 3);
    assert_int_equal(sc.ids[0], id1);
    assert_int_equal(sc.ids[2], id3);
    int64_t seq_before = sc.seqs[0];
    scan_ctx stop = { .stop_after = 1 };
    assert_int_equal(cf_store_obj_scan(s, slot, scan_cb, &stop), CF_E_CANT_LOCK);
    assert_int_equal(stop.n, 1);

    /* Load. */
    cf_attr *out;
    size_t on;
    int64_t seq;
    assert_int_equal(cf_store_obj_load(s, id1, &out, &on, &seq), CF_OK);
    assert_int_equal(seq, seq_before);
    assert_int_equal(on, 5);
    const cf_attr *lab = get(out, on, 0x3);
    assert_int_equal(lab->len, 3);
    assert_memory_equal(lab->val, "one", 3);

    /* Update public attributes without the key: the sealed value is kept as it is. */
    cf_attr *lab_w = (cf_attr *)lab;
    free(lab_w->val);
    lab_w->val = (uint8_t *)strdup("renamed");
    lab_w->len = 7;
    assert_int_equal(cf_store_obj_update(s, id1, out, on, NULL), CF_OK);
    cf_attrs_free(out, on);
    int64_t seq2;
    assert_int_equal(cf_store_obj_load(s, id1, &out, &on, &seq2), CF_OK);
    assert_true(seq2 > seq);
    assert_memory_equal(get(out, on, 0x3)->val, "renamed", 7);
    cf_attr *sec = (cf_attr *)get(out, on, 0x11);
    assert_int_equal(cf_store_attr_unseal(dk1, id1, sec), CF_OK);
    assert_memory_equal(sec->val, secret32, 32);
    /* Update with a plaintext secret: needs the key, then it is resealed. */
    assert_int_equal(cf_store_obj_update(s, id1, out, on, NULL), CF_E_ARGS);
    assert_int_equal(cf_store_obj_update(s, id1, out, on, dk1), CF_OK);
    cf_attrs_free(out, on);
    int64_t seq3;
    assert_int_equal(cf_store_obj_load(s, id1, &out, &on, &seq3), CF_OK);
    assert_true(seq3 > seq2);
    sec = (cf_attr *)get(out, on, 0x11);
    assert_int_equal(sec->flags, CF_ATTR_SECRET | CF_ATTR_SEALED);
    assert_int_equal(cf_store_attr_unseal(dk1, id1, sec), CF_OK);
    assert_memory_equal(sec->val, secret32, 32);
    cf_attrs_free(out, on);
    /* The finder follows the update. */
    assert_int_equal(cf_store_obj_find(s, slot, NULL, 0, (const uint8_t *)"renamed", 7, -1, &ids, &n), CF_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id1);
    free(ids);
    sc = (scan_ctx){ 0 };
    assert_int_equal(cf_store_obj_scan(s, slot, scan_cb, &sc), CF_OK);
    assert_int_equal(sc.seqs[0], seq3);

    /* Delete. */
    assert_int_equal(cf_store_obj_delete(s, id2), CF_OK);
    assert_int_equal(cf_store_obj_delete(s, id2), CF_E_NOT_FOUND);
    assert_int_equal(cf_store_obj_load(s, id2, &out, &on, NULL), CF_E_NOT_FOUND);
    make_attrs(in, "x", "y");
    assert_int_equal(cf_store_obj_update(s, id2, in, 4, NULL), CF_E_NOT_FOUND);
    sc = (scan_ctx){ 0 };
    assert_int_equal(cf_store_obj_scan(s, slot, scan_cb, &sc), CF_OK);
    assert_int_equal(sc.n, 2);
    /* A failed update wrote nothing. */
    assert_int_equal(cf_store_obj_update(s, id3, in, 5, NULL), CF_E_ARGS);
    assert_int_equal(cf_store_obj_load(s, id3, &out, &on, &seq), CF_OK);
    assert_int_equal(on, 4);
    cf_attrs_free(out, on);
    /* Ids are never reused. */
    int64_t id5;
    assert_int_equal(cf_store_obj_insert(s, slot, in, 4, NULL, &id5), CF_OK);
    assert_true(id5 > id4);
    cf_store_close(s);
}

static void test_changed(void **state)
{
    fixture *f = *state;
    cf_store *a = open_store(f);
    cf_store *b = open_store(f);
    bool ch;
    assert_int_equal(cf_store_changed(a, &ch), CF_OK);
    assert_false(ch);
    uint64_t slot = new_token(a, "t");
    assert_int_equal(cf_store_changed(a, &ch), CF_OK);
    assert_false(ch);   /* own writes do not count */
    assert_int_equal(cf_store_changed(b, &ch), CF_OK);
    assert_true(ch);
    assert_int_equal(cf_store_changed(b, &ch), CF_OK);
    assert_false(ch);
    cf_attr in[5];
    make_attrs(in, "x", "y");
    int64_t id;
    assert_int_equal(cf_store_obj_insert(b, slot, in, 5, dk1, &id), CF_OK);
    assert_int_equal(cf_store_changed(b, &ch), CF_OK);
    assert_false(ch);
    assert_int_equal(cf_store_changed(a, &ch), CF_OK);
    assert_true(ch);
    assert_int_equal(cf_store_changed(a, &ch), CF_OK);
    assert_false(ch);
    /* a sees b's object. */
    cf_attr *out;
    size_t n;
    assert_int_equal(cf_store_obj_load(a, id, &out, &n, NULL), CF_OK);
    cf_attrs_free(out, n);
    cf_store_close(a);
    cf_store_close(b);
}

#define PER_WORKER 200

typedef struct {
    cf_store *s;
    uint64_t slot;
    int tag;
    cf_err rv;
} worker;

static void *insert_worker(void *p)
{
    worker *w = p;
    char label[32];
    w->rv = CF_OK;
    for (int i = 0; i < PER_WORKER && w->rv == CF_OK; i++) {
        cf_attr in[5];
        snprintf(label, sizeof label, "w%d-%d", w->tag, i);
        make_attrs(in, label, "id");
        int64_t id;
        w->rv = cf_store_obj_insert(w->s, w->slot, in, 5, dk1, &id);
        if (w->rv == CF_OK && i % 10 == 0) {
            uint32_t fails;
            w->rv = cf_store_pin_result(w->s, w->slot, CF_PIN_USER, false, &fails);
        }
    }
    return NULL;
}

static void count_objects(fixture *f, uint64_t slot, size_t want, uint32_t want_fails)
{
    cf_store *s = open_store(f);
    scan_ctx sc = { 0 };
    assert_int_equal(cf_store_obj_scan(s, slot, scan_cb, &sc), CF_OK);
    assert_int_equal(sc.n, want);
    cf_store_token t;
    assert_int_equal(cf_store_token_get(s, slot, &t), CF_OK);
    assert_int_equal(t.fails[CF_PIN_USER], want_fails);
    cf_store_close(s);
}

/* Two threads on one shared handle, then two more with a handle each. */
static void test_threads(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    cf_store *s2 = open_store(f);
    uint64_t slot = new_token(s, "threads");
    worker w[4] = { { s, slot, 0, CF_OK }, { s, slot, 1, CF_OK }, { s, slot, 2, CF_OK },
                    { s2, slot, 3, CF_OK } };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, insert_worker, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rv, CF_OK);
    }
    cf_store_close(s);
    cf_store_close(s2);
    count_objects(f, slot, 4 * PER_WORKER, 4 * PER_WORKER / 10);
}

/* Two processes, each with its own connection: every insert and every failed PIN counts. */
static void test_processes(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    uint64_t slot = new_token(s, "procs");
    cf_store_close(s);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            cf_store *cs = NULL;
            char d[128];
            store_dir(f, d, sizeof d);
            if (cf_store_open(d, &cs) != CF_OK)
                _exit(2);
            worker w = { cs, slot, i, CF_OK };
            insert_worker(&w);
            cf_store_close(cs);
            _exit(w.rv == CF_OK ? 0 : 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        int st;
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    count_objects(f, slot, 2 * PER_WORKER, 2 * PER_WORKER / 10);
}

/* A database from a newer coffer (schema version above what this code knows) is refused. The
 * SQLite header keeps user_version as a big-endian u32 at offset 60. */
static void test_newer_schema(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    new_token(s, "t");
    cf_store_close(s);   /* last connection: the WAL is checkpointed into the file */
    char d[128], db[160];
    store_dir(f, d, sizeof d);
    snprintf(db, sizeof db, "%s/coffer.db", d);
    int fd = open(db, O_RDWR);
    assert_true(fd >= 0);
    uint8_t v[4];
    assert_int_equal(pread(fd, v, 4, 60), 4);
    uint8_t today = v[3];
    assert_int_equal(today, 3);   /* today's schema version: tokens + objects, TPM state, audit log */
    v[3] = 99;
    assert_int_equal(pwrite(fd, v, 4, 60), 4);
    close(fd);
    s = (cf_store *)0x1;
    assert_int_equal(cf_store_open(d, &s), CF_E_STORE);
    assert_null(s);
    /* Back to the known version, it opens again. */
    fd = open(db, O_RDWR);
    v[3] = today;
    assert_int_equal(pwrite(fd, v, 4, 60), 4);
    close(fd);
    s = open_store(f);
    cf_store_close(s);
}

/* TPM instance state: absent, written, replaced, kept across reopen, one row per name. */
static void test_tpm_state(void **state)
{
    fixture *f = *state;
    cf_store *s = open_store(f);
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(cf_store_tpm_get(s, "default", &b, &n), CF_E_NOT_FOUND);
    assert_int_equal(cf_store_tpm_put(s, "default", (const uint8_t *)"first", 5), CF_OK);
    assert_int_equal(cf_store_tpm_put(s, "vm1", (const uint8_t *)"other", 5), CF_OK);
    assert_int_equal(cf_store_tpm_put(s, "default", (const uint8_t *)"second!", 7), CF_OK);
    cf_store_close(s);
    s = open_store(f);
    assert_int_equal(cf_store_tpm_get(s, "default", &b, &n), CF_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(b, "second!", 7);
    free(b);
    assert_int_equal(cf_store_tpm_get(s, "vm1", &b, &n), CF_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(b, "other", 5);
    free(b);
    assert_int_equal(cf_store_tpm_put(s, "empty", NULL, 0), CF_OK);
    assert_int_equal(cf_store_tpm_get(s, "empty", &b, &n), CF_OK);
    assert_int_equal(n, 0);
    free(b);
    cf_store_close(s);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    cf_store *s;
    assert_int_equal(cf_store_open(NULL, &s), CF_E_ARGS);
    assert_int_equal(cf_store_open("", &s), CF_E_ARGS);
    /* A file where the directory should be. */
    char p[128];
    snprintf(p, sizeof p, "%s/file", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(cf_store_open(p, &s), CF_E_IO);
    /* A file that is not a database. */
    char d[128], db[160];
    snprintf(d, sizeof d, "%s/junk", f->dir);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(db, sizeof db, "%s/coffer.db", d);
    fp = fopen(db, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not an sqlite database. ", fp);
    fclose(fp);
    assert_int_equal(cf_store_open(d, &s), CF_E_STORE);
}

/* A second connection to the store in this process (cofferd has two: its own and the engine's)
 * must not drop the first one's file locks: a close() of any descriptor of a file drops every
 * POSIX lock the process holds on it. Without SQLite's shared lock on the database, another
 * process closing the store believes itself the last user, checkpoints and deletes the WAL, and
 * this process goes on writing into the deleted file: invisible to others, lost in a crash. A
 * child process asks the kernel whether a write lock on the database would conflict. */
static void test_second_connection_keeps_locks(void **state)
{
    fixture *f = *state;
    char d[128], db[160];
    store_dir(f, d, sizeof d);
    snprintf(db, sizeof db, "%s/coffer.db", d);
    cf_store *s1 = open_store(f);
    assert_int_equal(new_token(s1, "first"), 1);
    cf_store *s2 = open_store(f);
    assert_int_equal(new_token(s2, "second"), 2);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(db, O_RDWR | O_CLOEXEC);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0)
            _exit(2);
        _exit(fl.l_type == F_UNLCK ? 0 : 1);   /* 1: this process's lock is there */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    cf_store_close(s2);
    cf_store_close(s1);
}

int main(void)
{
    /* The error-path tests log on purpose; keep the output for real failures quiet. */
    if (!getenv("COFFER_LOG"))
        setenv("COFFER_LOG", "error", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcm_kat),
        cmocka_unit_test(test_random_ct_equal),
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_encode_rejects),
        cmocka_unit_test(test_record_truncations),
        cmocka_unit_test(test_record_decode_rejects),
        cmocka_unit_test(test_unseal_failures),
        cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_connection_keeps_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tpm_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
