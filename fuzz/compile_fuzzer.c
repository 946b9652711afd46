/*
 * compile_fuzzer.c - fuzzes the compile-then-read round trip: what goes
 * into shard_compile() comes out of the reader side.
 *
 * The first three bytes pick options (see pick_options); the rest is the
 * input, written to one file or, split at a line break, two, in a private
 * directory under $TMPDIR (else /dev/shm, else /tmp).  The input is
 * compiled with small shards and frames, so that several of each occur,
 * on one thread, auto-detecting the schema.  For each input the harness
 * checks, and aborts when one fails:
 *   1. The compile succeeds, or fails with a negative code and leaves no
 *      manifest.json: for an unreadable input without --keep-going, or an
 *      invalid row under --strict (which only then fails).  Every message
 *      it logs is one line under SHARD_ERRMAX bytes.
 *   2. The accounting holds: rows_read is the number of rows the input
 *      layer gives that are not blank (when every input read to its end),
 *      rows_invalid the sum of its reasons, records = kept + duplicate +
 *      near_duplicate + conflict, kept the sum of kept_by_label; each
 *      input's figures add up to the totals.
 *   3. manifest.json reads back with the same accounting, and its shards
 *      hold kept_by_label records and tokens_by_label tokens per label.
 *   4. Each label stream opens as a dataset of kept_by_label records of
 *      that label, whose tokens are ids of the tokenizer and decode; with
 *      the text stored, the text is valid UTF-8, its ids and dedup key are
 *      those of its messages, and its prompt and response tokens decode to
 *      the template's rendering of the messages.  No two records of a
 *      label share a dedup key; two labels share one only under
 *      --conflicts keep, both records flagged.
 *   5. Every row of the pairs table names a chosen and a rejected record
 *      present in the dataset, the chosen one under the row's prompt id;
 *      the dataset opened for pairs joins every row.
 *   6. Every shard verifies without a problem.
 *   7. Compiling the same input again gives the same files, byte for byte.
 * Inputs over INPUT_LIMIT bytes are skipped, to keep each run to two small
 * compiles.  The temporary files go after each input; the directory at
 * exit (it stays after a finding, with the files that made it).
 *
 * The corpus, fuzz/corpus/compile: rows of every schema, with duplicates,
 * conflicts, pairs and invalid rows, under a spread of option bytes.
 * Inputs that show an open bug wait in fuzz/corpus/open (README.md there).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile_internal.h"
#include "dedup.h"
#include "fuzz.h"
#include "ingest_input.h"
#include "internal.h"
#include "shard_pairs.h"
#include "shard_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define INPUT_LIMIT 8192

/*
 * The tokenizers: a small byte-level BPE written to the private directory
 * at start (most inputs: a published vocabulary takes longer to load than
 * a small compile takes to run), r50k_base (16-bit ids) and cl100k_base.
 */
enum { TOK_SMALL, TOK_R50K, TOK_CL100K, TOKENIZERS };
static char small_path[300];
static const char *tokenizer_specs[TOKENIZERS] = {small_path, "r50k_base",
                                                  "cl100k_base"};
static shard_tokenizer *tokenizers[TOKENIZERS];
static char root[256]; /* the private directory */

/* Merges of the small tokenizer, in the byte-level alphabet. */
static const char *const small_merges[][2] = {
    {"t", "h"},  {"th", "e"}, {"\u0120", "t"}, {"\u0120t", "h"},
    {"i", "n"},  {"e", "r"},  {"a", "n"},      {"o", "n"},
    {"\u0120th", "e"}, {"r", "e"}, {"e", "s"},  {"\u0120", "s"},
};

