/*
 * dedup.c - record keys, the key table and its disk partitions.
 *
 * The table is open addressing with linear probing over 24-byte entries
 * (key, a 32-bit position, the labels of the whole stream, the labels
 * met so far in the deciding sweep).  Partition files hold the notes of
 * the first sweep as 24-byte rows of the same shape, with the note's
 * sequence number in place of the position, in note order; deciding a
 * partition replays its rows twice, as the two sweeps do in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <utf8proc.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "dedup.h"
#include "format.h"
#include "internal.h"

typedef struct {
    uint64_t lo, hi;
    uint32_t pos;   /* kept record's stream position; in files: note seq */
    uint8_t labels; /* every label bit of the stream, and WRITTEN */
    uint8_t seen;   /* label bits met so far in the second sweep */
    uint8_t pad[2];
} dedup_entry;

_Static_assert(sizeof(dedup_entry) == 24, "a key costs 24 bytes");

#define WRITTEN 0x80u /* a record was written for the key, at `pos` */
#define OLD 1         /* pad[1] of a partition row from the key table */
#define FANOUT 16     /* partitions per split, by 4 hash bits */
#define MAX_DEPTH 15  /* 4 * 15 bits of `hi` split; then keys are equal */
#define MIN_SLOTS 16

struct shard_dedup {
    dedup_entry *slots;
    size_t cap, count;   /* slots (a power of two), entries in use */
    size_t max_cap;      /* largest table within mem_limit */
    int policy;
    int spilled;
    uint64_t notes;      /* first sweep: notes so far */
    uint64_t decided;    /* second sweep: decisions so far */
    FILE *part[FANOUT];  /* first sweep, spilled: one file per range */
    uint8_t *fates;      /* spilled: 2 bits per note */
    FILE *summary;       /* spilled: each key with its labels */
    FILE *written;       /* spilled: each record written, at its position */
    dedup_entry pending; /* spilled: the last record written, until the
                            next decision (shard_dedup_unwrite) */
    char keys_path[4096]; /* the key table loaded, or "" */
    int keys_norm;
    uint64_t *gone;      /* spilled: superseded records, as tombstones */
    size_t n_gone, cap_gone;
    uint64_t peak;
    char tmpdir[4096];
    char err[SHARD_ERRMAX];
};

/* ---- names ----------------------------------------------------------- */

static const char *const norm_names[] = {"ws", "none", "nfkc", NULL};
static const char *const policy_names[] = {"drop", "keep", "neg", "pos",
                                           NULL};

static int name_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

int shard_normalize_parse(const char *name)
{
    return name_index(norm_names, name);
}

int shard_conflicts_parse(const char *name)
{
    return name_index(policy_names, name);
}

const char *shard_normalize_name(int norm)
{
    return norm >= 0 && norm <= SHARD_NORM_NFKC ? norm_names[norm] : "?";
}

const char *shard_conflicts_name(int policy)
{
    return policy >= 0 && policy <= SHARD_CONFLICTS_POS ? policy_names[policy]
                                                        : "?";
}

/* ---- keys ------------------------------------------------------------ */

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

size_t shard_word_next(const char *s, size_t n, size_t *at, size_t *start)
{
    size_t i = *at;

    while (i < n && is_space((unsigned char)s[i]))
        i++;
    *start = i;
    while (i < n && !is_space((unsigned char)s[i]))
        i++;
    *at = i;
    return i - *start;
}

void shard_fold_ws(const char *s, size_t n, shard_fold_fn emit, void *ctx)
{
    const unsigned char *p = (const unsigned char *)s;
    char buf[4096];
    size_t used = 0;
    int gap = 0, seen = 0;

    /* One pass, one byte at a time: a white-space byte only notes a gap,
     * which becomes one space before the next word (none at the ends). */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];

        if (is_space(c)) {
            gap = seen;
            continue;
        }
        if (used + 2 > sizeof(buf)) {
            emit(ctx, buf, used);
            used = 0;
        }
        if (gap)
            buf[used++] = ' ';
        buf[used++] = (char)c;
        gap = 0;
        seen = 1;
    }
    if (used > 0)
        emit(ctx, buf, used);
}

static void fold_into_xxh128(void *st, const char *p, size_t n)
{
    XXH3_128bits_update(st, p, n);
}

/* Feeds s[0..n) trimmed, each run of ASCII white space as one space. */
static void hash_folded(XXH3_state_t *st, const char *s, size_t n)
{
    shard_fold_ws(s, n, fold_into_xxh128, st);
}

