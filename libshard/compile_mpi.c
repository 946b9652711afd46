/*
 * compile_mpi.c - one rank's part of `shard compile --mpi` (shard_mpi.h).
 *
 * The exchange runs in rounds, each collective: a status (does any rank
 * have more to send; has any rank failed), then the notes each rank has
 * queued (a batch at most), bucketed by owner, through MPI_Alltoallv.  A
 * rank that has sent everything keeps joining rounds with nothing until
 * no rank has more, so ranks with unequal inputs never wait on each
 * other forever, and a rank that fails says so in the next status
 * instead of leaving the others blocked.  Memory per rank: a batch out,
 * what the others send it in a round (a batch each at most, about one
 * batch in all as keys spread evenly), and the owner table of the keys
 * in its hash range.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "shard_mpi.h"

static int world_rank;

int shard_compile_rank(void)
{
    return world_rank;
}

#ifdef SHARD_MPI

#include <mpi.h>

static int world_broken; /* an MPI call failed: MPI_Finalize could hang */

#define BATCH_MAX 65536 /* notes a rank sends per round, at most */
#define BATCH_MIN 16
#define NAME_MAX_ 128 /* bytes of a schema or rule name sent */

/* A note on the wire: 32 bytes. */
typedef struct {
    uint64_t lo, hi;
    uint64_t pos;   /* input << 40 | note number within the input */
    uint32_t label; /* 0..2, or SHARD_DEDUP_PAIR */
    uint32_t pad;
} wire_note;

_Static_assert(sizeof(wire_note) == 32, "a note costs 32 bytes");

/* The owner's entry of a key: its labels, the first note of each. */
typedef struct {
    uint64_t lo, hi;
    uint64_t first[SHARD_DEDUP_PAIR + 1];
    unsigned labels;
} owner_entry;

struct shard_mpi {
    MPI_Comm comm;
    int rank, size;
    int failed;           /* agreed failure code, or 0 */
    int broken;           /* an MPI call failed: no more collectives */
    int local_rc;         /* a failure to report at the next round */
    int policy;
    char *err;
    char prefix[16];
    char tmpdir[4096];
    char pairs_dir[4200]; /* this rank's own, but on rank 0; or "" */
    unsigned char *mine;
    int *owner_of_input;
    size_t n_inputs;

    FILE *spool;          /* this rank's notes, in order */
    uint64_t n_notes, decided;
    uint32_t cur_input;
    uint64_t seq;
    uint8_t *fates;       /* 2 bits per note */
    wire_note *pend;      /* queued for the next round */
    size_t n_pend, batch; /* and how many make a round */
    size_t *order;        /* send position -> index in pend */

    owner_entry *slots;   /* keys this rank owns: open addressing */
    size_t cap, count;

    unsigned char *sbuf, *rbuf;
    size_t cap_s, cap_r;
    int *scount, *sdispl, *rcount, *rdispl; /* notes, bytes per rank */
    int *acount, *adispl, *bcount, *bdispl; /* answers out, answers in */
    int has_comm;
    uint64_t bytes_sent, total_bytes, total_notes;
    uint64_t rounds;      /* collective rounds so far */

    shard_file_info *files[SHARD_LABEL_COUNT];
    char schema[NAME_MAX_];
    char (*rule_text)[NAME_MAX_];
    const char *rule_ptr[SHARD_MAX_RULES];
};

/* ---- failures ---------------------------------------------------------- */

/* An MPI call's result: on failure, no collective is made again. */
static int mpi_check(shard_mpi *m, int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;

    if (rc == MPI_SUCCESS)
        return 0;
    MPI_Error_string(rc, s, &len);
    m->broken = world_broken = 1;
    m->failed = shard_errf(m->err, SHARD_EIO, "mpi: %s: %.*s", what, len,
                           s);
    return m->failed;
}

/* Every rank learns the failure of rank `root`: its code and message. */
static int fail_job(shard_mpi *m, int root, int rc)
{
    struct {
        int code;
        char msg[SHARD_ERRMAX];
    } f;

    memset(&f, 0, sizeof(f));
    if (m->rank == root) {
        f.code = rc < 0 ? rc : SHARD_EIO;
        snprintf(f.msg, sizeof(f.msg), "%s",
                 m->err[0] ? m->err : shard_strerror(f.code));
    }
    if (mpi_check(m, MPI_Bcast(&f, (int)sizeof(f), MPI_BYTE, root, m->comm),
                  "MPI_Bcast") < 0)
        return m->failed;
    f.msg[sizeof(f.msg) - 1] = '\0';
    m->failed = shard_errf(m->err, f.code, "rank %d: %s", root, f.msg);
    return m->failed;
}

