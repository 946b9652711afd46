/*
 * dataset_loader.c - deterministic, partitioned, resumable passes over a
 * dataset, with an optional read-ahead thread (shard_reader.h, "A
 * loader").
 *
 * The units of the dataset are grouped by the token frame of their
 * (chosen) record into a frame list built once at open.  An epoch's order is
 * a function of (seed, epoch) alone: a permutation of the frame list, cut
 * into windows of `window` frames, and a permutation of each window's
 * units.  A partition is a contiguous range of that order.  Reaching a
 * position therefore needs the frame permutation, a prefix sum of units
 * per window and one window's permutation, never the records before it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

/* A run of units sharing one token frame. */
typedef struct {
    uint32_t shard;
    uint64_t frame; /* within the shard */
    uint64_t first; /* first unit */
    uint64_t count; /* units */
} frame_run;

/* A unit of the current window and the slot of its held frame. */
typedef struct {
    uint64_t unit;
    uint32_t slot;
} window_entry;

/* What the read-ahead thread is asked to decode, and what it decoded. */
typedef struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running, stop, busy;
    uint64_t gen;          /* job generation; seek invalidates older */
    int64_t want;          /* window requested, -1 when none */
    int64_t have;          /* window whose frames sit in `frames` */
    uint64_t have_gen;
    uint64_t *runs;        /* frame runs of the requested window */
    size_t n_runs;
    shard_frame *frames;
    uint32_t *shards;
} readahead;

struct shard_loader {
    shard_dataset *d;
    shard_loader_options o;
    int pairs;
    frame_run *runs;
    size_t n_runs, cap_runs;
    uint64_t units;

    /* The epoch's order. */
    shard_loader_state st;
    uint64_t *order;    /* permutation of runs */
    uint64_t *wstart;   /* first order position (in units) per window */
    size_t n_windows;
    uint64_t lo, hi;    /* this partition's units of the order */

    uint64_t peek;      /* dataset index of the record current() gave */
    uint64_t last;      /* and of the last one next() returned */

    /* The window being read. */
    int64_t cur;        /* window index, -1 when none is held */
    shard_frame *held;  /* one per run of the window */
    uint32_t *held_shard;
    size_t n_held;
    window_entry *entries;
    size_t cap_entries;

    readahead ra;
    char err[SHARD_ERRMAX];
};

/* ---- randomness ------------------------------------------------------ */

/* A stream key derived from a parent key and a number. */
static uint64_t rng_derive(uint64_t key, uint64_t n)
{
    uint64_t s = key ^ (n * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull);

    shard_splitmix64(&s);
    return shard_splitmix64(&s);
}