/* Feeds one message's content under `norm`.  0 or SHARD_ENOMEM. */
static int hash_content(XXH3_state_t *st, const char *s, size_t n,
                        int norm)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t len;

    if (norm == SHARD_NORM_NONE) {
        XXH3_128bits_update(st, s, n);
        return 0;
    }
    if (norm == SHARD_NORM_NFKC && n) {
        len = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                           &mapped, UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                        UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
        if (len == UTF8PROC_ERROR_NOMEM)
            return SHARD_ENOMEM;
        if (len >= 0) { /* invalid UTF-8 keeps its bytes */
            hash_folded(st, (const char *)mapped, (size_t)len);
            free(mapped);
            return 0;
        }
    }
    hash_folded(st, s, n);
    return 0;
}

int shard_key_record(shard_key *out, const shard_message *m, size_t n,
                     int norm)
{
    static const unsigned char sep[2] = {0x1f, 0x1e};
    XXH3_state_t st;
    XXH128_hash_t h;

    XXH3_INITSTATE(&st);
    XXH3_128bits_reset_withSeed(&st, 0x6b6579);
    for (size_t i = 0; i < n; i++) {
        XXH3_128bits_update(&st, m[i].role, m[i].role_len);
        XXH3_128bits_update(&st, &sep[0], 1);
        if (hash_content(&st, m[i].content, m[i].content_len, norm) < 0)
            return SHARD_ENOMEM;
        XXH3_128bits_update(&st, &sep[1], 1);
    }
    h = XXH3_128bits_digest(&st);
    out->lo = h.low64 | (h.low64 || h.high64 ? 0 : 1);
    out->hi = h.high64;
    return 0;
}

/* Bit 7 of each byte of x that is below 0x21, exact up to the first one
 * (a borrow only moves toward higher bytes). */
static uint64_t bytes_below_0x21(uint64_t x)
{
    return (x - 0x2121212121212121ull) & ~x & 0x8080808080808080ull;
}

#ifdef __SSE2__
/*
 * Folds the 16 bytes at p into o when no two white-space bytes among them
 * touch, given that p is not past the first byte of a white-space run:
 * each white-space byte becomes one space.  0 when they do not qualify
 * (o is not written), else 1, or 2 when the last of them is white space
 * (a run that may go on past them).
 */
static int fold_16(const unsigned char *p, char *o)
{
    __m128i x = _mm_loadu_si128((const __m128i *)p);
    __m128i sp = _mm_set1_epi8(0x20);
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('\t')); /* \t..\r: 0..4 */
    __m128i ws = _mm_or_si128(_mm_cmpeq_epi8(x, sp),
                              _mm_cmpeq_epi8(_mm_min_epu8(d,
                                                 _mm_set1_epi8(4)), d));
    unsigned m = (unsigned)_mm_movemask_epi8(ws);

    if (m & m >> 1)
        return 0;
    _mm_storeu_si128((__m128i *)o, _mm_or_si128(_mm_andnot_si128(ws, x),
                                                _mm_and_si128(ws, sp)));
    return 1 + (int)(m >> 15);
}
#endif

/*
 * s[0..n) folded as shard_fold_ws() folds it into out (room for n bytes);
 * returns the folded length.  Prose mostly folds to itself, or to itself
 * with each white-space byte a space: where SSE2 is there, 16 bytes at a
 * time while no two white-space bytes in them touch (fold_16()); then
 * eight bytes at a time while none of them is below 0x21, which white
 * space always is.  Only runs of white space are looked at byte by byte.
 * At the top of the loop p is at a byte that is not white space or at the
 * first byte of a run, as fold_16() needs.
 */
static size_t fold_ws_into(char *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char *o = out;

    while (p < end && is_space(*p))
        p++;
    while (p < end) {
        uint64_t x, low;

#ifdef __SSE2__
        int k;

        if (end - p >= 16 && (k = fold_16(p, o)) != 0) { /* o trails p */
            p += 16;
            o += 16;
            if (k == 2) { /* the space written stands for the whole run */
                while (p < end && is_space(*p))
                    p++;
                o -= p == end; /* but none follows the last word */
            }
            continue;
        }
#endif
        if (end - p >= 8) { /* o trails p: 8 bytes fit at o too */
            memcpy(&x, p, 8);
            memcpy(o, &x, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            x = __builtin_bswap64(x); /* the first byte lowest */
#endif
            if (!(low = bytes_below_0x21(x))) {
                p += 8;
                o += 8;
                continue;
            }
            p += __builtin_ctzll(low) / 8;
            o += __builtin_ctzll(low) / 8;
        }
        if (!is_space(*p)) {
            *o++ = (char)*p++;
            continue;
        }
        while (p < end && is_space(*p))
            p++;
        if (p < end)
            *o++ = ' ';
    }
    return (size_t)(o - out);
}

int shard_fold_messages(char **buf, size_t *len, size_t *cap,
                        const shard_message *m, size_t n)
{
    size_t need = *len;

    for (size_t i = 0; i < n; i++)
        need += m[i].role_len + m[i].content_len + 2;
    if (shard_grow((void **)buf, cap, need, 1))
        return SHARD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char *o = *buf + *len;

        if (m[i].role_len)
            memcpy(o, m[i].role, m[i].role_len);
        o += m[i].role_len;
        *o++ = 0x1f;
        o += fold_ws_into(o, m[i].content, m[i].content_len);
        *o++ = 0x1e;
        *len = (size_t)(o - *buf);
    }
    return 0;
}

