/*
 * test_compile.c - the compile driver as the library gives it: what the
 * progress callback receives (sweeps in order, monotone figures, input
 * bytes against a known total, the same for every -j).
 *
 * Reads tests/data and $SHARED_DATA (default ../shared/data); needs the
 * cl100k_base vocabulary (make vocab).  Run from the repository root.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_compile.h"
#include "test.h"

#define MAX_CALLS 4096

/* Every call of the progress callback, in order. */
typedef struct {
    shard_progress p[MAX_CALLS];
    size_t n;
} calls;

static void note_progress(void *ctx, const shard_progress *p)
{
    calls *c = ctx;

    if (c->n < MAX_CALLS)
        c->p[c->n++] = *p;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v && *v ? v : dflt;
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Compiles inputs with -j threads into a fresh directory, noting calls. */
static void compile_noting(const char *const *in, size_t n, int threads,
                           calls *c)
{
    shard_compile_options o = SHARD_COMPILE_OPTIONS_INIT;
    shard_accounting a;
    char dir[] = "/tmp/test_compile.XXXXXX", cmd[128];

    CHECK(mkdtemp(dir) != NULL);
    o.force = 1;
    o.threads = threads;
    o.progress = note_progress;
    o.progress_ctx = c;
    c->n = 0;
    CHECK_EQ_INT(shard_compile(in, n, dir, &o, &a), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK(c->n > 2 && c->n < MAX_CALLS);
}

/*
 * Sweep 1 then sweep 2; within a sweep rows, bytes and input bytes never
 * decrease, the total never changes, and the last call has read it all.
 */
static void check_sweeps(const calls *c, uint64_t total)
{
    for (size_t i = 0; i < c->n; i++) {
        const shard_progress *p = &c->p[i], *q = i ? &c->p[i - 1] : NULL;
        int last = i + 1 == c->n || c->p[i + 1].sweep != p->sweep;

        CHECK_EQ_INT(p->in_total, total);
        CHECK(p->sweep == 1 || p->sweep == 2);
        CHECK(!q || p->sweep >= q->sweep);
        if (q && q->sweep == p->sweep) {
            CHECK(p->in_done >= q->in_done);
            CHECK(p->rows >= q->rows && p->bytes >= q->bytes);
        }
        CHECK(p->in_done <= total);
        if (last && total)
            CHECK_EQ_INT(p->in_done, total);
    }
    CHECK_EQ_INT(c->p[0].sweep, 1);
    CHECK_EQ_INT(c->p[c->n - 1].sweep, 2);
}

static calls one, two;

/* An empty file among the inputs has a known size too. */
TEST(progress_counts_input_bytes)
{
    char hh[1024], empty[] = "/tmp/test_compile_empty.XXXXXX";
    const char *in[] = {"tests/data/dedup/conflicts.jsonl", empty, hh};
    uint64_t first, total, between = 0;
    int fd = mkstemp(empty);

    CHECK(fd >= 0);
    close(fd);
    snprintf(hh, sizeof(hh), "%s/hh-rlhf/harmless-base-test.jsonl.gz",
             env_or("SHARED_DATA", "../shared/data"));
    first = file_size(in[0]);
    total = first + file_size(hh);
    CHECK(first > 0 && total > first);

    compile_noting(in, 3, 1, &one);
    unlink(empty);
    check_sweeps(&one, total);

    /* The gzip file is counted as its compressed bytes are consumed:
     * some calls fall strictly inside it. */
    for (size_t i = 0; i < one.n; i++)
        between += one.p[i].in_done > first && one.p[i].in_done < total;
    CHECK(between >= 2);
}

TEST(progress_same_for_every_jobs)
{
    char hh[1024];
    const char *in[] = {"tests/data/dedup/conflicts.jsonl", hh};

    snprintf(hh, sizeof(hh), "%s/hh-rlhf/harmless-base-test.jsonl.gz",
             env_or("SHARED_DATA", "../shared/data"));
    compile_noting(in, 2, 1, &one);
    compile_noting(in, 2, 3, &two);
    CHECK_EQ_INT(two.n, one.n);
    for (size_t i = 0; i < one.n; i++) {
        CHECK_EQ_INT(two.p[i].sweep, one.p[i].sweep);
        CHECK_EQ_INT(two.p[i].in_done, one.p[i].in_done);
        CHECK_EQ_INT(two.p[i].rows, one.p[i].rows);
        CHECK_EQ_INT(two.p[i].kept, one.p[i].kept);
    }
}

TEST(progress_stdin_has_no_total)
{
    char hh[1024];
    const char *in[] = {"-"};
    int saved = dup(STDIN_FILENO), fd;

    snprintf(hh, sizeof(hh), "%s/hh-rlhf/harmless-base-test.jsonl.gz",
             env_or("SHARED_DATA", "../shared/data"));
    CHECK(saved >= 0 && (fd = open(hh, O_RDONLY)) >= 0);
    CHECK(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
    close(fd);
    compile_noting(in, 1, 2, &one);
    dup2(saved, STDIN_FILENO);
    close(saved);
    check_sweeps(&one, 0);
    CHECK(one.p[one.n - 1].rows == 2312);
}

TEST_MAIN()
