/*
 * compile.c - the compile driver: inputs -> rows -> records -> shards.
 *
 * Two sweeps, in input order (dedup.h says why).  The first maps every
 * row and notes each record's dedup key; the second maps them again and,
 * for each record, asks its fate, then: identity, template, tokens, and
 * the label stream.  Each sweep runs as a pipeline (see "the pipeline"
 * below): the per-row work in worker threads, everything that depends
 * on the rows before in input order on the main thread, so the output
 * does not depend on the number of workers.
 * The accounting identity rows_read = rows_invalid + rows that yielded
 * records, and records = kept + duplicate + near_duplicate + conflict, is
 * kept by construction: every branch below ends in exactly one counter.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile_append.h"
#include "compile_internal.h"
#include "dedup.h"
#include "minhash.h"
#include "ingest_input.h"
#include "internal.h"
#include "journal.h"
#include "json.h"
#include "pretok.h"
#include "schema.h"
#include "shard_mpi.h"
#include "shard_pairs.h"
#include "shard_tokenizer.h"

typedef struct {
    size_t first_msg, n_msgs;
    int label;
    double reward;
    int pair_group, pair_side;
    uint64_t prompt_id, record_id, pair_id;
    uint32_t flags; /* record flags column */
    int fate;       /* shard_fate, or FATE_NEAR */
    shard_key key;  /* dedup key */
    size_t tok_off, n_tokens; /* tokens in the batch (second sweep) */
    uint32_t prompt_len;
    uint64_t replaced;        /* UTF-8 replacements in its tokens */
    int special;              /* text holds an added-token string */
    int untokenized;          /* dropped for sure: no tokens were made */
} emitted;

typedef struct {
    size_t chosen, rejected; /* indices into recs */
    int kept;                /* written to the pairs table */
} emitted_pair;

/* Storage for text schemas build; blocks are kept from row to row. */
typedef struct text_block {
    struct text_block *next;
    size_t used, cap;
    char data[];
} text_block;

struct shard_emit {
    emitted *recs;
    size_t n, cap;
    shard_message *msgs;
    size_t n_msgs, cap_msgs;
    emitted_pair *pairs;
    size_t n_pairs, cap_pairs;
    const char *rules[SHARD_MAX_RULES]; /* rules this row used */
    size_t n_rules;
    text_block *text;
    shard_msgs scratch[SHARD_SCRATCH_LISTS];
    shard_json_parser *sub; /* for JSON embedded in strings */
    const void *state;
    shard_reason reason;
    char msg[SHARD_ERRMAX];
};

/*
 * The pipeline (-j N).  A reading thread reads rows into batches, and
 * the main thread commits, in input order, the batches the workers
 * finished: accounting, dedup, writing.  Workers parse, map, hash and
 * tokenize a batch at a time; they read the compiler's options,
 * tokenizer and template, never write it.  At most `cap` batches are in
 * flight, which bounds memory.
 */
#define BATCH_ROWS 256
#define BATCH_BYTES (1u << 20)

enum { ROW_SKIP, ROW_BAD, ROW_OK };

typedef struct {
    uint64_t seq;               /* the row's number in the sweep */
    shard_line line;            /* text, where, problem: batch copies */
    const shard_format *format; /* the member's schema, NULL if unknown */
    int detected;               /* the member's schema was found here */
    int status;                 /* ROW_* (worker) */
    const shard_format *mapped; /* schema the row was mapped with */
    shard_reason reason;        /* ROW_BAD */
    const char *msg;
    size_t first_rec, n_recs, first_msg, n_msgs, first_pair, n_pairs;
    size_t first_rule, n_rules;
} row_slot;

typedef struct {
    uint32_t input;          /* index of the input the rows are from */
    int first;               /* the input's first batch */
    int open_rc, read_rc;    /* the input failed to open, or to read */
    int end;                 /* the input's last batch */
    char msg[SHARD_ERRMAX];  /* why it failed */
    row_slot *rows;
    size_t n_rows, cap_rows, bytes;
    emitted *recs;
    size_t n_recs, cap_recs;
    shard_message *msgs;
    size_t n_msgs, cap_msgs;
    emitted_pair *pairs;
    size_t n_pairs, cap_pairs;
    const char **rules;
    size_t n_rules, cap_rules;
    shard_tokens toks;
    text_block *arena;       /* copies of rows, messages, messages' text */
    int rc;                  /* a worker's failure, with err */
    char err[SHARD_ERRMAX];
    int done;
    uint64_t in_pos;         /* input file bytes read when it was full */
    uint64_t seq;            /* the batch's number in the sweep */
} batch;

typedef struct {
    const shard_compile_options *opt;
    const char *outdir;
    shard_tokenizer *tok;
    shard_tokenizer_info tok_info;
    shard_template *tpl;
    shard_json_parser *json;
    shard_stream *streams[SHARD_LABEL_COUNT];
    shard_accounting *acct;
    shard_examples *examples;
    shard_input_stats *inputs;
    size_t n_inputs;
    const shard_format *fixed;  /* from --format, or NULL for auto */
    const shard_format *format; /* in force for the current input */
    void *fixed_state;          /* what fixed->prepare made */
    uint32_t member;            /* file or member the format is for */
    const char *schema;         /* what the manifest reports */
    const char *rules[SHARD_MAX_RULES];
    size_t n_rules;
    shard_pairs_writer *pairs;
    char err[SHARD_ERRMAX];
    shard_dedup *dedup;
    shard_near *near;         /* --near-dup, or NULL */
    shard_append *app;        /* --append, or NULL */
    uint32_t input_base;      /* inputs DIR listed before (--append) */
    int scanning;             /* first sweep: keys only */
    int restart;              /* the first sweep must run again */
    int quiet;                /* messages were given by the first sweep */
    char *const *paths;       /* the inputs, for the manifest */
    struct worker *workers;
    size_t n_workers;
    batch *slots;             /* cap batches, batch seq in slot seq % cap */
    batch **queue;            /* batches for the workers: a ring */
    size_t cap, q_head, q_len;
    int stop;                 /* the workers are to end */
    pthread_mutex_t mu;       /* guards queue, q_*, stop, batch.done and
                                 the reading thread's fields below */
    pthread_cond_t work_cv, done_cv;
    pthread_cond_t read_cv;   /* a batch was read, or the reading ended */
    pthread_cond_t free_cv;   /* a batch was committed: its slot is free */
    uint64_t next_read;       /* batches read in this sweep */
    uint64_t next_commit;     /* batches committed (or passed over) */
    int read_end;             /* the reading thread read its last batch */
    int read_stop;            /* the reading thread is to end */
    int read_rc;              /* its failure (SHARD_ENOMEM), or 0 */
    uint64_t bytes_done;      /* row bytes committed in this sweep */
    uint64_t in_total;        /* the inputs' sizes, 0 if one is unknown */
    shard_journal *journal;   /* committed shards; NULL for --append */
    shard_journal_state done; /* what the journal resumed from held */
    shard_journal_mark row_mark;              /* at the row committing */
    shard_journal_mark open_mark[SHARD_LABEL_COUNT]; /* open shard's */
    int open[SHARD_LABEL_COUNT];  /* the stream's shard has a record */
    shard_mpi *mpi;           /* --mpi: this rank's part, or NULL */
    const unsigned char *mine; /* --mpi: the inputs this rank reads */

    /*
     * What the first sweep knows the second will drop, so that workers
     * make no tokens for it (known_dropped): bit i of `repeats` is set
     * when record i of the sweep repeats an earlier key and label, and
     * batch_first[j] is the number of batch j's first record (batches are
     * cut the same way in both sweeps).  Both stay empty when the key
     * table went to disk and under --mpi.
     */
    uint64_t *repeats;
    size_t cap_repeats;
    uint64_t *batch_first;
    size_t n_batch_first, cap_batch_first;
    uint64_t scan_records;    /* records the first sweep noted so far */
} compiler;

/* A worker's own parser, emitter and buffers. */
typedef struct worker {
    compiler *c;
    pthread_t thread;
    shard_json_parser *json;
    shard_emit emit;
    shard_strbuf prompt, response;
    shard_strbuf last_prompt; /* the prompt text behind prompt_toks */
    shard_tokens prompt_toks;
    uint64_t prompt_replaced; /* replacements in prompt_toks */
    shard_strbuf folded;      /* a record's folded messages (row_hashes) */
} worker;

static void logf_(compiler *c, shard_msg_level level, const char *fmt, ...)
    SHARD_PRINTF(3, 4);

static void logf_(compiler *c, shard_msg_level level, const char *fmt, ...)
{
    char msg[SHARD_ERRMAX];
    va_list ap;

    if (!c->opt->log || c->quiet)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->opt->log(c->opt->log_ctx, level, msg);
}

const char *shard_reason_label(int i)
{
    return shard_reason_name((shard_reason)i);
}

/* ---- the emitter that schemas fill ---------------------------------- */

int shard_emit_record(shard_emit *e, const shard_message *msgs, size_t n,
                      int label, double reward, int pair_group,
                      int pair_side)
{
    if (shard_grow((void **)&e->recs, &e->cap, e->n + 1,
                   sizeof(*e->recs)) ||
        shard_grow((void **)&e->msgs, &e->cap_msgs, e->n_msgs + n,
                   sizeof(*e->msgs)))
        return SHARD_ENOMEM;
    memcpy(e->msgs + e->n_msgs, msgs, n * sizeof(*msgs));
    e->recs[e->n++] = (emitted){.first_msg = e->n_msgs, .n_msgs = n,
                                .label = label, .reward = reward,
                                .pair_group = pair_group,
                                .pair_side = pair_side};
    e->n_msgs += n;
    return 0;
}

int shard_emit_pair(shard_emit *e, size_t chosen, size_t rejected)
{
    if (shard_grow((void **)&e->pairs, &e->cap_pairs, e->n_pairs + 1,
                   sizeof(*e->pairs)))
        return SHARD_ENOMEM;
    e->pairs[e->n_pairs++] = (emitted_pair){.chosen = chosen,
                                               .rejected = rejected};
    return 0;
}

size_t shard_emit_count(const shard_emit *e)
{
    return e->n;
}

double shard_emit_reward(const shard_emit *e, size_t i)
{
    return e->recs[i].reward;
}

void shard_emit_relabel(shard_emit *e, size_t i, int label)
{
    e->recs[i].label = label;
}