/*
 * Collective: one round's status.  Sets *more to whether any rank has
 * more to send after this round; returns 0, or the failure agreed on.
 */
static int round_status(shard_mpi *m, int more_here, int rc, int *more)
{
    int in[2] = {more_here, rc < 0 ? m->size - m->rank : 0}, out[2];

    if (m->failed)
        return m->failed;
    m->rounds++;
    if (mpi_check(m, MPI_Allreduce(in, out, 2, MPI_INT, MPI_MAX, m->comm),
                  "MPI_Allreduce") < 0)
        return m->failed;
    if (out[1])
        return fail_job(m, m->size - out[1], rc);
    *more = out[0];
    return 0;
}

int shard_mpi_agree(shard_mpi *m, int rc)
{
    int more;

    if (rc == 0 && m->local_rc < 0)
        rc = m->local_rc;
    return round_status(m, 0, rc, &more);
}

/* ---- handle ------------------------------------------------------------ */

static void rank_dir_remove(const char *dir);

/*
 * MPI_Finalize waits for every rank, so it runs at exit: a rank then
 * cannot end the job (mpirun stops the others once one exits non-zero)
 * before rank 0 has told why it failed.
 */
static void finalize_at_exit(void)
{
    int done = 0;

    MPI_Finalized(&done);
    if (!done && !world_broken)
        MPI_Finalize();
}

/* Notes per round: the batches in flight (one out, `size` in) take at
 * most half of mem_limit. */
static size_t batch_size(uint64_t mem_limit, int size)
{
    uint64_t n = mem_limit ? mem_limit / (2 * sizeof(wire_note) *
                                          (uint64_t)(size + 1))
                           : BATCH_MAX;

    return n < BATCH_MIN ? BATCH_MIN : n > BATCH_MAX ? BATCH_MAX : n;
}

int shard_mpi_open(shard_mpi **out, int policy, uint64_t mem_limit,
                   const char *tmpdir, char *err)
{
    shard_mpi *m = calloc(1, sizeof(*m));
    int inited = 0, provided;

    *out = NULL;
    if (!m)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    m->err = err;
    m->policy = policy;
    m->cur_input = UINT32_MAX;
    snprintf(m->tmpdir, sizeof(m->tmpdir), "%s", tmpdir);
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) !=
            MPI_SUCCESS) {
            free(m);
            return shard_errf(err, SHARD_EIO, "mpi: MPI_Init failed");
        }
        atexit(finalize_at_exit);
    }
    *out = m;
    if (mpi_check(m, MPI_Comm_dup(MPI_COMM_WORLD, &m->comm),
                  "MPI_Comm_dup") < 0)
        return m->failed;
    m->has_comm = 1;
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->rank);
    MPI_Comm_size(m->comm, &m->size);
    world_rank = m->rank;
    snprintf(m->prefix, sizeof(m->prefix), "r%04d-", m->rank);
    m->scount = calloc((size_t)m->size * 8, sizeof(int));
    m->batch = batch_size(mem_limit, m->size);
    m->pend = malloc(m->batch * sizeof(*m->pend));
    m->order = malloc(m->batch * sizeof(*m->order));
    if (!m->scount || !m->pend || !m->order)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    m->sdispl = m->scount + m->size;
    m->rcount = m->sdispl + m->size;
    m->rdispl = m->rcount + m->size;
    m->acount = m->rdispl + m->size;
    m->adispl = m->acount + m->size;
    m->bcount = m->adispl + m->size;
    m->bdispl = m->bcount + m->size;
    return 0;
}

void shard_mpi_close(shard_mpi *m)
{
    if (!m)
        return;
    if (m->pairs_dir[0] && m->failed) /* else rank 0 took it */
        rank_dir_remove(m->pairs_dir);
    if (m->spool)
        fclose(m->spool);
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        free(m->files[l]);
    free(m->rule_text);
    free(m->mine);
    free(m->owner_of_input);
    free(m->fates);
    free(m->pend);
    free(m->order);
    free(m->slots);
    free(m->sbuf);
    free(m->rbuf);
    free(m->scount);
    if (!m->broken && m->has_comm)
        MPI_Comm_free(&m->comm);
    free(m);
}