/* Added tokens of the small tokenizer: chatml's markers and an end. */
static const char *const small_added[] = {"<|endoftext|>", "<|im_start|>",
                                          "<|im_end|>"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Writes byte b as its character of GPT-2's byte-level alphabet: the
 * printable Latin-1 bytes stand for themselves, the others for U+0100
 * onwards in byte order; JSON-escaped.
 */
static void put_byte_token(FILE *f, int b)
{
    int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
                    (b >= 0xae && b <= 0xff);
    int cp = b, next = 256;

    if (!printable) {
        for (int k = 0; k < b; k++)
            next += !((k >= 0x21 && k <= 0x7e) || (k >= 0xa1 && k <= 0xac) ||
                      (k >= 0xae && k <= 0xff));
        cp = next;
    }
    fprintf(f, cp == '"' || cp == '\\' ? "\"\\%c\"" : "\"\\u%04x\"", cp);
}

static void write_small_tokenizer(const char *path)
{
    FILE *f = fopen(path, "w");
    size_t id = 256;

    REQUIRE(f != NULL);
    fputs("{\"added_tokens\": [", f);
    for (size_t i = 0; i < COUNT_OF(small_added); i++)
        fprintf(f, "%s{\"id\": %zu, \"content\": \"%s\", \"special\": true}",
                i ? ", " : "", 256 + COUNT_OF(small_merges) + i,
                small_added[i]);
    fputs("], \"normalizer\": null, \"pre_tokenizer\": {\"type\": "
          "\"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": "
          "true}, \"model\": {\"type\": \"BPE\", \"vocab\": {", f);
    for (int b = 0; b < 256; b++) {
        put_byte_token(f, b);
        fprintf(f, ": %d, ", b);
    }
    for (size_t i = 0; i < COUNT_OF(small_merges); i++)
        fprintf(f, "%s\"%s%s\": %zu", i ? ", " : "", small_merges[i][0],
                small_merges[i][1], id++);
    fputs("}, \"merges\": [", f);
    for (size_t i = 0; i < COUNT_OF(small_merges); i++)
        fprintf(f, "%s\"%s %s\"", i ? ", " : "", small_merges[i][0],
                small_merges[i][1]);
    fputs("]}}\n", f);
    REQUIRE(fclose(f) == 0);
}

/* What the option bytes chose, beside the compile options. */
typedef struct {
    shard_compile_options o;
    int n_inputs;
    const shard_tokenizer *tok;
} plan;

/* A kept record, as read back. */
typedef struct {
    uint64_t record_id, prompt_id;
    int label;
    uint32_t flags;
    shard_key key; /* zero without text */
} kept_record;

typedef struct {
    kept_record *r;
    size_t n, cap;
} kept_list;

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *f)
{
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_root(void)
{
    remove_tree(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    struct stat st;

    if (!tmp || !tmp[0])
        tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                      access("/dev/shm", W_OK) == 0
                  ? "/dev/shm"
                  : "/tmp";
    snprintf(root, sizeof(root), "%s/cf.XXXXXX", tmp);
    REQUIRE(mkdtemp(root) != NULL);
    atexit(remove_root);
    snprintf(small_path, sizeof(small_path), "%s/tok.json", root);
    write_small_tokenizer(small_path);
    for (int i = 0; i < TOKENIZERS; i++) {
        if (shard_tokenizer_open(&tokenizers[i], tokenizer_specs[i]) != 0) {
            fprintf(stderr, "compile_fuzzer: %s (make vocab fetches "
                    "the published ones)\n", shard_last_error());
            exit(1);
        }
    }
    return 0;
}

/*
 * Byte 0: bits 0-1 the conflict policy, 2-3 the normalisation (3 is ws),
 * 4 no text, 5 codec none, 6 --strict, 7 HF added tokens.  Byte 1: bits
 * 0-2 the template (mod 5), 3 near duplicates at 0.5, 4 two inputs, 5
 * --keep-going, 6-7 the size of shards (1 KiB << k) and frames (32 << k
 * bytes).  Byte 2: the tokenizer, r50k_base when it is 0xfe, cl100k_base
 * when 0xff, else the small one.
 */
#define OPTION_BYTES 3

static void pick_options(const uint8_t *d, plan *p)
{
    static const shard_compile_options init = SHARD_COMPILE_OPTIONS_INIT;
    int k = d[1] >> 6;
    int tok = d[2] == 0xff ? TOK_CL100K : d[2] == 0xfe ? TOK_R50K
                                                        : TOK_SMALL;

    p->o = init;
    p->o.conflicts = d[0] & 3;
    p->o.normalize = (d[0] >> 2 & 3) % 3;
    p->o.with_text = !(d[0] & 16);
    p->o.codec = d[0] & 32 ? SHARD_CODEC_NONE : SHARD_CODEC_ZSTD;
    p->o.strict = d[0] >> 6 & 1;
    p->o.hf_added_tokens = d[0] >> 7;
    p->o.template_name = shard_template_names[(d[1] & 7) % 5];
    p->o.near_dup = d[1] & 8 ? 0.5 : 0.0;
    p->n_inputs = d[1] & 16 ? 2 : 1;
    p->o.keep_going = d[1] >> 5 & 1;
    p->o.shard_size = 1024ull << k;
    p->o.frame_size = 32ull << k;
    p->o.tokenizer = tokenizer_specs[tok];
    p->tok = tokenizers[tok];
    p->o.threads = 1;
}

static void put_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");

    REQUIRE(f != NULL);
    REQUIRE(n == 0 || fwrite(d, 1, n, f) == n);
    REQUIRE(fclose(f) == 0);
}

/*
 * Writes the input as one file or two (cut after the first line break in
 * its second half); fills paths[] and returns how many.
 */
static int write_inputs(const uint8_t *d, size_t n, int two, char *paths[2])
{
    static char names[2][300];
    size_t cut = n;

    for (int i = 0; i < 2; i++) {
        snprintf(names[i], sizeof(names[i]), "%s/%c.jsonl", root, 'a' + i);
        paths[i] = names[i];
    }
    if (two) {
        const uint8_t *nl = memchr(d + n / 2, '\n', n - n / 2);

        cut = nl ? (size_t)(nl - d) + 1 : n;
    }
    put_file(paths[0], d, cut);
    if (!two)
        return 1;
    put_file(paths[1], d + cut, n - cut);
    return 2;
}

/* The last error the compile logged, shown when it fails unexpectedly. */
static char last_error[SHARD_ERRMAX];

static void on_log(void *ctx, shard_msg_level level, const char *msg)
{
    size_t len = strnlen(msg, SHARD_ERRMAX);

    REQUIRE(len > 0 && len < SHARD_ERRMAX);
    REQUIRE(strchr(msg, '\n') == NULL);
    if (level == SHARD_MSG_ERROR)
        memcpy(last_error, msg, len + 1);
}

/* Rows the input layer gives that the compiler reads: -1 when an input
 * did not read to its end. */
static long count_rows(char *const *paths, int n, size_t max_row)
{
    long rows = 0;

    for (int i = 0; i < n; i++) {
        shard_input *in;
        shard_line l;
        int rc;

        if (shard_input_open(&in, paths[i], max_row) != 0)
            return -1;
        while ((rc = shard_input_next(in, &l)) > 0) {
            int blank = 1;

            for (size_t k = 0; k < l.len && blank; k++)
                blank = l.text[k] == ' ' || l.text[k] == '\t' ||
                        l.text[k] == '\r' || l.text[k] == '\n';
            rows += l.problem || !blank;
        }
        shard_input_close(in);
        if (rc < 0)
            return -1;
    }
    return rows;
}

static void check_accounting(const shard_accounting *a, long rows)
{
    uint64_t invalid = 0, kept = 0;

    for (int r = 0; r < SHARD_REASONS; r++)
        invalid += a->invalid_by_reason[r];
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        kept += a->kept_by_label[l];
    REQUIRE(invalid == a->rows_invalid && a->rows_invalid <= a->rows_read);
    REQUIRE(a->records ==
            a->kept + a->duplicate + a->near_duplicate + a->conflict);
    REQUIRE(kept == a->kept);
    REQUIRE(rows < 0 || a->inputs_failed > 0 ||
            a->rows_read == (uint64_t)rows);
}

/* manifest.json: the same accounting, inputs and shards adding up. */
static void check_manifest(const char *dir, const shard_accounting *a,
                           int n_inputs)
{
    shard_manifest m;
    uint64_t rows = 0, invalid = 0, records = 0, kept = 0;
    uint64_t by_label[SHARD_LABEL_COUNT] = {0}, tokens[SHARD_LABEL_COUNT] =
                                                    {0};

    REQUIRE(shard_manifest_read(dir, &m) == 0);
    REQUIRE(memcmp(&m.acct, a, sizeof(*a)) == 0);
    REQUIRE(m.n_inputs == (size_t)n_inputs);
    for (size_t i = 0; i < m.n_inputs; i++) {
        const shard_manifest_input *in = &m.inputs[i];

        REQUIRE(in->rows_read == in->rows_kept + in->rows_invalid);
        rows += in->rows_read;
        invalid += in->rows_invalid;
        records += in->records;
        kept += in->kept;
    }
    REQUIRE(rows == a->rows_read && invalid == a->rows_invalid);
    REQUIRE(records == a->records && kept == a->kept);
    for (size_t i = 0; i < m.n_shards; i++) {
        REQUIRE(m.shards[i].label >= 0 &&
                m.shards[i].label < SHARD_LABEL_COUNT);
        by_label[m.shards[i].label] += m.shards[i].records;
        tokens[m.shards[i].label] += m.shards[i].tokens;
    }
    REQUIRE(memcmp(by_label, a->kept_by_label, sizeof(by_label)) == 0);
    REQUIRE(memcmp(tokens, a->tokens_by_label, sizeof(tokens)) == 0);
    shard_manifest_free(&m);
}

static void on_problem(void *ctx, const char *msg)
{
    abort(); /* a shard the compiler wrote must verify */
}

static void check_verify(const char *dir)
{
    shard_manifest m;
    char path[640];

    REQUIRE(shard_manifest_read(dir, &m) == 0);
    for (size_t i = 0; i < m.n_shards; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, m.shards[i].path);
        REQUIRE(shard_verify_file(path, on_problem, NULL) == 0);
    }
    shard_manifest_free(&m);
}