void shard_emit_rule(shard_emit *e, const char *rule)
{
    for (size_t i = 0; i < e->n_rules; i++)
        if (e->rules[i] == rule)
            return;
    if (e->n_rules < SHARD_MAX_RULES)
        e->rules[e->n_rules++] = rule;
}

/* n bytes, 8-byte aligned, from a list of blocks (kept when reset). */
static char *blocks_alloc(text_block **list, size_t n)
{
    text_block *b = *list;

    n = (n + 7) & ~(size_t)7; /* pieces stay 8-byte aligned, as data[] is */
    while (b && b->cap - b->used < n)
        b = b->next;
    if (!b) {
        size_t cap = n > (1u << 16) ? n : (1u << 16);

        if (!(b = malloc(sizeof(*b) + cap)))
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = *list;
        *list = b;
    }
    b->used += n;
    return b->data + b->used - n;
}

static void blocks_reset(text_block *b)
{
    for (; b; b = b->next)
        b->used = 0;
}

static void blocks_free(text_block **list)
{
    while (*list) {
        text_block *next = (*list)->next;

        free(*list);
        *list = next;
    }
}

char *shard_emit_alloc(shard_emit *e, size_t n)
{
    return blocks_alloc(&e->text, n);
}

static int parse_list_failed(shard_emit *e, int rc)
{
    return shard_emit_fail(e, SHARD_REASON_BAD_JSON,
                           "a field holding JSON text does not parse%s%s",
                           rc < 0 ? ": " : "",
                           rc < 0 ? shard_json_errmsg(e->sub) : "");
}

int shard_emit_parse_list(shard_emit *e, const char *const *s,
                          const size_t *len, size_t n,
                          shard_json_value *root)
{
    size_t total = 2 + n + SHARD_JSON_PADDING, at = 0;
    char *buf;
    int rc;

    for (size_t i = 0; i < n; i++)
        total += len[i];
    if ((!e->sub && shard_json_parser_new(&e->sub) < 0) ||
        !(buf = shard_emit_alloc(e, total)))
        return SHARD_ENOMEM;
    for (size_t i = 0; i < n; i++) { /* each one whole value alone */
        memcpy(buf, s[i], len[i]);
        memset(buf + len[i], 0, SHARD_JSON_PADDING);
        if ((rc = shard_json_parse(e->sub, buf, len[i], root)) < 0)
            return rc == SHARD_ENOMEM ? rc : parse_list_failed(e, rc);
    }
    buf[at++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf[at++] = ',';
        memcpy(buf + at, s[i], len[i]);
        at += len[i];
    }
    buf[at++] = ']';
    memset(buf + at, 0, SHARD_JSON_PADDING);
    if ((rc = shard_json_parse(e->sub, buf, at, root)) == SHARD_ENOMEM)
        return rc;
    return rc < 0 || shard_json_size(*root) != n ? parse_list_failed(e, rc)
                                                 : 0;
}

const void *shard_emit_state(const shard_emit *e)
{
    return e->state;
}

shard_msgs *shard_emit_scratch(shard_emit *e, int slot)
{
    e->scratch[slot].n = 0;
    return &e->scratch[slot];
}

/* Empties the emitter for the next row, keeping its storage. */
static void emit_reset(shard_emit *e)
{
    e->n = e->n_msgs = e->n_pairs = e->n_rules = 0;
    blocks_reset(e->text);
}

static void emit_free(shard_emit *e)
{
    free(e->recs);
    free(e->msgs);
    free(e->pairs);
    for (int i = 0; i < SHARD_SCRATCH_LISTS; i++)
        free(e->scratch[i].m);
    shard_json_parser_free(e->sub);
    blocks_free(&e->text);
}

/*
 * Keeps a message valid UTF-8: row text quoted up to a length may end
 * inside a character.  Each invalid part becomes U+FFFD, within cap.
 */
static void msg_make_valid(char *msg, size_t cap)
{
    char fixed[3 * SHARD_ERRMAX];
    size_t n = strlen(msg), replaced = 0, len;

    if (n >= SHARD_ERRMAX || shard_utf8_valid(msg, n) == n)
        return;
    len = shard_utf8_repair(fixed, msg, n, &replaced);
    if (len >= cap)
        len = shard_utf8_valid(fixed, cap - 1);
    memcpy(msg, fixed, len);
    msg[len] = '\0';
}

int shard_emit_fail(shard_emit *e, shard_reason reason, const char *fmt,
                    ...)
{
    va_list ap;

    e->reason = reason;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    msg_make_valid(e->msg, sizeof(e->msg));
    return SHARD_EINPUT;
}

/* ---- rows ------------------------------------------------------------ */

static void row_invalid(compiler *c, const shard_line *line,
                        shard_input_stats *in, shard_reason reason,
                        const char *what)
{
    shard_examples *ex = c->examples;
    char msg[SHARD_ERRMAX];

    c->acct->rows_invalid++;
    c->acct->invalid_by_reason[reason]++;
    in->rows_invalid++;
    snprintf(msg, sizeof(msg), "%s:%llu: %s", line->where,
             (unsigned long long)line->lineno, what);
    for (char *p = msg; *p; p++) /* one line, whatever the input held */
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    if (ex->count[reason] < SHARD_EXAMPLES_PER_REASON)
        memcpy(ex->text[reason][ex->count[reason]++], msg, sizeof(msg));
    logf_(c, c->acct->invalid_by_reason[reason] <= SHARD_EXAMPLES_PER_REASON
                 ? SHARD_MSG_WARNING : SHARD_MSG_DETAIL, "%s", msg);
}

/* Says how many bad rows of each reason were past the first few. */
static void report_unshown(compiler *c)
{
    for (int r = 0; r < SHARD_REASONS; r++)
        if (c->acct->invalid_by_reason[r] > SHARD_EXAMPLES_PER_REASON)
            logf_(c, SHARD_MSG_WARNING, "%llu more %s rows like these",
                  (unsigned long long)(c->acct->invalid_by_reason[r] -
                                       SHARD_EXAMPLES_PER_REASON),
                  shard_reason_name((shard_reason)r));
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* The first schema that claims the row, or NULL. */
static const shard_format *detect(shard_json_value root)
{
    for (size_t i = 0; shard_formats[i]; i++)
        if (shard_formats[i]->detect(root))
            return shard_formats[i];
    return NULL;
}

/*
 * Turns chosen/rejected sides sharing a pair_group into pairs, then fills
 * in pair identities from the records' (row_hashes).  A record in several
 * pairs carries the first one's id.  Returns 0 or SHARD_ENOMEM.
 */
static int assign_ids(shard_emit *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->recs[i].pair_side != SHARD_PAIR_CHOSEN)
            continue;
        for (size_t j = 0; j < e->n; j++)
            if (e->recs[j].pair_side == SHARD_PAIR_REJECTED &&
                e->recs[j].pair_group == e->recs[i].pair_group &&
                shard_emit_pair(e, i, j) < 0)
                return SHARD_ENOMEM;
    }
    for (size_t i = 0; i < e->n_pairs; i++) {
        emitted *a = &e->recs[e->pairs[i].chosen];
        emitted *b = &e->recs[e->pairs[i].rejected];
        uint64_t id = shard_pair_id(a->prompt_id, a->record_id,
                                    b->record_id);

        if (!a->pair_id)
            a->pair_id = id;
        if (!b->pair_id)
            b->pair_id = id;
    }
    return 0;
}

/* Adds the row's pairs to the table and its rules to the compile's. */
static int commit_pairs_and_rules(compiler *c, const shard_emit *e)
{
    int rc;

    for (size_t i = 0; i < e->n_pairs; i++) {
        const emitted *a = &e->recs[e->pairs[i].chosen];
        const emitted *b = &e->recs[e->pairs[i].rejected];
        shard_pair row = {a->prompt_id, a->record_id, b->record_id,
                          shard_pair_id(a->prompt_id, a->record_id,
                                        b->record_id)};

        if (!e->pairs[i].kept)
            continue;
        if ((rc = shard_pairs_writer_add(c->pairs, &row)) < 0)
            return shard_errf(c->err, rc, "%s",
                              shard_pairs_writer_errmsg(c->pairs));
        c->acct->pairs++;
    }
    for (size_t i = 0; i < e->n_rules; i++) {
        size_t k = 0;

        while (k < c->n_rules && strcmp(c->rules[k], e->rules[i]) != 0)
            k++;
        if (k == c->n_rules && k < SHARD_MAX_RULES)
            c->rules[c->n_rules++] = e->rules[i];
    }
    return 0;
}

/* Binds the chat template to the tokenizer; a structural token the
 * tokenizer lacks is written as text, and said so. */
static int open_template(compiler *c)
{
    const char *name = c->opt->template_name;
    char missing[256];
    int rc;

    rc = shard_template_open(&c->tpl, name, c->tok, missing,
                             sizeof(missing));
    if (rc == SHARD_ENOTFOUND)
        return shard_errf(c->err, SHARD_EINVAL, "unknown template \"%s\" "
                          "(known: none, hh, chatml, qwen, llama3)", name);
    if (rc < 0)
        return shard_errf(c->err, rc, "out of memory");
    if (missing[0])
        logf_(c, SHARD_MSG_WARNING, "template %s: tokenizer %s has no %s; "
              "written as text", name, shard_tokenizer_name(c->tok),
              missing);
    return 0;
}

/* Notes where the row about to be committed starts (journal.h). */
static void mark_row(compiler *c, uint64_t row)
{
    shard_journal_mark *m = &c->row_mark;

    m->row = row;
    memcpy(m->tokens_by_label, c->acct->tokens_by_label,
           sizeof(m->tokens_by_label));
    m->replaced_utf8 = c->acct->replaced_utf8;
    m->special_text = c->acct->special_text;
}

/*
 * After stream `label` committed a shard: journals it with the mark from
 * which the compile can resume, the start of the oldest row that has a
 * record in a shard not yet committed.
 */
static int journal_commit(compiler *c, int label)
{
    const shard_journal_mark *m = &c->row_mark;
    const shard_file_info *f;
    size_t n;

    if (!c->journal)
        return 0;
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        if (c->open[l] && c->open_mark[l].row < m->row)
            m = &c->open_mark[l];
    f = shard_stream_files(c->streams[label], &n);
    return shard_journal_commit(c->journal, label, &f[n - 1], m, c->err);
}

