/*
 * manifest.c - DIR/manifest.json: written last and atomically by a compile
 * as the dataset's commit marker, and read back by inspect.
 *
 * The layout is described in docs/FORMAT.md ("The dataset directory").
 * Hashes are written as 16 lower-case hex digits, since JSON numbers lose
 * precision past 2^53 in most readers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile_internal.h"
#include "dedup.h"
#include "internal.h"
#include "json.h"
#include "pretok.h"
#include "shard_pairs.h"

static void write_escaped(FILE *f, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        switch (ch) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (ch < 0x20) {
                fputs("\\u00", f);
                fputc(hex[ch >> 4], f);
                fputc(hex[ch & 15], f);
            } else {
                fputc(ch, f);
            }
        }
    }
    fputc('"', f);
}

/* Text that is not UTF-8 (a file name, a row cut inside a character) is
 * written with U+FFFD for each invalid part, so the JSON stays valid. */
void shard_json_write_string(FILE *f, const char *s, size_t n)
{
    size_t replaced = 0;
    char *fixed;

    if (shard_utf8_valid(s, n) == n || !(fixed = malloc(3 * n))) {
        write_escaped(f, s, n);
        return;
    }
    write_escaped(f, fixed, shard_utf8_repair(fixed, s, n, &replaced));
    free(fixed);
}

static void put_str(FILE *f, const char *s)
{
    shard_json_write_string(f, s, strlen(s));
}

static void write_accounting(FILE *f, const shard_accounting *a,
                             const shard_examples *ex)
{
    fprintf(f, "  \"accounting\": {\n    \"rows_read\": %llu,\n"
               "    \"rows_kept\": %llu,\n"
               "    \"rows_invalid\": %llu,\n    \"invalid_by_reason\": {",
            (unsigned long long)a->rows_read,
            (unsigned long long)(a->rows_read - a->rows_invalid),
            (unsigned long long)a->rows_invalid);
    for (int r = 0; r < SHARD_REASONS; r++)
        fprintf(f, "%s\"%s\": %llu", r ? ", " : "", shard_reason_label(r),
                (unsigned long long)a->invalid_by_reason[r]);
    fprintf(f, "},\n    \"records\": %llu,\n    \"kept\": %llu,\n"
               "    \"duplicate\": %llu,\n    \"near_duplicate\": %llu,\n"
               "    \"conflict\": %llu,\n    \"replaced_utf8\": %llu,\n"
               "    \"special_text\": %llu,\n"
               "    \"inputs_failed\": %llu,\n"
               "    \"pairs_duplicate\": %llu,\n"
               "    \"pairs_dropped\": %llu,\n"
               "    \"near_candidates\": %llu,\n    \"examples\": [",
            (unsigned long long)a->records, (unsigned long long)a->kept,
            (unsigned long long)a->duplicate,
            (unsigned long long)a->near_duplicate,
            (unsigned long long)a->conflict,
            (unsigned long long)a->replaced_utf8,
            (unsigned long long)a->special_text,
            (unsigned long long)a->inputs_failed,
            (unsigned long long)a->pairs_duplicate,
            (unsigned long long)a->pairs_dropped,
            (unsigned long long)a->near_candidates);
    int first = 1;
    for (int r = 0; r < SHARD_REASONS; r++)
        for (unsigned i = 0; i < ex->count[r]; i++) {
            fputs(first ? "\n      " : ",\n      ", f);
            put_str(f, ex->text[r][i]);
            first = 0;
        }
    fputs(first ? "]\n  },\n" : "\n    ]\n  },\n", f);
}

static void write_by_label(FILE *f, const char *key, const uint64_t *v)
{
    fprintf(f, "  \"%s\": {\"pos\": %llu, \"neg\": %llu, \"unl\": %llu},\n",
            key, (unsigned long long)v[SHARD_LABEL_POS],
            (unsigned long long)v[SHARD_LABEL_NEG],
            (unsigned long long)v[SHARD_LABEL_UNL]);
}