/* Uniform in [0, n), n > 0, without modulo bias (Lemire's method). */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128)shard_splitmix64(s) * n;
    uint64_t low = (uint64_t)m;

    if (low < n) {
        uint64_t floor = -n % n;

        while (low < floor) {
            m = (unsigned __int128)shard_splitmix64(s) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Fisher-Yates over n elements of `size` bytes, from stream key `key`. */
static void shuffle(void *base, size_t n, size_t size, uint64_t key)
{
    unsigned char *a = base, tmp[16];
    uint64_t s = key;

    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(&s, i);

        memcpy(tmp, a + (i - 1) * size, size);
        memmove(a + (i - 1) * size, a + j * size, size);
        memcpy(a + j * size, tmp, size);
    }
}

/* ---- the frame list --------------------------------------------------- */

static int add_run(shard_loader *l, uint32_t shard, uint64_t frame,
                   uint64_t first, uint64_t count)
{
    if (shard_grow((void **)&l->runs, &l->cap_runs, l->n_runs + 1,
                   sizeof(*l->runs)) < 0)
        return SHARD_ENOMEM;
    l->runs[l->n_runs++] = (frame_run){shard, frame, first, count};
    return 0;
}

/* Record units: every frame of every shard, in dataset order. */
static int list_record_runs(shard_loader *l)
{
    const shard_dataset *d = l->d;

    for (size_t k = 0; k < d->n; k++) {
        shard_reader *r = d->shards[k];

        for (uint64_t f = 0; f < shard_reader_frames(r); f++) {
            uint64_t first, count;

            shard_reader_frame_span(r, f, &first, &count);
            if (add_run(l, (uint32_t)k, f, d->starts[k] + first, count) < 0)
                return SHARD_ENOMEM;
        }
    }
    l->units = shard_dataset_count(d);
    return 0;
}

/* Pair units: consecutive pairs whose pos record shares a frame. */
static int list_pair_runs(shard_loader *l)
{
    const shard_dataset *d = l->d;

    for (uint64_t j = 0; j < d->n_pairs; j++) {
        size_t k = shard_dataset_locate(d, d->pairs[j][0]);
        uint64_t f = shard_reader_frame_of(d->shards[k],
                                           d->pairs[j][0] - d->starts[k]);
        frame_run *last = l->n_runs ? &l->runs[l->n_runs - 1] : NULL;

        if (last && last->shard == k && last->frame == f)
            last->count++;
        else if (add_run(l, (uint32_t)k, f, j, 1) < 0)
            return SHARD_ENOMEM;
    }
    l->units = d->n_pairs;
    return 0;
}

/* ---- the epoch's order ------------------------------------------------ */

static uint64_t part_bound(uint64_t units, uint64_t part, uint64_t parts)
{
    return (uint64_t)((unsigned __int128)units * part / parts);
}

/* Computes order, window starts and this partition's range for st. */
static void plan_epoch(shard_loader *l)
{
    uint64_t key = rng_derive(l->st.seed, l->st.epoch);
    uint64_t parts = (uint64_t)l->o.world * l->o.workers;
    uint64_t part = (uint64_t)l->o.rank * l->o.workers + l->o.worker;
    uint64_t sum = 0;

    for (size_t i = 0; i < l->n_runs; i++)
        l->order[i] = i;
    if (l->o.shuffle)
        shuffle(l->order, l->n_runs, sizeof(*l->order), key);
    for (size_t w = 0; w < l->n_windows; w++) {
        l->wstart[w] = sum;
        for (size_t i = w * l->o.window;
             i < l->n_runs && i < (w + 1) * l->o.window; i++)
            sum += l->runs[l->order[i]].count;
    }
    l->wstart[l->n_windows] = sum;
    l->lo = part_bound(l->units, part, parts);
    l->hi = part_bound(l->units, part + 1, parts);
}

/* Window holding order position g (g < units). */
static size_t window_of(const shard_loader *l, uint64_t g)
{
    return shard_last_at_most(l->wstart, l->n_windows, g);
}

/* Runs of window w: order[first .. first + *n). */
static size_t window_runs(const shard_loader *l, size_t w, size_t *n)
{
    size_t first = w * l->o.window;
    size_t end = first + l->o.window;

    *n = (end < l->n_runs ? end : l->n_runs) - first;
    return first;
}

/* ---- read-ahead ------------------------------------------------------- */

static void release_frames(shard_frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        shard_frame_release(&f[i]);
}

/*
 * Decodes the frames of runs[ids[i]] into out[]; 0, or the first error
 * with its message in err.
 */
static int decode_runs(const shard_loader *l, const uint64_t *ids,
                       size_t n, shard_frame *out, uint32_t *shards,
                       char *err)
{
    for (size_t i = 0; i < n; i++) {
        const frame_run *run = &l->runs[ids[i]];
        shard_reader *r = l->d->shards[run->shard];
        int rc;

        shards[i] = run->shard;
        if ((rc = shard_reader_frame(r, run->frame, &out[i])) < 0) {
            release_frames(out, i);
            return shard_errf(err, rc, "%s", shard_reader_errmsg(r));
        }
    }
    return 0;
}

static void *readahead_main(void *arg)
{
    shard_loader *l = arg;
    readahead *ra = &l->ra;

    pthread_mutex_lock(&ra->mu);
    for (;;) {
        while (!ra->stop && ra->want < 0)
            pthread_cond_wait(&ra->cv, &ra->mu);
        if (ra->stop)
            break;
        int64_t w = ra->want;
        uint64_t gen = ra->gen;
        size_t n = ra->n_runs;

        ra->want = -1;
        ra->busy = 1;
        pthread_mutex_unlock(&ra->mu);

        /* A failure is left for the reading thread to meet and report. */
        char err[SHARD_ERRMAX];
        int rc = decode_runs(l, ra->runs, n, ra->frames, ra->shards, err);

        pthread_mutex_lock(&ra->mu);
        ra->busy = 0;
        ra->have = rc < 0 ? -1 : w;
        ra->have_gen = gen;
        pthread_cond_broadcast(&ra->cv);
    }
    pthread_mutex_unlock(&ra->mu);
    return NULL;
}

/* Waits for the thread to be idle; the caller holds ra->mu. */
static void readahead_idle(readahead *ra)
{
    while (ra->busy || ra->want >= 0)
        pthread_cond_wait(&ra->cv, &ra->mu);
}

/*
 * Takes window w's frames from the read-ahead thread into l->held when it
 * has them.  Returns 1 when taken, 0 when the caller must decode them.
 */
static int readahead_take(shard_loader *l, size_t w, size_t n)
{
    readahead *ra = &l->ra;
    int taken = 0;

    if (!ra->running)
        return 0;
    pthread_mutex_lock(&ra->mu);
    readahead_idle(ra);
    if (ra->have == (int64_t)w && ra->have_gen == ra->gen &&
        ra->n_runs == n) {
        memcpy(l->held, ra->frames, n * sizeof(*l->held));
        memcpy(l->held_shard, ra->shards, n * sizeof(*l->held_shard));
        taken = 1;
    } else if (ra->have >= 0) {
        release_frames(ra->frames, ra->n_runs);
    }
    ra->have = -1;
    pthread_mutex_unlock(&ra->mu);
    return taken;
}

/* Asks the thread for window w when it lies in this partition. */
static void readahead_post(shard_loader *l, size_t w)
{
    readahead *ra = &l->ra;
    size_t n, first;

    if (!ra->running || w >= l->n_windows || l->wstart[w] >= l->hi)
        return;
    first = window_runs(l, w, &n);
    pthread_mutex_lock(&ra->mu);
    readahead_idle(ra);
    if (ra->have >= 0)
        release_frames(ra->frames, ra->n_runs);
    ra->have = -1;
    memcpy(ra->runs, l->order + first, n * sizeof(*ra->runs));
    ra->n_runs = n;
    ra->want = (int64_t)w;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
}

static int readahead_start(shard_loader *l)
{
    readahead *ra = &l->ra;
    size_t w = l->o.window;

    ra->want = ra->have = -1;
    ra->runs = calloc(w, sizeof(*ra->runs));
    ra->frames = calloc(w, sizeof(*ra->frames));
    ra->shards = calloc(w, sizeof(*ra->shards));
    if (!ra->runs || !ra->frames || !ra->shards)
        return SHARD_ENOMEM;
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->cv, NULL);
    if (pthread_create(&ra->thread, NULL, readahead_main, l) != 0) {
        pthread_mutex_destroy(&ra->mu);
        pthread_cond_destroy(&ra->cv);
        return shard_errf(l->err, SHARD_EIO, "read-ahead thread: cannot "
                          "start");
    }
    ra->running = 1;
    return 0;
}

