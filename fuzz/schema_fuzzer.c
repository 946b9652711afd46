/*
 * schema_fuzzer.c - fuzzes the input schemas (formats/): one JSON row
 * through every schema's mapper, with the compiler's own emitter.
 *
 * The input is the row, as one line of a JSON lines file would hold it.
 * A row that does not parse, or is not an object, stops here: the
 * compiler rejects it before any schema sees it.  Otherwise auto-detection
 * runs (under the sanitizers only: any schema may be the one it picks) and
 * the row is mapped with every schema (map once per mapping in map_specs
 * below), one emitter reused from schema to schema as a worker reuses it
 * from row to row.  For each mapping the harness checks, and aborts when
 * one fails:
 *   1. map() returns 0, SHARD_ENOMEM, or SHARD_EINPUT after
 *      shard_emit_fail() named a known reason and a message; a success
 *      leaves no failure message behind.
 *   2. A failure message is valid UTF-8 under SHARD_ERRMAX bytes, and
 *      holds a control byte (a line break) only when the row's strings do:
 *      the compiler copies it into warnings and manifest.json.
 *   3. Every record has a message (the response is the last), a valid
 *      label, non-zero prompt and record ids, and messages whose role and
 *      content are valid UTF-8.  A role is "user", "assistant", "system"
 *      or a string of the row.  A content is the row's text: it lies
 *      inside one decoded string of the row (or of a string of it that
 *      holds JSON text, as the Kaggle arena form does), or is whole
 *      strings joined (content parts); a schema may trim text or cut it
 *      at markers, but it writes none of its own.
 *   4. Every pair joins two different records of the row that share their
 *      context, and both carry a pair id.
 *   5. Mapping is a function of the row: every schema mapped again, in the
 *      reverse order, gives the same outcome, records, pairs and rules.
 *
 * The emitter (struct shard_emit) and auto-detection are private to
 * libshard/compile.c, so this file includes it and so defines what the
 * library's compile.o would: the replay build takes nothing more from
 * libshard.a, and the libFuzzer build leaves that object out (Makefile).
 *
 * The corpus, fuzz/corpus/schema: rows of every schema, cut from
 * tests/data/formats or written in the shape of the public data sets.
 * Rows that show an open bug wait in fuzz/corpus/open (README.md there).
 */
#include "compile.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Mappings for the map schema, given as --map and --label-rule would. */
static const struct {
    const char *map, *rule;
} map_specs[] = {
    {"prompt=q.text,response=answers.0.body,system=sys",
     "rating>=7;rating<=3"},
    {"context=messages,response=reply,label=verdict,reward=score", NULL},
    {"prompt=prompt,response=response,label=label", "score>0"},
};

#define MAX_MAPPINGS 32

/* A schema with the state its prepare() made. */
typedef struct {
    const shard_format *format;
    void *state;
} mapping;

static mapping mappings[MAX_MAPPINGS];
static size_t n_mappings;

/* The row's decoded strings, whose text a record may hold. */
typedef struct {
    const char *s;
    size_t len;
    int owned; /* a copy, freed with the list */
} piece;

typedef struct {
    piece *p;
    size_t n, cap;
    int control; /* some string holds a byte below 0x20 */
} strings;

static void prepare_mappings(void)
{
    char err[SHARD_ERRMAX];

    for (size_t i = 0; shard_formats[i]; i++) {
        const shard_format *f = shard_formats[i];
        size_t runs = f->prepare ? sizeof(map_specs) / sizeof(map_specs[0])
                                 : 1;

        for (size_t k = 0; k < runs; k++) {
            shard_compile_options o = SHARD_COMPILE_OPTIONS_INIT;
            mapping *m = &mappings[n_mappings++];

            REQUIRE(n_mappings <= MAX_MAPPINGS);
            m->format = f;
            o.field_map = map_specs[k].map;
            o.label_rule = map_specs[k].rule;
            REQUIRE(!f->prepare || f->prepare(&o, &m->state, err) == 0);
        }
    }
}

/* Adds s[0..n), a string of the row's tree. */
static void strings_add(strings *t, const char *s, size_t n)
{
    REQUIRE(shard_grow((void **)&t->p, &t->cap, t->n + 1,
                       sizeof(*t->p)) == 0);
    t->p[t->n++] = (piece){s, n, 0};
    for (size_t i = 0; i < n; i++)
        t->control |= (unsigned char)s[i] < 0x20;
}

static void strings_collect(strings *t, shard_json_value v, int nested);