int shard_mpi_rank(const shard_mpi *m)
{
    return m->rank;
}

int shard_mpi_size(const shard_mpi *m)
{
    return m->size;
}

const char *shard_mpi_prefix(const shard_mpi *m)
{
    return m->prefix;
}

/* ---- inputs ------------------------------------------------------------ */

typedef struct {
    uint64_t bytes;
    size_t index;
} sized_input;

static int by_size(const void *a, const void *b)
{
    const sized_input *x = a, *y = b;

    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

int shard_mpi_split(shard_mpi *m, char *const *paths, size_t n,
                    const unsigned char **mine)
{
    sized_input *s = calloc(n ? n : 1, sizeof(*s));
    uint64_t *load = calloc((size_t)m->size, sizeof(*load));
    struct stat st;

    m->mine = calloc(n ? n : 1, 1);
    m->owner_of_input = calloc(n ? n : 1, sizeof(int));
    m->n_inputs = n;
    if (!s || !load || !m->mine || !m->owner_of_input) {
        free(s);
        free(load);
        return shard_errf(m->err, SHARD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        s[i].index = i;
        s[i].bytes = stat(paths[i], &st) == 0 ? (uint64_t)st.st_size : 0;
    }
    qsort(s, n, sizeof(*s), by_size);
    for (size_t i = 0; i < n; i++) {
        int r = 0;

        for (int k = 1; k < m->size; k++)
            if (load[k] < load[r])
                r = k;
        load[r] += s[i].bytes;
        m->owner_of_input[s[i].index] = r;
        m->mine[s[i].index] = r == m->rank;
    }
    free(s);
    free(load);
    *mine = m->mine;
    if (n >= (size_t)1 << 24)
        return shard_errf(m->err, SHARD_EINVAL, "--mpi: %zu inputs, more "
                          "than %u", n, 1u << 24);
    return 0;
}

/* ---- the exchange ------------------------------------------------------ */

static int owner_of_key(const shard_mpi *m, uint64_t hi)
{
    return (int)(((unsigned __int128)hi * (unsigned)m->size) >> 64);
}

/* Room for n bytes in *buf.  0 or SHARD_ENOMEM. */
static int room(unsigned char **buf, size_t *cap, size_t n)
{
    return shard_grow((void **)buf, cap, n ? n : 1, 1);
}

/*
 * Copies the n queued notes into the send buffer by owner (a counting
 * sort: each owner's notes keep their order), setting the send counts
 * and displacements (bytes) and m->order.  0 or SHARD_ENOMEM.
 */
static int bucket(shard_mpi *m, size_t n)
{
    int *next = m->bdispl; /* free until the answers come back */

    if (room(&m->sbuf, &m->cap_s, n * sizeof(wire_note)) < 0)
        return SHARD_ENOMEM;
    memset(m->scount, 0, (size_t)m->size * sizeof(int));
    for (size_t i = 0; i < n; i++)
        m->scount[owner_of_key(m, m->pend[i].hi)]++;
    for (int r = 0; r < m->size; r++) {
        next[r] = r ? next[r - 1] + m->scount[r - 1] : 0;
        m->sdispl[r] = next[r] * (int)sizeof(wire_note);
    }
    for (size_t i = 0; i < n; i++) {
        int at = next[owner_of_key(m, m->pend[i].hi)]++;

        memcpy(m->sbuf + (size_t)at * sizeof(wire_note), &m->pend[i],
               sizeof(wire_note));
        m->order[at] = i;
    }
    for (int r = 0; r < m->size; r++)
        m->scount[r] *= (int)sizeof(wire_note);
    return 0;
}

/*
 * Collective: sends scount[r] bytes of sbuf to each rank r (from
 * sdispl[r]) and receives rcount[r] bytes from each into rbuf.
 */
static int alltoallv(shard_mpi *m, const void *sbuf, const int *scount,
                     const int *sdispl, void *rbuf, const int *rcount,
                     int *rdispl)
{
    int at = 0;

    for (int r = 0; r < m->size; r++) {
        rdispl[r] = at;
        at += rcount[r];
        if (r != m->rank)
            m->bytes_sent += (uint64_t)scount[r];
    }
    return mpi_check(m, MPI_Alltoallv(sbuf, scount, sdispl, MPI_BYTE, rbuf,
                                      rcount, rdispl, MPI_BYTE, m->comm),
                     "MPI_Alltoallv");
}

/* Collective: the bucketed notes to their owners; returns how many came
 * in (in rbuf), or negative. */
static long exchange_notes(shard_mpi *m)
{
    size_t total = 0;

    if (mpi_check(m, MPI_Alltoall(m->scount, 1, MPI_INT, m->rcount, 1,
                                  MPI_INT, m->comm), "MPI_Alltoall") < 0)
        return m->failed;
    for (int r = 0; r < m->size; r++)
        total += (size_t)m->rcount[r];
    if (room(&m->rbuf, &m->cap_r, total) < 0) {
        /* Cannot receive: the job cannot go on consistently. */
        m->broken = 1;
        return m->failed = shard_errf(m->err, SHARD_ENOMEM,
                                      "out of memory");
    }
    if (alltoallv(m, m->sbuf, m->scount, m->sdispl, m->rbuf, m->rcount,
                  m->rdispl) < 0)
        return m->failed;
    return (long)(total / sizeof(wire_note));
}

/* ---- the owner table --------------------------------------------------- */

static size_t slot_of(const shard_mpi *m, uint64_t lo, uint64_t hi)
{
    size_t i = (size_t)(lo ^ (hi >> 29)) & (m->cap - 1);

    while ((m->slots[i].lo || m->slots[i].hi) &&
           (m->slots[i].lo != lo || m->slots[i].hi != hi))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int table_grow(shard_mpi *m)
{
    owner_entry *old = m->slots;
    size_t old_cap = m->cap;

    m->cap = old_cap ? old_cap * 2 : 1024;
    if (!(m->slots = calloc(m->cap, sizeof(*m->slots)))) {
        m->slots = old;
        m->cap = old_cap;
        return SHARD_ENOMEM;
    }
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].lo || old[i].hi)
            m->slots[slot_of(m, old[i].lo, old[i].hi)] = old[i];
    free(old);
    return 0;
}

/* A note reaches its owner: the key's labels, and its earliest note of
 * each label.  0 or SHARD_ENOMEM. */
static int owner_note(shard_mpi *m, const wire_note *n)
{
    owner_entry *e;
    unsigned bit = 1u << n->label;

    if ((m->count + 1) * 4 > m->cap * 3 && table_grow(m) < 0)
        return SHARD_ENOMEM;
    e = &m->slots[slot_of(m, n->lo, n->hi)];
    if (!e->lo && !e->hi) {
        e->lo = n->lo;
        e->hi = n->hi;
        m->count++;
    }
    if (!(e->labels & bit) || n->pos < e->first[n->label])
        e->first[n->label] = n->pos;
    e->labels |= bit;
    return 0;
}

/* The owner's decision on a note: what one process would decide. */
static int owner_fate(shard_mpi *m, const wire_note *n)
{
    owner_entry *e = &m->slots[slot_of(m, n->lo, n->hi)];

    if (n->label > SHARD_DEDUP_PAIR || !(e->labels & (1u << n->label)))
        return shard_errf(m->err, SHARD_EINVAL, "mpi: a key decided that "
                          "was never noted");
    if (e->first[n->label] != n->pos)
        return SHARD_FATE_DUPLICATE;
    return shard_dedup_first_fate(e->labels, (int)n->label, m->policy);
}

/* ---- first sweep ------------------------------------------------------- */

/* Collective: one round of notes to their owners.  1 when some rank has
 * more, 0 when none has, or negative. */
static int notes_round(shard_mpi *m, int more_here, int rc)
{
    long got;
    int more = 0;

    if (rc == 0 && m->local_rc < 0)
        rc = m->local_rc;
    if ((rc = round_status(m, more_here, rc, &more)) < 0)
        return rc;
    if (bucket(m, m->n_pend) < 0) {
        m->broken = 1;
        return m->failed = shard_errf(m->err, SHARD_ENOMEM,
                                      "out of memory");
    }
    m->n_pend = 0;
    if ((got = exchange_notes(m)) < 0)
        return (int)got;
    for (long i = 0; i < got && m->local_rc == 0; i++)
        if (owner_note(m, (const wire_note *)m->rbuf + i) < 0)
            m->local_rc = shard_errf(m->err, SHARD_ENOMEM,
                                     "out of memory");
    return more;
}

static FILE *spool_open(shard_mpi *m)
{
    char p[4200];
    FILE *f;

    snprintf(p, sizeof(p), "%s/.mpi-notes-%04d.tmp", m->tmpdir, m->rank);
    if (!(f = fopen(p, "w+b")))
        shard_errf(m->err, SHARD_EIO, "%s: %s", p, strerror(errno));
    else
        unlink(p);
    return f;
}

int shard_mpi_note(shard_mpi *m, uint32_t input, const shard_key *k,
                   int label)
{
    wire_note n = {k->lo, k->hi, 0, (uint32_t)label, 0};
    int rc;

    if (m->failed)
        return m->failed;
    if (!m->spool && !(m->spool = spool_open(m)))
        return SHARD_EIO;
    if (input != m->cur_input) {
        m->cur_input = input;
        m->seq = 0;
    }
    n.pos = (uint64_t)input << 40 | m->seq++;
    if (fwrite(&n, sizeof(n), 1, m->spool) != 1)
        return shard_errf(m->err, SHARD_EIO, "mpi: note spool: %s",
                          strerror(errno));
    m->n_notes++;
    m->pend[m->n_pend++] = n;
    if (m->n_pend == m->batch && (rc = notes_round(m, 1, 0)) < 0)
        return rc;
    return 0;
}

/* ---- fates ------------------------------------------------------------- */

/*
 * Collective: one round of fates.  Sends the next n notes of the spool
 * to their owners, answers the notes that came in with one byte each,
 * and files the answers to this rank's notes from `base` on.
 */
static int fates_round(shard_mpi *m, size_t n, uint64_t base, int *more)
{
    long got;
    int rc;

    if ((rc = round_status(m, base + n < m->n_notes, m->local_rc, more)) < 0)
        return rc;
    if (bucket(m, n) < 0 || (got = exchange_notes(m)) < 0) {
        if (!m->failed) {
            m->broken = 1;
            m->failed = shard_errf(m->err, SHARD_ENOMEM, "out of memory");
        }
        return m->failed;
    }
    /* Answers overwrite the notes in place: byte i lies before note i. */
    for (long i = 0; i < got; i++) {
        int fate = owner_fate(m, (const wire_note *)m->rbuf + i);

        if (fate < 0 && m->local_rc == 0)
            m->local_rc = fate;
        m->rbuf[i] = (unsigned char)(fate < 0 ? 0 : fate);
    }
    for (int r = 0; r < m->size; r++) {
        m->acount[r] = m->rcount[r] / (int)sizeof(wire_note);
        m->bcount[r] = m->scount[r] / (int)sizeof(wire_note);
        m->adispl[r] = r ? m->adispl[r - 1] + m->acount[r - 1] : 0;
    }
    if (alltoallv(m, m->rbuf, m->acount, m->adispl, m->sbuf, m->bcount,
                  m->bdispl) < 0)
        return m->failed;
    for (size_t j = 0; j < n; j++) {
        uint64_t s = base + m->order[j];

        m->fates[s / 4] |= (uint8_t)((m->sbuf[j] & 3) << (2 * (s % 4)));
    }
    return 0;
}

/* Collective: every note of this rank's spool decided by its owner. */
static int fetch_fates(shard_mpi *m)
{
    uint64_t base = 0;
    size_t n = 0;
    int more = 1, rc;

    if (!(m->fates = calloc(m->n_notes / 4 + 1, 1)))
        m->local_rc = shard_errf(m->err, SHARD_ENOMEM, "out of memory");
    if (m->spool && fseek(m->spool, 0, SEEK_SET) != 0)
        m->local_rc = shard_errf(m->err, SHARD_EIO, "mpi: note spool: %s",
                                 strerror(errno));
    while (more) {
        n = 0;
        if (m->local_rc == 0 && m->spool)
            n = fread(m->pend, sizeof(wire_note), m->batch, m->spool);
        if (m->local_rc == 0 && n < m->batch && base + n < m->n_notes)
            m->local_rc = shard_errf(m->err, SHARD_EIO, "mpi: note spool "
                                     "cut short");
        if (m->local_rc < 0)
            n = 0;
        if ((rc = fates_round(m, n, base, &more)) < 0)
            return rc;
        base += n;
    }
    return shard_mpi_agree(m, 0);
}

int shard_mpi_resolve(shard_mpi *m, int rc)
{
    int more = 1;

    while (more > 0)
        more = notes_round(m, 0, rc);
    if (more < 0)
        return more;
    if ((rc = shard_mpi_agree(m, 0)) < 0)
        return rc;
    return fetch_fates(m);
}

int shard_mpi_decide(shard_mpi *m)
{
    uint64_t s = m->decided;

    if (s >= m->n_notes)
        return shard_errf(m->err, SHARD_EINVAL, "mpi: more decisions "
                          "than notes");
    m->decided++;
    return (m->fates[s / 4] >> (2 * (s % 4))) & 3;
}

/* ---- gathering on rank 0 ------------------------------------------------ */

/* Collective: each rank's `bytes` bytes to rank 0, in rank order, into
 * *out (malloc'ed on rank 0; counts[r] and the total set there). */
static int gather_bytes(shard_mpi *m, const void *p, int bytes,
                        unsigned char **out, int *counts)
{
    int *displ = m->rdispl, total = 0, rc = 0;

    *out = NULL;
    if (mpi_check(m, MPI_Gather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, 0,
                                m->comm), "MPI_Gather") < 0)
        return m->failed;
    for (int r = 0; m->rank == 0 && r < m->size; r++) {
        displ[r] = total;
        total += counts[r];
    }
    if (m->rank == 0 && !(*out = malloc(total ? (size_t)total : 1)))
        rc = shard_errf(m->err, SHARD_ENOMEM, "out of memory");
    if ((rc = shard_mpi_agree(m, rc)) < 0)
        return rc;
    return mpi_check(m, MPI_Gatherv(p, bytes, MPI_BYTE, *out, counts, displ,
                                    MPI_BYTE, 0, m->comm), "MPI_Gatherv");
}