static void readahead_stop(shard_loader *l)
{
    readahead *ra = &l->ra;

    if (ra->running) {
        pthread_mutex_lock(&ra->mu);
        ra->stop = 1;
        pthread_cond_broadcast(&ra->cv);
        pthread_mutex_unlock(&ra->mu);
        pthread_join(ra->thread, NULL);
        if (ra->have >= 0)
            release_frames(ra->frames, ra->n_runs);
        pthread_mutex_destroy(&ra->mu);
        pthread_cond_destroy(&ra->cv);
    }
    free(ra->runs);
    free(ra->frames);
    free(ra->shards);
}

/* Forgets any window the thread holds or works on (after a seek). */
static void readahead_forget(shard_loader *l)
{
    readahead *ra = &l->ra;

    if (!ra->running)
        return;
    pthread_mutex_lock(&ra->mu);
    ra->gen++;
    ra->want = -1;
    pthread_mutex_unlock(&ra->mu);
}

/* ---- windows ---------------------------------------------------------- */

static void drop_window(shard_loader *l)
{
    release_frames(l->held, l->n_held);
    l->n_held = 0;
    l->cur = -1;
}

/* Lists window w's units with their frame slots, permuted if shuffling. */
static int list_entries(shard_loader *l, size_t w, size_t first, size_t n)
{
    size_t count = (size_t)(l->wstart[w + 1] - l->wstart[w]), e = 0;

    if (shard_grow((void **)&l->entries, &l->cap_entries, count + 1,
                   sizeof(*l->entries)) < 0)
        return shard_errf(l->err, SHARD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const frame_run *run = &l->runs[l->order[first + i]];

        for (uint64_t u = 0; u < run->count; u++)
            l->entries[e++] = (window_entry){run->first + u, (uint32_t)i};
    }
    if (l->o.shuffle)
        shuffle(l->entries, count, sizeof(*l->entries),
                rng_derive(rng_derive(l->st.seed, l->st.epoch), w + 1));
    return 0;
}

