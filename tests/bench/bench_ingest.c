/*
 * bench_ingest.c - the input layer alone: rows per second and MB/s of row
 * text from each file given, best of three passes, and the resident set
 * at the end (the input layer holds one row at a time).
 *
 *     bench_ingest FILE...
 *
 * Prints one line per file: name, rows, MB of row text, MB/s.
 */
#include <stdio.h>
#include <time.h>

#include "ingest_input.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One pass over path; returns seconds, or -1 when it cannot be read. */
static double pass(const char *path, unsigned long long *rows,
                   unsigned long long *bytes)
{
    shard_input *in;
    shard_line l;
    double t0 = now();
    int rc;

    *rows = *bytes = 0;
    if (shard_input_open(&in, path, 64u << 20) < 0)
        return -1;
    while ((rc = shard_input_next(in, &l)) > 0) {
        (*rows)++;
        *bytes += l.len;
    }
    shard_input_close(in);
    return rc < 0 ? -1 : now() - t0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        unsigned long long rows, bytes;
        double best = -1;

        for (int k = 0; k < 3; k++) {
            double s = pass(argv[i], &rows, &bytes);

            if (s < 0) {
                fprintf(stderr, "bench_ingest: %s: unreadable\n", argv[i]);
                return 1;
            }
            if (best < 0 || s < best)
                best = s;
        }
        printf("%-28s %8llu rows %8.1f MB %8.0f MB/s\n", argv[i], rows,
               bytes / 1e6, bytes / 1e6 / best);
    }
    return 0;
}