/*
 * Adds a kept record to its stream and journals a shard it completes.
 * A resumed compile skips the records its committed shards hold.
 */
static int stream_add(compiler *c, const shard_record_in *in)
{
    shard_stream *s = c->streams[in->label];
    uint64_t index = c->acct->kept_by_label[in->label];
    size_t before, after;
    int rc;

    if (index < c->done.records[in->label])
        return 0;
    if (!c->open[in->label]) {
        c->open_mark[in->label] = c->row_mark;
        c->open[in->label] = 1;
    }
    shard_stream_files(s, &before);
    if ((rc = shard_stream_add(s, in)) < 0)
        return shard_errf(c->err, rc, "%s", shard_stream_errmsg(s));
    shard_stream_files(s, &after);
    if (after == before)
        return 0;
    c->open_mark[in->label] = c->row_mark; /* this record opened a shard */
    return journal_commit(c, in->label);
}

/* Writes a kept record with the tokens its worker made. */
static int write_record(compiler *c, const batch *b, const shard_emit *e,
                        const emitted *r, const shard_line *line,
                        uint32_t file_index)
{
    shard_record_in in = {
        .tokens = b->toks.ids + r->tok_off, .n_tokens = r->n_tokens,
        .prompt_len = r->prompt_len, .label = r->label,
        .reward = r->reward, .prompt_id = r->prompt_id,
        .pair_id = r->pair_id, .record_id = r->record_id,
        .source_file = file_index, .source_line = line->lineno,
        .flags = r->flags, .messages = e->msgs + r->first_msg,
        .n_messages = r->n_msgs};
    int rc;

    if ((rc = stream_add(c, &in)) < 0)
        return rc;
    c->acct->kept++;
    c->acct->kept_by_label[r->label]++;
    c->acct->tokens_by_label[r->label] += r->n_tokens;
    c->acct->replaced_utf8 += r->replaced;
    c->acct->special_text += r->special != 0;
    return 0;
}

/* Counts a row read; a row that was never parsable is invalid here. */
static int row_read(compiler *c, const shard_line *line,
                    shard_input_stats *in)
{
    if (!line->problem && is_blank(line->text, line->len))
        return 0;
    c->acct->rows_read++;
    in->rows_read++;
    if (line->problem)
        row_invalid(c, line, in,
                    line->overlong ? SHARD_REASON_OVER_LIMIT
                                   : SHARD_REASON_BAD_JSON,
                    line->problem);
    return !line->problem;
}

/*
 * Accounts for the schema a row was mapped with: the compile's and the
 * input's, "mixed" once they differ; says what auto-detection chose.
 */
static void row_format(compiler *c, const row_slot *row,
                       shard_input_stats *in)
{
    const char *name = row->mapped->name;

    if (row->detected)
        logf_(c, SHARD_MSG_INFO, "%s: format %s (auto-detected)",
              row->line.where, name);
    if (!c->schema)
        c->schema = name;
    else if (strcmp(c->schema, name) != 0)
        c->schema = "mixed";
    if (!in->format[0])
        snprintf(in->format, sizeof(in->format), "%s", name);
    else if (strcmp(in->format, name) != 0)
        snprintf(in->format, sizeof(in->format), "mixed");
}

static int dedup_note_row(compiler *c, shard_emit *e, uint32_t input);
static int dedup_decide_row(compiler *c, shard_emit *e);
static int note_batch(compiler *c);
static int record_kept(const emitted *r);

/* memcpy of n items, where an empty array may be NULL. */
static void copy_items(void *dst, const void *src, size_t n, size_t size)
{
    if (n)
        memcpy(dst, src, n * size);
}

/* &p[i], where p may be an array not yet allocated (NULL, i 0). */
#define ITEM_AT(p, i) ((p) ? (p) + (i) : (p))

/* The row's records, pairs and rules in the batch, as an emitter. */
static void row_view(shard_emit *v, batch *b, const row_slot *row)
{
    memset(v, 0, sizeof(*v));
    v->recs = ITEM_AT(b->recs, row->first_rec);
    v->n = row->n_recs;
    v->msgs = ITEM_AT(b->msgs, row->first_msg);
    v->n_msgs = row->n_msgs;
    v->pairs = ITEM_AT(b->pairs, row->first_pair);
    v->n_pairs = row->n_pairs;
    copy_items(v->rules, ITEM_AT(b->rules, row->first_rule), row->n_rules,
               sizeof(*v->rules));
    v->n_rules = row->n_rules;
}

/*
 * The ordered part of a row: its accounting, then the first sweep notes
 * its keys, the second decides its records' fates and writes those kept.
 */
static int commit_row(compiler *c, batch *b, const row_slot *row,
                      shard_input_stats *in, uint32_t file_index)
{
    shard_emit v;
    int rc;

    if (!c->scanning)
        mark_row(c, row->seq);
    if ((rc = row_read(c, &row->line, in)) <= 0)
        return rc;
    if (row->mapped)
        row_format(c, row, in);
    if (row->status == ROW_BAD) {
        row_invalid(c, &row->line, in, row->reason, row->msg);
        return 0;
    }
    row_view(&v, b, row);
    if (c->scanning)
        return dedup_note_row(c, &v, file_index);
    if ((rc = dedup_decide_row(c, &v)) < 0)
        return rc;
    c->acct->records += v.n;
    in->records += v.n;
    for (size_t i = 0; i < v.n; i++) {
        if (!record_kept(&v.recs[i]))
            continue;
        if (v.recs[i].untokenized)
            return shard_errf(c->err, SHARD_EINVAL, "%s:%llu: record %zu "
                              "kept, but judged dropped before: the inputs "
                              "changed between the two sweeps?",
                              row->line.where,
                              (unsigned long long)row->line.lineno, i + 1);
        if ((rc = write_record(c, b, &v, &v.recs[i], &row->line,
                               file_index + c->input_base)) < 0)
            return rc;
        in->kept++;
    }
    return commit_pairs_and_rules(c, &v);
}

/*
 * An input (or archive member) that cannot be opened or read to its end
 * fails the compile, unless keep_going: then it is reported, counted, and
 * the rows it gave before the failure stay.  The input keeps its first
 * error for the manifest.
 */
static int input_failed(compiler *c, shard_input_stats *in, int rc,
                        const char *msg)
{
    if (!in->error[0])
        snprintf(in->error, sizeof(in->error), "%s", msg);
    if (!c->opt->keep_going)
        return shard_errf(c->err, rc, "%s", msg);
    c->acct->inputs_failed++;
    logf_(c, SHARD_MSG_ERROR, "%s (skipped: --keep-going)", msg);
    return 0;
}

/* ---- dedup (dedup.h) ------------------------------------------------ */

/* Whether a[0..n) and b[0..n) hold the same text at the same places. */
static int same_messages(const shard_message *a, const shard_message *b,
                         size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].content != b[i].content || a[i].role != b[i].role ||
            a[i].content_len != b[i].content_len ||
            a[i].role_len != b[i].role_len)
            return 0;
    return 1;
}

/*
 * Sets each record's prompt and record ids and its dedup key from one
 * folding of its messages (shard_fold_messages); a record whose context
 * is the previous record's, as the sides of a comparison share theirs,
 * folds only its response.  Other normalisations than `ws` hash the key
 * on their own.  0 or SHARD_ENOMEM.
 */
static int row_hashes(shard_strbuf *f, shard_emit *e, int normalize)
{
    const shard_message *ctx = NULL;
    size_t ctx_n = 0, ctx_len = 0;
    uint64_t prompt_id = 0;

    for (size_t i = 0; i < e->n; i++) {
        emitted *r = &e->recs[i];
        const shard_message *m = e->msgs + r->first_msg;
        size_t n = r->n_msgs - 1; /* the context */

        if (!ctx || ctx_n != n || !same_messages(ctx, m, n)) {
            f->len = 0;
            if (shard_fold_messages(&f->p, &f->len, &f->cap, m, n) < 0)
                return SHARD_ENOMEM;
            ctx = m;
            ctx_n = n;
            ctx_len = f->len;
            prompt_id = shard_prompt_id_folded(f->p, ctx_len);
        }
        f->len = ctx_len;
        if (shard_fold_messages(&f->p, &f->len, &f->cap, m + n, 1) < 0)
            return SHARD_ENOMEM;
        r->prompt_id = prompt_id;
        r->record_id = shard_record_id_folded(f->p, f->len);
        if (normalize == SHARD_NORM_WS) {
            r->key = shard_key_folded(f->p, f->len);
            continue;
        }
        if (shard_key_record(&r->key, m, r->n_msgs, normalize) < 0)
            return SHARD_ENOMEM;
        /* The id follows the key, so that a pair whose side is dropped
         * as a duplicate names the record kept for it. */
        r->record_id = r->key.lo ? r->key.lo : r->key.hi;
    }
    return 0;
}

static shard_key pair_key(const shard_emit *e, size_t i)
{
    return shard_key_pair(&e->recs[e->pairs[i].chosen].key,
                          &e->recs[e->pairs[i].rejected].key);
}

static int dedup_failed(compiler *c, int rc)
{
    const char *msg = shard_dedup_errmsg(c->dedup);

    if (c->mpi)
        return rc; /* the MPI part wrote c->err */

    return shard_errf(c->err, rc, "%s", msg[0] ? msg : shard_strerror(rc));
}

/* Notes that the first sweep's record `i` repeats a key and label. */
static int note_repeat(compiler *c, uint64_t i)
{
    size_t words = (size_t)(i / 64) + 1, had = c->cap_repeats;

    if (words > had) {
        if (shard_grow((void **)&c->repeats, &c->cap_repeats, words,
                       sizeof(*c->repeats)))
            return shard_errf(c->err, SHARD_ENOMEM, "out of memory");
        memset(c->repeats + had, 0,
               (c->cap_repeats - had) * sizeof(*c->repeats));
    }
    c->repeats[i / 64] |= (uint64_t)1 << (i % 64);
    return 0;
}

/* Notes where the next batch of the first sweep starts. */
static int note_batch(compiler *c)
{
    if (shard_grow((void **)&c->batch_first, &c->cap_batch_first,
                   c->n_batch_first + 1, sizeof(*c->batch_first)))
        return shard_errf(c->err, SHARD_ENOMEM, "out of memory");
    c->batch_first[c->n_batch_first++] = c->scan_records;
    return 0;
}

