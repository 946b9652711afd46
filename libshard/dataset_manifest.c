/*
 * dataset_manifest.c - the reader's own look at DIR/manifest.json.
 *
 * The reader side links without the JSON library of the compiler side,
 * so this file holds a small strict JSON parser (RFC 8259) that walks the
 * document once, skipping every value except the "shards" list, of which
 * it keeps path, label, records and checksum.  Nesting is bounded, every
 * read is bounded by the document's end, and an error names the byte
 * offset where the document stopped making sense.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

#define MAX_DEPTH 64
#define MAX_MANIFEST (256u << 20)

typedef struct {
    const char *p, *start, *end;
    int depth;
    const char *why; /* first error, NULL while the parse holds */
} cursor;

static int fail(cursor *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return -1;
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' ||
                             *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int expect(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return fail(c, "unexpected character");
    c->p++;
    return 0;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                     : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                     : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                            : 16u;
        if (d > 15)
            return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

/* Appends byte b to out (cap bytes with the NUL) when out is not NULL. */
static void put(char *out, size_t cap, size_t *len, char b)
{
    if (out && *len + 1 < cap)
        out[*len] = b;
    (*len)++;
}

/*
 * Parses a string at the cursor, decoding it into out (cap bytes, NUL
 * terminated) when out is not NULL.  A string that does not fit is an
 * error.  \u escapes of the basic plane are encoded as UTF-8; surrogates
 * and NUL are refused (no manifest field needs them, and a NUL would cut
 * a path short).
 */
static int parse_string(cursor *c, char *out, size_t cap)
{
    size_t len = 0;
    unsigned u;

    if (expect(c, '"') < 0)
        return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;

        if (ch < 0x20)
            return fail(c, "control character in string");
        if (ch != '\\') {
            put(out, cap, &len, (char)ch);
            continue;
        }
        if (c->p >= c->end)
            break;
        ch = (unsigned char)*c->p++;
        switch (ch) {
        case '"': case '\\': case '/': put(out, cap, &len, (char)ch); break;
        case 'b': put(out, cap, &len, '\b'); break;
        case 'f': put(out, cap, &len, '\f'); break;
        case 'n': put(out, cap, &len, '\n'); break;
        case 'r': put(out, cap, &len, '\r'); break;
        case 't': put(out, cap, &len, '\t'); break;
        case 'u':
            if (c->end - c->p < 4 || hex4(c->p, &u) < 0 || u == 0 ||
                (u >= 0xd800 && u < 0xe000))
                return fail(c, "bad \\u escape");
            c->p += 4;
            if (u < 0x80) {
                put(out, cap, &len, (char)u);
            } else if (u < 0x800) {
                put(out, cap, &len, (char)(0xc0 | u >> 6));
                put(out, cap, &len, (char)(0x80 | (u & 0x3f)));
            } else {
                put(out, cap, &len, (char)(0xe0 | u >> 12));
                put(out, cap, &len, (char)(0x80 | ((u >> 6) & 0x3f)));
                put(out, cap, &len, (char)(0x80 | (u & 0x3f)));
            }
            break;
        default:
            return fail(c, "bad escape");
        }
    }
    if (c->p >= c->end)
        return fail(c, "unterminated string");
    c->p++;
    if (out && len >= cap)
        return fail(c, "string too long");
    if (out)
        out[len] = '\0';
    return 0;
}

static int is_digit(cursor *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/*
 * Parses a number; when `value` is not NULL it must be a non-negative
 * integer that fits in 64 bits.
 */
static int parse_number(cursor *c, uint64_t *value)
{
    const char *s;
    int integer = 1, neg = 0;
    uint64_t v = 0;

    skip_ws(c);
    s = c->p;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (!is_digit(c))
        return fail(c, "bad number");
    if (*c->p == '0' && c->end - c->p > 1 && c->p[1] >= '0' &&
        c->p[1] <= '9')
        return fail(c, "leading zero");
    while (is_digit(c)) {
        unsigned d = (unsigned)(*c->p++ - '0');

        if (v > (UINT64_MAX - d) / 10)
            integer = 0;
        v = v * 10 + d;
    }
    if (c->p < c->end && *c->p == '.') {
        integer = 0;
        c->p++;
        if (!is_digit(c))
            return fail(c, "bad number");
        while (is_digit(c))
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        integer = 0;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!is_digit(c))
            return fail(c, "bad number");
        while (is_digit(c))
            c->p++;
    }
    if (value) {
        if (!integer || neg || c->p == s)
            return fail(c, "expected a non-negative integer");
        *value = v;
    }
    return 0;
}

static int parse_value(cursor *c);

/* Parses an object or array, calling each() per member or element. */
static int parse_container(cursor *c, char open, char close,
                           int (*each)(cursor *, const char *, void *),
                           void *ctx)
{
    char key[64];

    if (expect(c, open) < 0)
        return -1;
    if (++c->depth > MAX_DEPTH)
        return fail(c, "nested too deeply");
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        c->depth--;
        return 0;
    }
    for (;;) {
        key[0] = '\0';
        if (open == '{') {
            cursor save = *c;

            if (parse_string(c, key, sizeof(key)) < 0) {
                /* A long key is kept only as "not one we know". */
                *c = save;
                c->why = NULL;
                if (parse_string(c, NULL, 0) < 0)
                    return -1;
                key[0] = '\0';
            }
            if (expect(c, ':') < 0)
                return -1;
        }
        if ((each ? each(c, key, ctx) : parse_value(c)) < 0)
            return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (expect(c, close) < 0)
            return -1;
        c->depth--;
        return 0;
    }
}

static int parse_literal(cursor *c, const char *word)
{
    size_t n = strlen(word);

    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return fail(c, "unexpected character");
    c->p += n;
    return 0;
}