/* Appends the text of ids[0..n) to *b (which need not be empty). */
static void decode_ids(const shard_tokenizer *t, const uint32_t *ids,
                       size_t n, shard_strbuf *b)
{
    REQUIRE(shard_tokenizer_decode(t, ids, n, &b->p, &b->len, &b->cap) == 0);
}

/*
 * A rendering as the tokens must decode to: each structural marker (0xFF
 * and a little-endian id, template.c) replaced by its token's text.
 */
static void expand_markers(const shard_tokenizer *t, const shard_strbuf *r,
                           shard_strbuf *out)
{
    size_t at = 0;

    out->len = 0;
    while (at < r->len) {
        const char *mark = memchr(r->p + at, 0xff, r->len - at);
        size_t run = mark ? (size_t)(mark - (r->p + at)) : r->len - at;
        uint32_t id = 0;

        REQUIRE(shard_strbuf_append(out, r->p + at, run) == 0);
        at += run;
        if (!mark)
            break;
        REQUIRE(r->len - at >= 5);
        for (int i = 0; i < 4; i++)
            id |= (uint32_t)(unsigned char)r->p[at + 1 + i] << (8 * i);
        decode_ids(t, &id, 1, out);
        at += 5;
    }
}

static int same_text(const shard_strbuf *a, const shard_strbuf *b)
{
    return a->len == b->len && (a->len == 0 ||
                                memcmp(a->p, b->p, a->len) == 0);
}

