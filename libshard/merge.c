/*
 * merge.c - `shard merge DIR... -o OUT [--dedup]` (shard_merge.h).
 *
 * OUT's stream of each label is the inputs' streams of that label one
 * after the other, so input i's record at stream position p is at
 * base[i][label] + p in OUT; the inputs' tombstones and key tables move
 * by the same bases.  Records stay where they are: what --dedup drops is
 * listed in OUT/tombstones, and the accounting moves it from kept to
 * duplicate or conflict, as compile --append does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile_internal.h"
#include "dedup.h"
#include "format.h"
#include "internal.h"
#include "key_table.h"
#include "record_keys.h"
#include "shard_merge.h"
#include "shard_pairs.h"
#include "shard_reader.h"
#include "shard_tombstones.h"

#define POS_MASK ((1ull << 56) - 1)

/* Why the merge tombstoned a record. */
enum { GONE_DUPLICATE, GONE_CONFLICT };

typedef struct {
    const char *dir;
    shard_manifest m;
    uint64_t base[SHARD_LABEL_COUNT]; /* OUT position of its position 0 */
    uint64_t first_input;             /* its inputs' index in OUT's */
    uint64_t *tomb;                   /* its own tombstones, sorted */
    size_t n_tomb;
    shard_key_entry *keys;            /* --dedup: its key table */
    size_t n_keys;
    int normalize, policy;
    uint64_t *dead;                   /* ids of its records the merge
                                         dropped as conflicts, sorted */
    size_t n_dead, cap_dead;
} merge_input;

/* A key of the joined tables: every label any input met it with, the
 * first input to meet each (labels, then the pair bit), and where OUT
 * keeps its records. */
typedef struct {
    uint64_t lo, hi;
    uint8_t all;
    uint32_t first[SHARD_LABEL_COUNT + 1]; /* NO_INPUT: never met */
    uint32_t pos[SHARD_LABEL_COUNT];       /* NO_POS: none kept */
} merge_key;

#define NO_POS UINT32_MAX
#define NO_INPUT UINT32_MAX
#define PAIR_BIT 3

/* A record the merge drops: input, label, position in the input. */
typedef struct {
    size_t input;
    int label, why;
    uint64_t pos;
} merge_gone;

typedef struct {
    const shard_merge_options *opt;
    const char *out;
    merge_input *in;
    size_t n;
    int policy, normalize;
    merge_key *keys;                /* open addressing; lo|hi != 0 */
    size_t keys_mask;
    merge_gone *gone;
    size_t n_gone, cap_gone;
    uint64_t *tomb;                 /* OUT's tombstones */
    size_t n_tomb, cap_tomb;
    shard_file_info *files[SHARD_LABEL_COUNT];
    size_t n_files[SHARD_LABEL_COUNT];
    shard_input_stats *inputs;
    size_t n_inputs;
    const char **rules;
    size_t n_rules;
    const char *schema;
    shard_accounting acct;
    shard_merge_stats st;
    shard_pairs_writer *pairs;      /* OUT's pairs table */
    uint64_t *seen;                 /* pair ids of the inputs' rows so
                                       far, sorted */
    size_t n_seen, cap_seen;
    shard_key_entry *rows;          /* pair keys of the input's rows */
    size_t n_rows, cap_rows;
    uint64_t pairs_bytes, pairs_checksum;
    char err[SHARD_ERRMAX];
} merger;

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* ---- the inputs -------------------------------------------------------- */

/*
 * The first field in which dataset b differs from dataset a (the fields
 * that decide whether their records mean the same), or NULL.
 */
static const char *differing_field(const shard_manifest *a,
                                   const shard_manifest *b, int dedup)
{
    if (a->format_version != b->format_version)
        return "format_version";
    if (strcmp(a->tokenizer, b->tokenizer) != 0)
        return "tokenizer";
    if (a->tokenizer_hash != b->tokenizer_hash)
        return "tokenizer hash";
    if (a->vocab_size != b->vocab_size)
        return "vocab_size";
    if (strcmp(a->template_name, b->template_name) != 0)
        return "template";
    if (a->opt.hf_added_tokens != b->opt.hf_added_tokens)
        return "added_tokens";
    if (dedup && a->opt.normalize != b->opt.normalize)
        return "normalize";
    if (dedup && a->opt.conflicts != b->opt.conflicts)
        return "conflicts";
    return NULL;
}