shard_key shard_key_folded(const char *folded, size_t n)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(folded, n, 0x6b6579);
    shard_key k = {h.low64 | (h.low64 || h.high64 ? 0 : 1), h.high64};

    return k;
}

shard_key shard_key_pair(const shard_key *chosen, const shard_key *rejected)
{
    uint64_t v[4] = {chosen->lo, chosen->hi, rejected->lo, rejected->hi};
    XXH128_hash_t h = XXH3_128bits_withSeed(v, sizeof(v), 0x70616972);
    shard_key k = {h.low64 | (h.low64 || h.high64 ? 0 : 1), h.high64};

    return k;
}

/* ---- the table ------------------------------------------------------- */

static size_t slot_of(const shard_dedup *d, uint64_t lo, uint64_t hi)
{
    size_t i = (size_t)(lo ^ (hi >> 17)) & (d->cap - 1);

    while ((d->slots[i].lo || d->slots[i].hi) &&
           (d->slots[i].lo != lo || d->slots[i].hi != hi))
        i = (i + 1) & (d->cap - 1);
    return i;
}

static void note_peak(shard_dedup *d, uint64_t extra)
{
    uint64_t bytes = d->cap * sizeof(dedup_entry) + extra;

    if (bytes > d->peak)
        d->peak = bytes;
}

/* Sets an empty table of `cap` slots.  0 or SHARD_ENOMEM. */
static int table_alloc(shard_dedup *d, size_t cap)
{
    dedup_entry *s = calloc(cap, sizeof(*s));

    if (!s)
        return SHARD_ENOMEM;
    free(d->slots);
    d->slots = s;
    d->cap = cap;
    d->count = 0;
    note_peak(d, 0);
    return 0;
}

/* Doubles the table, keeping its entries.  0 or SHARD_ENOMEM. */
static int table_grow(shard_dedup *d)
{
    dedup_entry *old = d->slots;
    size_t old_cap = d->cap, count = d->count;

    d->slots = NULL;
    if (table_alloc(d, old_cap * 2) < 0) {
        d->slots = old;
        d->cap = old_cap;
        return SHARD_ENOMEM;
    }
    note_peak(d, old_cap * sizeof(dedup_entry)); /* both, while moving */
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].lo || old[i].hi)
            d->slots[slot_of(d, old[i].lo, old[i].hi)] = old[i];
    d->count = count;
    free(old);
    return 0;
}

/*
 * The entry of a key, added when missing.  NULL when the table is full
 * within the memory limit (*rc = 0) or out of memory (*rc < 0).
 */
static dedup_entry *table_upsert(shard_dedup *d, uint64_t lo, uint64_t hi,
                                 int *rc)
{
    size_t i = slot_of(d, lo, hi);

    *rc = 0;
    if (d->slots[i].lo || d->slots[i].hi)
        return &d->slots[i];
    if ((d->count + 1) * 4 > d->cap * 3) {
        if (d->cap < d->max_cap) {
            if ((*rc = table_grow(d)) < 0)
                return NULL;
            i = slot_of(d, lo, hi);
        } else if ((d->count + 1) * 8 > d->cap * 7) {
            return NULL;
        }
    }
    d->slots[i].lo = lo;
    d->slots[i].hi = hi;
    d->count++;
    return &d->slots[i];
}

/* The fate of a note, given every label of its key (second sweep). */
static int entry_fate(dedup_entry *e, int label, int policy)
{
    unsigned bit = 1u << label;

    if (e->seen & bit)
        return SHARD_FATE_DUPLICATE;
    e->seen |= (uint8_t)bit;
    return shard_dedup_first_fate(e->labels, label, policy);
}