static void write_inputs(FILE *f, const shard_manifest_data *d)
{
    fputs("  \"inputs\": [", f);
    for (size_t i = 0; i < d->n_inputs; i++) {
        const shard_input_stats *in = &d->inputs[i];

        fputs(i ? ",\n    {\"path\": " : "\n    {\"path\": ", f);
        put_str(f, in->path);
        fputs(", \"format\": ", f);
        put_str(f, in->format[0] ? in->format : "none");
        fprintf(f, ", \"rows_read\": %llu, \"rows_kept\": %llu, "
                   "\"rows_invalid\": %llu, \"records\": %llu, "
                   "\"kept\": %llu",
                (unsigned long long)in->rows_read,
                (unsigned long long)(in->rows_read - in->rows_invalid),
                (unsigned long long)in->rows_invalid,
                (unsigned long long)in->records,
                (unsigned long long)in->kept);
        if (in->error[0]) {
            fputs(", \"error\": ", f);
            put_str(f, in->error);
        }
        fputc('}', f);
    }
    fputs(d->n_inputs ? "\n  ],\n" : "],\n", f);
}

/* The "merge" object of a dataset `shard merge` wrote. */
static void write_merge(FILE *f, const shard_manifest_data *d)
{
    const shard_merge_stats *m = d->merge;

    fputs("  \"merge\": {\"datasets\": [", f);
    for (size_t i = 0; i < m->datasets; i++) {
        fputs(i ? ",\n    {\"path\": " : "\n    {\"path\": ", f);
        put_str(f, d->merge_paths[i]);
        fprintf(f, ", \"first_input\": %llu}",
                (unsigned long long)d->merge_first_input[i]);
    }
    fprintf(f, "%s, \"dedup\": %s, \"duplicate\": %llu, "
               "\"conflict\": %llu, \"recounted\": %llu, "
               "\"pairs_duplicate\": %llu, \"pairs_dropped\": %llu, "
               "\"pairs_recounted\": %llu, "
               "\"linked\": %llu, \"copied\": %llu},\n",
            m->datasets ? "\n  ]" : "]", m->dedup ? "true" : "false",
            (unsigned long long)m->duplicate,
            (unsigned long long)m->conflict,
            (unsigned long long)m->recounted,
            (unsigned long long)m->pairs_duplicate,
            (unsigned long long)m->pairs_dropped,
            (unsigned long long)m->pairs_recounted,
            (unsigned long long)m->linked, (unsigned long long)m->copied);
}

static void write_shards(FILE *f, const shard_manifest_data *d)
{
    int first = 1;

    fputs("  \"shards\": [", f);
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        for (size_t i = 0; i < d->n_files[l]; i++) {
            const shard_file_info *s = &d->files[l][i];

            fprintf(f, "%s    {\"path\": \"%s/%s\", \"label\": \"%s\", "
                       "\"records\": %llu, \"tokens\": %llu, "
                       "\"bytes\": %llu, \"checksum\": \"%016llx\"}",
                    first ? "\n" : ",\n", shard_label_name(l), s->path,
                    shard_label_name(l), (unsigned long long)s->records,
                    (unsigned long long)s->tokens,
                    (unsigned long long)s->bytes,
                    (unsigned long long)s->checksum);
            first = 0;
        }
    fputs(first ? "]\n" : "\n  ]\n", f);
}

