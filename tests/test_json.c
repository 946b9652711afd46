/*
 * test_json.c - tests for the C interface over simdjson (libshard/json.h).
 */
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "json.h"
#include "test.h"

/*
 * One parser shared by the cases that do not test parser lifetime; it is
 * also the "reuse over many documents" case spread across the whole file.
 */
static shard_json_parser *shared_parser;

static shard_json_parser *parser(void)
{
    if (!shared_parser && shard_json_parser_new(&shared_parser) != SHARD_OK)
        FAILF("shard_json_parser_new failed");
    return shared_parser;
}

/*
 * Parses len bytes of s from a fresh heap copy followed by the padding, and
 * frees the copy before returning: values must not point into the input.
 */
static int parse_n(shard_json_parser *p, const char *s, size_t len,
                   shard_json_value *root)
{
    char *buf = malloc(len + SHARD_JSON_PADDING);
    int rc;

    if (!buf)
        FAILF("out of memory");
    memcpy(buf, s, len);
    memset(buf + len, 'x', SHARD_JSON_PADDING);
    rc = shard_json_parse(p, buf, len, root);
    memset(buf, '?', len);
    free(buf);
    return rc;
}

/* Parses a NUL-terminated document that must be valid. */
static shard_json_value parse_ok(const char *s)
{
    shard_json_value root;
    int rc = parse_n(parser(), s, strlen(s), &root);

    if (rc != SHARD_OK)
        FAILF("parse of %s failed (%d): %s", s, rc,
              shard_json_errmsg(parser()));
    return root;
}

/* Parses a document that must fail; returns the error kind. */
static shard_json_error parse_bad(const char *s, size_t len)
{
    shard_json_value root;
    int rc = parse_n(parser(), s, len, &root);

    if (rc != SHARD_EINPUT)
        FAILF("parse of %.*s returned %d, expected SHARD_EINPUT",
              (int)(len > 60 ? 60 : len), s, rc);
    return shard_json_last_error(parser());
}

static shard_json_value member(shard_json_value obj, const char *key)
{
    shard_json_value v;

    if (!shard_json_get(obj, key, strlen(key), &v))
        FAILF("key \"%s\" missing", key);
    return v;
}

static int str_is(shard_json_value v, const char *want, size_t wantlen)
{
    const char *s;
    size_t len;

    return shard_json_get_string(v, &s, &len) && len == wantlen &&
           memcmp(s, want, len) == 0;
}

/* A string made of n copies of unit followed by tail. */
static char *repeat(const char *unit, size_t n, const char *tail,
                    size_t *outlen)
{
    size_t ulen = strlen(unit), tlen = strlen(tail);
    char *s = malloc(ulen * n + tlen + 1);

    if (!s)
        FAILF("out of memory");
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ulen, unit, ulen);
    memcpy(s + ulen * n, tail, tlen + 1);
    *outlen = ulen * n + tlen;
    return s;
}

TEST(object_members)
{
    shard_json_value root = parse_ok(
        "{\"prompt\": \"hi\", \"label\": \"pos\", \"score\": 3}");
    shard_json_value v;
    const char *s;
    size_t len;
    int64_t i;

    CHECK_EQ_INT(shard_json_typeof(root), SHARD_JSON_OBJECT);
    CHECK_EQ_INT(shard_json_size(root), 3);
    CHECK(str_is(member(root, "prompt"), "hi", 2));
    CHECK(str_is(member(root, "label"), "pos", 3));
    CHECK(shard_json_get_int64(member(root, "score"), &i));
    CHECK_EQ_INT(i, 3);

    /* Keys match on all their bytes, not on a prefix. */
    CHECK(!shard_json_get(root, "prom", 4, &v));
    CHECK(!shard_json_get(root, "prompts", 7, &v));
    CHECK(shard_json_get(root, "prompts", 6, &v));
    CHECK(shard_json_get_string(v, &s, &len));
    CHECK_EQ_INT(len, 2);
}