int shard_dedup_first_fate(unsigned labels, int label, int policy)
{
    labels &= 7u;
    if (label == SHARD_DEDUP_PAIR || (labels & (labels - 1)) == 0)
        return SHARD_FATE_KEEP;
    switch (policy) {
    case SHARD_CONFLICTS_KEEP:
        return SHARD_FATE_KEEP_FLAGGED;
    case SHARD_CONFLICTS_NEG:
        return label == SHARD_LABEL_NEG ? SHARD_FATE_KEEP
                                        : SHARD_FATE_CONFLICT;
    case SHARD_CONFLICTS_POS:
        return label == SHARD_LABEL_POS ? SHARD_FATE_KEEP
                                        : SHARD_FATE_CONFLICT;
    default:
        return SHARD_FATE_CONFLICT;
    }
}

int shard_dedup_open(shard_dedup **out, uint64_t mem_limit, int policy,
                     const char *tmpdir)
{
    shard_dedup *d = calloc(1, sizeof(*d));
    size_t max = (size_t)1 << 40;

    *out = NULL;
    if (!d)
        return SHARD_ENOMEM;
    if (mem_limit) { /* growing to `max` holds 1.5 * max entries */
        max = MIN_SLOTS;
        while (max * 3 * sizeof(dedup_entry) <= mem_limit)
            max *= 2;
    }
    d->max_cap = max;
    d->policy = policy;
    snprintf(d->tmpdir, sizeof(d->tmpdir), "%s", tmpdir ? tmpdir : ".");
    if (table_alloc(d, max < 1024 ? max : 1024) < 0) {
        free(d);
        return SHARD_ENOMEM;
    }
    *out = d;
    return 0;
}

/* ---- partitions on disk ---------------------------------------------- */

static void part_path(const shard_dedup *d, char *buf, size_t cap,
                      int depth, uint64_t prefix)
{
    snprintf(buf, cap, "%s/.dedup-%d-%llx.tmp", d->tmpdir, depth,
             (unsigned long long)prefix);
}

/* Which of FANOUT partitions `hi` belongs to at `depth`. */
static int part_of(uint64_t hi, int depth)
{
    return (int)((hi >> (60 - 4 * depth)) & (FANOUT - 1));
}

/* Opens the FANOUT files below `prefix` for writing.  0 or SHARD_EIO. */
static int parts_create(shard_dedup *d, FILE **f, int depth,
                        uint64_t prefix)
{
    char p[4200];

    for (int i = 0; i < FANOUT; i++) {
        part_path(d, p, sizeof(p), depth, prefix * FANOUT + (uint64_t)i);
        if (!(f[i] = fopen(p, "w+b")))
            return shard_errf(d->err, SHARD_EIO, "%s: %s", p,
                              strerror(errno));
    }
    return 0;
}

static int row_put(shard_dedup *d, FILE *f, const dedup_entry *e)
{
    if (fwrite(e, sizeof(*e), 1, f) != 1)
        return shard_errf(d->err, SHARD_EIO, "dedup partition: %s",
                          strerror(errno));
    return 0;
}

/* A temporary file under tmpdir, already unlinked.  NULL on failure. */
static FILE *scratch_file(shard_dedup *d, const char *name)
{
    char p[4200];
    FILE *f;

    snprintf(p, sizeof(p), "%s/.dedup-%s.tmp", d->tmpdir, name);
    if (!(f = fopen(p, "w+b")))
        shard_errf(d->err, SHARD_EIO, "%s: %s", p, strerror(errno));
    else
        unlink(p);
    return f;
}

static int keys_read(shard_dedup *d, const char *path, int normalize,
                     int (*put)(shard_dedup *, const dedup_entry *));
static int put_part(shard_dedup *d, const dedup_entry *row);

/*
 * Goes to disk: the first sweep starts over, writing partitions, which
 * begin with the rows of the key table loaded, if any.
 */
static int spill_begin(shard_dedup *d)
{
    int rc;

    d->spilled = 1;
    d->notes = 0;
    free(d->slots);
    d->slots = NULL;
    if ((rc = table_alloc(d, d->max_cap)) < 0)
        return rc;
    if ((rc = parts_create(d, d->part, 0, 0)) < 0)
        return rc;
    if (d->keys_path[0] &&
        (rc = keys_read(d, d->keys_path, d->keys_norm, put_part)) < 0)
        return rc;
    return SHARD_DEDUP_RESTART;
}