/*
 * A string holding JSON text: the strings of that document, copied, since
 * the parser that read it moves on.
 */
static void strings_nested(strings *t, const char *s, size_t n)
{
    static shard_json_parser *sub;
    char *buf = malloc(n + SHARD_JSON_PADDING);
    size_t first = t->n;
    shard_json_value root;

    REQUIRE(buf != NULL);
    REQUIRE(sub || shard_json_parser_new(&sub) == 0);
    memcpy(buf, s, n);
    memset(buf + n, 0, SHARD_JSON_PADDING);
    if (shard_json_parse(sub, buf, n, &root) == 0)
        strings_collect(t, root, 1);
    free(buf);
    for (size_t i = first; i < t->n; i++) {
        char *copy = malloc(t->p[i].len + 1);

        REQUIRE(copy != NULL);
        memcpy(copy, t->p[i].s, t->p[i].len);
        t->p[i].s = copy;
        t->p[i].owned = 1;
    }
}

static void strings_collect(strings *t, shard_json_value v, int nested)
{
    shard_json_iter it;
    shard_json_value child;
    const char *s, *key;
    size_t n;

    if (shard_json_get_string(v, &s, &n)) {
        strings_add(t, s, n);
        if (!nested)
            strings_nested(t, s, n);
    } else if (shard_json_array_iter(v, &it)) {
        while (shard_json_array_next(&it, &child))
            strings_collect(t, child, nested);
    } else if (shard_json_object_iter(v, &it)) {
        while (shard_json_object_next(&it, &key, &n, &child))
            strings_collect(t, child, nested);
    }
}

static void strings_free(strings *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i].owned)
            free((void *)t->p[i].s);
    free(t->p);
}

/* Nonzero when s[0..n) lies inside one of the strings. */
static int strings_hold(const strings *t, const char *s, size_t n)
{
    for (size_t i = 0; i < t->n; i++)
        if (n == 0 || (t->p[i].len >= n && memmem(t->p[i].s, t->p[i].len,
                                                  s, n)))
            return 1;
    return 0;
}

/*
 * Nonzero when s[0..n) is text of the row: inside one string (a field,
 * maybe trimmed or cut at a marker), or whole strings one after the other
 * (content parts joined).
 */
static int strings_cover(const strings *t, const char *s, size_t n)
{
    unsigned char *reach;
    int ok;

    if (strings_hold(t, s, n))
        return 1;
    reach = calloc(n + 1, 1); /* reach[k]: s[0..k) is whole strings */
    REQUIRE(reach != NULL);
    reach[0] = 1;
    for (size_t at = 0; at < n; at++) {
        if (!reach[at])
            continue;
        for (size_t i = 0; i < t->n; i++)
            if (t->p[i].len > 0 && t->p[i].len <= n - at &&
                memcmp(s + at, t->p[i].s, t->p[i].len) == 0)
                reach[at + t->p[i].len] = 1;
    }
    ok = reach[n];
    free(reach);
    return ok;
}

static int role_known(const strings *t, const shard_message *m)
{
    static const char *const fixed[] = {"user", "assistant", "system"};

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (shard_role_is(m, fixed[i]))
            return 1;
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i].len == m->role_len &&
            memcmp(t->p[i].s, m->role, m->role_len) == 0)
            return 1;
    return 0;
}

static void check_failure(const shard_emit *e, const strings *t)
{
    size_t len = strnlen(e->msg, SHARD_ERRMAX);

    REQUIRE(e->reason < SHARD_REASON_COUNT);
    REQUIRE(len > 0 && len < SHARD_ERRMAX);
    REQUIRE(utf8_valid(e->msg, len));
    for (size_t i = 0; i < len; i++)
        REQUIRE((unsigned char)e->msg[i] >= 0x20 || t->control);
}

static void check_record(const shard_emit *e, const emitted *r,
                         const strings *t)
{
    const shard_message *m = e->msgs + r->first_msg;

    REQUIRE(r->n_msgs >= 1 && r->first_msg + r->n_msgs <= e->n_msgs);
    REQUIRE(r->label >= 0 && r->label < SHARD_LABEL_COUNT);
    REQUIRE(r->prompt_id != 0 && r->record_id != 0);
    for (size_t k = 0; k < r->n_msgs; k++) {
        REQUIRE(utf8_valid(m[k].role, m[k].role_len));
        REQUIRE(utf8_valid(m[k].content, m[k].content_len));
        REQUIRE(role_known(t, &m[k]));
        REQUIRE(strings_cover(t, m[k].content, m[k].content_len));
    }
}