TEST(missing_keys)
{
    shard_json_value root = parse_ok("{\"a\": null, \"b\": {}}");
    shard_json_value v, sentinel = root;

    v = sentinel;
    CHECK(!shard_json_get(root, "c", 1, &v));
    CHECK(memcmp(&v, &sentinel, sizeof(v)) == 0);
    CHECK(!shard_json_get(root, "", 0, &v));
    CHECK(!shard_json_get(root, "A", 1, &v));

    /* Present with a null value is not missing. */
    CHECK(shard_json_get(root, "a", 1, &v));
    CHECK_EQ_INT(shard_json_typeof(v), SHARD_JSON_NULL);

    /* Lookups in non-objects find nothing. */
    CHECK(!shard_json_get(member(root, "b"), "a", 1, &v));
    CHECK(!shard_json_get(member(root, "a"), "a", 1, &v));
    CHECK(!shard_json_get(parse_ok("[\"a\"]"), "a", 1, &v));
    CHECK(!shard_json_get(parse_ok("\"a\""), "a", 1, &v));
}

TEST(empty_and_nul_keys)
{
    shard_json_value root = parse_ok("{\"\": 1, \"a\\u0000b\": 2, \"a\": 3}");
    shard_json_value v;
    int64_t i;

    CHECK(shard_json_get(root, "", 0, &v));
    CHECK(shard_json_get_int64(v, &i));
    CHECK_EQ_INT(i, 1);
    CHECK(shard_json_get(root, "a\0b", 3, &v));
    CHECK(shard_json_get_int64(v, &i));
    CHECK_EQ_INT(i, 2);
    CHECK(shard_json_get(root, "a", 1, &v));
    CHECK(shard_json_get_int64(v, &i));
    CHECK_EQ_INT(i, 3);
}

TEST(every_type_and_wrong_accessors)
{
    static const struct {
        const char *key;
        shard_json_type type;
    } want[] = {
        {"n", SHARD_JSON_NULL},   {"t", SHARD_JSON_BOOL},
        {"f", SHARD_JSON_BOOL},   {"i", SHARD_JSON_INT},
        {"u", SHARD_JSON_UINT},   {"d", SHARD_JSON_DOUBLE},
        {"s", SHARD_JSON_STRING}, {"a", SHARD_JSON_ARRAY},
        {"o", SHARD_JSON_OBJECT},
    };
    shard_json_value root = parse_ok(
        "{\"n\":null,\"t\":true,\"f\":false,\"i\":-7,"
        "\"u\":18446744073709551615,\"d\":0.25,\"s\":\"x\","
        "\"a\":[1],\"o\":{\"k\":1}}");
    int b = -1;

    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        shard_json_value v = member(root, want[k].key);
        shard_json_type t = shard_json_typeof(v);
        const char *s;
        size_t len;
        int64_t i;
        double d;
        shard_json_iter it;
        int numeric = t == SHARD_JSON_INT || t == SHARD_JSON_UINT ||
                      t == SHARD_JSON_DOUBLE;

        if (t != want[k].type)
            FAILF("\"%s\" has type %d, expected %d", want[k].key, (int)t,
                  (int)want[k].type);
        CHECK_EQ_INT(shard_json_get_string(v, &s, &len),
                     t == SHARD_JSON_STRING);
        CHECK_EQ_INT(shard_json_get_bool(v, &b), t == SHARD_JSON_BOOL);
        CHECK_EQ_INT(shard_json_get_int64(v, &i), t == SHARD_JSON_INT);
        CHECK_EQ_INT(shard_json_get_double(v, &d), numeric);
        CHECK_EQ_INT(shard_json_array_iter(v, &it), t == SHARD_JSON_ARRAY);
        CHECK_EQ_INT(shard_json_object_iter(v, &it), t == SHARD_JSON_OBJECT);
        CHECK_EQ_INT(shard_json_size(v), t == SHARD_JSON_ARRAY ||
                                             t == SHARD_JSON_OBJECT);
    }

    CHECK(shard_json_get_bool(member(root, "t"), &b));
    CHECK_EQ_INT(b, 1);
    CHECK(shard_json_get_bool(member(root, "f"), &b));
    CHECK_EQ_INT(b, 0);
}

TEST(scalar_documents)
{
    int b;
    double d;

    CHECK_EQ_INT(shard_json_typeof(parse_ok("null")), SHARD_JSON_NULL);
    CHECK(shard_json_get_bool(parse_ok(" true "), &b) && b == 1);
    CHECK(str_is(parse_ok("\"\""), "", 0));
    CHECK(shard_json_get_double(parse_ok("\n-1.5e1\t"), &d) && d == -15.0);
}