int shard_dedup_note(shard_dedup *d, const shard_key *k, int label)
{
    dedup_entry *e, row = {k->lo, k->hi, 0, 0, 0, {0, 0}};
    int rc;

    if (d->notes == UINT32_MAX)
        return shard_errf(d->err, SHARD_EINVAL, "more than %u records "
                          "and pairs in one compile", UINT32_MAX);
    if (d->spilled) {
        row.pos = (uint32_t)d->notes++;
        row.labels = (uint8_t)(1u << label);
        return row_put(d, d->part[part_of(k->hi, 0)], &row);
    }
    if (!(e = table_upsert(d, k->lo, k->hi, &rc)))
        return rc < 0 ? rc : spill_begin(d);
    d->notes++;
    if (e->labels & (1u << label))
        return SHARD_DEDUP_REPEAT;
    e->labels |= (uint8_t)(1u << label);
    return 0;
}

static void fate_set(shard_dedup *d, uint32_t seq, int fate)
{
    d->fates[seq / 4] |= (uint8_t)(fate << (2 * (seq % 4)));
}

static int resolve_file(shard_dedup *d, FILE *f, int depth,
                        uint64_t prefix);
static void key_merge(dedup_entry *e, const dedup_entry *row);
static int entry_superseded(const shard_dedup *d, const dedup_entry *e);

/* Keeps the records of this partition that the new labels drop. */
static int note_superseded(shard_dedup *d)
{
    for (size_t i = 0; i < d->cap; i++) {
        int label = entry_superseded(d, &d->slots[i]);

        if (label < 0)
            continue;
        if (shard_grow((void **)&d->gone, &d->cap_gone, d->n_gone + 1,
                       sizeof(*d->gone)))
            return SHARD_ENOMEM;
        d->gone[d->n_gone++] = (uint64_t)label << 32 | d->slots[i].pos;
    }
    return 0;
}

/* Splits a partition too large for the table by its next hash bits. */
static int split_file(shard_dedup *d, FILE *f, int depth, uint64_t prefix)
{
    FILE *sub[FANOUT] = {0};
    char p[4200];
    dedup_entry e;
    int rc;

    if (depth >= MAX_DEPTH)
        return shard_errf(d->err, SHARD_EINVAL, "dedup: --mem-limit too "
                          "small to split keys further");
    rc = parts_create(d, sub, depth + 1, prefix);
    rewind(f);
    while (rc == 0 && fread(&e, sizeof(e), 1, f) == 1)
        rc = row_put(d, sub[part_of(e.hi, depth + 1)], &e);
    for (int i = 0; i < FANOUT; i++) {
        if (rc == 0 && sub[i])
            rc = resolve_file(d, sub[i], depth + 1,
                              prefix * FANOUT + (uint64_t)i);
        if (sub[i])
            fclose(sub[i]);
        part_path(d, p, sizeof(p), depth + 1, prefix * FANOUT + (uint64_t)i);
        unlink(p);
    }
    return rc;
}

/*
 * Decides the notes of one partition file (any position): its rows fill
 * the table with every label of each key, then are replayed in order for
 * their fates.  A partition with more keys than the table holds is split.
 */
static int resolve_file(shard_dedup *d, FILE *f, int depth,
                        uint64_t prefix)
{
    dedup_entry row, *e;
    int rc = 0;

    memset(d->slots, 0, d->cap * sizeof(*d->slots));
    d->count = 0;
    rewind(f);
    while (fread(&row, sizeof(row), 1, f) == 1) {
        if (!(e = table_upsert(d, row.lo, row.hi, &rc)))
            return rc < 0 ? rc : split_file(d, f, depth, prefix);
        if (row.pad[1] == OLD)
            key_merge(e, &row);
        else
            e->labels |= row.labels;
    }
    if ((rc = note_superseded(d)) < 0)
        return rc;
    rewind(f);
    while (fread(&row, sizeof(row), 1, f) == 1) {
        int label = __builtin_ctz(row.labels);

        if (row.pad[1] == OLD)
            continue;
        e = &d->slots[slot_of(d, row.lo, row.hi)];
        fate_set(d, row.pos, entry_fate(e, label, d->policy));
    }
    for (size_t i = 0; rc == 0 && i < d->cap; i++)
        if (d->slots[i].lo || d->slots[i].hi) {
            row = d->slots[i];
            row.seen = row.pad[0] = row.pad[1] = 0;
            if (!(row.labels & WRITTEN))
                row.pos = 0;
            rc = row_put(d, d->summary, &row);
        }
    if (rc < 0)
        return rc;
    if (ferror(f))
        return shard_errf(d->err, SHARD_EIO, "dedup partition: %s",
                          strerror(errno));
    return 0;
}