/*
 * Whether the second sweep will drop record `i` of the sweep, with key
 * k and this label, whatever the records before it are: it repeats a
 * key and label, or its key's labels make it a conflict.  Workers ask,
 * while the main thread decides.
 */
static int known_dropped(const compiler *c, uint64_t i, const shard_key *k,
                         int label)
{
    if (!c->n_batch_first || c->mpi || shard_dedup_spilled(c->dedup))
        return 0;
    if (i / 64 < c->cap_repeats && c->repeats[i / 64] >> (i % 64) & 1)
        return 1;
    return shard_dedup_conflicted(c->dedup, k, label);
}

/*
 * First sweep: notes the keys of the row's records, then of its pairs.
 * Once the table has gone to disk, the rest of this sweep notes nothing:
 * it runs again from the start.
 */
static int dedup_note_row(compiler *c, shard_emit *e, uint32_t input)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && !c->restart && i < e->n + e->n_pairs;
         i++) {
        shard_key k = i < e->n ? e->recs[i].key : pair_key(e, i - e->n);
        int label = i < e->n ? e->recs[i].label : SHARD_DEDUP_PAIR;

        if (c->mpi) {
            rc = shard_mpi_note(c->mpi, input, &k, label);
            continue;
        }
        rc = shard_dedup_note(c->dedup, &k, label);
        if (rc == SHARD_DEDUP_RESTART) {
            c->restart = 1;
            rc = 0;
        } else if (rc == SHARD_DEDUP_REPEAT) {
            rc = i < e->n ? note_repeat(c, c->scan_records + i) : 0;
        }
    }
    c->scan_records += e->n;
    return rc < 0 && !c->err[0] ? dedup_failed(c, rc) : rc;
}

/* The fate of a record dropped as a near duplicate. */
#define FATE_NEAR 4

static int record_dropped(const emitted *r)
{
    return r->fate == SHARD_FATE_CONFLICT || r->fate == FATE_NEAR;
}

static int record_kept(const emitted *r)
{
    return r->fate == SHARD_FATE_KEEP || r->fate == SHARD_FATE_KEEP_FLAGGED;
}

/*
 * Drops a kept record whose response is a near duplicate of one kept
 * before it, within its label and prompt or across the stream.
 */
static int near_check(compiler *c, const shard_emit *e, emitted *r)
{
    const shard_message *resp = e->msgs + r->first_msg + r->n_msgs - 1;
    uint64_t scope = c->opt->near_dup_scope
                         ? 0 : r->prompt_id * 4 + (uint64_t)r->label + 1;
    int rc;

    if (!c->near || !record_kept(r))
        return 0;
    rc = shard_near_check(c->near, resp->content, resp->content_len, scope);
    if (rc < 0)
        return shard_errf(c->err, rc, "out of memory");
    c->acct->near_candidates = shard_near_candidates(c->near);
    if (rc == 1) {
        shard_dedup_unwrite(c->dedup, &r->key);
        r->fate = FATE_NEAR;
        r->flags = 0;
        c->acct->near_duplicate++;
    }
    return 0;
}

/*
 * Second sweep: the fate of each record of the row, counted, then of its
 * pairs: a pair with a side dropped as a conflict is dropped, and so is
 * a repeat of an earlier (prompt, chosen, rejected).
 */
static int dedup_decide_row(compiler *c, shard_emit *e)
{
    uint64_t next[SHARD_LABEL_COUNT];
    int rc = 0;

    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        next[l] = c->acct->kept_by_label[l] +
                  (c->app ? shard_append_base(c->app, l) : 0);
    for (size_t i = 0; rc >= 0 && i < e->n; i++) {
        emitted *r = &e->recs[i];

        rc = r->fate = c->mpi ? shard_mpi_decide(c->mpi)
                              : shard_dedup_decide(c->dedup, &r->key,
                                                   r->label,
                                                   (uint32_t)next[r->label]);
        if (rc == SHARD_FATE_KEEP_FLAGGED)
            r->flags |= SHARD_RECORD_FLAG_CONFLICT;
        if (rc >= 0)
            rc = near_check(c, e, r);
        if (record_kept(r))
            next[r->label]++;
        c->acct->duplicate += r->fate == SHARD_FATE_DUPLICATE;
        c->acct->conflict += r->fate == SHARD_FATE_CONFLICT;
    }
    for (size_t i = 0; rc >= 0 && i < e->n_pairs; i++) {
        shard_key k = pair_key(e, i);
        emitted_pair *p = &e->pairs[i];

        rc = c->mpi ? shard_mpi_decide(c->mpi)
                    : shard_dedup_decide(c->dedup, &k, SHARD_DEDUP_PAIR, 0);
        p->kept = 0;
        if (record_dropped(&e->recs[p->chosen]) ||
            record_dropped(&e->recs[p->rejected]))
            c->acct->pairs_dropped++;
        else if (rc == SHARD_FATE_DUPLICATE)
            c->acct->pairs_duplicate++;
        else
            p->kept = 1;
    }
    return rc < 0 ? dedup_failed(c, rc) : 0;
}

/*
 * Standard input is read twice, once per sweep: unless it is a regular
 * file already, it is copied to an unlinked temporary file in the output
 * directory that then stands in as descriptor 0.
 */
static int spool_stdin(compiler *c, char *const *inputs, size_t n)
{
    char path[4400], buf[1 << 16];
    struct stat st;
    ssize_t got;
    int fd, used = 0;

    for (size_t i = 0; i < n; i++)
        used |= strcmp(inputs[i], "-") == 0;
    if (!used || (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
                  lseek(STDIN_FILENO, 0, SEEK_CUR) == 0))
        return 0;
    snprintf(path, sizeof(path), "%s/.stdin.XXXXXX", c->outdir);
    if ((fd = mkstemp(path)) < 0)
        return shard_errf(c->err, SHARD_EIO, "%s: %s", path,
                          strerror(errno));
    unlink(path);
    while ((got = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 || shard_write_all(fd, buf, (size_t)got) != 0) {
            close(fd);
            return shard_errf(c->err, SHARD_EIO, "standard input: %s",
                              strerror(errno));
        }
    }
    if (dup2(fd, STDIN_FILENO) < 0) {
        close(fd);
        return shard_errf(c->err, SHARD_EIO, "standard input: %s",
                          strerror(errno));
    }
    close(fd);
    return 0;
}

/* ---- the pipeline: workers ------------------------------------------- */

/* Copies n bytes into the batch, NUL-terminated.  NULL when out of memory. */
static char *batch_copy(batch *b, const char *s, size_t n, size_t pad)
{
    char *p = blocks_alloc(&b->arena, n + 1 + pad);

    if (p) {
        copy_items(p, s, n, 1);
        memset(p + n, 0, 1 + pad);
    }
    return p;
}

static int row_bad(batch *b, row_slot *row, shard_reason reason,
                   const char *msg)
{
    row->status = ROW_BAD;
    row->reason = reason;
    row->msg = batch_copy(b, msg, strlen(msg), 0);
    return row->msg ? 0 : SHARD_ENOMEM;
}

/*
 * Renders and tokenizes record r of the worker's emitter into the batch's
 * tokens.  The records of one comparison share their prompt, so the last
 * prompt's tokens are kept and reused when the text repeats.
 */
static int encode_record(worker *w, batch *b, emitted *r)
{
    const compiler *c = w->c;
    const shard_message *m = w->emit.msgs + r->first_msg;
    shard_tokens *p = &w->prompt_toks;
    size_t before;
    int rc, added = c->opt->hf_added_tokens;

    if ((rc = shard_template_render(c->tpl, m, r->n_msgs, &w->prompt,
                                    &w->response)) < 0)
        return rc;
    if (w->prompt.len != w->last_prompt.len || !w->prompt.len ||
        memcmp(w->prompt.p, w->last_prompt.p, w->prompt.len) != 0) {
        shard_strbuf swap = w->last_prompt;

        p->len = 0;
        before = p->replaced;
        if ((rc = shard_template_encode(c->tok, w->prompt.p, w->prompt.len,
                                        added, p)) < 0)
            return rc;
        w->prompt_replaced = p->replaced - before;
        w->last_prompt = w->prompt; /* keep the text, reuse the buffer */
        w->prompt = swap;
    }

    r->tok_off = b->toks.len;
    if (shard_grow((void **)&b->toks.ids, &b->toks.cap,
                   b->toks.len + p->len + 1, sizeof(*p->ids)))
        return SHARD_ENOMEM;
    copy_items(b->toks.ids + b->toks.len, p->ids, p->len, sizeof(*p->ids));
    b->toks.len += p->len;
    r->prompt_len = (uint32_t)p->len;
    before = b->toks.replaced;
    if ((rc = shard_template_encode(c->tok, w->response.p, w->response.len,
                                    added, &b->toks)) < 0)
        return rc;
    r->n_tokens = b->toks.len - r->tok_off;
    r->replaced = w->prompt_replaced + (b->toks.replaced - before);

    for (size_t i = 0; i < r->n_msgs && !r->special; i++)
        r->special = shard_tokenizer_count_added(c->tok, m[i].content,
                                                 m[i].content_len) > 0;
    return 0;
}

/* Appends the worker's emitter (one row) to the batch; messages' text is
 * copied, as the parser that holds it moves on to the next row, unless
 * `keys_only` (the first sweep commits keys and labels, never text). */