static void write_body(FILE *f, const shard_manifest_data *d)
{
    const shard_compile_options *o = d->opt;
    const shard_tokenizer_info *t = d->tokenizer;

    fprintf(f, "{\n  \"format\": \"libshard-dataset\",\n"
               "  \"format_version\": 1,\n"
               "  \"created_by\": \"shard %s\",\n  \"schema\": ",
            SHARD_VERSION_STRING);
    put_str(f, d->schema);
    fputs(",\n  \"label_rules\": [", f);
    for (size_t i = 0; i < d->n_rules; i++) {
        fputs(i ? ",\n    " : "\n    ", f);
        put_str(f, d->rules[i]);
    }
    fputs(d->n_rules ? "\n  ],\n  \"tokenizer\": {\"name\": "
                     : "],\n  \"tokenizer\": {\"name\": ", f);
    put_str(f, t->name);
    fprintf(f, ", \"vocab_size\": %u, \"hash\": \"%016llx\", "
               "\"template\": ", t->vocab_size,
            (unsigned long long)t->hash);
    put_str(f, t->template);
    fprintf(f, ", \"added_tokens\": \"%s\"",
            o->hf_added_tokens ? "tokens" : "text");
    if (t->bos_id != SHARD_NO_TOKEN)
        fprintf(f, ", \"bos_id\": %u", t->bos_id);
    if (t->eos_id != SHARD_NO_TOKEN)
        fprintf(f, ", \"eos_id\": %u", t->eos_id);
    fprintf(f, "},\n  \"options\": {\"codec\": \"%s\", \"zstd_level\": %d, "
               "\"shard_size\": %llu, \"frame_size\": %llu, "
               "\"text\": %s, \"normalize\": \"%s\", "
               "\"conflicts\": \"%s\", \"near_dup\": %g, "
               "\"near_dup_scope\": \"%s\", \"near_dup_seed\": %llu},\n",
            o->codec == SHARD_CODEC_ZSTD ? "zstd" : "none", o->zstd_level,
            (unsigned long long)o->shard_size,
            (unsigned long long)o->frame_size,
            o->with_text ? "true" : "false",
            shard_normalize_name(o->normalize),
            shard_conflicts_name(o->conflicts), o->near_dup,
            o->near_dup_scope ? "stream" : "group",
            (unsigned long long)o->near_dup_seed);
    write_by_label(f, "records", d->acct->kept_by_label);
    write_by_label(f, "tokens", d->acct->tokens_by_label);
    fprintf(f, "  \"pairs\": %llu,\n", (unsigned long long)d->acct->pairs);
    fprintf(f, "  \"pairs_table\": {\"path\": \"%s\", \"pairs\": %llu, "
               "\"bytes\": %llu, \"checksum\": \"%016llx\"},\n",
            SHARD_PAIRS_PATH, (unsigned long long)d->acct->pairs,
            (unsigned long long)d->pairs_bytes,
            (unsigned long long)d->pairs_checksum);
    write_accounting(f, d->acct, d->examples);
    if (d->merge)
        write_merge(f, d);
    write_inputs(f, d);
    write_shards(f, d);
    fputs("}\n", f);
}

int shard_manifest_write(const char *dir, const shard_manifest_data *d,
                         char *err)
{
    char tmp[4400], final[4400];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s/.manifest.json.tmp", dir);
    snprintf(final, sizeof(final), "%s/manifest.json", dir);
    if (!(f = fopen(tmp, "w")))
        return shard_errf(err, SHARD_EIO, "%s: %s", tmp, strerror(errno));
    write_body(f, d);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int e = errno;

        fclose(f);
        unlink(tmp);
        return shard_errf(err, SHARD_EIO, "%s: %s", tmp, strerror(e));
    }
    if (fclose(f) != 0 || rename(tmp, final) != 0) {
        unlink(tmp);
        return shard_errf(err, SHARD_EIO, "%s: %s", final, strerror(errno));
    }
    shard_sync_dir(dir); /* the manifest is in place either way */
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

static uint64_t get_u64(shard_json_value obj, const char *key)
{
    shard_json_value v;
    int64_t i;

    if (shard_json_get(obj, key, strlen(key), &v) &&
        shard_json_get_int64(v, &i) && i >= 0)
        return (uint64_t)i;
    return 0;
}