int shard_dedup_resolve(shard_dedup *d)
{
    char p[4200];
    int rc = 0;

    if (!d->spilled)
        return 0;
    if (!(d->fates = calloc(d->notes / 4 + 1, 1)))
        return SHARD_ENOMEM;
    if (!(d->summary = scratch_file(d, "keys")) ||
        !(d->written = scratch_file(d, "written")))
        return SHARD_EIO;
    note_peak(d, d->notes / 4 + 1);
    for (int i = 0; i < FANOUT; i++) {
        if (rc == 0 && fflush(d->part[i]) != 0)
            rc = shard_errf(d->err, SHARD_EIO, "dedup partition: %s",
                            strerror(errno));
        if (rc == 0)
            rc = resolve_file(d, d->part[i], 0, (uint64_t)i);
        fclose(d->part[i]);
        d->part[i] = NULL;
        part_path(d, p, sizeof(p), 0, (uint64_t)i);
        unlink(p);
    }
    free(d->slots);
    d->slots = NULL;
    d->cap = d->count = 0;
    return rc;
}

int shard_dedup_decide(shard_dedup *d, const shard_key *k, int label,
                       uint32_t position)
{
    dedup_entry *e;
    int fate;

    if (d->decided >= d->notes)
        return shard_errf(d->err, SHARD_EINVAL, "dedup: more decisions "
                          "than notes");
    if (d->spilled) {
        uint64_t s = d->decided++;

        fate = (d->fates[s / 4] >> (2 * (s % 4))) & 3;
        if ((fate == SHARD_FATE_KEEP || fate == SHARD_FATE_KEEP_FLAGGED) &&
            label != SHARD_DEDUP_PAIR) {
            if (d->pending.lo | d->pending.hi &&
                row_put(d, d->written, &d->pending) < 0)
                return SHARD_EIO;
            d->pending = (dedup_entry){k->lo, k->hi, position,
                                       (uint8_t)(WRITTEN | 1u << label), 0,
                                       {0, 0}};
        }
        return fate;
    }
    e = &d->slots[slot_of(d, k->lo, k->hi)];
    if (!(e->labels & (1u << label)))
        return shard_errf(d->err, SHARD_EINVAL, "dedup: a key decided "
                          "that was never noted");
    d->decided++;
    fate = entry_fate(e, label, d->policy);
    if ((fate == SHARD_FATE_KEEP || fate == SHARD_FATE_KEEP_FLAGGED) &&
        label != SHARD_DEDUP_PAIR) {
        e->pos = position;
        __atomic_fetch_or(&e->labels, WRITTEN, __ATOMIC_RELAXED);
    }
    return fate;
}

int shard_dedup_conflicted(const shard_dedup *d, const shard_key *k,
                           int label)
{
    const dedup_entry *e;

    if (d->spilled || label == SHARD_DEDUP_PAIR)
        return 0;
    e = &d->slots[slot_of(d, k->lo, k->hi)];
    if (e->lo != k->lo || e->hi != k->hi)
        return 0;
    return shard_dedup_first_fate(__atomic_load_n(&e->labels,
                                                  __ATOMIC_RELAXED),
                                  label, d->policy) == SHARD_FATE_CONFLICT;
}

void shard_dedup_unwrite(shard_dedup *d, const shard_key *k)
{
    dedup_entry *e;

    if (d->spilled) {
        if (d->pending.lo == k->lo && d->pending.hi == k->hi)
            d->pending.lo = d->pending.hi = 0;
        return;
    }
    e = &d->slots[slot_of(d, k->lo, k->hi)];
    if (e->lo == k->lo && e->hi == k->hi)
        __atomic_fetch_and(&e->labels, (uint8_t)~WRITTEN, __ATOMIC_RELAXED);
}

int shard_dedup_spilled(const shard_dedup *d)
{
    return d->spilled;
}

uint64_t shard_dedup_peak_bytes(const shard_dedup *d)
{
    return d->peak;
}

const char *shard_dedup_errmsg(const shard_dedup *d)
{
    return d->err;
}

void shard_dedup_free(shard_dedup *d)
{
    char p[4200];

    if (!d)
        return;
    for (int i = 0; i < FANOUT; i++)
        if (d->part[i]) {
            fclose(d->part[i]);
            part_path(d, p, sizeof(p), 0, (uint64_t)i);
            unlink(p);
        }
    if (d->summary)
        fclose(d->summary);
    if (d->written)
        fclose(d->written);
    free(d->slots);
    free(d->fates);
    free(d->gone);
    free(d);
}

/* ---- the key table file ---------------------------------------------- */

#define KEYS_MAGIC "\x89SHK\r\n\x1a\n"
#define KEYS_HEADER 64