static int row_store(batch *b, row_slot *row, const shard_emit *e,
                     int keys_only)
{
    if (shard_grow((void **)&b->recs, &b->cap_recs, b->n_recs + e->n,
                   sizeof(*b->recs)) ||
        shard_grow((void **)&b->msgs, &b->cap_msgs, b->n_msgs + e->n_msgs,
                   sizeof(*b->msgs)) ||
        shard_grow((void **)&b->pairs, &b->cap_pairs,
                   b->n_pairs + e->n_pairs, sizeof(*b->pairs)) ||
        shard_grow((void **)&b->rules, &b->cap_rules,
                   b->n_rules + e->n_rules, sizeof(*b->rules)))
        return SHARD_ENOMEM;
    row->first_rec = b->n_recs;
    row->n_recs = e->n;
    row->first_msg = b->n_msgs;
    row->n_msgs = e->n_msgs;
    row->first_pair = b->n_pairs;
    row->n_pairs = e->n_pairs;
    row->first_rule = b->n_rules;
    row->n_rules = e->n_rules;
    copy_items(ITEM_AT(b->recs, b->n_recs), e->recs, e->n, sizeof(*e->recs));
    copy_items(ITEM_AT(b->pairs, b->n_pairs), e->pairs, e->n_pairs,
               sizeof(*e->pairs));
    copy_items(ITEM_AT(b->rules, b->n_rules), e->rules, e->n_rules,
               sizeof(*e->rules));
    b->n_recs += e->n;
    b->n_pairs += e->n_pairs;
    b->n_rules += e->n_rules;
    for (size_t i = 0; i < e->n_msgs; i++) {
        const shard_message *m = &e->msgs[i];
        shard_message *out = &b->msgs[b->n_msgs++];

        out->role_len = m->role_len;
        out->content_len = m->content_len;
        if (keys_only) {
            out->role = out->content = NULL;
            continue;
        }
        if (!(out->role = batch_copy(b, m->role, m->role_len, 0)) ||
            !(out->content = batch_copy(b, m->content, m->content_len, 0)))
            return SHARD_ENOMEM;
    }
    return 0;
}

/* The worker's part of a row: parse, map, identities, keys and, in the
 * second sweep, tokens.  A bad row is marked; returns 0 or negative. */
static int work_row(worker *w, batch *b, row_slot *row, uint64_t *next)
{
    const compiler *c = w->c;
    const shard_line *line = &row->line;
    shard_json_value root;
    int rc;

    row->status = ROW_SKIP;
    if (line->problem || is_blank(line->text, line->len))
        return 0;
    rc = shard_json_parse(w->json, line->text, line->len, &root);
    if (rc == SHARD_ENOMEM)
        return rc;
    if (rc < 0)
        return row_bad(b, row, shard_json_last_error(w->json) ==
                       SHARD_JSON_ERR_UTF8 ? SHARD_REASON_BAD_UTF8
                                           : SHARD_REASON_BAD_JSON,
                       shard_json_errmsg(w->json));
    if (shard_json_typeof(root) != SHARD_JSON_OBJECT)
        return row_bad(b, row, SHARD_REASON_WRONG_TYPE,
                       "row is not a JSON object");
    if (!row->format)
        return row_bad(b, row, SHARD_REASON_MISSING_FIELD,
                       "fields match no known format");

    row->mapped = row->format;
    emit_reset(&w->emit);
    w->emit.state = row->format == c->fixed ? c->fixed_state : NULL;
    if ((rc = row->format->map(root, &w->emit)) < 0)
        return rc != SHARD_EINPUT ? rc
               : row_bad(b, row, w->emit.reason, w->emit.msg);
    if ((rc = row_hashes(&w->folded, &w->emit, c->opt->normalize)) < 0 ||
        (rc = assign_ids(&w->emit)) < 0)
        return rc;
    /* The second sweep tokenizes, but for records it will drop; a resumed
     * one from the mark on. */
    for (size_t i = 0; !c->scanning && row->seq >= c->done.mark.row &&
                       i < w->emit.n; i++) {
        emitted *r = &w->emit.recs[i];

        r->untokenized = *next != UINT64_MAX &&
                         known_dropped(c, *next + i, &r->key, r->label);
        if (!r->untokenized && (rc = encode_record(w, b, r)) < 0)
            return rc;
    }
    if (*next != UINT64_MAX)
        *next += w->emit.n;
    row->status = ROW_OK;
    return row_store(b, row, &w->emit, c->scanning);
}

static void work_batch(worker *w, batch *b)
{
    const compiler *c = w->c;
    uint64_t next = !c->scanning && b->seq < c->n_batch_first
                        ? c->batch_first[b->seq] : UINT64_MAX;

    b->n_recs = b->n_msgs = b->n_pairs = b->n_rules = 0;
    b->toks.len = 0;
    for (size_t i = 0; i < b->n_rows; i++) {
        const shard_line *line = &b->rows[i].line;
        int rc = work_row(w, b, &b->rows[i], &next);

        if (rc < 0) {
            b->rc = rc;
            snprintf(b->err, sizeof(b->err), "%s:%llu: %s", line->where,
                     (unsigned long long)line->lineno, shard_strerror(rc));
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    compiler *c = w->c;
    batch *b;

    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->q_len && !c->stop)
            pthread_cond_wait(&c->work_cv, &c->mu);
        if (!c->q_len) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        b = c->queue[c->q_head];
        c->q_head = (c->q_head + 1) % c->cap;
        c->q_len--;
        pthread_mutex_unlock(&c->mu);

        work_batch(w, b);

        pthread_mutex_lock(&c->mu);
        b->done = 1;
        pthread_cond_broadcast(&c->done_cv);
        pthread_mutex_unlock(&c->mu);
    }
}

/* ---- the pipeline: reading and ordered commits ------------------------ */

/* Where the reading stands between batches (the reading thread's). */
typedef struct {
    char *const *paths;
    size_t n, next;          /* inputs, and the next to open */
    shard_input *input;      /* open, or NULL between inputs */
    uint32_t index;          /* of the open input */
    uint32_t member;         /* file or member `format` is for */
    const shard_format *format;
    uint64_t done, size;     /* bytes of the inputs before; the open one's */
    uint64_t rows;           /* rows read in this sweep */
} reader;

/*
 * Copies a row into the batch and tells its schema: the fixed one, or
 * the one the first row of its file or member that parses as an object
 * matches.  0 or SHARD_ENOMEM.
 */
static int batch_add_row(compiler *c, reader *rd, batch *b,
                         const shard_line *line)
{
    row_slot *row;
    shard_json_value root;

    if (shard_grow((void **)&b->rows, &b->cap_rows, b->n_rows + 1,
                   sizeof(*b->rows)))
        return SHARD_ENOMEM;
    row = &b->rows[b->n_rows];
    memset(row, 0, sizeof(*row));
    row->line = *line;
    if (!(row->line.text = batch_copy(b, line->text, line->len,
                                      SHARD_JSON_PADDING)))
        return SHARD_ENOMEM;
    if (b->n_rows && strcmp(b->rows[b->n_rows - 1].line.where,
                            line->where) == 0)
        row->line.where = b->rows[b->n_rows - 1].line.where;
    else if (!(row->line.where = batch_copy(b, line->where,
                                            strlen(line->where), 0)))
        return SHARD_ENOMEM;
    if (line->problem &&
        !(row->line.problem = batch_copy(b, line->problem,
                                         strlen(line->problem), 0)))
        return SHARD_ENOMEM;
    b->n_rows++;
    row->seq = rd->rows++;
    b->bytes += line->len;

    if (line->problem || is_blank(line->text, line->len))
        return 0;
    if (line->member != rd->member) {
        rd->member = line->member;
        rd->format = c->fixed;
    }
    if (!rd->format &&
        shard_json_parse(c->json, row->line.text, line->len, &root) == 0 &&
        shard_json_typeof(root) == SHARD_JSON_OBJECT &&
        (rd->format = detect(root)))
        row->detected = 1;
    row->format = rd->format;
    return 0;
}

static void batch_clear(batch *b)
{
    b->n_rows = b->bytes = 0;
    b->first = b->open_rc = b->read_rc = b->end = b->rc = 0;
    b->msg[0] = b->err[0] = 0;
    blocks_reset(b->arena);
}

/* The size of a regular file into *size: 1, or 0 for anything else
 * ("-", a pipe, a file gone), with *size 0. */
static int input_size(const char *path, uint64_t *size)
{
    struct stat st;

    *size = 0;
    if (strcmp(path, "-") == 0 || stat(path, &st) != 0 ||
        !S_ISREG(st.st_mode))
        return 0;
    *size = (uint64_t)st.st_size;
    return 1;
}

/* The sum of the inputs' sizes, or 0 when one of them is unknown. */
static uint64_t inputs_total(char *const *paths, size_t n)
{
    uint64_t total = 0, size;

    for (size_t i = 0; i < n; i++) {
        if (!input_size(paths[i], &size))
            return 0;
        total += size;
    }
    return total;
}

/*
 * Notes in the batch how far the input files are read: the bytes of the
 * inputs before, and of the open one as far as its reader got (never past
 * its size, reached when it ends).
 */
static void batch_note_pos(reader *rd, batch *b)
{
    uint64_t at = rd->input ? shard_input_bytes(rd->input) : 0;

    if (b->end) {
        rd->done += rd->size;
        rd->size = at = 0;
    }
    b->in_pos = rd->done + (at < rd->size ? at : rd->size);
}

/*
 * Fills a batch with the next rows, up to the end of the input: a batch
 * holds rows of one input, and ends where that input fails or ends.
 * Returns 1, 0 when every input was read, or SHARD_ENOMEM.
 */
static int read_rows(compiler *c, reader *rd, batch *b)
{
    shard_line line;
    int rc;

    batch_clear(b);
    if (!rd->input) {
        while (c->mine && rd->next < rd->n && !c->mine[rd->next])
            rd->next++; /* another rank's */
        if (rd->next == rd->n)
            return 0;
        rd->index = (uint32_t)rd->next++;
        b->first = 1;
        rd->format = c->fixed;
        rd->member = 0;
        input_size(rd->paths[rd->index], &rd->size);
        if ((rc = shard_input_open(&rd->input, rd->paths[rd->index],
                                   c->opt->max_line)) < 0) {
            b->input = rd->index;
            b->open_rc = rc;
            b->end = 1;
            snprintf(b->msg, sizeof(b->msg), "%s", shard_last_error());
            rd->input = NULL;
            return 1;
        }
    }
    b->input = rd->index;
    while (b->n_rows < BATCH_ROWS && b->bytes < BATCH_BYTES) {
        if ((rc = shard_input_next(rd->input, &line)) > 0) {
            if ((rc = batch_add_row(c, rd, b, &line)) < 0)
                return rc;
            continue;
        }
        if (rc < 0) {
            b->read_rc = rc;
            snprintf(b->msg, sizeof(b->msg), "%s",
                     shard_input_errmsg(rd->input));
        }
        b->end = rc == 0 || !c->opt->keep_going ||
                 shard_input_dead(rd->input);
        if (b->end) {
            shard_input_close(rd->input);
            rd->input = NULL;
        }
        break;
    }
    return 1;
}