static uint64_t get_hex(shard_json_value obj, const char *key)
{
    char buf[17];
    const char *s;
    size_t n;
    shard_json_value v;

    if (!shard_json_get(obj, key, strlen(key), &v) ||
        !shard_json_get_string(v, &s, &n) || n > 16)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return strtoull(buf, NULL, 16);
}

static void get_str(shard_json_value obj, const char *key, char *dst,
                    size_t cap)
{
    shard_json_value v;
    const char *s;
    size_t n;

    dst[0] = '\0';
    if (shard_json_get(obj, key, strlen(key), &v) &&
        shard_json_get_string(v, &s, &n))
        snprintf(dst, cap, "%.*s", (int)n, s);
}

static void read_accounting(shard_json_value root, shard_accounting *a)
{
    shard_json_value acc, by, v;

    if (shard_json_get(root, "records", 7, &v))
        for (int l = 0; l < SHARD_LABEL_COUNT; l++)
            a->kept_by_label[l] = get_u64(v, shard_label_name(l));
    if (shard_json_get(root, "tokens", 6, &v))
        for (int l = 0; l < SHARD_LABEL_COUNT; l++)
            a->tokens_by_label[l] = get_u64(v, shard_label_name(l));
    a->pairs = get_u64(root, "pairs");
    if (!shard_json_get(root, "accounting", 10, &acc))
        return;
    a->rows_read = get_u64(acc, "rows_read");
    a->rows_invalid = get_u64(acc, "rows_invalid");
    a->records = get_u64(acc, "records");
    a->kept = get_u64(acc, "kept");
    a->duplicate = get_u64(acc, "duplicate");
    a->near_duplicate = get_u64(acc, "near_duplicate");
    a->conflict = get_u64(acc, "conflict");
    a->replaced_utf8 = get_u64(acc, "replaced_utf8");
    a->special_text = get_u64(acc, "special_text");
    a->inputs_failed = get_u64(acc, "inputs_failed");
    a->pairs_duplicate = get_u64(acc, "pairs_duplicate");
    a->pairs_dropped = get_u64(acc, "pairs_dropped");
    a->near_candidates = get_u64(acc, "near_candidates");
    if (shard_json_get(acc, "invalid_by_reason", 17, &by))
        for (int r = 0; r < SHARD_REASONS; r++)
            a->invalid_by_reason[r] = get_u64(by, shard_reason_label(r));
}

static int read_shards(shard_json_value root, shard_manifest *m)
{
    shard_json_value list, s;
    shard_json_iter it;
    char label[8];

    if (!shard_json_get(root, "shards", 6, &list) ||
        !shard_json_array_iter(list, &it))
        return 0;
    m->shards = calloc(shard_json_size(list) + 1, sizeof(*m->shards));
    if (!m->shards)
        return SHARD_ENOMEM;
    while (shard_json_array_next(&it, &s)) {
        shard_manifest_shard *d = &m->shards[m->n_shards++];

        get_str(s, "path", d->path, sizeof(d->path));
        get_str(s, "label", label, sizeof(label));
        d->label = shard_label_parse(label);
        d->records = get_u64(s, "records");
        d->tokens = get_u64(s, "tokens");
        d->bytes = get_u64(s, "bytes");
        d->checksum = get_hex(s, "checksum");
    }
    return 0;
}

static int read_inputs(shard_json_value root, shard_manifest *m)
{
    shard_json_value list, s;
    shard_json_iter it;

    if (!shard_json_get(root, "inputs", 6, &list) ||
        !shard_json_array_iter(list, &it))
        return 0;
    m->inputs = calloc(shard_json_size(list) + 1, sizeof(*m->inputs));
    if (!m->inputs)
        return SHARD_ENOMEM;
    while (shard_json_array_next(&it, &s)) {
        shard_manifest_input *d = &m->inputs[m->n_inputs++];

        get_str(s, "path", d->path, sizeof(d->path));
        get_str(s, "format", d->format, sizeof(d->format));
        get_str(s, "error", d->error, sizeof(d->error));
        d->rows_read = get_u64(s, "rows_read");
        d->rows_kept = get_u64(s, "rows_kept");
        d->rows_invalid = get_u64(s, "rows_invalid");
        d->records = get_u64(s, "records");
        d->kept = get_u64(s, "kept");
    }
    return 0;
}