TEST(nested_arrays)
{
    shard_json_value root = parse_ok("[[1, [2, [3, []]]], [], [[[]]]]");
    shard_json_iter it, inner;
    shard_json_value v, w;
    int64_t i;

    CHECK_EQ_INT(shard_json_size(root), 3);
    CHECK(shard_json_array_iter(root, &it));
    CHECK(shard_json_array_next(&it, &v));
    CHECK_EQ_INT(shard_json_size(v), 2);

    /* Walk down the first element: 1, then [2, [3, []]], and so on. */
    for (int64_t want = 1; want <= 3; want++) {
        CHECK(shard_json_array_iter(v, &inner));
        CHECK(shard_json_array_next(&inner, &w));
        CHECK(shard_json_get_int64(w, &i));
        CHECK_EQ_INT(i, want);
        CHECK(shard_json_array_next(&inner, &v));
        CHECK_EQ_INT(shard_json_typeof(v), SHARD_JSON_ARRAY);
        CHECK(!shard_json_array_next(&inner, &w));
    }
    CHECK_EQ_INT(shard_json_size(v), 0);

    CHECK(shard_json_array_next(&it, &v));
    CHECK_EQ_INT(shard_json_size(v), 0);
    CHECK(shard_json_array_iter(v, &inner));
    CHECK(!shard_json_array_next(&inner, &w));
    CHECK(shard_json_array_next(&it, &v));
    CHECK_EQ_INT(shard_json_size(v), 1);
    CHECK(!shard_json_array_next(&it, &v));
}

TEST(iteration_order)
{
    shard_json_value root = parse_ok(
        "{\"z\": 0, \"a\": 1, \"m\": [\"x\", \"y\", \"z\"], \"b\": 3}");
    static const char *const keys[] = {"z", "a", "m", "b"};
    shard_json_iter it, copy;
    const char *key;
    size_t keylen, n = 0;
    shard_json_value v;

    CHECK(shard_json_object_iter(root, &it));
    while (shard_json_object_next(&it, &key, &keylen, &v)) {
        CHECK(n < 4);
        CHECK(keylen == 1 && key[0] == keys[n][0]);
        if (n == 2)
            CHECK_EQ_INT(shard_json_typeof(v), SHARD_JSON_ARRAY);
        n++;
    }
    CHECK_EQ_INT(n, 4);
    /* An exhausted cursor stays exhausted. */
    CHECK(!shard_json_object_next(&it, &key, &keylen, &v));

    /* Cursors are values: a copy resumes where the original was. */
    CHECK(shard_json_array_iter(member(root, "m"), &it));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "x", 1));
    copy = it;
    CHECK(shard_json_array_next(&it, &v) && str_is(v, "y", 1));
    CHECK(shard_json_array_next(&it, &v) && str_is(v, "z", 1));
    CHECK(!shard_json_array_next(&it, &v));
    CHECK(!shard_json_array_next(&it, &v));
    CHECK(shard_json_array_next(&copy, &v) && str_is(v, "y", 1));
}

TEST(duplicate_keys)
{
    shard_json_value root = parse_ok("{\"a\": 1, \"b\": 2, \"a\": 3}");
    shard_json_iter it;
    const char *key;
    size_t keylen, seen = 0;
    shard_json_value v;
    int64_t i, sum = 0;

    CHECK(shard_json_get_int64(member(root, "a"), &i));
    CHECK_EQ_INT(i, 1);
    CHECK_EQ_INT(shard_json_size(root), 3);
    CHECK(shard_json_object_iter(root, &it));
    while (shard_json_object_next(&it, &key, &keylen, &v)) {
        CHECK(shard_json_get_int64(v, &i));
        sum += i;
        seen++;
    }
    CHECK_EQ_INT(seen, 3);
    CHECK_EQ_INT(sum, 6);
}

TEST(string_escapes)
{
    shard_json_value root =
        parse_ok("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"a\\u0000b\\u0000\", "
                 "\"\\u0041\\u00e9\\u20AC\", \"caf\xc3\xa9 \xe2\x82\xac\", "
                 "\"\\u0000\"]");
    shard_json_iter it;
    shard_json_value v;

    CHECK(shard_json_array_iter(root, &it));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "\"\\/\b\f\n\r\t", 8));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "a\0b\0", 4));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "A\xc3\xa9\xe2\x82\xac", 6));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "caf\xc3\xa9 \xe2\x82\xac", 9));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "\0", 1));
}