/* read_rows(), then how far the input files are read (progress). */
static int read_batch(compiler *c, reader *rd, batch *b)
{
    int got = read_rows(c, rd, b);

    if (got > 0)
        batch_note_pos(rd, b);
    return got;
}

/*
 * Commits a finished batch in input order: its rows, then the input's
 * failure or end.  An input that cannot be opened or read to its end
 * fails the compile unless keep_going (input_failed).
 */
static int commit_batch(compiler *c, batch *b)
{
    shard_input_stats *in = &c->inputs[b->input];
    int rc;

    if (c->scanning && (rc = note_batch(c)) < 0)
        return rc;
    if (b->first)
        snprintf(in->path, sizeof(in->path), "%s",
                 c->paths[b->input]);
    if (b->open_rc)
        return input_failed(c, in, b->open_rc, b->msg);
    if (b->rc < 0)
        return shard_errf(c->err, b->rc, "%s", b->err);
    for (size_t i = 0; i < b->n_rows; i++)
        if ((rc = commit_row(c, b, &b->rows[i], in, b->input)) < 0)
            return rc;
    if (b->read_rc && (rc = input_failed(c, in, b->read_rc, b->msg)) < 0)
        return rc;
    if (b->end && c->opt->strict && in->rows_invalid)
        return shard_errf(c->err, SHARD_EINPUT,
                          "%s: %llu invalid rows (--strict)", in->path,
                          (unsigned long long)in->rows_invalid);
    return 0;
}

static void batch_free(batch *b)
{
    free(b->rows);
    free(b->recs);
    free(b->msgs);
    free(b->pairs);
    free(b->rules);
    shard_tokens_free(&b->toks);
    blocks_free(&b->arena);
}

static void workers_stop(compiler *c, size_t started)
{
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->work_cv);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < started; i++)
        pthread_join(c->workers[i].thread, NULL);
}

/* Tells the caller where the sweep stands. */
static void report_progress(compiler *c, const batch *b)
{
    const shard_accounting *a = c->acct;
    shard_progress p = {.sweep = c->scanning ? 1 : 2, .rows = a->rows_read,
                        .kept = a->kept};

    c->bytes_done += b->bytes;
    if (!c->opt->progress)
        return;
    p.bytes = c->bytes_done;
    p.in_done = b->in_pos;
    p.in_total = c->in_total;
    p.dropped = a->rows_invalid + a->duplicate + a->near_duplicate +
                a->conflict;
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        p.tokens += a->tokens_by_label[l];
    c->opt->progress(c->opt->progress_ctx, &p);
}

/* With one worker (-j1) no thread starts: the main thread reads, works
 * and commits one batch after the other. */
static int sweep_alone(compiler *c, reader *rd)
{
    batch *b = &c->slots[0];
    int rc, got;

    for (uint64_t seq = 0;; seq++) {
        if ((got = read_batch(c, rd, b)) <= 0)
            return got < 0 ? shard_errf(c->err, got, "out of memory") : 0;
        b->seq = seq;
        work_batch(&c->workers[0], b);
        if ((rc = commit_batch(c, b)) < 0)
            return rc;
        report_progress(c, b);
    }
}

typedef struct {
    compiler *c;
    reader *rd;
} read_job;

/*
 * The reading thread of a sweep with workers: reads batches in input
 * order into the free slots and hands each to the workers, until the
 * inputs end, reading fails, or the main thread asks it to stop.
 */
static void *reader_main(void *arg)
{
    read_job *job = arg;
    compiler *c = job->c;
    uint64_t seq;
    batch *b;
    int got = 1, stop;

    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->read_stop && c->next_read - c->next_commit >= c->cap)
            pthread_cond_wait(&c->free_cv, &c->mu);
        seq = c->next_read;
        stop = c->read_stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        b = &c->slots[seq % c->cap];
        if ((got = read_batch(c, job->rd, b)) <= 0)
            break;
        b->seq = seq;
        pthread_mutex_lock(&c->mu);
        b->done = 0;
        c->queue[(c->q_head + c->q_len) % c->cap] = b;
        c->q_len++;
        c->next_read++;
        pthread_cond_signal(&c->work_cv);
        pthread_cond_broadcast(&c->read_cv);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    c->read_rc = got < 0 ? got : 0;
    c->read_end = 1;
    pthread_cond_broadcast(&c->read_cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/*
 * With workers: the reading thread fills the batches, the workers work
 * them, and the main thread commits them in input order as they finish.
 * After a failure nothing more is read or committed; the batches in
 * flight are waited for.
 */
static int sweep_pipelined(compiler *c, reader *rd)
{
    read_job job = {c, rd};
    pthread_t thread;
    int rc = 0;

    c->next_read = c->next_commit = 0;
    c->read_end = c->read_stop = c->read_rc = 0;
    if (pthread_create(&thread, NULL, reader_main, &job) != 0)
        return shard_errf(c->err, SHARD_ENOMEM, "cannot start a thread");
    pthread_mutex_lock(&c->mu);
    for (;;) {
        batch *b = &c->slots[c->next_commit % c->cap];

        while (c->next_commit == c->next_read && !c->read_end)
            pthread_cond_wait(&c->read_cv, &c->mu);
        if (c->next_commit == c->next_read)
            break;
        while (!b->done)
            pthread_cond_wait(&c->done_cv, &c->mu);
        pthread_mutex_unlock(&c->mu);

        if (rc == 0 && (rc = commit_batch(c, b)) == 0)
            report_progress(c, b);

        pthread_mutex_lock(&c->mu);
        c->next_commit++;
        c->read_stop |= rc != 0;
        pthread_cond_signal(&c->free_cv);
    }
    pthread_mutex_unlock(&c->mu);
    pthread_join(thread, NULL);
    if (rc == 0 && c->read_rc < 0)
        rc = shard_errf(c->err, c->read_rc, "out of memory");
    return rc;
}

/*
 * One sweep over the inputs: alone at -j1, else through the pipeline of
 * a reading thread, the workers and the main thread's ordered commits.
 */
static int run_sweep(compiler *c, char *const *paths, size_t n)
{
    reader rd = {.paths = paths, .n = n};
    size_t started = 0;
    int rc;

    c->stop = 0;
    c->q_head = c->q_len = 0;
    c->bytes_done = 0;
    c->in_total = inputs_total(paths, n);
    while (c->n_workers > 1 && started < c->n_workers &&
           pthread_create(&c->workers[started].thread, NULL, worker_main,
                          &c->workers[started]) == 0)
        started++;
    if (c->n_workers > 1 && !started)
        rc = shard_errf(c->err, SHARD_ENOMEM, "cannot start a thread");
    else if (!started)
        rc = sweep_alone(c, &rd);
    else
        rc = sweep_pipelined(c, &rd);
    workers_stop(c, started);
    if (rd.input)
        shard_input_close(rd.input);
    return rc;
}

/* Readies a sweep: counts start from zero, standard input from byte 0. */
static void sweep_reset(compiler *c)
{
    memset(c->acct, 0, sizeof(*c->acct));
    memset(c->examples, 0, sizeof(*c->examples));
    memset(c->inputs, 0, c->n_inputs * sizeof(*c->inputs));
    lseek(STDIN_FILENO, 0, SEEK_SET);
}

/* Loads the key table of the dataset appended to. */
static int dedup_load(compiler *c)
{
    char p[4400];
    int rc;

    snprintf(p, sizeof(p), "%s/%s", c->outdir, SHARD_KEYS_PATH);
    if ((rc = shard_dedup_load(c->dedup, p, c->opt->normalize)) ==
        SHARD_ENOTFOUND)
        return shard_errf(c->err, rc, "%s: no key table (compiled before "
                          "dedup existed, or merged without --dedup)",
                          c->outdir);
    return rc < 0 ? dedup_failed(c, rc) : 0;
}

/* Keeps the key table with the dataset for a later --append. */
static int dedup_save(compiler *c)
{
    char p[4400];
    int rc;

    snprintf(p, sizeof(p), "%s/%s", c->outdir, SHARD_KEYS_PATH);
    rc = shard_dedup_save(c->dedup, p, c->opt->normalize);
    return rc < 0 ? dedup_failed(c, rc) : 0;
}

/*
 * A resumed compile's second sweep tokenizes from the journal's mark on
 * (work_row): what the records before it hold is counted from the mark.
 */
static void resume_totals(compiler *c)
{
    const shard_journal_mark *m = &c->done.mark;

    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        c->acct->tokens_by_label[l] = m->tokens_by_label[l];
    c->acct->replaced_utf8 = m->replaced_utf8;
    c->acct->special_text = m->special_text;
}

/*
 * The first sweep over the inputs: every key noted, then decided.  Bad
 * rows are reported here; the second sweep, which writes, counts them
 * again without a word.
 */
static int dedup_sweep(compiler *c, char *const *inputs, size_t n)
{
    int rc;

    if ((rc = shard_dedup_open(&c->dedup, c->opt->mem_limit,
                               c->opt->conflicts, c->outdir)) < 0)
        return shard_errf(c->err, rc, "out of memory");
    if (c->app && (rc = dedup_load(c)) < 0)
        return rc;
    if (c->opt->near_dup > 0 &&
        shard_near_open(&c->near, c->opt->near_dup, c->opt->near_dup_seed) < 0)
        return shard_errf(c->err, SHARD_ENOMEM, "out of memory");
    if ((rc = spool_stdin(c, inputs, n)) < 0)
        return rc;
    c->scanning = 1;
    do {
        c->quiet |= c->restart;
        c->restart = 0;
        c->scan_records = c->n_batch_first = 0;
        if (c->repeats)
            memset(c->repeats, 0, c->cap_repeats * sizeof(*c->repeats));
        sweep_reset(c);
        rc = run_sweep(c, inputs, n);
    } while (rc == 0 && c->restart);
    c->scanning = 0;
    if (c->mpi && (rc = shard_mpi_resolve(c->mpi, rc)) < 0)
        return rc;
    if (rc == 0 && (rc = shard_dedup_resolve(c->dedup)) < 0)
        return dedup_failed(c, rc);
    if (rc == 0 && c->app) {
        shard_dedup_superseded(c->dedup, shard_append_remove, c->app);
        rc = shard_append_apply(c->app, c->pairs, c->err);
    }
    c->quiet = 0;
    if (shard_dedup_spilled(c->dedup))
        logf_(c, SHARD_MSG_INFO, "dedup: the key table went to disk past "
              "--mem-limit (%llu bytes in memory at most)",
              (unsigned long long)shard_dedup_peak_bytes(c->dedup));
    c->quiet = 1;
    if (rc == 0) { /* a failure keeps the counts as far as it got */
        sweep_reset(c);
        resume_totals(c);
    }
    return rc;
}

/* ---- output directory ----------------------------------------------- */

static int remove_stream_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[8400];

    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);

        if (n > 6 && (strcmp(e->d_name + n - 6, ".shard") == 0 ||
                      strcmp(e->d_name + n - 6, ".pairs") == 0 ||
                      strcmp(e->d_name + n - 4, ".tmp") == 0)) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