/* An unsigned field that may be absent: `dflt` then. */
static uint32_t get_u32_or(shard_json_value obj, const char *key,
                           uint32_t dflt)
{
    shard_json_value v;
    int64_t i;

    if (shard_json_get(obj, key, strlen(key), &v) &&
        shard_json_get_int64(v, &i) && i >= 0 && i <= UINT32_MAX)
        return (uint32_t)i;
    return dflt;
}

/* "options" and the tokenizer's added_tokens, into m->opt. */
static void read_options(shard_json_value root, shard_json_value tok,
                         shard_manifest *m)
{
    shard_compile_options def = SHARD_COMPILE_OPTIONS_INIT;
    shard_compile_options *o = &m->opt;
    shard_json_value v, b;
    char s[16];

    *o = def;
    get_str(tok, "added_tokens", s, sizeof(s));
    o->hf_added_tokens = strcmp(s, "tokens") == 0;
    if (!shard_json_get(root, "options", 7, &v))
        return;
    get_str(v, "codec", s, sizeof(s));
    o->codec = strcmp(s, "none") == 0 ? SHARD_CODEC_NONE : SHARD_CODEC_ZSTD;
    o->zstd_level = (int)get_u32_or(v, "zstd_level", 3);
    o->shard_size = get_u64(v, "shard_size");
    o->frame_size = get_u64(v, "frame_size");
    if (shard_json_get(v, "text", 4, &b))
        shard_json_get_bool(b, &o->with_text);
    get_str(v, "normalize", s, sizeof(s));
    o->normalize = shard_normalize_parse(s);
    get_str(v, "conflicts", s, sizeof(s));
    o->conflicts = shard_conflicts_parse(s);
    if (shard_json_get(v, "near_dup", 8, &b))
        shard_json_get_double(b, &o->near_dup);
    get_str(v, "near_dup_scope", s, sizeof(s));
    o->near_dup_scope = strcmp(s, "stream") == 0;
    o->near_dup_seed = get_u64(v, "near_dup_seed");
}

static int read_rules(shard_json_value root, shard_manifest *m)
{
    shard_json_value list, r;
    shard_json_iter it;
    const char *s;
    size_t n;

    if (!shard_json_get(root, "label_rules", 11, &list) ||
        !shard_json_array_iter(list, &it))
        return 0;
    m->rules = calloc(shard_json_size(list) + 1, sizeof(*m->rules));
    if (!m->rules)
        return SHARD_ENOMEM;
    while (shard_json_array_next(&it, &r))
        if (shard_json_get_string(r, &s, &n))
            snprintf(m->rules[m->n_rules++], sizeof(*m->rules), "%.*s",
                     (int)n, s);
    return 0;
}

/* The "merge" object's list of datasets joined. */
static int read_merged(shard_json_value v, shard_manifest *m)
{
    shard_json_value list, e;
    shard_json_iter it;
    size_t n = 0;

    if (!shard_json_get(v, "datasets", 8, &list) ||
        !shard_json_array_iter(list, &it))
        return 0;
    m->merge_paths = calloc(shard_json_size(list) + 1,
                            sizeof(*m->merge_paths));
    m->merge_first = calloc(shard_json_size(list) + 1,
                            sizeof(*m->merge_first));
    if (!m->merge_paths || !m->merge_first)
        return SHARD_ENOMEM;
    while (shard_json_array_next(&it, &e)) {
        get_str(e, "path", m->merge_paths[n], sizeof(*m->merge_paths));
        m->merge_first[n++] = get_u64(e, "first_input");
    }
    m->merge.datasets = n;
    return 0;
}