TEST(surrogate_pairs)
{
    shard_json_value root = parse_ok(
        "[\"\\ud83d\\ude00\", \"\\uD800\\uDC00\", \"\\udbff\\udfff\", "
        "\"x\\ud834\\udd1ey\"]");
    shard_json_iter it;
    shard_json_value v;

    CHECK(shard_json_array_iter(root, &it));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "\xf0\x9f\x98\x80", 4));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "\xf0\x90\x80\x80", 4));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "\xf4\x8f\xbf\xbf", 4));
    CHECK(shard_json_array_next(&it, &v));
    CHECK(str_is(v, "x\xf0\x9d\x84\x9ey", 6));
}

TEST(integers)
{
    static const struct {
        const char *text;
        int64_t value;
    } ints[] = {
        {"0", 0},
        {"-0", 0},
        {"42", 42},
        {"-42", -42},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
    };
    int64_t i;
    double d;

    for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
        shard_json_value v = parse_ok(ints[k].text);

        if (shard_json_typeof(v) != SHARD_JSON_INT)
            FAILF("%s is not SHARD_JSON_INT", ints[k].text);
        CHECK(shard_json_get_int64(v, &i));
        CHECK(i == ints[k].value);
        CHECK(shard_json_get_double(v, &d));
        CHECK(d == (double)ints[k].value);
    }
}

TEST(unsigned_integers)
{
    shard_json_value v = parse_ok("9223372036854775808");
    int64_t i;
    double d;

    CHECK_EQ_INT(shard_json_typeof(v), SHARD_JSON_UINT);
    CHECK(!shard_json_get_int64(v, &i));
    CHECK(shard_json_get_double(v, &d));
    CHECK(d == 9223372036854775808.0);

    v = parse_ok("18446744073709551615");
    CHECK_EQ_INT(shard_json_typeof(v), SHARD_JSON_UINT);
    CHECK(!shard_json_get_int64(v, &i));
    CHECK(shard_json_get_double(v, &d));
    CHECK(d == 18446744073709551615.0);
}

TEST(doubles)
{
    static const struct {
        const char *text;
        double value;
    } dbl[] = {
        {"1.5", 1.5},
        {"1e2", 100.0},
        {"1.0", 1.0},
        {"-2.5E-3", -2.5e-3},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"5e-324", 5e-324},
        {"1e-400", 0.0},
        {"0.1", 0.1},
        {"9223372036854775808.0", 9223372036854775808.0},
    };
    int64_t i;
    double d;

    for (size_t k = 0; k < sizeof(dbl) / sizeof(dbl[0]); k++) {
        shard_json_value v = parse_ok(dbl[k].text);

        if (shard_json_typeof(v) != SHARD_JSON_DOUBLE)
            FAILF("%s is not SHARD_JSON_DOUBLE", dbl[k].text);
        CHECK(!shard_json_get_int64(v, &i));
        CHECK(shard_json_get_double(v, &d));
        if (d != dbl[k].value)
            FAILF("%s read as %.17g", dbl[k].text, d);
    }

    CHECK(shard_json_get_double(parse_ok("-0.0"), &d));
    CHECK(d == 0.0 && signbit(d));
    CHECK(shard_json_get_double(parse_ok("-0e0"), &d));
    CHECK(d == 0.0 && signbit(d));
}

static void check_message(const char *what)
{
    const char *msg = shard_json_errmsg(parser());
    const char *prefix = "invalid JSON: ";

    if (strncmp(msg, prefix, strlen(prefix)) != 0)
        FAILF("%s: message \"%s\" lacks the prefix", what, msg);
    if (strchr(msg, '\n') || !msg[strlen(prefix)])
        FAILF("%s: message \"%s\" is not one line", what, msg);
    if (msg[strlen(prefix)] >= 'A' && msg[strlen(prefix)] <= 'Z')
        FAILF("%s: message \"%s\" is capitalised", what, msg);
}