/* Each input's figures from the rank that read it. */
static int gather_inputs(shard_mpi *m, shard_input_stats *in)
{
    size_t own = 0, at = 0;
    shard_input_stats *mine = calloc(m->n_inputs + 1, sizeof(*mine));
    unsigned char *all;
    int rc = mine ? 0 : SHARD_ENOMEM;

    for (size_t i = 0; mine && i < m->n_inputs; i++)
        if (m->mine[i])
            mine[own++] = in[i];
    if ((rc = shard_mpi_agree(m, rc)) < 0 ||
        (rc = gather_bytes(m, mine, (int)(own * sizeof(*mine)), &all,
                           m->rcount)) < 0) {
        free(mine);
        return rc;
    }
    for (int r = 0; m->rank == 0 && r < m->size; r++)
        for (size_t i = 0; i < m->n_inputs; i++)
            if (m->owner_of_input[i] == r)
                memcpy(&in[i], all + (at++) * sizeof(*in), sizeof(*in));
    free(all);
    free(mine);
    return 0;
}

/* The first examples of each reason, rank 0's first, then rank 1's... */
static int gather_examples(shard_mpi *m, shard_examples *ex)
{
    unsigned char *all;
    int rc = gather_bytes(m, ex, (int)sizeof(*ex), &all, m->rcount);

    if (rc < 0 || m->rank != 0)
        return rc;
    memset(ex->count, 0, sizeof(ex->count));
    for (int r = 0; r < m->size; r++) {
        const shard_examples *e =
            (const shard_examples *)(all + (size_t)r * sizeof(*e));

        for (int k = 0; k < SHARD_REASONS; k++)
            for (unsigned i = 0; i < e->count[k] &&
                                 ex->count[k] < SHARD_EXAMPLES_PER_REASON;
                 i++)
                memcpy(ex->text[k][ex->count[k]++], e->text[k][i],
                       SHARD_ERRMAX);
    }
    free(all);
    return 0;
}

