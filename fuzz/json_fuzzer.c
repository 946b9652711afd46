/*
 * json_fuzzer.c - fuzzes the JSON record parser (libshard/json.h).
 *
 * For each input the harness checks, and aborts when one fails:
 *   1. A failure is SHARD_EINPUT with an error kind and a one-line message
 *      ("invalid JSON: ...") or SHARD_ENOMEM; a success clears both.
 *   2. The padding's content does not matter: parsing again with other
 *      bytes in the padding gives the same result and the same tree.
 *   3. Values outlive their input: the tree reads the same after the input
 *      buffer has been overwritten.
 *   4. Every accessor agrees with shard_json_typeof on every value; strings
 *      and keys are valid UTF-8; shard_json_size equals the number of
 *      elements iteration yields; shard_json_get finds the first member
 *      with a key and nothing for a key that cannot occur.
 *   5. The tree written back out as JSON parses to the same tree.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checked members per object for the first-duplicate-wins lookup check. */
#define LOOKUP_CHECKS 16

/* JSON text being written; failed is set when it could not grow. */
struct text {
    char *buf;
    size_t len, cap;
    int failed;
};

static void text_put(struct text *t, const char *s, size_t n)
{
    if (!t || t->failed)
        return;
    if (t->len + n + SHARD_JSON_PADDING > t->cap) {
        size_t cap = (t->len + n + SHARD_JSON_PADDING) * 2;
        char *grown = realloc(t->buf, cap);

        if (!grown) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void text_str(struct text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

/* Writes s as a JSON string literal. */
static void text_quoted(struct text *t, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    text_put(t, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

        if (c == '"' || c == '\\') {
            text_put(t, "\\", 1);
            text_put(t, s + i, 1);
        } else if (c < 0x20) {
            text_put(t, esc, 6);
        } else {
            text_put(t, s + i, 1);
        }
    }
    text_put(t, "\"", 1);
}

/*
 * What identifies a value without walking it: the same value read twice
 * gives the same summary (strings by address, since a value's string is
 * stored once).
 */
struct summary {
    shard_json_type type;
    size_t size;
    const char *s;
    size_t slen;
    uint64_t bits;
};

static struct summary summarize(shard_json_value v)
{
    struct summary m;
    double d;
    int b;

    memset(&m, 0, sizeof(m));
    m.type = shard_json_typeof(v);
    m.size = shard_json_size(v);
    shard_json_get_string(v, &m.s, &m.slen);
    if (shard_json_get_double(v, &d))
        memcpy(&m.bits, &d, sizeof(d));
    if (shard_json_get_bool(v, &b))
        m.bits = (uint64_t)b;
    return m;
}

static int same(struct summary a, struct summary b)
{
    return a.type == b.type && a.size == b.size && a.s == b.s &&
           a.slen == b.slen && a.bits == b.bits;
}

static uint64_t walk(shard_json_value v, struct text *out);

/* Checks the accessors that must refuse v, given its type. */
static void check_refusals(shard_json_value v, shard_json_type t)
{
    shard_json_value other;
    shard_json_iter it;
    const char *s;
    size_t len;
    int b;
    int64_t i;
    double d;

    REQUIRE(shard_json_get_string(v, &s, &len) == (t == SHARD_JSON_STRING));
    REQUIRE(shard_json_get_bool(v, &b) == (t == SHARD_JSON_BOOL));
    REQUIRE(shard_json_get_int64(v, &i) == (t == SHARD_JSON_INT));
    REQUIRE(shard_json_get_double(v, &d) ==
            (t == SHARD_JSON_INT || t == SHARD_JSON_UINT ||
             t == SHARD_JSON_DOUBLE));
    REQUIRE(shard_json_array_iter(v, &it) == (t == SHARD_JSON_ARRAY));
    REQUIRE(shard_json_object_iter(v, &it) == (t == SHARD_JSON_OBJECT));
    if (t != SHARD_JSON_OBJECT)
        REQUIRE(!shard_json_get(v, "", 0, &other));
    if (t != SHARD_JSON_ARRAY && t != SHARD_JSON_OBJECT)
        REQUIRE(shard_json_size(v) == 0);
}

/*
 * Writes a number so that it reads back with the same type and value.
 * A UINT is only reachable through its double, which is an integer in
 * [2^63, 2^64]; it is hashed by that double and written as the uint64 that
 * rounds to it.
 */
static uint64_t walk_number(shard_json_value v, shard_json_type t,
                            struct text *out, uint64_t h)
{
    char num[64];
    int64_t i;
    double d;

    REQUIRE(shard_json_get_double(v, &d));
    REQUIRE(isfinite(d));
    if (t == SHARD_JSON_INT) {
        REQUIRE(shard_json_get_int64(v, &i));
        REQUIRE(d == (double)i);
        snprintf(num, sizeof(num), "%lld", (long long)i);
        h = mix_u64(h, (uint64_t)i);
    } else if (t == SHARD_JSON_UINT) {
        REQUIRE(d >= 9223372036854775808.0 && d <= 18446744073709551616.0);
        snprintf(num, sizeof(num), "%llu",
                 d < 18446744073709551616.0 ? (unsigned long long)d
                                            : 18446744073709551615ull);
        h = mix(h, &d, sizeof(d));
    } else {
        snprintf(num, sizeof(num), "%.17g", d);
        if (!strpbrk(num, ".e"))
            strcat(num, ".0");
        h = mix(h, &d, sizeof(d));
    }
    text_str(out, num);
    return h;
}

static uint64_t walk_array(shard_json_value v, struct text *out, uint64_t h)
{
    shard_json_iter it;
    shard_json_value child;
    size_t n = 0;

    REQUIRE(shard_json_array_iter(v, &it));
    text_put(out, "[", 1);
    while (shard_json_array_next(&it, &child)) {
        if (n++ > 0)
            text_put(out, ",", 1);
        h = mix_u64(h, walk(child, out));
    }
    text_put(out, "]", 1);
    REQUIRE(!shard_json_array_next(&it, &child));
    REQUIRE(shard_json_size(v) == n);
    return mix_u64(h, n);
}

/* Member j must be found by its key unless an earlier one shares it. */
static void check_lookup(shard_json_value obj, size_t j, const char *key,
                         size_t keylen)
{
    shard_json_iter it;
    shard_json_value found, first;
    const char *k;
    size_t klen;

    REQUIRE(shard_json_object_iter(obj, &it));
    for (size_t i = 0; i <= j; i++) {
        REQUIRE(shard_json_object_next(&it, &k, &klen, &first));
        if (klen == keylen && memcmp(k, key, keylen) == 0)
            break;
    }
    REQUIRE(shard_json_get(obj, key, keylen, &found));
    REQUIRE(same(summarize(found), summarize(first)));
}

static uint64_t walk_object(shard_json_value v, struct text *out,
                            uint64_t h)
{
    shard_json_iter it;
    shard_json_value child;
    const char *key;
    size_t keylen, n = 0;

    REQUIRE(shard_json_object_iter(v, &it));
    text_put(out, "{", 1);
    while (shard_json_object_next(&it, &key, &keylen, &child)) {
        REQUIRE(utf8_valid(key, keylen));
        if (n < LOOKUP_CHECKS)
            check_lookup(v, n, key, keylen);
        if (n++ > 0)
            text_put(out, ",", 1);
        text_quoted(out, key, keylen);
        text_put(out, ":", 1);
        h = mix_u64(mix(h, key, keylen), keylen);
        h = mix_u64(h, walk(child, out));
    }
    text_put(out, "}", 1);
    REQUIRE(!shard_json_object_next(&it, &key, &keylen, &child));
    REQUIRE(shard_json_size(v) == n);

    /* No key can hold invalid UTF-8. */
    REQUIRE(!shard_json_get(v, "\xff", 1, &child));
    return mix_u64(h, n);
}

/* Checks v and everything below it; returns a hash of the subtree. */
static uint64_t walk(shard_json_value v, struct text *out)
{
    shard_json_type t = shard_json_typeof(v);
    uint64_t h = mix_u64(0xcbf29ce484222325ull, (uint64_t)t);
    const char *s;
    size_t len;
    int b;

    check_refusals(v, t);
    switch (t) {
    case SHARD_JSON_NULL:
        text_str(out, "null");
        return h;
    case SHARD_JSON_BOOL:
        REQUIRE(shard_json_get_bool(v, &b));
        REQUIRE(b == 0 || b == 1);
        text_str(out, b ? "true" : "false");
        return mix_u64(h, (uint64_t)b);
    case SHARD_JSON_INT:
    case SHARD_JSON_UINT:
    case SHARD_JSON_DOUBLE:
        return walk_number(v, t, out, h);
    case SHARD_JSON_STRING:
        REQUIRE(shard_json_get_string(v, &s, &len));
        REQUIRE(utf8_valid(s, len));
        text_quoted(out, s, len);
        return mix_u64(mix(h, s, len), len);
    case SHARD_JSON_ARRAY:
        return walk_array(v, out, h);
    case SHARD_JSON_OBJECT:
        return walk_object(v, out, h);
    }
    abort();
}

static void check_failure(shard_json_parser *p, int rc)
{
    const char *msg = shard_json_errmsg(p);

    REQUIRE(rc == SHARD_EINPUT || rc == SHARD_ENOMEM);
    REQUIRE(strlen(msg) > 0 && strlen(msg) < SHARD_ERRMAX);
    REQUIRE(!strchr(msg, '\n'));
    if (rc == SHARD_ENOMEM) {
        REQUIRE(shard_json_last_error(p) == SHARD_JSON_ERR_NONE);
        return;
    }
    REQUIRE(shard_json_last_error(p) > SHARD_JSON_ERR_NONE &&
            shard_json_last_error(p) <= SHARD_JSON_ERR_EMPTY);
    REQUIRE(strncmp(msg, "invalid JSON: ", 14) == 0);
}

/* Parses the written-out tree and requires the same hash. */
static void check_round_trip(shard_json_parser *p, struct text *t,
                             uint64_t want)
{
    shard_json_value root;

    if (t->failed)
        return;
    memset(t->buf + t->len, 0, SHARD_JSON_PADDING);
    REQUIRE(shard_json_parse(p, t->buf, t->len, &root) == SHARD_OK);
    REQUIRE(walk(root, NULL) == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static shard_json_parser *p, *again;
    char *buf = malloc(size + SHARD_JSON_PADDING);
    char msg[SHARD_ERRMAX];
    struct text canon = {NULL, 0, 0, 0};
    shard_json_value root;
    shard_json_error kind;
    uint64_t h = 0;
    int rc;

    if (!buf)
        return 0;
    if (!p && shard_json_parser_new(&p) != SHARD_OK)
        abort();
    if (!again && shard_json_parser_new(&again) != SHARD_OK)
        abort();
    memcpy(buf, data, size);
    memset(buf + size, 0, SHARD_JSON_PADDING);

    rc = shard_json_parse(p, buf, size, &root);
    if (rc == SHARD_OK) {
        REQUIRE(shard_json_last_error(p) == SHARD_JSON_ERR_NONE);
        REQUIRE(shard_json_errmsg(p)[0] == '\0');
        h = walk(root, NULL);
    } else {
        check_failure(p, rc);
    }
    kind = shard_json_last_error(p);
    memcpy(msg, shard_json_errmsg(p), SHARD_ERRMAX);

    /* Bytes that would end a string, an escape or a container. */
    for (size_t i = 0; i < SHARD_JSON_PADDING; i++)
        buf[size + i] = "\"\\]}1"[i % 5];
    REQUIRE(shard_json_parse(p, buf, size, &root) == rc);
    REQUIRE(shard_json_last_error(p) == kind);
    REQUIRE(strcmp(shard_json_errmsg(p), msg) == 0);
    if (rc == SHARD_OK) {
        memset(buf, 0xA5, size + SHARD_JSON_PADDING);
        REQUIRE(walk(root, &canon) == h);
        check_round_trip(again, &canon, h);
    }

    free(canon.buf);
    free(buf);
    return 0;
}