/* Scratch buffers of one check, reused from record to record. */
typedef struct {
    const plan *p;
    const shard_template *tpl;
    uint32_t *ids;
    size_t cap_ids;
    shard_message *msgs;
    size_t cap_msgs;
    shard_strbuf prompt, response, want, got;
} reading;

/* Checks a record's stored text against its ids, key and tokens. */
static void check_text(reading *g, shard_reader *r, uint64_t local,
                       const shard_record *rec, kept_record *k)
{
    const shard_tokenizer *t = g->p->tok;
    shard_text text;

    REQUIRE(shard_reader_text(r, local, &text) == 0);
    REQUIRE(text.n_messages >= 1);
    REQUIRE(shard_grow((void **)&g->msgs, &g->cap_msgs, text.n_messages,
                       sizeof(*g->msgs)) == 0);
    for (size_t i = 0; i < text.n_messages; i++) {
        const shard_text_message *m = &text.messages[i];

        REQUIRE(utf8_valid(m->role, m->role_len));
        REQUIRE(utf8_valid(m->content, m->content_len));
        g->msgs[i] = (shard_message){m->role, m->role_len, m->content,
                                     m->content_len};
    }
    REQUIRE(rec->prompt_id ==
            shard_prompt_id(g->msgs, text.n_messages - 1));
    REQUIRE(shard_key_record(&k->key, g->msgs, text.n_messages,
                             g->p->o.normalize) == 0);
    /* Under none and nfkc the id is 64 bits of the key (FORMAT.md). */
    if (g->p->o.normalize == SHARD_NORM_WS)
        REQUIRE(rec->record_id ==
                shard_record_id(g->msgs, text.n_messages));
    else
        REQUIRE(rec->record_id == (k->key.lo ? k->key.lo : k->key.hi));

    REQUIRE(shard_template_render(g->tpl, g->msgs, text.n_messages,
                                  &g->prompt, &g->response) == 0);
    expand_markers(t, &g->prompt, &g->want);
    g->got.len = 0;
    decode_ids(t, g->ids, rec->prompt_len, &g->got);
    REQUIRE(same_text(&g->got, &g->want));
    expand_markers(t, &g->response, &g->want);
    g->got.len = 0;
    decode_ids(t, g->ids + rec->prompt_len,
               rec->n_tokens - rec->prompt_len, &g->got);
    REQUIRE(same_text(&g->got, &g->want));
    shard_text_free(&text);
}