/* Every rank's shard files of each label, in rank order. */
static int gather_files(shard_mpi *m, shard_manifest_data *d)
{
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        unsigned char *all;
        int rc = gather_bytes(m, d->files[l],
                              (int)(d->n_files[l] * sizeof(*d->files[l])),
                              &all, m->rcount);
        size_t total = 0;

        if (rc < 0)
            return rc;
        if (m->rank != 0)
            continue;
        for (int r = 0; r < m->size; r++)
            total += (size_t)m->rcount[r];
        m->files[l] = (shard_file_info *)all;
        d->files[l] = m->files[l];
        d->n_files[l] = total / sizeof(shard_file_info);
    }
    return 0;
}

/* The schema ("mixed" when ranks differ) and the union of rules. */
static int gather_names(shard_mpi *m, shard_manifest_data *d)
{
    char mine[SHARD_MAX_RULES + 1][NAME_MAX_];
    unsigned char *all;
    size_t n = 0, per = sizeof(mine) / NAME_MAX_;
    int rc;

    memset(mine, 0, sizeof(mine));
    snprintf(mine[0], NAME_MAX_, "%s", strcmp(d->schema, "none") ? d->schema
                                                                 : "");
    for (size_t i = 0; i < d->n_rules; i++)
        snprintf(mine[1 + i], NAME_MAX_, "%s", d->rules[i]);
    if ((rc = gather_bytes(m, mine, (int)sizeof(mine), &all, m->rcount)) < 0 ||
        m->rank != 0)
        return rc;
    m->rule_text = (char (*)[NAME_MAX_])all;
    for (size_t r = 0; r < (size_t)m->size; r++) {
        const char *s = m->rule_text[r * per];

        if (s[0] && !m->schema[0])
            snprintf(m->schema, sizeof(m->schema), "%s", s);
        else if (s[0] && strcmp(s, m->schema) != 0)
            snprintf(m->schema, sizeof(m->schema), "mixed");
        for (size_t i = 1; i < per && m->rule_text[r * per + i][0]; i++) {
            const char *rule = m->rule_text[r * per + i];
            size_t k = 0;

            while (k < n && strcmp(m->rule_ptr[k], rule) != 0)
                k++;
            if (k == n && n < SHARD_MAX_RULES)
                m->rule_ptr[n++] = rule;
        }
    }
    d->schema = m->schema[0] ? m->schema : "none";
    d->rules = m->rule_ptr;
    d->n_rules = n;
    return 0;
}