static void check_pair(const shard_emit *e, const emitted_pair *p)
{
    const emitted *a, *b;

    REQUIRE(p->chosen < e->n && p->rejected < e->n);
    REQUIRE(p->chosen != p->rejected);
    a = &e->recs[p->chosen];
    b = &e->recs[p->rejected];
    REQUIRE(a->n_msgs == b->n_msgs);
    REQUIRE(shard_msgs_equal(e->msgs + a->first_msg, e->msgs + b->first_msg,
                             a->n_msgs - 1));
    REQUIRE(a->prompt_id == b->prompt_id);
    REQUIRE(a->pair_id != 0 && b->pair_id != 0);
}

/* A digest of everything a mapping gave, to compare two mappings. */
static uint64_t outcome_hash(const shard_emit *e, int rc)
{
    uint64_t h = mix_u64(0xcbf29ce484222325ull, (uint64_t)rc);

    if (rc == SHARD_EINPUT)
        return mix(mix_u64(h, e->reason), e->msg, strlen(e->msg));
    for (size_t i = 0; i < e->n; i++) {
        const emitted *r = &e->recs[i];

        h = mix_u64(h, r->n_msgs);
        h = mix_u64(h, (uint64_t)r->label);
        h = mix(h, &r->reward, sizeof(r->reward));
        h = mix_u64(h, r->record_id);
        h = mix_u64(h, r->pair_id);
    }
    for (size_t i = 0; i < e->n_msgs; i++) {
        h = mix(mix_u64(h, e->msgs[i].role_len), e->msgs[i].role,
                e->msgs[i].role_len);
        h = mix(mix_u64(h, e->msgs[i].content_len), e->msgs[i].content,
                e->msgs[i].content_len);
    }
    for (size_t i = 0; i < e->n_pairs; i++)
        h = mix_u64(mix_u64(h, e->pairs[i].chosen), e->pairs[i].rejected);
    for (size_t i = 0; i < e->n_rules; i++)
        h = mix(h, e->rules[i], strlen(e->rules[i]));
    return h;
}

/* The folded text behind ids and keys, kept from row to row. */
static shard_strbuf folded;

/* Maps the row with m, checks the result and returns its digest. */
static uint64_t map_row(shard_emit *e, const mapping *m,
                        shard_json_value root, const strings *t)
{
    int rc;

    emit_reset(e);
    e->state = m->state;
    e->reason = SHARD_REASON_COUNT;
    e->msg[0] = '\0';
    rc = m->format->map(root, e);
    if (rc == 0)
        rc = row_hashes(&folded, e, SHARD_NORM_WS);
    if (rc == 0)
        rc = assign_ids(e);
    REQUIRE(rc == 0 || rc == SHARD_EINPUT || rc == SHARD_ENOMEM);
    if (rc == SHARD_EINPUT) {
        check_failure(e, t);
        return outcome_hash(e, rc);
    }
    if (rc < 0)
        return outcome_hash(e, rc);
    REQUIRE(e->msg[0] == '\0');
    for (size_t i = 0; i < e->n; i++)
        check_record(e, &e->recs[i], t);
    for (size_t i = 0; i < e->n_pairs; i++)
        check_pair(e, &e->pairs[i]);
    for (size_t i = 0; i < e->n_rules; i++)
        REQUIRE(e->rules[i] && e->rules[i][0]);
    return outcome_hash(e, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static shard_json_parser *p;
    static shard_emit e;
    uint64_t first[MAX_MAPPINGS];
    strings t = {0};
    shard_json_value root;
    char *buf = malloc(size + SHARD_JSON_PADDING);

    REQUIRE(buf != NULL);
    if (!p) {
        REQUIRE(shard_json_parser_new(&p) == 0);
        prepare_mappings();
    }
    memcpy(buf, data, size);
    memset(buf + size, 0, SHARD_JSON_PADDING);
    if (shard_json_parse(p, buf, size, &root) != 0 ||
        shard_json_typeof(root) != SHARD_JSON_OBJECT)
        goto out;

    strings_collect(&t, root, 0);
    detect(root); /* for the sanitizers: detectors read any row */
    for (size_t i = 0; i < n_mappings; i++)
        first[i] = map_row(&e, &mappings[i], root, &t);
    for (size_t i = n_mappings; i-- > 0;)
        REQUIRE(map_row(&e, &mappings[i], root, &t) == first[i]);
    strings_free(&t);
out:
    free(buf);
    return 0;
}