/* Header field offsets (docs/FORMAT.md). */
enum {
    KH_MAJOR = 8,
    KH_MINOR = 10,
    KH_ENTRY = 12,
    KH_COUNT = 16,
    KH_NORMALIZE = 24,
    KH_CONFLICTS = 25,
    KH_BODY_SUM = 48,
    KH_HEADER_SUM = 56
};

static void keys_header(unsigned char *h, const shard_dedup *d,
                        int normalize, uint64_t count, uint64_t body)
{
    memset(h, 0, KEYS_HEADER);
    memcpy(h, KEYS_MAGIC, 8);
    shard_put16(h + KH_MAJOR, 1);
    shard_put32(h + KH_ENTRY, sizeof(dedup_entry));
    shard_put64(h + KH_COUNT, count);
    h[KH_NORMALIZE] = (unsigned char)normalize;
    h[KH_CONFLICTS] = (unsigned char)d->policy;
    shard_put64(h + KH_BODY_SUM, body);
    shard_put64(h + KH_HEADER_SUM, XXH3_64bits(h, KEYS_HEADER));
}

/* Appends the rows of a spilled table's file `from` to f. */
static int keys_copy(FILE *from, FILE *f, XXH3_state_t *st, uint64_t *n)
{
    dedup_entry e;

    rewind(from);
    while (fread(&e, sizeof(e), 1, from) == 1) {
        XXH3_64bits_update(st, &e, sizeof(e));
        if (fwrite(&e, sizeof(e), 1, f) != 1)
            return SHARD_EIO;
        (*n)++;
    }
    return ferror(from) ? SHARD_EIO : 0;
}

/*
 * Writes the entries, `seen` zeroed, and sets their count and sum.  A
 * table on disk writes each key with its labels, then each record
 * written with its position: one key in several entries.
 */
static int keys_body(shard_dedup *d, FILE *f, uint64_t *count,
                     uint64_t *sum)
{
    XXH3_state_t st;

    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    *count = 0;
    if (d->spilled) {
        if ((d->pending.lo | d->pending.hi) &&
            row_put(d, d->written, &d->pending) < 0)
            return SHARD_EIO;
        d->pending.lo = d->pending.hi = 0;
        if (keys_copy(d->summary, f, &st, count) < 0 ||
            keys_copy(d->written, f, &st, count) < 0)
            return SHARD_EIO;
        *sum = XXH3_64bits_digest(&st);
        return 0;
    }
    for (size_t i = 0; i < d->cap; i++) {
        dedup_entry e = d->slots[i];

        if (!e.lo && !e.hi)
            continue;
        e.seen = 0;
        e.pad[0] = e.pad[1] = 0;
        XXH3_64bits_update(&st, &e, sizeof(e));
        if (fwrite(&e, sizeof(e), 1, f) != 1)
            return SHARD_EIO;
        (*count)++;
    }
    *sum = XXH3_64bits_digest(&st);
    return 0;
}

int shard_dedup_save(shard_dedup *d, const char *path, int normalize)
{
    unsigned char h[KEYS_HEADER] = {0};
    char tmp[4200];
    uint64_t sum = 0, count = 0;
    FILE *f;
    int ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "wb")))
        return shard_errf(d->err, SHARD_EIO, "%s: %s", tmp,
                          strerror(errno));
    ok = fwrite(h, 1, sizeof(h), f) == sizeof(h) &&
         keys_body(d, f, &count, &sum) == 0;
    keys_header(h, d, normalize, count, sum);
    ok = ok && fseek(f, 0, SEEK_SET) == 0 &&
         fwrite(h, 1, sizeof(h), f) == sizeof(h) && fflush(f) == 0 &&
         fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        shard_errf(d->err, SHARD_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return SHARD_EIO;
    }
    return 0;
}

/* Checks a key table header; 0 or a negative code with the message. */
static int keys_check(shard_dedup *d, const unsigned char *h,
                      const char *path, int normalize)
{
    unsigned char copy[KEYS_HEADER];

    memcpy(copy, h, KEYS_HEADER);
    shard_put64(copy + KH_HEADER_SUM, 0);
    if (memcmp(h, KEYS_MAGIC, 8) != 0 ||
        XXH3_64bits(copy, KEYS_HEADER) != shard_le64(h + KH_HEADER_SUM) ||
        shard_le32(h + KH_ENTRY) != sizeof(dedup_entry))
        return shard_errf(d->err, SHARD_ECORRUPT, "%s: not a key table "
                          "or a damaged one", path);
    if (shard_le16(h + KH_MAJOR) != 1)
        return shard_errf(d->err, SHARD_EFORMAT, "%s: key table version "
                          "%u", path, shard_le16(h + KH_MAJOR));
    if (h[KH_NORMALIZE] != normalize || h[KH_CONFLICTS] != d->policy)
        return shard_errf(d->err, SHARD_EFORMAT, "%s: dataset built with "
                          "--normalize %s --conflicts %s", path,
                          shard_normalize_name(h[KH_NORMALIZE]),
                          shard_conflicts_name(h[KH_CONFLICTS]));
    return 0;
}