/* --resume: the compile in outdir must have stopped before its end. */
static int resume_check(compiler *c)
{
    char p[4400];

    if (mkdir(c->outdir, 0755) != 0 && errno != EEXIST)
        return shard_errf(c->err, SHARD_EIO, "%s: %s", c->outdir,
                          strerror(errno));
    snprintf(p, sizeof(p), "%s/manifest.json", c->outdir);
    if (access(p, F_OK) == 0)
        return shard_errf(c->err, SHARD_EINVAL, "%s: the compile finished "
                          "(it has a manifest); nothing to resume",
                          c->outdir);
    return 0;
}

/*
 * Starts the journal of committed shards or, with --resume, reads the
 * interrupted compile's and clears what it left that no line names.  A
 * compile killed before its journal existed had committed nothing: it
 * starts again from the beginning.  A compile that appends, or runs
 * under MPI, keeps no journal (LIMITATIONS.md).
 */
static int journal_open(compiler *c)
{
    char *fp;
    int rc;

    if (c->opt->append || c->mpi)
        return c->opt->resume ? shard_errf(c->err, SHARD_EINVAL, "--resume "
                                           "and --%s exclude each other",
                                           c->mpi ? "mpi" : "append")
                              : 0;
    for (size_t i = 0; c->opt->resume && i < c->n_inputs; i++)
        if (strcmp(c->paths[i], "-") == 0)
            return shard_errf(c->err, SHARD_EINVAL, "--resume cannot read "
                              "standard input again");
    if (!(fp = shard_journal_fingerprint(c->opt, c->tok_info.hash,
                                         c->paths, c->n_inputs)))
        return shard_errf(c->err, SHARD_ENOMEM, "out of memory");
    if (!c->opt->resume)
        rc = shard_journal_create(&c->journal, c->outdir, fp, c->err);
    else if ((rc = shard_journal_resume(&c->journal, c->outdir, fp,
                                        &c->done, c->err)) == 0)
        rc = shard_journal_tidy(c->outdir, &c->done, c->err);
    else if (rc == SHARD_ENOTFOUND &&
             (rc = shard_journal_tidy(c->outdir, &c->done, c->err)) == 0)
        rc = shard_journal_create(&c->journal, c->outdir, fp, c->err);
    else if (rc == SHARD_EINVAL) {
        char why[SHARD_ERRMAX];

        snprintf(why, sizeof(why), "%s", c->err);
        rc = shard_errf(c->err, rc, "%s: cannot resume: %s", c->outdir, why);
    }
    free(fp);
    return rc;
}

/*
 * Makes `outdir` ready: created if missing; an existing dataset is an
 * error unless `force`, which removes it manifest first, so that no
 * reader can see a manifest over missing shards.
 */
static int prepare_outdir(compiler *c)
{
    char p[4400];
    int has = 0;

    if (c->opt->append)
        return 0; /* shard_append_open checks the dataset */
    if (c->opt->resume)
        return resume_check(c);
    if (mkdir(c->outdir, 0755) != 0 && errno != EEXIST)
        return shard_errf(c->err, SHARD_EIO, "%s: %s", c->outdir,
                          strerror(errno));
    snprintf(p, sizeof(p), "%s/manifest.json", c->outdir);
    has = access(p, F_OK) == 0;
    snprintf(p, sizeof(p), "%s/%s", c->outdir, SHARD_JOURNAL_PATH);
    if (!has && !c->opt->force && access(p, F_OK) == 0)
        return shard_errf(c->err, SHARD_EINVAL, "%s: holds an interrupted "
                          "compile (--resume continues it, --force starts "
                          "over)", c->outdir);
    if (c->opt->force && unlink(p) != 0 && errno != ENOENT)
        return shard_errf(c->err, SHARD_EIO, "%s: %s", p, strerror(errno));
    snprintf(p, sizeof(p), "%s/pairs", c->outdir);
    has |= access(p, F_OK) == 0;
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        snprintf(p, sizeof(p), "%s/%s", c->outdir, shard_label_name(l));
        has |= access(p, F_OK) == 0;
    }
    if (!has)
        return 0;
    if (!c->opt->force)
        return shard_errf(c->err, SHARD_EINVAL,
                          "%s: already holds a dataset (use --force to "
                          "replace it)", c->outdir);
    snprintf(p, sizeof(p), "%s/manifest.json", c->outdir);
    if (unlink(p) != 0 && errno != ENOENT)
        return shard_errf(c->err, SHARD_EIO, "%s: %s", p, strerror(errno));
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        snprintf(p, sizeof(p), "%s/%s", c->outdir, shard_label_name(l));
        if (remove_stream_dir(p) != 0)
            return shard_errf(c->err, SHARD_EIO, "%s: %s", p,
                              strerror(errno));
    }
    snprintf(p, sizeof(p), "%s/pairs", c->outdir);
    if (remove_stream_dir(p) != 0)
        return shard_errf(c->err, SHARD_EIO, "%s: %s", p, strerror(errno));
    return 0;
}

/* Makes the output directory ready; under --mpi rank 0 does, and the
 * others wait for it. */
static int outdir_ready(compiler *c)
{
    int rc = c->mpi && shard_mpi_rank(c->mpi) != 0 ? 0 : prepare_outdir(c);

    if (c->mpi && rc == 0 && shard_mpi_rank(c->mpi) == 0)
        rc = shard_mpi_clean(c->mpi, c->outdir);
    return c->mpi ? shard_mpi_agree(c->mpi, rc) : rc;
}

static int open_streams(compiler *c)
{
    shard_writer_options w = SHARD_WRITER_OPTIONS_INIT;
    char dir[4400];
    int rc;

    w.codec = c->opt->codec;
    w.zstd_level = c->opt->zstd_level;
    w.shard_size = c->opt->shard_size;
    w.frame_size = c->opt->frame_size;
    w.with_text = c->opt->with_text;
    w.tokenizer = c->tok_info;
    w.threads = c->n_workers > 1 ? (int)c->n_workers : 0;
    w.prefix = c->mpi ? shard_mpi_prefix(c->mpi) : NULL;
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        w.first_seq = c->app ? shard_append_first_seq(c->app, l)
                             : c->done.n_files[l];
        w.label = l;
        snprintf(dir, sizeof(dir), "%s/%s", c->outdir, shard_label_name(l));
        if ((rc = shard_stream_open(&c->streams[l], dir, &w)) < 0 ||
            (rc = shard_stream_adopt(c->streams[l], c->done.files[l],
                                     c->done.n_files[l])) < 0)
            return shard_errf(c->err, rc, "%s", shard_last_error());
    }
    snprintf(dir, sizeof(dir), "%s", c->outdir);
    if (c->mpi && (rc = shard_mpi_pairs_dir(c->mpi, c->outdir, dir,
                                            sizeof(dir))) < 0)
        return rc;
    if ((rc = shard_pairs_writer_open(&c->pairs, dir)) < 0)
        return shard_errf(c->err, rc, "%s", shard_last_error());
    return 0;
}

/* Workers, batches and the queue between them: -j workers, 0 for one
 * per core. */
static int pipeline_new(compiler *c)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = c->opt->threads > 0 ? c->opt->threads
            : cores > 0 ? (int)cores : 1;

    if (n > SHARD_MAX_THREADS)
        n = SHARD_MAX_THREADS;
    c->cap = 2 * (size_t)n + 2;
    if (!(c->workers = calloc((size_t)n, sizeof(*c->workers))) ||
        !(c->slots = calloc(c->cap, sizeof(*c->slots))) ||
        !(c->queue = calloc(c->cap, sizeof(*c->queue))))
        return SHARD_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work_cv, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    pthread_cond_init(&c->read_cv, NULL);
    pthread_cond_init(&c->free_cv, NULL);
    for (c->n_workers = 0; c->n_workers < (size_t)n; c->n_workers++) {
        worker *w = &c->workers[c->n_workers];

        w->c = c;
        if (shard_json_parser_new(&w->json) < 0)
            return SHARD_ENOMEM;
    }
    return 0;
}

static void pipeline_free(compiler *c)
{
    for (size_t i = 0; i < c->n_workers; i++) {
        worker *w = &c->workers[i];

        shard_json_parser_free(w->json);
        emit_free(&w->emit);
        shard_strbuf_free(&w->prompt);
        shard_strbuf_free(&w->response);
        shard_strbuf_free(&w->last_prompt);
        shard_tokens_free(&w->prompt_toks);
        shard_strbuf_free(&w->folded);
    }
    for (size_t i = 0; c->slots && i < c->cap; i++)
        batch_free(&c->slots[i]);
    if (c->queue) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->work_cv);
        pthread_cond_destroy(&c->done_cv);
        pthread_cond_destroy(&c->read_cv);
        pthread_cond_destroy(&c->free_cv);
    }
    free(c->workers);
    free(c->slots);
    free(c->queue);
    free(c->repeats);
    free(c->batch_first);
}