int shard_mpi_gather(shard_mpi *m, shard_manifest_data *d,
                     shard_accounting *acct, shard_input_stats *inputs,
                     shard_examples *ex)
{
    _Static_assert(sizeof(*acct) % 8 == 0, "accounting: 64-bit counts");
    uint64_t traffic[2] = {m->bytes_sent, m->n_notes}, sum[2];
    shard_accounting total;
    int rc;

    if (m->failed)
        return m->failed;
    if (mpi_check(m, MPI_Reduce(acct, &total, sizeof(*acct) / 8,
                                MPI_UINT64_T, MPI_SUM, 0, m->comm),
                  "MPI_Reduce") < 0 ||
        mpi_check(m, MPI_Reduce(traffic, sum, 2, MPI_UINT64_T, MPI_SUM, 0,
                                m->comm), "MPI_Reduce") < 0)
        return m->failed;
    if (m->rank == 0) {
        *acct = total;
        m->total_bytes = sum[0];
        m->total_notes = sum[1];
    }
    if ((rc = gather_inputs(m, inputs)) < 0 ||
        (rc = gather_examples(m, ex)) < 0 ||
        (rc = gather_files(m, d)) < 0)
        return rc;
    return gather_names(m, d);
}

void shard_mpi_traffic(const shard_mpi *m, uint64_t *bytes,
                       uint64_t *notes, uint64_t *rounds)
{
    *bytes = m->total_bytes;
    *notes = m->total_notes;
    *rounds = m->rounds;
}