#define EXPECT_ERROR(doc, kind)                                             \
    do {                                                                    \
        shard_json_error got_ = parse_bad(doc, sizeof(doc) - 1);            \
        if (got_ != (kind))                                                 \
            FAILF("%s gave error kind %d (%s), expected %s", #doc,          \
                  (int)got_, shard_json_errmsg(parser()), #kind);           \
        check_message(#doc);                                                \
    } while (0)

TEST(errors_syntax)
{
    EXPECT_ERROR("[1, 2", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("{\"a\":", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("{\"a\"", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\"abc", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("[1,]", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("{'a': 1}", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("tru", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("nul", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\"a\tb\"", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\"\\q\"", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\"\\u12G4\"", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\"\\u12\"", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\0", SHARD_JSON_ERR_SYNTAX);
    CHECK_EQ_STR(shard_json_errmsg(parser()),
                 "invalid JSON: the JSON document has an improper "
                 "structure: missing or superfluous commas, braces, "
                 "missing keys, etc.");
}

TEST(errors_trailing_garbage)
{
    EXPECT_ERROR("[] x", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("1 2", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("{}}", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("{} {}", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("\"a\"\"b\"", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("null,", SHARD_JSON_ERR_SYNTAX);
}

TEST(errors_utf8_bytes)
{
    EXPECT_ERROR("\"\xff\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\xc0\xaf\"", SHARD_JSON_ERR_UTF8);     /* overlong */
    EXPECT_ERROR("\"\xed\xa0\x80\"", SHARD_JSON_ERR_UTF8); /* surrogate */
    EXPECT_ERROR("\"\xe2\x82\"", SHARD_JSON_ERR_UTF8);     /* truncated */
    EXPECT_ERROR("\"\xf4\x90\x80\x80\"", SHARD_JSON_ERR_UTF8); /* >10FFFF */
    EXPECT_ERROR("[1, \x80]", SHARD_JSON_ERR_UTF8);
    CHECK_EQ_STR(shard_json_errmsg(parser()),
                 "invalid JSON: the input is not valid UTF-8");
}

TEST(errors_lone_surrogates)
{
    EXPECT_ERROR("\"\\ud800\"", SHARD_JSON_ERR_UTF8);
    CHECK_EQ_STR(shard_json_errmsg(parser()),
                 "invalid JSON: unpaired UTF-16 surrogate \\ud800 at byte 1");
    EXPECT_ERROR("\"\\udc00\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\\uDFFF\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\\ud800x\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\\ud800\\u0041\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\\ud800\\ud800\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\\ud800\\n\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("\"\\udc00\\ud800\"", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("{\"\\ud83d\": 1}", SHARD_JSON_ERR_UTF8);
    EXPECT_ERROR("[\"ok \\\\ud800\", \"\\ude00\"]", SHARD_JSON_ERR_UTF8);
    CHECK_EQ_STR(shard_json_errmsg(parser()),
                 "invalid JSON: unpaired UTF-16 surrogate \\ude00 at byte "
                 "16");

    /* The first bad escape decides: here it is malformed, not a surrogate. */
    EXPECT_ERROR("[\"\\x\", \"\\ud800\"]", SHARD_JSON_ERR_SYNTAX);
    /* An escaped backslash before "ud800" is not an escape at all. */
    EXPECT_ERROR("[\"\\\\ud800\", \"\\q\"]", SHARD_JSON_ERR_SYNTAX);
}

TEST(errors_depth)
{
    size_t len;
    char *open = repeat("[", 100000, "", &len);
    char *doc = malloc(2 * len + SHARD_JSON_PADDING);
    shard_json_value root;

    CHECK(doc);
    memcpy(doc, open, len);
    memset(doc + len, ']', len);
    free(open);
    CHECK_EQ_INT(shard_json_parse(parser(), doc, 2 * len, &root),
                 SHARD_EINPUT);
    CHECK_EQ_INT(shard_json_last_error(parser()), SHARD_JSON_ERR_DEPTH);
    check_message("depth 100000");

    /*
     * Only the opening brackets: simdjson sees the imbalance before the
     * depth, so this counts as a truncated document.
     */
    CHECK_EQ_INT(shard_json_parse(parser(), doc, len, &root), SHARD_EINPUT);
    CHECK_EQ_INT(shard_json_last_error(parser()), SHARD_JSON_ERR_SYNTAX);

    /* The documented limit: 1024 levels parse, 1025 do not. */
    memset(doc + 1024, ']', 1024);
    CHECK_EQ_INT(shard_json_parse(parser(), doc, 2048, &root), SHARD_OK);
    CHECK_EQ_INT(shard_json_typeof(root), SHARD_JSON_ARRAY);
    memset(doc + 1024, '[', 1);
    memset(doc + 1025, ']', 1025);
    CHECK_EQ_INT(shard_json_parse(parser(), doc, 2050, &root), SHARD_EINPUT);
    CHECK_EQ_INT(shard_json_last_error(parser()), SHARD_JSON_ERR_DEPTH);
    free(doc);
}

TEST(errors_numbers)
{
    EXPECT_ERROR("1e400", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("-1e400", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("18446744073709551616", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("-9223372036854775809", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("123456789012345678901234567890", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("01", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("1.", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("[-]", SHARD_JSON_ERR_NUMBER);
    EXPECT_ERROR("+1", SHARD_JSON_ERR_SYNTAX);
    EXPECT_ERROR("{\"n\": .5}", SHARD_JSON_ERR_SYNTAX);
}

TEST(errors_empty)
{
    char buf[3 + SHARD_JSON_PADDING] = "[1]";
    shard_json_value root;

    EXPECT_ERROR("", SHARD_JSON_ERR_EMPTY);
    CHECK_EQ_STR(shard_json_errmsg(parser()),
                 "invalid JSON: empty: no JSON found");
    EXPECT_ERROR(" \t\r\n ", SHARD_JSON_ERR_EMPTY);

    /* A success clears the previous failure. */
    parse_ok("{}");
    CHECK_EQ_INT(shard_json_last_error(parser()), SHARD_JSON_ERR_NONE);
    CHECK_EQ_STR(shard_json_errmsg(parser()), "");

    /* Length 0 means nothing, whatever the padding holds. */
    CHECK_EQ_INT(shard_json_parse(parser(), buf, 0, &root), SHARD_EINPUT);
    CHECK_EQ_INT(shard_json_last_error(parser()), SHARD_JSON_ERR_EMPTY);
}

/* The document [{"i":0},{"i":1},...] with n objects; *len gets its size. */
static char *numbered_doc(size_t n, size_t *len)
{
    char *s = malloc(n * 32 + 16);
    size_t at = 0;

    if (!s)
        FAILF("out of memory");
    s[at++] = '[';
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(s + at, "%s{\"i\":%zu}", i ? "," : "", i);
    s[at++] = ']';
    *len = at;
    return s;
}

TEST(parser_reuse)
{
    shard_json_parser *p;
    static const size_t sizes[] = {1, 100000, 3, 0, 250000, 10, 2};
    shard_json_value root, v;

    CHECK_EQ_INT(shard_json_parser_new(&p), SHARD_OK);
    for (int round = 0; round < 200; round++) {
        size_t n = sizes[round % 7], len;
        char *doc = numbered_doc(n, &len);
        int64_t i;

        CHECK_EQ_INT(parse_n(p, doc, len, &root), SHARD_OK);
        CHECK_EQ_INT(shard_json_size(root), n);
        if (n > 0) {
            shard_json_iter it;
            size_t k = 0;

            CHECK(shard_json_array_iter(root, &it));
            while (shard_json_array_next(&it, &v)) {
                CHECK(shard_json_get_int64(member(v, "i"), &i));
                CHECK(i == (int64_t)k);
                k++;
            }
            CHECK_EQ_INT(k, n);
        }

        /* A failure in between leaves the parser usable. */
        if (round % 3 == 0) {
            CHECK_EQ_INT(parse_n(p, doc, len > 1 ? len - 1 : 0, &root),
                         SHARD_EINPUT);
            CHECK(shard_json_last_error(p) != SHARD_JSON_ERR_NONE);
        }
        free(doc);
    }
    shard_json_parser_free(p);
    shard_json_parser_free(NULL);
}

/*
 * A document must sit directly before an unreadable page with only the
 * padding in between, so any read past buf + len + SHARD_JSON_PADDING
 * faults.  The padding is filled with bytes that would change the meaning
 * of the document if simdjson looked at them.
 */
struct fence {
    char *map;
    size_t maplen;
    char *guard;
};

static char *fence_place(struct fence *f, const char *doc, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t need = len + SHARD_JSON_PADDING;
    size_t body = (need + (size_t)page - 1) / (size_t)page * (size_t)page;
    char *buf;

    f->maplen = body + (size_t)page;
    f->map = mmap(NULL, f->maplen, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->map == MAP_FAILED)
        FAILF("mmap failed");
    f->guard = f->map + body;
    if (mprotect(f->guard, (size_t)page, PROT_NONE) != 0)
        FAILF("mprotect failed");
    buf = f->guard - need;
    memcpy(buf, doc, len);
    for (size_t i = 0; i < SHARD_JSON_PADDING; i++)
        buf[len + i] = "\"\\]}[{,:1"[i % 9];
    return buf;
}

static void fence_remove(struct fence *f)
{
    munmap(f->map, f->maplen);
}

static int fenced_parse(const char *doc, size_t len, shard_json_value *root)
{
    struct fence f;
    char *buf = fence_place(&f, doc, len);
    int rc = shard_json_parse(parser(), buf, len, root);

    fence_remove(&f);
    return rc;
}

TEST(padding_contract)
{
    static const struct {
        const char *doc;
        int rc;
        shard_json_error kind;
    } cases[] = {
        {"", SHARD_EINPUT, SHARD_JSON_ERR_EMPTY},
        {"1", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"-1.25e-7", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"true", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"tru", SHARD_EINPUT, SHARD_JSON_ERR_SYNTAX},
        {"\"abc\"", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"\"abc", SHARD_EINPUT, SHARD_JSON_ERR_SYNTAX},
        {"\"\\", SHARD_EINPUT, SHARD_JSON_ERR_SYNTAX},
        {"\"\\ud800", SHARD_EINPUT, SHARD_JSON_ERR_SYNTAX},
        {"\"\\ud800\"", SHARD_EINPUT, SHARD_JSON_ERR_UTF8},
        {"\"\\ud83d\\ude00\"", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"[1,2,3]", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"[1,2,3", SHARD_EINPUT, SHARD_JSON_ERR_SYNTAX},
        {"{\"a\":[{}]}", SHARD_OK, SHARD_JSON_ERR_NONE},
        {"[1,\xe2\x82", SHARD_EINPUT, SHARD_JSON_ERR_UTF8},
        {"\"\xe2\x82", SHARD_EINPUT, SHARD_JSON_ERR_SYNTAX},
        {"123456789012345678901", SHARD_EINPUT, SHARD_JSON_ERR_NUMBER},
    };
    shard_json_value root;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        size_t len = strlen(cases[k].doc);
        int rc = fenced_parse(cases[k].doc, len, &root);

        if (rc != cases[k].rc ||
            shard_json_last_error(parser()) != cases[k].kind)
            FAILF("fenced %s: rc %d kind %d (%s)", cases[k].doc, rc,
                  (int)shard_json_last_error(parser()),
                  shard_json_errmsg(parser()));
    }

    /* Every length around the 64-byte blocks simdjson works in. */
    for (size_t n = 0; n < 300; n++) {
        size_t len;
        char *doc = repeat(",7", n + 1, "]", &len);

        doc[0] = '[';
        CHECK_EQ_INT(fenced_parse(doc, len, &root), SHARD_OK);
        CHECK_EQ_INT(shard_json_size(root), n + 1);
        doc[len - 1] = '7';
        CHECK_EQ_INT(fenced_parse(doc, len, &root), SHARD_EINPUT);
        free(doc);
    }
}

/*
 * simdjson keeps member counts in 24 bits and saturates them; the count
 * must still be exact beyond that.  The document is about 34 MB, which also
 * makes the parser grow well past its first allocation.
 */
TEST(size_beyond_saturation)
{
    size_t n = 0xFFFFFF + 5, len;
    char *doc = repeat(",0", n, "]", &len);
    shard_json_value root;

    doc[0] = '[';
    CHECK_EQ_INT(parse_n(parser(), doc, len, &root), SHARD_OK);
    CHECK_EQ_INT(shard_json_size(root), n);
    free(doc);

    /* The grown parser still reads small documents. */
    CHECK_EQ_INT(shard_json_size(parse_ok("[[], {}]")), 2);
}

TEST(cleanup)
{
    shard_json_parser_free(shared_parser);
    shared_parser = NULL;
}

TEST_MAIN()