/* A saved entry into the table: one key may come in several entries. */
static void key_merge(dedup_entry *e, const dedup_entry *row)
{
    e->labels |= row->labels;
    e->seen |= row->labels;
    e->pad[0] |= row->labels;
    if (row->labels & WRITTEN)
        e->pos = row->pos;
}

/* A key table row into the table: 1 when the table is full. */
static int put_table(shard_dedup *d, const dedup_entry *row)
{
    dedup_entry *e;
    int rc;

    if (!(e = table_upsert(d, row->lo, row->hi, &rc)))
        return rc < 0 ? rc : 1;
    key_merge(e, row);
    return 0;
}

/* A key table row into its partition, marked as such. */
static int put_part(shard_dedup *d, const dedup_entry *row)
{
    dedup_entry r = *row;

    r.pad[1] = OLD;
    return row_put(d, d->part[part_of(r.hi, 0)], &r);
}

/* Reads a key table's rows into `put`; stops at its first non-zero. */
static int keys_read(shard_dedup *d, const char *path, int normalize,
                     int (*put)(shard_dedup *, const dedup_entry *))
{
    unsigned char h[KEYS_HEADER];
    uint64_t count, sum;
    XXH3_state_t st;
    dedup_entry row;
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (!f)
        return shard_errf(d->err, errno == ENOENT ? SHARD_ENOTFOUND
                                                  : SHARD_EIO,
                          "%s: %s", path, strerror(errno));
    if (fread(h, 1, sizeof(h), f) != sizeof(h))
        memset(h, 0, sizeof(h));
    if ((rc = keys_check(d, h, path, normalize)) < 0) {
        fclose(f);
        return rc;
    }
    count = shard_le64(h + KH_COUNT);
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        if (fread(&row, sizeof(row), 1, f) != 1)
            rc = SHARD_ECORRUPT;
        else
            rc = put(d, &row);
        XXH3_64bits_update(&st, &row, sizeof(row));
    }
    sum = XXH3_64bits_digest(&st);
    fclose(f);
    if (rc == 0 && sum != shard_le64(h + KH_BODY_SUM))
        rc = SHARD_ECORRUPT;
    if (rc == SHARD_ECORRUPT)
        shard_errf(d->err, rc, "%s: key table cut short or damaged", path);
    return rc;
}

int shard_dedup_load(shard_dedup *d, const char *path, int normalize)
{
    int rc;

    snprintf(d->keys_path, sizeof(d->keys_path), "%s", path);
    d->keys_norm = normalize;
    if ((rc = keys_read(d, path, normalize, put_table)) != 1) {
        if (rc < 0)
            d->keys_path[0] = '\0';
        return rc;
    }
    rc = spill_begin(d); /* no note yet: nothing to start again */
    return rc == SHARD_DEDUP_RESTART ? 0 : rc;
}

/*
 * The label of the record written before for an entry loaded from a key
 * table, when the labels met since make it a conflict the policy drops;
 * else -1.
 */
static int entry_superseded(const shard_dedup *d, const dedup_entry *e)
{
    unsigned old = e->pad[0] & 7u, now = e->labels & 7u;
    int label;

    if (!(e->pad[0] & WRITTEN) || !old || (old & (old - 1)) || now == old)
        return -1;
    label = __builtin_ctz(old);
    if (d->policy == SHARD_CONFLICTS_KEEP ||
        (d->policy == SHARD_CONFLICTS_NEG && label == SHARD_LABEL_NEG) ||
        (d->policy == SHARD_CONFLICTS_POS && label == SHARD_LABEL_POS))
        return -1;
    return label;
}

void shard_dedup_superseded(shard_dedup *d,
                            void (*fn)(void *ctx, int label, uint32_t pos),
                            void *ctx)
{
    for (size_t i = 0; i < d->n_gone; i++)
        fn(ctx, (int)(d->gone[i] >> 32), (uint32_t)d->gone[i]);
    for (size_t i = 0; !d->spilled && d->slots && i < d->cap; i++) {
        int label = entry_superseded(d, &d->slots[i]);

        if (label >= 0)
            fn(ctx, label, d->slots[i].pos);
    }
}