/* ---- pairs --------------------------------------------------------------- */

static void rank_dir(const char *outdir, int rank, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/.r%04d", outdir, rank);
}

int shard_mpi_pairs_dir(shard_mpi *m, const char *outdir, char *buf,
                        size_t cap)
{
    if (m->rank == 0) {
        snprintf(buf, cap, "%s", outdir);
        return 0;
    }
    rank_dir(outdir, m->rank, buf, cap);
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return shard_errf(m->err, SHARD_EIO, "%s: %s", buf, strerror(errno));
    snprintf(m->pairs_dir, sizeof(m->pairs_dir), "%s", buf);
    return 0;
}

/* Adds the pairs table under `dir` to w, then removes it. */
static int pairs_take(shard_mpi *m, const char *dir, shard_pairs_writer *w)
{
    char p[4400];
    shard_pairs *t;
    int rc;

    snprintf(p, sizeof(p), "%s/%s", dir, SHARD_PAIRS_PATH);
    if ((rc = shard_pairs_open(&t, p)) < 0)
        return shard_errf(m->err, rc, "%s", shard_last_error());
    for (uint64_t i = 0; rc == 0 && i < shard_pairs_count(t); i++)
        rc = shard_pairs_writer_add(w, &shard_pairs_rows(t)[i]);
    shard_pairs_close(t);
    if (rc < 0)
        return shard_errf(m->err, rc, "%s", shard_pairs_writer_errmsg(w));
    unlink(p);
    snprintf(p, sizeof(p), "%s/pairs", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}

int shard_mpi_pairs_merge(shard_mpi *m, const char *outdir,
                          shard_pairs_writer *w)
{
    char dir[4200];
    int rc = 0;

    for (int r = 1; rc == 0 && r < m->size; r++) {
        rank_dir(outdir, r, dir, sizeof(dir));
        rc = pairs_take(m, dir, w);
    }
    return rc;
}

/* Removes a rank directory: its pairs table, finished or not, and it. */
static void rank_dir_remove(const char *dir)
{
    char p[4400];

    snprintf(p, sizeof(p), "%s/%s", dir, SHARD_PAIRS_PATH);
    unlink(p);
    snprintf(p, sizeof(p), "%s/pairs/.00000.pairs.tmp", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/pairs", dir);
    rmdir(p);
    rmdir(dir);
}

int shard_mpi_clean(shard_mpi *m, const char *outdir)
{
    DIR *d = opendir(outdir);
    struct dirent *e;
    char p[4400];

    if (!d)
        return shard_errf(m->err, SHARD_EIO, "%s: %s", outdir,
                          strerror(errno));
    while ((e = readdir(d))) {
        const char *n = e->d_name;

        if (strlen(n) == 6 && n[0] == '.' && n[1] == 'r' &&
            strspn(n + 2, "0123456789") == 4) {
            snprintf(p, sizeof(p), "%s/%s", outdir, n);
            rank_dir_remove(p);
        }
    }
    closedir(d);
    return 0;
}

#else /* built without MPI: no handle can be opened */

int shard_mpi_open(shard_mpi **out, int policy, uint64_t mem_limit,
                   const char *tmpdir, char *err)
{
    *out = NULL;
    return shard_errf(err, SHARD_EINVAL, "--mpi: this shard was built "
                      "without MPI (install Open MPI, then make MPI=1)");
}

/* The rest is never called, as no handle exists: each says so. */
static int no_handle(void)
{
    return SHARD_EINVAL;
}

void shard_mpi_close(shard_mpi *m)
{
}

int shard_mpi_rank(const shard_mpi *m)
{
    return 0;
}

int shard_mpi_size(const shard_mpi *m)
{
    return 1;
}

const char *shard_mpi_prefix(const shard_mpi *m)
{
    return "";
}

int shard_mpi_split(shard_mpi *m, char *const *paths, size_t n,
                    const unsigned char **mine)
{
    return no_handle();
}

int shard_mpi_agree(shard_mpi *m, int rc)
{
    return rc;
}

int shard_mpi_note(shard_mpi *m, uint32_t input, const shard_key *k,
                   int label)
{
    return no_handle();
}

int shard_mpi_resolve(shard_mpi *m, int rc)
{
    return no_handle();
}

int shard_mpi_decide(shard_mpi *m)
{
    return no_handle();
}

int shard_mpi_gather(shard_mpi *m, shard_manifest_data *d,
                     shard_accounting *acct, shard_input_stats *inputs,
                     shard_examples *ex)
{
    return no_handle();
}

void shard_mpi_traffic(const shard_mpi *m, uint64_t *bytes,
                       uint64_t *notes, uint64_t *rounds)
{
    *bytes = *notes = *rounds = 0;
}

int shard_mpi_pairs_dir(shard_mpi *m, const char *outdir, char *buf,
                        size_t cap)
{
    return no_handle();
}

int shard_mpi_pairs_merge(shard_mpi *m, const char *outdir,
                          shard_pairs_writer *w)
{
    return no_handle();
}

int shard_mpi_clean(shard_mpi *m, const char *outdir)
{
    return no_handle();
}

#endif