static int open_input(merger *g, merge_input *in)
{
    struct stat st;
    int rc;

    if (stat(in->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return shard_errf(g->err, SHARD_ENOTFOUND,
                          "%s: not a dataset directory", in->dir);
    if ((rc = shard_manifest_read(in->dir, &in->m)) == SHARD_ENOTFOUND)
        return shard_errf(g->err, rc, "%s: no manifest.json: not a "
                          "complete dataset", in->dir);
    if (rc < 0)
        return shard_errf(g->err, rc, "%s", shard_last_error());
    if (in->m.format_version != 1)
        return shard_errf(g->err, SHARD_EFORMAT, "%s: dataset format "
                          "version %d, not 1", in->dir,
                          in->m.format_version);
    if ((rc = shard_tombstones_read(in->dir, &in->tomb, &in->n_tomb)) < 0)
        return shard_errf(g->err, rc, "%s", shard_last_error());
    return 0;
}

/* Reads an input's key table; its header must agree with its manifest. */
static int open_keys(merger *g, merge_input *in)
{
    char path[4200], why[SHARD_ERRMAX];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", in->dir, SHARD_KEYS_PATH);
    rc = shard_keys_read(path, &in->keys, &in->n_keys, &in->normalize,
                         &in->policy, why);
    if (rc == SHARD_ENOTFOUND)
        return shard_errf(g->err, SHARD_EINVAL, "%s: no key table (merged "
                          "without --dedup, or compiled before dedup "
                          "existed): cannot --dedup", in->dir);
    if (rc < 0)
        return shard_errf(g->err, rc, "%s", why);
    if (in->normalize != in->m.opt.normalize ||
        in->policy != in->m.opt.conflicts)
        return shard_errf(g->err, SHARD_ECORRUPT, "%s: key table built with "
                          "--normalize %s --conflicts %s, manifest says %s %s",
                          in->dir, shard_normalize_name(in->normalize),
                          shard_conflicts_name(in->policy),
                          shard_normalize_name(in->m.opt.normalize),
                          shard_conflicts_name(in->m.opt.conflicts));
    return 0;
}

/* Opens every input and checks that they can be joined. */
static int open_inputs(merger *g)
{
    int dedup = g->opt->dedup, rc;

    for (size_t i = 0; i < g->n; i++) {
        merge_input *in = &g->in[i];
        const char *field;

        if ((rc = open_input(g, in)) < 0 ||
            (dedup && (rc = open_keys(g, in)) < 0))
            return rc;
        if (i > 0 && (field = differing_field(&g->in[0].m, &in->m, dedup)))
            return shard_errf(g->err, SHARD_EINVAL, "%s and %s differ in "
                              "%s: cannot merge", g->in[0].dir, in->dir,
                              field);
    }
    g->policy = g->in[0].m.opt.conflicts;
    g->normalize = g->in[0].m.opt.normalize;
    if (dedup && g->opt->conflicts >= 0 && g->opt->conflicts != g->policy)
        return shard_errf(g->err, SHARD_EINVAL, "%s: compiled with "
                          "--conflicts %s, not %s: cannot merge with "
                          "another policy", g->in[0].dir,
                          shard_conflicts_name(g->policy),
                          shard_conflicts_name(g->opt->conflicts));
    return 0;
}

/* ---- OUT and its shard files ------------------------------------------ */

/* 1 when the directory holds nothing but "." and "..". */
static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;

    if (!d)
        return 0;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* Creates a directory that must be new or empty. */
static int make_dir(merger *g, const char *path)
{
    if (mkdir(path, 0777) == 0)
        return 0;
    if (errno != EEXIST)
        return shard_errf(g->err, SHARD_EIO, "%s: %s", path, strerror(errno));
    if (!dir_empty(path))
        return shard_errf(g->err, SHARD_EINVAL, "%s: exists and is not "
                          "empty: merge writes a new dataset", path);
    return 0;
}

/* Copies src to dst through tmp, fsync'ed, for a link that failed. */
static int copy_file(merger *g, const char *src, const char *tmp,
                     const char *dst)
{
    char buf[1 << 16];
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ok, e;
    ssize_t got = 0;

    ok = in >= 0 && (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC |
                                         O_CLOEXEC, 0666)) >= 0;
    while (ok && (got = read(in, buf, sizeof(buf))) != 0)
        ok = got > 0 ? shard_write_all(out, buf, (size_t)got) == 0
                     : errno == EINTR;
    ok = ok && fsync(out) == 0;
    e = errno;
    if (in >= 0)
        close(in);
    if ((out >= 0 && close(out) != 0) || !ok || rename(tmp, dst) != 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return shard_errf(g->err, SHARD_EIO, "%s: copying %s: %s", dst, src,
                          strerror(e));
    }
    return 0;
}

/*
 * Puts the file src at dst: a hard link when src's file system allows
 * one, else a copy.  Shard files are never written in place (every
 * writer renames a new file over the name), so the link cannot carry a
 * later change back into the input.
 */
static int place_file(merger *g, const char *src, const char *dir,
                      const char *name)
{
    char dst[4600], tmp[4600];

    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    if (link(src, dst) == 0) {
        g->st.linked++;
        return 0;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
        errno != EOPNOTSUPP)
        return shard_errf(g->err, SHARD_EIO, "%s: linking %s: %s", dst, src,
                          strerror(errno));
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    g->st.copied++;
    return copy_file(g, src, tmp, dst);
}

/* The input's shard must be the one its manifest lists. */
static int check_shard(merger *g, const char *path,
                       const shard_manifest_shard *s)
{
    const shard_info *info;
    shard_reader *r;
    int bad;

    if (shard_reader_open(&r, path, NULL) < 0)
        return shard_errf(g->err, SHARD_ECORRUPT, "%s", shard_last_error());
    info = shard_reader_info(r);
    bad = info->checksum != s->checksum || info->records != s->records ||
          info->label != s->label;
    shard_reader_close(r);
    if (bad)
        return shard_errf(g->err, SHARD_ECORRUPT, "%s: does not match its "
                          "manifest.json (checksum, records or label)", path);
    return 0;
}

/* Places the shards of one label, input after input, and sets bases. */
static int place_label(merger *g, int label)
{
    char dir[4200], src[4400];
    uint64_t total = 0;
    shard_file_info *f;
    int rc;

    snprintf(dir, sizeof(dir), "%s/%s", g->out, shard_label_name(label));
    for (size_t i = 0; i < g->n; i++) {
        merge_input *in = &g->in[i];

        in->base[label] = total;
        for (size_t k = 0; k < in->m.n_shards; k++) {
            const shard_manifest_shard *s = &in->m.shards[k];

            if (s->label != label)
                continue;
            if (g->n_files[label] == 0 && (rc = make_dir(g, dir)) < 0)
                return rc;
            f = &g->files[label][g->n_files[label]];
            snprintf(f->path, sizeof(f->path), "%05zu.shard",
                     g->n_files[label]);
            snprintf(src, sizeof(src), "%s/%s", in->dir, s->path);
            if ((rc = check_shard(g, src, s)) < 0 ||
                (rc = place_file(g, src, dir, f->path)) < 0)
                return rc;
            f->records = s->records;
            f->tokens = s->tokens;
            f->bytes = s->bytes;
            f->checksum = s->checksum;
            g->n_files[label]++;
            total += s->records;
        }
    }
    return 0;
}

static int place_shards(merger *g)
{
    size_t total = 0;
    int rc;

    for (size_t i = 0; i < g->n; i++)
        total += g->in[i].m.n_shards;
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        if (!(g->files[l] = calloc(total + 1, sizeof(*g->files[l]))))
            return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        if ((rc = place_label(g, l)) < 0)
            return rc;
    if (g->st.copied > 0 && g->opt->log) {
        char msg[SHARD_ERRMAX];

        snprintf(msg, sizeof(msg), "%s: %llu shard files copied (no hard "
                 "link possible), %llu linked", g->out,
                 (unsigned long long)g->st.copied,
                 (unsigned long long)g->st.linked);
        g->opt->log(g->opt->log_ctx, SHARD_MSG_INFO, msg);
    }
    return 0;
}

static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (shard_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
        return SHARD_ENOMEM;
    (*v)[(*n)++] = x;
    return 0;
}

/* The inputs' own tombstones, moved to OUT's positions. */
static int carry_tombstones(merger *g)
{
    for (size_t i = 0; i < g->n; i++) {
        const merge_input *in = &g->in[i];

        for (size_t k = 0; k < in->n_tomb; k++) {
            int label = (int)(in->tomb[k] >> 56);
            uint64_t pos = in->tomb[k] & POS_MASK;

            if (label >= SHARD_LABEL_COUNT)
                return shard_errf(g->err, SHARD_ECORRUPT, "%s: tombstone "
                                  "with label %d", in->dir, label);
            if (push_u64(&g->tomb, &g->n_tomb, &g->cap_tomb,
                         shard_tombstone(label, in->base[label] + pos)) < 0)
                return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* ---- --dedup across the inputs ---------------------------------------- */

static merge_key *key_slot(const merger *g, uint64_t lo, uint64_t hi)
{
    size_t h = (size_t)(lo ^ (hi >> 7)) & g->keys_mask;

    while ((g->keys[h].lo | g->keys[h].hi) &&
           (g->keys[h].lo != lo || g->keys[h].hi != hi))
        h = (h + 1) & g->keys_mask;
    return &g->keys[h];
}

/* Joins every input's table: each key with all the labels it met. */
static int keys_join(merger *g)
{
    size_t total = 0, size = 16;

    if (g->n > NO_INPUT)
        return shard_errf(g->err, SHARD_EINVAL, "more than %u datasets",
                          NO_INPUT);
    for (size_t i = 0; i < g->n; i++)
        total += g->in[i].n_keys;
    while (size < 2 * total)
        size *= 2;
    g->keys_mask = size - 1;
    if (!(g->keys = calloc(size, sizeof(*g->keys))))
        return shard_errf(g->err, SHARD_ENOMEM, "out of memory (%zu keys)",
                          total);
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = 0; j < g->in[i].n_keys; j++) {
            const shard_key_entry *e = &g->in[i].keys[j];
            merge_key *k = key_slot(g, e->lo, e->hi);

            if (!(k->lo | k->hi)) {
                k->lo = e->lo;
                k->hi = e->hi;
                memset(k->first, 0xff, sizeof(k->first));
                memset(k->pos, 0xff, sizeof(k->pos));
            }
            k->all |= e->labels & 0x0fu;
            for (int b = 0; b <= PAIR_BIT; b++)
                if ((e->labels & (1u << b)) && k->first[b] == NO_INPUT)
                    k->first[b] = (uint32_t)i;
        }
    return 0;
}

static int by_key(const void *a, const void *b)
{
    const shard_key_entry *x = a, *y = b;

    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Whether a record of `label` survives its key's `labels` (compile's
 * rule, dedup.c: one label, or a policy that keeps this one). */
static int label_kept(int label, unsigned labels, int policy)
{
    labels &= 7u;
    return (labels & (labels - 1)) == 0 || policy == SHARD_CONFLICTS_KEEP ||
           (policy == SHARD_CONFLICTS_NEG && label == SHARD_LABEL_NEG) ||
           (policy == SHARD_CONFLICTS_POS && label == SHARD_LABEL_POS);
}

/* Where an input keeps the records of one key. */
enum { NOT_KEPT, KEPT_AT, KEPT_SOMEWHERE };

typedef struct {
    unsigned met;                      /* label bits, pair bit */
    int state[SHARD_LABEL_COUNT];
    uint64_t pos[SHARD_LABEL_COUNT];   /* with KEPT_AT */
} key_group;

/*
 * Reads the entries of one key in one input's table.  An entry with the
 * written bit and one label says where that label's record is.  One with
 * several labels comes from a table kept in memory, which holds a single
 * position: under neg or pos it is that label's record; under keep one of
 * the labels', which one unknown unless the records' keys (rk, may be
 * NULL) place them; under drop none is kept (a record an append
 * superseded).  A record the input tombstoned is not kept.
 */
static void group_read(const merger *g, const merge_input *in,
                       const shard_record_keys *rk,
                       const shard_key_entry *e, size_t m, key_group *kg)
{
    shard_key key = {e->lo, e->hi};

    memset(kg, 0, sizeof(*kg));
    for (size_t j = 0; j < m; j++) {
        unsigned bits = e[j].labels & 7u;
        int l = -1;

        kg->met |= e[j].labels & 0x0fu;
        if (!(e[j].labels & SHARD_KEY_WRITTEN) || !bits)
            continue;
        if ((bits & (bits - 1)) == 0)
            l = __builtin_ctz(bits);
        else if (g->policy == SHARD_CONFLICTS_NEG)
            l = SHARD_LABEL_NEG;
        else if (g->policy == SHARD_CONFLICTS_POS)
            l = SHARD_LABEL_POS;
        for (int k = 0; l < 0 && g->policy == SHARD_CONFLICTS_KEEP &&
                        k < SHARD_LABEL_COUNT; k++)
            if ((bits & (1u << k)) && kg->state[k] == NOT_KEPT)
                kg->state[k] = KEPT_SOMEWHERE;
        if (l >= 0 && (bits & (1u << l))) {
            kg->state[l] = KEPT_AT;
            kg->pos[l] = e[j].position;
        }
    }
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        int64_t p = kg->state[l] == KEPT_SOMEWHERE && rk
                        ? shard_record_keys_position(rk, &key, l) : -1;

        if (p >= 0) {
            kg->state[l] = KEPT_AT;
            kg->pos[l] = (uint64_t)p;
        }
        if (kg->state[l] == KEPT_AT &&
            shard_tombstones_has(in->tomb, in->n_tomb,
                                 shard_tombstone(l, kg->pos[l])))
            kg->state[l] = NOT_KEPT;
    }
}

static int drop(merger *g, size_t input, int label, uint64_t pos, int why)
{
    if (shard_grow((void **)&g->gone, &g->cap_gone, g->n_gone + 1,
                   sizeof(*g->gone)) < 0)
        return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
    g->gone[g->n_gone++] = (merge_gone){input, label, why, pos};
    return 0;
}

/*
 * One label of one key in input i, as a compile over every input would
 * decide its first record there: a duplicate when an earlier input met
 * the label, else kept or a conflict by the labels of all inputs.
 */
static int decide_label(merger *g, size_t i, merge_key *k,
                        const key_group *kg, int l)
{
    const merge_input *in = &g->in[i];

    if (k->first[l] < i) {
        if (kg->state[l] == KEPT_AT)
            return drop(g, i, l, kg->pos[l], GONE_DUPLICATE);
        if (kg->state[l] == KEPT_SOMEWHERE)
            return shard_errf(g->err, SHARD_EINVAL, "%s: its key table "
                              "does not say where each record kept under "
                              "--conflicts keep is, and it has no text to "
                              "find it: cannot drop a repeat of one",
                              in->dir);
        if (!label_kept(l, kg->met, g->policy)) {
            g->acct.conflict--;
            g->acct.duplicate++;
            g->st.recounted++;
        }
        return 0;
    }
    if (!label_kept(l, k->all, g->policy))
        return kg->state[l] == KEPT_AT
                   ? drop(g, i, l, kg->pos[l], GONE_CONFLICT) : 0;
    if (kg->state[l] == KEPT_AT) {
        if (in->base[l] + kg->pos[l] >= NO_POS)
            return shard_errf(g->err, SHARD_EINVAL, "%s: more than %u %s "
                              "records: beyond the key table's positions",
                              g->out, NO_POS - 1, shard_label_name(l));
        k->pos[l] = (uint32_t)(in->base[l] + kg->pos[l]);
    }
    return 0;
}

/* Decides input i's keys, in the order of its sorted table. */
static int decide_input(merger *g, size_t i, const shard_record_keys *rk)
{
    merge_input *in = &g->in[i];
    key_group kg;
    int rc = 0;

    qsort(in->keys, in->n_keys, sizeof(*in->keys), by_key);
    for (size_t j = 0, m; rc == 0 && j < in->n_keys; j += m) {
        merge_key *k = key_slot(g, in->keys[j].lo, in->keys[j].hi);

        for (m = 1; j + m < in->n_keys &&
                    in->keys[j + m].lo == in->keys[j].lo &&
                    in->keys[j + m].hi == in->keys[j].hi; m++)
            ;
        group_read(g, in, rk, &in->keys[j], m, &kg);
        for (int l = 0; rc == 0 && l < SHARD_LABEL_COUNT; l++)
            if (kg.met & (1u << l))
                rc = decide_label(g, i, k, &kg, l);
    }
    return rc;
}

/* OUT's key table: each key with its labels, then each record kept. */
static int keys_save(merger *g)
{
    shard_key_entry *v = NULL;
    size_t n = 0, cap = 0;
    char path[4200];
    int rc;

    for (size_t s = 0; s <= g->keys_mask; s++) {
        const merge_key *k = &g->keys[s];

        if (!(k->lo | k->hi))
            continue;
        if (shard_grow((void **)&v, &cap, n + 1 + SHARD_LABEL_COUNT,
                       sizeof(*v)) < 0) {
            free(v);
            return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
        }
        v[n++] = (shard_key_entry){k->lo, k->hi, 0, k->all, {0, 0, 0}};
        for (int l = 0; l < SHARD_LABEL_COUNT; l++)
            if (k->pos[l] != NO_POS)
                v[n++] = (shard_key_entry){
                    k->lo, k->hi, k->pos[l],
                    (uint8_t)(SHARD_KEY_WRITTEN | 1u << l), {0, 0, 0}};
    }
    snprintf(path, sizeof(path), "%s/%s", g->out, SHARD_KEYS_PATH);
    rc = shard_keys_write(path, v, n, g->normalize, g->policy, g->err);
    free(v);
    return rc;
}

/* ---- what the merge drops --------------------------------------------- */

static int by_place(const void *a, const void *b)
{
    const merge_gone *x = a, *y = b;

    if (x->input != y->input)
        return x->input < y->input ? -1 : 1;
    if (x->label != y->label)
        return x->label - y->label;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The id and token count of position `pos` of a label's stream (ds),
 * from the shard's columns, no frame decoded.  0 or SHARD_ECORRUPT. */
static int record_facts(const shard_dataset *ds, uint64_t pos,
                        uint64_t *id, uint64_t *tokens)
{
    uint64_t i;
    shard_reader *r = shard_dataset_reader_of(ds, pos, &i);
    size_t n_ids, n_offs, width;
    const uint64_t *ids =
        shard_reader_column(r, SHARD_COL_RECORD_ID, &n_ids, &width);
    const uint64_t *offs =
        shard_reader_column(r, SHARD_SEC_TOKEN_OFFSETS, &n_offs, &width);

    /* The offsets column holds one more element than records. */
    if (!ids || !offs || i >= n_ids || i >= n_offs)
        return SHARD_ECORRUPT;
    *id = ids[i];
    *tokens = offs[i + 1] - offs[i];
    return 0;
}

/*
 * Moves each record dropped since `from` from kept to duplicate or
 * conflict in the accounting, tombstones it in OUT, and notes the ids of
 * conflicts for the pairs table.
 */
static int apply_drops(merger *g, size_t from)
{
    shard_dataset *ds = NULL;
    size_t open_input = (size_t)-1;
    int open_label = -1, rc = 0;

    if (g->n_gone > from)
        qsort(g->gone + from, g->n_gone - from, sizeof(*g->gone), by_place);
    for (size_t j = from; rc == 0 && j < g->n_gone; j++) {
        const merge_gone *d = &g->gone[j];
        merge_input *in = &g->in[d->input];
        uint64_t id, tokens;

        if (d->input != open_input || d->label != open_label) {
            shard_dataset_close(ds);
            open_input = d->input;
            open_label = d->label;
            if ((rc = shard_dataset_open(&ds, in->dir, d->label, NULL)) < 0)
                return shard_errf(g->err, rc, "%s", shard_last_error());
        }
        if (d->pos >= shard_dataset_count(ds) ||
            record_facts(ds, d->pos, &id, &tokens) < 0) {
            rc = shard_errf(g->err, SHARD_ECORRUPT, "%s: no %s record %llu "
                            "where its key table says", in->dir,
                            shard_label_name(d->label),
                            (unsigned long long)d->pos);
            break;
        }
        g->acct.kept--;
        g->acct.kept_by_label[d->label]--;
        g->acct.tokens_by_label[d->label] -= tokens;
        if (d->why == GONE_DUPLICATE) {
            g->acct.duplicate++;
            g->st.duplicate++;
        } else {
            g->acct.conflict++;
            g->st.conflict++;
            rc = push_u64(&in->dead, &in->n_dead, &in->cap_dead, id);
        }
        if (rc == 0)
            rc = push_u64(&g->tomb, &g->n_tomb, &g->cap_tomb,
                          shard_tombstone(d->label,
                                          in->base[d->label] + d->pos));
        if (rc == SHARD_ENOMEM)
            shard_errf(g->err, rc, "out of memory");
    }
    shard_dataset_close(ds);
    return rc;
}

/* ---- the pairs table -------------------------------------------------- */

/* How a pairs row fares in one compile over every input. */
enum { ROW_KEEP, ROW_DROPPED, ROW_DUPLICATE, ROW_UNKNOWN };

/* The label of a row's side: its record's, or `pref` when the input has
 * the record under several labels, that one among them. */
static int side_label(unsigned labels, int pref)
{
    if ((labels & (labels - 1)) && (labels & (1u << pref)))
        return pref;
    return __builtin_ctz(labels);
}

/* Whether a side (key, label) is a record of a label that input i met
 * first and that its key loses to a conflict: a dropped record. */
static int side_dropped(const merger *g, size_t i, const shard_key *key,
                        int l)
{
    const merge_key *k = key_slot(g, key->lo, key->hi);

    return (k->lo | k->hi) && k->first[l] == i &&
           !label_kept(l, k->all, g->policy);
}

/*
 * A row of input i by its records' keys: dropped when a side is, else a
 * duplicate when an earlier input met the comparison (its pair key),
 * even if that input dropped it.  ROW_UNKNOWN without the keys.
 */
static int row_fate(merger *g, size_t i, const shard_record_keys *rk,
                    const shard_pair *p)
{
    shard_key kc, kr, kp;
    unsigned lc, lr;
    const merge_key *k;

    if (!rk || !(lc = shard_record_keys_by_id(rk, p->chosen, &kc)) ||
        !(lr = shard_record_keys_by_id(rk, p->rejected, &kr)))
        return ROW_UNKNOWN;
    kp = shard_key_pair(&kc, &kr);
    if (shard_grow((void **)&g->rows, &g->cap_rows, g->n_rows + 1,
                   sizeof(*g->rows)) == 0)
        g->rows[g->n_rows++] = (shard_key_entry){kp.lo, kp.hi, 0, 0,
                                                 {0, 0, 0}};
    if (side_dropped(g, i, &kc, side_label(lc, SHARD_LABEL_POS)) ||
        side_dropped(g, i, &kr, side_label(lr, SHARD_LABEL_NEG)))
        return ROW_DROPPED;
    k = key_slot(g, kp.lo, kp.hi);
    return (k->lo | k->hi) && k->first[PAIR_BIT] < i ? ROW_DUPLICATE
                                                     : ROW_KEEP;
}

/* A row by ids alone: dropped when the merge dropped one of its records
 * as a conflict, a duplicate when an earlier input's table has it. */
static int row_fate_by_id(const merger *g, const merge_input *in,
                          const shard_pair *p)
{
    if (shard_tombstones_has(in->dead, in->n_dead, p->chosen) ||
        shard_tombstones_has(in->dead, in->n_dead, p->rejected))
        return ROW_DROPPED;
    if (shard_tombstones_has(g->seen, g->n_seen, p->pair_id))
        return ROW_DUPLICATE;
    return ROW_KEEP;
}

/* Input i's rows of table t into OUT's, as one compile would keep them
 * with --dedup, all of them without. */
static int copy_pairs(merger *g, size_t i, const shard_pairs *t,
                      const shard_record_keys *rk)
{
    merge_input *in = &g->in[i];
    int rc = 0;

    if (in->n_dead > 0)
        qsort(in->dead, in->n_dead, sizeof(*in->dead), by_value);
    for (uint64_t j = 0; rc == 0 && j < shard_pairs_count(t); j++) {
        const shard_pair *p = &shard_pairs_rows(t)[j];
        int fate = g->opt->dedup ? row_fate(g, i, rk, p) : ROW_KEEP;

        if (fate == ROW_UNKNOWN)
            fate = row_fate_by_id(g, in, p);
        if (fate == ROW_DROPPED)
            g->st.pairs_dropped++;
        else if (fate == ROW_DUPLICATE)
            g->st.pairs_duplicate++;
        else if ((rc = shard_pairs_writer_add(g->pairs, p)) < 0)
            shard_errf(g->err, rc, "%s", shard_pairs_writer_errmsg(g->pairs));
    }
    return rc;
}

/*
 * A comparison input i met first after an earlier input, but dropped
 * itself (a side was a conflict in it): one compile counts it as a
 * duplicate, since its sides there repeat the earlier input's.  Such are
 * the pair keys of i's table that none of its rows has (g->rows, read
 * from every row, else nothing is recounted).
 */
static void recount_pairs(merger *g, size_t i, size_t rows_read,
                          size_t rows)
{
    const merge_input *in = &g->in[i];

    if (rows_read != rows)
        return;
    if (g->n_rows > 0)
        qsort(g->rows, g->n_rows, sizeof(*g->rows), by_key);
    for (size_t j = 0; j < in->n_keys; j++) {
        const shard_key_entry *e = &in->keys[j];
        const merge_key *k = key_slot(g, e->lo, e->hi);

        if (!(e->labels & SHARD_KEY_PAIR) || k->first[PAIR_BIT] >= i ||
            (j > 0 && !by_key(e, e - 1)) ||
            (g->n_rows > 0 &&
             bsearch(e, g->rows, g->n_rows, sizeof(*g->rows), by_key)))
            continue;
        g->acct.pairs_dropped--;
        g->acct.pairs_duplicate++;
        g->st.pairs_recounted++;
    }
}

/* Adds the pair ids of table t to the sorted g->seen. */
static int note_pairs(merger *g, const shard_pairs *t)
{
    for (uint64_t j = 0; j < shard_pairs_count(t); j++)
        if (push_u64(&g->seen, &g->n_seen, &g->cap_seen,
                     shard_pairs_rows(t)[j].pair_id) < 0)
            return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
    if (g->n_seen > 0)
        qsort(g->seen, g->n_seen, sizeof(*g->seen), by_value);
    return 0;
}

/* Input i's pairs rows into OUT's table (rk: its records' keys, or NULL). */
static int input_pairs(merger *g, size_t i, const shard_record_keys *rk)
{
    char path[4400];
    shard_pairs *t;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", g->in[i].dir, SHARD_PAIRS_PATH);
    if ((rc = shard_pairs_open(&t, path)) == SHARD_ENOTFOUND)
        return 0;
    if (rc < 0)
        return shard_errf(g->err, rc, "%s", shard_last_error());
    g->n_rows = 0;
    rc = copy_pairs(g, i, t, rk);
    if (rc == 0 && g->opt->dedup && rk)
        recount_pairs(g, i, g->n_rows, shard_pairs_count(t));
    if (rc == 0 && g->opt->dedup)
        rc = note_pairs(g, t);
    shard_pairs_close(t);
    return rc;
}

static int pairs_finish(merger *g)
{
    uint64_t count;
    int rc;

    rc = shard_pairs_writer_finish(g->pairs, &count, &g->pairs_bytes,
                                   &g->pairs_checksum);
    if (rc < 0)
        return shard_errf(g->err, rc, "%s",
                          shard_pairs_writer_errmsg(g->pairs));
    g->acct.pairs = count;
    g->acct.pairs_duplicate += g->st.pairs_duplicate;
    g->acct.pairs_dropped += g->st.pairs_dropped;
    return 0;
}

/*
 * --dedup for input i: its records' keys, read from its text when a step
 * may need them (it is not the first input, or positions under keep are
 * to be found); its keys decided; its drops applied; its pairs rows
 * copied.  An input without text is decided by its key table and ids.
 */
static int dedup_input(merger *g, size_t i)
{
    shard_record_keys *rk = NULL;
    char why[SHARD_ERRMAX];
    size_t from = g->n_gone;
    int rc = 0;

    if (i > 0 || g->policy == SHARD_CONFLICTS_KEEP)
        rc = shard_record_keys_open(&rk, g->in[i].dir, g->normalize, why);
    if (rc == SHARD_ENOTFOUND)
        rc = 0;
    else if (rc < 0)
        return shard_errf(g->err, rc, "%s: %s", g->in[i].dir, why);
    if ((rc = decide_input(g, i, rk)) == 0 &&
        (rc = apply_drops(g, from)) == 0)
        rc = input_pairs(g, i, rk);
    shard_record_keys_free(rk);
    return rc;
}

/* ---- OUT's manifest ---------------------------------------------------- */

/* The inputs' accounting summed (it is counters only, as in append). */
static void sum_accounting(merger *g)
{
    uint64_t *t = (uint64_t *)(void *)&g->acct;

    memset(&g->acct, 0, sizeof(g->acct));
    for (size_t i = 0; i < g->n; i++) {
        const uint64_t *a = (const uint64_t *)(const void *)&g->in[i].m.acct;

        for (size_t k = 0; k < sizeof(g->acct) / sizeof(uint64_t); k++)
            t[k] += a[k];
    }
}

/* The inputs' inputs in order, their label rules without repeats, and
 * the schema ("mixed" once two inputs differ). */
static int join_lists(merger *g)
{
    size_t inputs = 0, rules = 0;

    for (size_t i = 0; i < g->n; i++) {
        inputs += g->in[i].m.n_inputs;
        rules += g->in[i].m.n_rules;
    }
    g->inputs = calloc(inputs + 1, sizeof(*g->inputs));
    g->rules = calloc(rules + 1, sizeof(*g->rules));
    if (!g->inputs || !g->rules)
        return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
    g->schema = g->in[0].m.schema;
    for (size_t i = 0; i < g->n; i++) {
        const shard_manifest *m = &g->in[i].m;

        if (strcmp(m->schema, g->schema) != 0)
            g->schema = "mixed";
        g->in[i].first_input = g->n_inputs;
        for (size_t k = 0; k < m->n_inputs; k++) {
            shard_input_stats *s = &g->inputs[g->n_inputs++];

            snprintf(s->path, sizeof(s->path), "%s", m->inputs[k].path);
            snprintf(s->format, sizeof(s->format), "%s",
                     m->inputs[k].format);
            snprintf(s->error, sizeof(s->error), "%s", m->inputs[k].error);
            s->rows_read = m->inputs[k].rows_read;
            s->rows_invalid = m->inputs[k].rows_invalid;
            s->records = m->inputs[k].records;
            s->kept = m->inputs[k].kept;
        }
        for (size_t k = 0; k < m->n_rules; k++) {
            size_t r = 0;

            while (r < g->n_rules && strcmp(g->rules[r], m->rules[k]) != 0)
                r++;
            if (r == g->n_rules)
                g->rules[g->n_rules++] = m->rules[k];
        }
    }
    return 0;
}

static int write_manifest(merger *g)
{
    static const shard_examples none;
    const shard_manifest *m0 = &g->in[0].m;
    shard_tokenizer_info tok = {"", "", m0->tokenizer_hash, m0->vocab_size,
                                m0->bos_id, m0->eos_id, SHARD_NO_TOKEN};
    shard_manifest_data d;
    const char **paths = calloc(g->n + 1, sizeof(*paths));
    uint64_t *first = calloc(g->n + 1, sizeof(*first));
    int rc;

    if (!paths || !first) {
        free(paths);
        free(first);
        return shard_errf(g->err, SHARD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < g->n; i++) {
        paths[i] = g->in[i].dir;
        first[i] = g->in[i].first_input;
    }
    snprintf(tok.name, sizeof(tok.name), "%.31s", m0->tokenizer);
    snprintf(tok.template, sizeof(tok.template), "%.15s", m0->template_name);
    memset(&d, 0, sizeof(d));
    d.opt = &m0->opt;
    d.schema = g->schema;
    d.tokenizer = &tok;
    d.acct = &g->acct;
    d.examples = &none;
    d.inputs = g->inputs;
    d.n_inputs = g->n_inputs;
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        d.files[l] = g->files[l];
        d.n_files[l] = g->n_files[l];
    }
    d.rules = g->rules;
    d.n_rules = g->n_rules;
    d.pairs_bytes = g->pairs_bytes;
    d.pairs_checksum = g->pairs_checksum;
    d.merge = &g->st;
    d.merge_paths = paths;
    d.merge_first_input = first;
    rc = shard_manifest_write(g->out, &d, g->err);
    free(paths);
    free(first);
    return rc;
}

/* ---- the whole merge --------------------------------------------------- */

static int run(merger *g)
{
    int rc;

    if ((rc = open_inputs(g)) < 0 || (rc = make_dir(g, g->out)) < 0 ||
        (rc = place_shards(g)) < 0 || (rc = carry_tombstones(g)) < 0)
        return rc;
    sum_accounting(g);
    if ((rc = join_lists(g)) < 0)
        return rc;
    if (g->opt->dedup && (rc = keys_join(g)) < 0)
        return rc;
    if ((rc = shard_pairs_writer_open(&g->pairs, g->out)) < 0)
        return shard_errf(g->err, rc, "%s", shard_last_error());
    for (size_t i = 0; i < g->n; i++)
        if ((rc = g->opt->dedup ? dedup_input(g, i)
                                : input_pairs(g, i, NULL)) < 0)
            return rc;
    if ((rc = pairs_finish(g)) < 0 ||
        (g->opt->dedup && (rc = keys_save(g)) < 0))
        return rc;
    if (g->n_tomb > 0) {
        qsort(g->tomb, g->n_tomb, sizeof(*g->tomb), by_value);
        if ((rc = shard_tombstones_write(g->out, g->tomb, g->n_tomb)) < 0)
            return shard_errf(g->err, rc, "%s", shard_last_error());
    }
    return write_manifest(g);
}

static void merger_free(merger *g)
{
    for (size_t i = 0; g->in && i < g->n; i++) {
        shard_manifest_free(&g->in[i].m);
        free(g->in[i].tomb);
        free(g->in[i].keys);
        free(g->in[i].dead);
    }
    free(g->in);
    free(g->keys);
    free(g->gone);
    free(g->tomb);
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        free(g->files[l]);
    free(g->inputs);
    free(g->rules);
    shard_pairs_writer_free(g->pairs);
    free(g->seen);
    free(g->rows);
}

int shard_merge(const char *const *dirs, size_t n, const char *out,
                const shard_merge_options *opts, shard_accounting *acct,
                shard_merge_stats *stats)
{
    shard_merge_options def = SHARD_MERGE_OPTIONS_INIT;
    merger g;
    int rc;

    memset(&g, 0, sizeof(g));
    g.opt = opts ? opts : &def;
    g.out = out;
    g.n = n;
    g.st.datasets = n;
    g.st.dedup = g.opt->dedup;
    if (g.opt->version != SHARD_MERGE_OPTIONS_VERSION || n == 0)
        return shard_set_last_error(SHARD_EINVAL, "merge: %s",
                                    n ? "unknown options version"
                                      : "no dataset to merge");
    if (!(g.in = calloc(n, sizeof(*g.in))))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        g.in[i].dir = dirs[i];
    rc = run(&g);
    if (acct)
        *acct = g.acct;
    if (stats)
        *stats = g.st;
    if (rc < 0)
        shard_set_last_error(rc, "%s", g.err[0] ? g.err : shard_strerror(rc));
    merger_free(&g);
    return rc;
}