/* Parses and discards any value. */
static int parse_value(cursor *c)
{
    skip_ws(c);
    if (c->p >= c->end)
        return fail(c, "unexpected end");
    switch (*c->p) {
    case '{':
        return parse_container(c, '{', '}', NULL, NULL);
    case '[':
        return parse_container(c, '[', ']', NULL, NULL);
    case '"':
        return parse_string(c, NULL, 0);
    case 't':
        return parse_literal(c, "true");
    case 'f':
        return parse_literal(c, "false");
    case 'n':
        return parse_literal(c, "null");
    default:
        return parse_number(c, NULL);
    }
}

typedef struct {
    shard_manifest_entry *list;
    size_t n, cap;
    int oom, seen;
} entries;

static int hex_value(const char *s, uint64_t *v)
{
    unsigned a, b, c4, d;

    if (strlen(s) != 16 || hex4(s, &a) < 0 || hex4(s + 4, &b) < 0 ||
        hex4(s + 8, &c4) < 0 || hex4(s + 12, &d) < 0)
        return -1;
    *v = (uint64_t)a << 48 | (uint64_t)b << 32 | (uint64_t)c4 << 16 | d;
    return 0;
}

/* One member of a shard entry. */
static int shard_member(cursor *c, const char *key, void *ctx)
{
    shard_manifest_entry *e = ctx;
    char label[8], sum[24];

    if (!strcmp(key, "path"))
        return parse_string(c, e->path, sizeof(e->path));
    if (!strcmp(key, "records"))
        return parse_number(c, &e->records);
    if (!strcmp(key, "label")) {
        if (parse_string(c, label, sizeof(label)) < 0)
            return -1;
        if ((e->label = shard_label_parse(label)) < 0)
            return fail(c, "unknown label");
        return 0;
    }
    if (!strcmp(key, "checksum")) {
        if (parse_string(c, sum, sizeof(sum)) < 0)
            return -1;
        return hex_value(sum, &e->checksum) < 0
                   ? fail(c, "checksum is not 16 hex digits")
                   : 0;
    }
    return parse_value(c);
}

/* A path must be LABEL/NAME with the entry's label and a plain name. */
static int path_ok(const shard_manifest_entry *e)
{
    const char *name = strchr(e->path, '/');
    size_t dir = name ? (size_t)(name - e->path) : 0;

    return name && e->label >= 0 &&
           dir == strlen(shard_label_name(e->label)) &&
           !strncmp(e->path, shard_label_name(e->label), dir) &&
           name[1] && name[1] != '.' && !strchr(name + 1, '/');
}

static int shard_element(cursor *c, const char *key, void *ctx)
{
    entries *es = ctx;
    shard_manifest_entry *e;

    if (shard_grow((void **)&es->list, &es->cap, es->n + 1,
                   sizeof(*es->list)) < 0) {
        es->oom = 1;
        return fail(c, "out of memory");
    }
    e = &es->list[es->n];
    memset(e, 0, sizeof(*e));
    e->label = -1;
    if (parse_container(c, '{', '}', shard_member, e) < 0)
        return -1;
    if (!path_ok(e))
        return fail(c, "shard entry without a valid path and label");
    es->n++;
    return 0;
}

static int top_member(cursor *c, const char *key, void *ctx)
{
    entries *es = ctx;

    if (strcmp(key, "shards") != 0 || c->depth != 1)
        return parse_value(c);
    if (es->seen)
        return fail(c, "\"shards\" listed twice");
    es->seen = 1;
    return parse_container(c, '[', ']', shard_element, ctx);
}

static int slurp(const char *path, char **out, size_t *len, char *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (!f)
        return shard_errf(err, errno == ENOENT ? SHARD_ENOTFOUND : SHARD_EIO,
                          "%s: %s", path, strerror(errno));
    do {
        if (shard_grow((void **)&buf, &cap, n + 65536, 1) < 0) {
            fclose(f);
            free(buf);
            return shard_errf(err, SHARD_ENOMEM, "%s: out of memory", path);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0 && n < MAX_MANIFEST);
    if (ferror(f) || n >= MAX_MANIFEST) {
        fclose(f);
        free(buf);
        return shard_errf(err, SHARD_EIO, "%s: unreadable or too large",
                          path);
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

int shard_manifest_parse(const char *text, size_t len,
                         shard_manifest_entry **out, size_t *n, char *err)
{
    entries es = {0};
    cursor c = {text, text, text + len, 0, NULL};
    int rc;

    *out = NULL;
    *n = 0;
    rc = parse_container(&c, '{', '}', top_member, &es);
    skip_ws(&c);
    if (rc == 0 && c.p != c.end)
        fail(&c, "trailing bytes");
    if (rc == 0 && !es.seen)
        fail(&c, "no \"shards\" list");
    if (c.why) {
        rc = shard_errf(err, es.oom ? SHARD_ENOMEM : SHARD_ECORRUPT,
                        "byte %zu: %s", (size_t)(c.p - c.start), c.why);
        free(es.list);
        return rc;
    }
    *out = es.list;
    *n = es.n;
    return 0;
}

int shard_manifest_list(const char *dir, shard_manifest_entry **out,
                        size_t *n, char *err)
{
    char path[4200], why[SHARD_ERRMAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    if ((rc = slurp(path, &text, &len, err)) < 0) {
        if (rc == SHARD_ENOTFOUND)
            shard_errf(err, rc, "%s: no manifest.json: not a complete "
                       "dataset", dir);
        return rc;
    }
    if ((rc = shard_manifest_parse(text, len, out, n, why)) < 0)
        shard_errf(err, rc, "%s: %s", path, why);
    free(text);
    return rc;
}