/* Makes window w current: its frames held, its entries listed. */
static int load_window(shard_loader *l, size_t w)
{
    size_t n, first = window_runs(l, w, &n);
    int rc;

    drop_window(l);
    if (!readahead_take(l, w, n) &&
        (rc = decode_runs(l, l->order + first, n, l->held,
                          l->held_shard, l->err)) < 0)
        return rc;
    l->n_held = n;
    l->cur = (int64_t)w;
    if ((rc = list_entries(l, w, first, n)) < 0) {
        drop_window(l);
        return rc;
    }
    readahead_post(l, w + 1);
    return 0;
}

/* ---- records ---------------------------------------------------------- */

static uint64_t per_unit(const shard_loader *l)
{
    return l->pairs ? 2 : 1;
}

/* 1 when a record of the unit was removed (shard_dataset_tombstoned). */
static int unit_tombstoned(const shard_loader *l, const window_entry *e)
{
    if (l->pairs)
        return shard_dataset_tombstoned(l->d, l->d->pairs[e->unit][0]) ||
               shard_dataset_tombstoned(l->d, l->d->pairs[e->unit][1]);
    return shard_dataset_tombstoned(l->d, e->unit);
}

/*
 * The record at the current position, without moving: 1 and *rec, 0 at
 * the end of the epoch, or a negative code.  With `light`, a record of a
 * held frame has only the fields a batch packs and no reference (it is
 * valid until the window changes).  Units holding a tombstoned record
 * are passed over.
 */
static int current(shard_loader *l, shard_record *rec, int light)
{
    uint64_t g, half, i;
    const window_entry *e;
    size_t w, k;
    int rc;

    memset(rec, 0, sizeof(*rec));
    for (;;) {
        g = l->lo + l->st.position / per_unit(l);
        half = l->st.position % per_unit(l);
        if (g >= l->hi)
            return 0;
        w = window_of(l, g);
        if (l->cur != (int64_t)w && (rc = load_window(l, w)) < 0)
            return rc;
        e = &l->entries[g - l->wstart[w]];
        if (half || !unit_tombstoned(l, e))
            break;
        l->st.position += per_unit(l);
    }
    i = l->pairs ? l->d->pairs[e->unit][half] : e->unit;
    l->peek = i;
    if (half) /* the rejected side of a pair: random access */
        return (rc = shard_dataset_get(l->d, i, rec)) < 0
                   ? shard_errf(l->err, rc, "%s", l->d->err)
                   : 1;
    k = l->held_shard[e->slot];
    if (light) {
        shard_reader_frame_peek(l->d->shards[k], &l->held[e->slot],
                                i - l->d->starts[k], rec);
        return 1;
    }
    rc = shard_reader_frame_record(l->d->shards[k], &l->held[e->slot],
                                   i - l->d->starts[k], rec);
    return rc < 0 ? shard_errf(l->err, rc, "record %llu: not in its frame",
                               (unsigned long long)i)
                  : 1;
}

int shard_loader_next(shard_loader *l, shard_record *rec)
{
    int rc = current(l, rec, 0);

    if (rc > 0) {
        l->st.position++;
        l->last = l->peek;
    }
    return rc;
}

/* Copies rec's first n tokens as u32, with its loss mask, into b. */
static void pack(shard_batch *b, const shard_record *rec, size_t n)
{
    uint32_t *out = b->tokens + b->n_tokens;

    if (rec->dtype == 4) {
        memcpy(out, rec->tokens, n * 4);
    } else {
        const uint16_t *in = rec->tokens;

        for (size_t i = 0; i < n; i++)
            out[i] = in[i];
    }
    if (b->loss_mask) {
        size_t p = rec->prompt_len < n ? rec->prompt_len : n;

        memset(b->loss_mask + b->n_tokens, 0, p);
        memset(b->loss_mask + b->n_tokens + p, 1, n - p);
    }
    b->lengths[b->n_records] = (uint32_t)n;
    if (b->prompt_lens)
        b->prompt_lens[b->n_records] = rec->prompt_len;
    if (b->labels)
        b->labels[b->n_records] = (uint8_t)rec->label;
    b->n_tokens += n;
    b->n_records++;
}