/*
 * Checks record i of a label stream and adds it to the kept list.
 * Returns its number of tokens.
 */
static size_t check_record(reading *g, shard_dataset *d, uint64_t i,
                           int label, kept_list *kept)
{
    const shard_tokenizer *t = g->p->tok;
    shard_record rec;
    shard_reader *r;
    uint64_t local;
    kept_record k;

    REQUIRE(shard_dataset_get(d, i, &rec) == 0);
    REQUIRE(rec.label == label && rec.prompt_len <= rec.n_tokens);
    REQUIRE(shard_grow((void **)&g->ids, &g->cap_ids, rec.n_tokens + 1,
                       sizeof(*g->ids)) == 0);
    for (size_t j = 0; j < rec.n_tokens; j++) {
        g->ids[j] = shard_record_token(&rec, j);
        REQUIRE(g->ids[j] < shard_tokenizer_vocab_size(t));
    }
    g->got.len = 0;
    decode_ids(t, g->ids, rec.n_tokens, &g->got);

    k = (kept_record){rec.record_id, rec.prompt_id, label, rec.flags,
                      {0, 0}};
    r = shard_dataset_reader_of(d, i, &local);
    if (g->p->o.with_text)
        check_text(g, r, local, &rec, &k);
    REQUIRE(shard_grow((void **)&kept->r, &kept->cap, kept->n + 1,
                       sizeof(*kept->r)) == 0);
    kept->r[kept->n++] = k;
    shard_record_release(&rec);
    return rec.n_tokens;
}