static int setup(compiler *c)
{
    const shard_compile_options *o = c->opt;
    int rc;

    if (strcmp(o->format, "auto") != 0 &&
        !(c->fixed = shard_format_find(o->format)))
        return shard_errf(c->err, SHARD_EINVAL, "unknown format \"%s\"",
                          o->format);
    if ((o->field_map || o->label_rule) && (!c->fixed || !c->fixed->prepare))
        return shard_errf(c->err, SHARD_EINVAL, "--map and --label-rule "
                          "need --format map");
    if (c->fixed && c->fixed->prepare &&
        (rc = c->fixed->prepare(o, &c->fixed_state, c->err)) < 0)
        return rc;
    if ((rc = shard_tokenizer_open(&c->tok, o->tokenizer)) < 0)
        return shard_errf(c->err, rc, "%s", shard_last_error());
    if ((rc = open_template(c)) < 0)
        return rc;
    if ((rc = shard_json_parser_new(&c->json)) < 0 ||
        (rc = pipeline_new(c)) < 0)
        return shard_errf(c->err, rc, "out of memory");

    shard_tokenizer_info *ti = &c->tok_info;
    memset(ti, 0, sizeof(*ti));
    snprintf(ti->name, sizeof(ti->name), "%s", shard_tokenizer_name(c->tok));
    snprintf(ti->template, sizeof(ti->template), "%s", o->template_name);
    ti->hash = shard_tokenizer_hash(c->tok);
    ti->vocab_size = shard_tokenizer_vocab_size(c->tok);
    ti->pad_id = SHARD_NO_TOKEN;
    int64_t bos = shard_template_begin(c->tpl);
    int64_t eos = shard_template_end(c->tpl);
    if (eos < 0)
        eos = shard_tokenizer_special(c->tok, "<|endoftext|>");
    if (eos < 0)
        eos = shard_tokenizer_special(c->tok, "<|end_of_text|>");
    ti->bos_id = bos >= 0 ? (uint32_t)bos : SHARD_NO_TOKEN;
    ti->eos_id = eos >= 0 ? (uint32_t)eos : SHARD_NO_TOKEN;

    if ((rc = outdir_ready(c)) < 0 || (rc = journal_open(c)) < 0)
        return rc;
    if (o->append) {
        if ((rc = shard_append_open(&c->app, c->outdir, ti, c->err)) < 0)
            return rc;
        c->input_base = shard_append_inputs(c->app);
    }
    return open_streams(c);
}

static int finish_pairs(compiler *c, shard_manifest_data *d)
{
    uint64_t n_pairs;
    int rc;

    if ((rc = shard_pairs_writer_finish(c->pairs, &n_pairs, &d->pairs_bytes,
                                        &d->pairs_checksum)) < 0)
        return shard_errf(c->err, rc, "%s",
                          shard_pairs_writer_errmsg(c->pairs));
    return 0;
}

/* Completes the label streams and fills in the rest of d. */
static int finish_streams(compiler *c, shard_manifest_data *d)
{
    int rc;

    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        if ((rc = shard_stream_finish(c->streams[l])) < 0)
            return shard_errf(c->err, rc, "%s",
                              shard_stream_errmsg(c->streams[l]));
        d->files[l] = shard_stream_files(c->streams[l], &d->n_files[l]);
    }
    d->opt = c->opt;
    d->schema = c->schema ? c->schema : "none";
    d->tokenizer = &c->tok_info;
    d->acct = c->acct;
    d->examples = c->examples;
    d->inputs = c->inputs;
    d->n_inputs = c->n_inputs;
    d->rules = c->rules;
    d->n_rules = c->n_rules;
    return 0;
}

/*
 * --mpi: every rank completes its shards (and, but rank 0, its pairs);
 * once all have, rank 0 takes in the others' figures and pairs and
 * writes the manifest.  No key table is kept (no --append onto it).
 */
static int finish_mpi(compiler *c)
{
    shard_manifest_data d;
    uint64_t bytes, notes, rounds;
    int rank = shard_mpi_rank(c->mpi), rc;

    memset(&d, 0, sizeof(d));
    rc = finish_streams(c, &d);
    if (rc == 0 && rank != 0)
        rc = finish_pairs(c, &d);
    if ((rc = shard_mpi_agree(c->mpi, rc)) < 0 ||
        (rc = shard_mpi_gather(c->mpi, &d, c->acct, c->inputs,
                               c->examples)) < 0)
        return rc;
    if (rank == 0) {
        shard_mpi_traffic(c->mpi, &bytes, &notes, &rounds);
        logf_(c, SHARD_MSG_INFO, "mpi: %d ranks sent %llu bytes in %llu "
              "rounds for %llu dedup keys", shard_mpi_size(c->mpi),
              (unsigned long long)bytes, (unsigned long long)rounds,
              (unsigned long long)notes);
        if ((rc = shard_mpi_pairs_merge(c->mpi, c->outdir, c->pairs)) == 0 &&
            (rc = finish_pairs(c, &d)) == 0)
            rc = shard_manifest_write(c->outdir, &d, c->err);
    }
    return shard_mpi_agree(c->mpi, rc);
}

static int finish(compiler *c)
{
    shard_manifest_data d;
    int rc;

    if (c->mpi)
        return finish_mpi(c);
    memset(&d, 0, sizeof(d));
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        if (c->acct->kept_by_label[l] < c->done.records[l])
            return shard_errf(c->err, SHARD_EINVAL, "%s: the inputs gave "
                              "fewer %s records than the journal's shards "
                              "hold", c->outdir, shard_label_name(l));
    if ((rc = finish_pairs(c, &d)) < 0 || (rc = finish_streams(c, &d)) < 0)
        return rc;
    if ((rc = dedup_save(c)) < 0 ||
        (c->app && (rc = shard_append_finish(c->app, &d, c->acct,
                                             c->err)) < 0) ||
        (rc = shard_manifest_write(c->outdir, &d, c->err)) < 0)
        return rc;
    rc = shard_journal_close(c->journal, 1);
    c->journal = NULL;
    return rc < 0 ? shard_errf(c->err, rc, "%s/%s: %s", c->outdir,
                               SHARD_JOURNAL_PATH, strerror(errno))
                  : 0;
}

static void teardown(compiler *c)
{
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        shard_stream_free(c->streams[l]);
    shard_template_close(c->tpl);
    shard_tokenizer_close(c->tok);
    shard_json_parser_free(c->json);
    shard_pairs_writer_free(c->pairs);
    if (c->fixed && c->fixed->release)
        c->fixed->release(c->fixed_state);
    shard_dedup_free(c->dedup);
    shard_near_free(c->near);
    shard_append_free(c->app);
    shard_journal_close(c->journal, 0);
    shard_journal_state_free(&c->done);
    pipeline_free(c);
    shard_mpi_close(c->mpi);
    free(c->examples);
    free(c->inputs);
}

/* ---- inputs ----------------------------------------------------------- */

typedef struct {
    char **paths;
    size_t n, cap;
} path_list;

static int path_add(path_list *l, const char *p)
{
    if (shard_grow((void **)&l->paths, &l->cap, l->n + 1, sizeof(char *)))
        return SHARD_ENOMEM;
    if (!(l->paths[l->n] = strdup(p)))
        return SHARD_ENOMEM;
    l->n++;
    return 0;
}

static void path_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
}

static int skip_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Byte order, whatever the locale. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Adds `path`, or every regular file below it when it is a directory, in
 * byte order of names at each level; hidden entries are skipped.
 */
static int expand(path_list *l, const char *path, int depth)
{
    struct dirent **ents;
    struct stat st;
    char sub[8400];
    int n, rc = 0;

    if (strcmp(path, "-") == 0 || stat(path, &st) != 0 ||
        !S_ISDIR(st.st_mode))
        return path_add(l, path); /* errors surface when opened */
    if (depth > 64)
        return shard_set_last_error(SHARD_EINVAL, "%s: directories nested "
                                    "too deep", path);
    if ((n = scandir(path, &ents, skip_hidden, by_name)) < 0)
        return shard_set_last_error(SHARD_EIO, "%s: %s", path,
                                    strerror(errno));
    for (int i = 0; i < n; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
        if (rc == 0 && stat(sub, &st) == 0 &&
            (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
            rc = expand(l, sub, depth + 1);
        free(ents[i]);
    }
    free(ents);
    return rc;
}

/*
 * --mpi: joins the job and learns which inputs this rank reads.  What a
 * rank cannot do alone is refused before MPI starts (every rank refuses
 * alike).
 */
static int mpi_join(compiler *c)
{
    const shard_compile_options *o = c->opt;
    int rc;

    for (size_t i = 0; i < c->n_inputs; i++)
        if (strcmp(c->paths[i], "-") == 0)
            return shard_errf(c->err, SHARD_EINVAL, "--mpi: standard "
                              "input cannot be read by several ranks");
    if (o->append || o->near_dup > 0)
        return shard_errf(c->err, SHARD_EINVAL, "--mpi: not with %s",
                          o->append ? "--append" : "--near-dup");
    if ((rc = shard_mpi_open(&c->mpi, o->conflicts, o->mem_limit,
                             c->outdir, c->err)) < 0)
        return rc;
    return shard_mpi_split(c->mpi, c->paths, c->n_inputs, &c->mine);
}

static int compile_paths(char *const *inputs, size_t n, const char *outdir,
                         const shard_compile_options *opts,
                         shard_accounting *acct)
{
    compiler c;
    int rc;

    memset(&c, 0, sizeof(c));
    memset(acct, 0, sizeof(*acct));
    c.opt = opts;
    c.outdir = outdir;
    c.acct = acct;
    c.n_inputs = n;
    c.paths = inputs;
    c.examples = calloc(1, sizeof(*c.examples));
    c.inputs = calloc(n ? n : 1, sizeof(*c.inputs));
    if (!c.examples || !c.inputs) {
        teardown(&c);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }

    rc = opts->mpi ? mpi_join(&c) : 0;
    if (rc == 0)
        rc = setup(&c);
    if (c.mpi)
        rc = shard_mpi_agree(c.mpi, rc);
    if (rc == 0)
        rc = dedup_sweep(&c, inputs, n);
    if (rc == 0)
        rc = run_sweep(&c, inputs, n);
    c.quiet = 0;
    report_unshown(&c);
    if (rc == 0)
        rc = finish(&c);
    if (c.mpi) /* a rank that failed alone tells the others here */
        rc = shard_mpi_agree(c.mpi, rc);
    if (rc < 0)
        shard_copy_last_error(c.err[0] ? c.err : shard_strerror(rc));
    teardown(&c);
    return rc;
}

int shard_compile(const char *const *inputs, size_t n, const char *outdir,
                  const shard_compile_options *opts, shard_accounting *acct)
{
    path_list l = {0};
    int rc = 0;

    memset(acct, 0, sizeof(*acct));
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = expand(&l, inputs[i], 0);
    if (rc == 0)
        rc = compile_paths(l.paths, l.n, outdir, opts, acct);
    path_free(&l);
    return rc;
}