int shard_loader_batch(shard_loader *l, shard_batch *b)
{
    b->n_records = b->n_tokens = b->truncated = 0;
    while (b->n_records < b->max_records) {
        shard_record rec;
        size_t n;
        int rc = current(l, &rec, 1);

        if (rc <= 0)
            return rc;
        n = rec.n_tokens;
        if (b->max_len && n > b->max_len)
            n = b->max_len;
        if (n > b->max_tokens - b->n_tokens) {
            if (b->n_records > 0) {
                shard_record_release(&rec);
                return 0;
            }
            n = b->max_tokens;
        }
        b->truncated += rec.n_tokens - n;
        pack(b, &rec, n);
        shard_record_release(&rec);
        l->st.position++;
    }
    return 0;
}

/* ---- state ------------------------------------------------------------ */

uint64_t shard_loader_records(const shard_loader *l)
{
    return (l->hi - l->lo) * per_unit(l);
}

uint64_t shard_loader_last(const shard_loader *l)
{
    return l->last;
}

void shard_loader_state_get(const shard_loader *l, shard_loader_state *st)
{
    *st = l->st;
}

int shard_loader_seek(shard_loader *l, const shard_loader_state *st)
{
    int same = st->seed == l->st.seed && st->epoch == l->st.epoch;

    if (same && st->position == l->st.position)
        return 0;
    readahead_forget(l);
    if (!same) {
        drop_window(l);
        l->st = *st;
        l->st.position = 0;
        plan_epoch(l);
    }
    if (st->position > shard_loader_records(l))
        return shard_errf(l->err, SHARD_EINVAL,
                          "position %llu past the epoch's %llu records",
                          (unsigned long long)st->position,
                          (unsigned long long)shard_loader_records(l));
    l->st.position = st->position;
    return 0;
}

const char *shard_loader_errmsg(const shard_loader *l)
{
    return l->err;
}

/* ---- open and close --------------------------------------------------- */

static int check_options(const shard_loader_options *o)
{
    if (o->version != SHARD_LOADER_OPTIONS_VERSION)
        return shard_set_last_error(SHARD_EINVAL,
                                    "loader options: unknown version");
    if (!o->world || o->rank >= o->world || !o->workers ||
        o->worker >= o->workers || !o->window)
        return shard_set_last_error(SHARD_EINVAL,
                                    "loader options: rank %u of %u, worker "
                                    "%u of %u, window %u", o->rank,
                                    o->world, o->worker, o->workers,
                                    o->window);
    return 0;
}

static int setup(shard_loader *l)
{
    int rc = l->pairs ? list_pair_runs(l) : list_record_runs(l);

    if (rc < 0)
        return shard_errf(l->err, rc, "out of memory");
    /* A window past the frame count is one window of them all. */
    if (l->o.window > l->n_runs)
        l->o.window = l->n_runs ? (uint32_t)l->n_runs : 1;
    l->n_windows = (l->n_runs + l->o.window - 1) / l->o.window;
    l->order = calloc(l->n_runs + 1, sizeof(*l->order));
    l->wstart = calloc(l->n_windows + 1, sizeof(*l->wstart));
    l->held = calloc(l->o.window, sizeof(*l->held));
    l->held_shard = calloc(l->o.window, sizeof(*l->held_shard));
    if (!l->order || !l->wstart || !l->held || !l->held_shard)
        return shard_errf(l->err, SHARD_ENOMEM, "out of memory");
    plan_epoch(l);
    if (l->o.readahead && (rc = readahead_start(l)) < 0)
        return rc;
    return 0;
}

int shard_loader_open(shard_loader **out, shard_dataset *d,
                      const shard_loader_options *o)
{
    shard_loader_options def = SHARD_LOADER_OPTIONS_INIT;
    shard_loader *l;
    int rc;

    *out = NULL;
    if (!o)
        o = &def;
    if ((rc = check_options(o)) < 0)
        return rc;
    if (!(l = calloc(1, sizeof(*l))))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    l->d = d;
    l->o = *o;
    l->pairs = (d->select & SHARD_SELECT_PAIRS) != 0;
    l->st.seed = o->seed;
    l->cur = -1;
    if ((rc = setup(l)) < 0) {
        shard_copy_last_error(l->err);
        shard_loader_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

void shard_loader_close(shard_loader *l)
{
    if (!l)
        return;
    readahead_stop(l);
    drop_window(l);
    free(l->runs);
    free(l->order);
    free(l->wstart);
    free(l->held);
    free(l->held_shard);
    free(l->entries);
    free(l);
}