/* Reads every label stream back; fills the kept list. */
static void check_streams(const char *dir, const plan *p,
                          const shard_accounting *a, kept_list *kept)
{
    reading g = {p, NULL, NULL, 0, NULL, 0, {0}, {0}, {0}, {0}};
    shard_template *tpl;

    REQUIRE(shard_template_open(&tpl, p->o.template_name, p->tok, NULL,
                                0) == 0);
    g.tpl = tpl;
    for (int label = 0; label < SHARD_LABEL_COUNT; label++) {
        shard_dataset *d;
        uint64_t tokens = 0;

        REQUIRE(shard_dataset_open(&d, dir, label, NULL) == 0);
        REQUIRE(shard_dataset_count(d) == a->kept_by_label[label]);
        for (uint64_t i = 0; i < shard_dataset_count(d); i++)
            tokens += check_record(&g, d, i, label, kept);
        REQUIRE(tokens == a->tokens_by_label[label]);
        shard_dataset_close(d);
    }
    shard_template_close(tpl);
    free(g.ids);
    free(g.msgs);
    shard_strbuf_free(&g.prompt);
    shard_strbuf_free(&g.response);
    shard_strbuf_free(&g.want);
    shard_strbuf_free(&g.got);
}

static int key_cmp(const void *pa, const void *pb)
{
    const kept_record *a = pa, *b = pb;

    if (a->key.hi != b->key.hi)
        return a->key.hi < b->key.hi ? -1 : 1;
    if (a->key.lo != b->key.lo)
        return a->key.lo < b->key.lo ? -1 : 1;
    return a->label - b->label;
}

/* Kept records share a key only across labels, under conflicts keep. */
static void check_keys(kept_list *kept, const plan *p)
{
    if (!p->o.with_text || kept->n < 2)
        return;
    qsort(kept->r, kept->n, sizeof(*kept->r), key_cmp);
    for (size_t i = 1; i < kept->n; i++) {
        const kept_record *a = &kept->r[i - 1], *b = &kept->r[i];

        if (a->key.hi != b->key.hi || a->key.lo != b->key.lo)
            continue;
        REQUIRE(a->label != b->label);
        REQUIRE(p->o.conflicts == SHARD_CONFLICTS_KEEP);
        REQUIRE(a->flags & b->flags & SHARD_RECORD_FLAG_CONFLICT);
    }
}

/* The kept record with this id, or NULL. */
static const kept_record *find_record(const kept_list *kept, uint64_t id)
{
    for (size_t i = 0; i < kept->n; i++)
        if (kept->r[i].record_id == id)
            return &kept->r[i];
    return NULL;
}

static void check_pairs(const char *dir, const shard_accounting *a,
                        const kept_list *kept)
{
    char path[600];
    shard_pairs *t;
    shard_dataset *d;
    shard_dataset_options o = SHARD_DATASET_OPTIONS_INIT;
    const shard_pair *rows;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, SHARD_PAIRS_PATH);
    rc = shard_pairs_open(&t, path);
    if (rc == SHARD_ENOTFOUND && a->pairs == 0)
        return;
    REQUIRE(rc == 0 && shard_pairs_count(t) == a->pairs);
    rows = shard_pairs_rows(t);
    for (uint64_t i = 0; i < a->pairs; i++) {
        const kept_record *c = find_record(kept, rows[i].chosen);

        REQUIRE(c != NULL && c->prompt_id == rows[i].prompt_id);
        REQUIRE(find_record(kept, rows[i].rejected) != NULL);
        REQUIRE(rows[i].chosen != rows[i].rejected);
    }
    shard_pairs_close(t);

    o.select = SHARD_SELECT_PAIRS;
    REQUIRE(shard_dataset_open_with(&d, dir, &o) == 0);
    REQUIRE(shard_dataset_pairs(d) == a->pairs);
    shard_dataset_close(d);
}