static int read_merge(shard_json_value root, shard_manifest *m)
{
    shard_merge_stats *st = &m->merge;
    shard_json_value v, d;

    if (!shard_json_get(root, "merge", 5, &v))
        return 0;
    m->merged = 1;
    if (shard_json_get(v, "dedup", 5, &d))
        shard_json_get_bool(d, &st->dedup);
    st->duplicate = get_u64(v, "duplicate");
    st->conflict = get_u64(v, "conflict");
    st->recounted = get_u64(v, "recounted");
    st->pairs_duplicate = get_u64(v, "pairs_duplicate");
    st->pairs_dropped = get_u64(v, "pairs_dropped");
    st->pairs_recounted = get_u64(v, "pairs_recounted");
    st->linked = get_u64(v, "linked");
    st->copied = get_u64(v, "copied");
    return read_merged(v, m);
}

static int slurp(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf = NULL;

    if (!f)
        return shard_set_last_error(errno == ENOENT ? SHARD_ENOTFOUND
                                                    : SHARD_EIO,
                                    "%s: %s", path, strerror(errno));
    for (;;) {
        char *b = realloc(buf, cap + SHARD_JSON_PADDING);

        if (!b) {
            free(buf);
            fclose(f);
            return shard_set_last_error(SHARD_ENOMEM, "out of memory");
        }
        buf = b;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
    }
    fclose(f);
    memset(buf + n, 0, SHARD_JSON_PADDING);
    *out = buf;
    *len = n;
    return 0;
}

int shard_manifest_read(const char *dir, shard_manifest *m)
{
    char path[4400], *text = NULL;
    shard_json_parser *p;
    shard_json_value root, tok;
    size_t len = 0;
    int rc;

    memset(m, 0, sizeof(*m));
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    if ((rc = slurp(path, &text, &len)) < 0)
        return rc;
    if ((rc = shard_json_parser_new(&p)) < 0) {
        free(text);
        return shard_set_last_error(rc, "out of memory");
    }
    rc = shard_json_parse(p, text, len, &root);
    if (rc < 0 || shard_json_typeof(root) != SHARD_JSON_OBJECT) {
        shard_set_last_error(SHARD_ECORRUPT, "%s: %s", path,
                             rc < 0 ? shard_json_errmsg(p)
                                    : "not a JSON object");
        rc = SHARD_ECORRUPT;
    } else {
        get_str(root, "schema", m->schema, sizeof(m->schema));
        m->format_version = (int)get_u32_or(root, "format_version", 0);
        m->bos_id = m->eos_id = SHARD_NO_TOKEN;
        if (shard_json_get(root, "tokenizer", 9, &tok)) {
            get_str(tok, "name", m->tokenizer, sizeof(m->tokenizer));
            get_str(tok, "template", m->template_name,
                    sizeof(m->template_name));
            m->vocab_size = (uint32_t)get_u64(tok, "vocab_size");
            m->tokenizer_hash = get_hex(tok, "hash");
            m->bos_id = get_u32_or(tok, "bos_id", SHARD_NO_TOKEN);
            m->eos_id = get_u32_or(tok, "eos_id", SHARD_NO_TOKEN);
            read_options(root, tok, m);
        } else {
            read_options(root, root, m);
        }
        read_accounting(root, &m->acct);
        if ((rc = read_merge(root, m)) < 0 ||
            (rc = read_shards(root, m)) < 0 ||
            (rc = read_inputs(root, m)) < 0 ||
            (rc = read_rules(root, m)) < 0)
            shard_set_last_error(rc, "out of memory");
    }
    shard_json_parser_free(p);
    free(text);
    return rc;
}

void shard_manifest_free(shard_manifest *m)
{
    free(m->shards);
    free(m->inputs);
    free(m->rules);
    free(m->merge_paths);
    free(m->merge_first);
    memset(m, 0, sizeof(*m));
}