/* The whole file at path, malloc'd, into *data and *n. */
static void slurp(const char *path, char **data, size_t *n)
{
    FILE *f = fopen(path, "rb");
    long len;

    REQUIRE(f != NULL);
    REQUIRE(fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0);
    rewind(f);
    *data = malloc((size_t)len + 1);
    REQUIRE(*data != NULL);
    REQUIRE(fread(*data, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
}

static int entry_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    REQUIRE(d != NULL);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Directories a and b hold the same names, and files of the same bytes. */
static void same_tree(const char *a, const char *b)
{
    DIR *d = opendir(a);
    struct dirent *e;
    char pa[1024], pb[1024];
    struct stat st;

    REQUIRE(d != NULL);
    REQUIRE(entry_count(a) == entry_count(b));
    while ((e = readdir(d)) != NULL) {
        char *x, *y;
        size_t nx, ny;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(pa, sizeof(pa), "%s/%s", a, e->d_name);
        snprintf(pb, sizeof(pb), "%s/%s", b, e->d_name);
        REQUIRE(lstat(pa, &st) == 0);
        if (S_ISDIR(st.st_mode)) {
            same_tree(pa, pb);
            continue;
        }
        slurp(pa, &x, &nx);
        slurp(pb, &y, &ny);
        REQUIRE(nx == ny && memcmp(x, y, nx) == 0);
        free(x);
        free(y);
    }
    closedir(d);
}

/* Compiles the inputs into root/NAME; returns shard_compile's code. */
static int compile_into(const char *name, char *const *paths, int n,
                        const plan *p, shard_accounting *a, char *dir,
                        size_t cap)
{
    shard_compile_options o = p->o;

    snprintf(dir, cap, "%s/%s", root, name);
    o.log = on_log;
    memset(a, 0, sizeof(*a));
    return shard_compile((const char *const *)paths, (size_t)n, dir, &o,
                         a);
}

/*
 * A compile that failed: an input it could not read (not with
 * --keep-going), or an invalid row under --strict; no manifest.json.
 */
static void check_failed(int rc, const plan *p, const char *dir)
{
    char manifest[400];
    int expected = rc != SHARD_EINVAL &&
                   (!p->o.keep_going || (p->o.strict && rc == SHARD_EINPUT));

    if (!expected)
        fprintf(stderr, "compile_fuzzer: compile failed (%s): %s\n",
                shard_strerror(rc), last_error);
    REQUIRE(expected);
    snprintf(manifest, sizeof(manifest), "%s/manifest.json", dir);
    REQUIRE(access(manifest, F_OK) != 0 && errno == ENOENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *paths[2], dir[320], again[320];
    shard_accounting a, b;
    kept_list kept = {NULL, 0, 0};
    plan p;
    int n, rc;

    if (size < OPTION_BYTES || size > INPUT_LIMIT || !root[0])
        return 0;
    pick_options(data, &p);
    n = write_inputs(data + OPTION_BYTES, size - OPTION_BYTES,
                     p.n_inputs == 2, paths);

    last_error[0] = '\0';
    rc = compile_into("out", paths, n, &p, &a, dir, sizeof(dir));
    if (rc < 0) {
        check_failed(rc, &p, dir);
        goto out;
    }
    REQUIRE(rc == 0 && (!p.o.strict || a.rows_invalid == 0));
    check_accounting(&a, count_rows(paths, n, p.o.max_line));
    check_manifest(dir, &a, n);
    check_streams(dir, &p, &a, &kept);
    check_pairs(dir, &a, &kept);
    check_keys(&kept, &p);
    check_verify(dir);

    REQUIRE(compile_into("again", paths, n, &p, &b, again,
                         sizeof(again)) == 0);
    REQUIRE(memcmp(&a, &b, sizeof(a)) == 0);
    same_tree(dir, again);
out:
    free(kept.r);
    remove_tree(dir);
    snprintf(again, sizeof(again), "%s/again", root);
    remove_tree(again);
    for (int i = 0; i < n; i++)
        remove(paths[i]);
    return 0;
}
