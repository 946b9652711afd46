/*
 * compile_report.h - the end of `shard compile`: what the run cost (wall
 * and CPU time, peak memory, throughput) beside the accounting, printed
 * as the summary on stderr and, with --report FILE, written as JSON.
 */
#ifndef SHARD_COMPILE_REPORT_H
#define SHARD_COMPILE_REPORT_H

#include <stdint.h>

#include "shard_compile.h"

/* What a compile cost, measured by the process around it. */
typedef struct {
    double wall;         /* seconds from start to end */
    double keys;         /* seconds from start to the key sweep's end */
    double user, sys;    /* CPU seconds of every thread */
    uint64_t peak_rss;   /* peak resident memory, bytes */
    uint64_t bytes;      /* JSON bytes of the rows, counted once */
    int jobs;            /* worker threads (-j, 0 resolved to cores) */
} compile_cost;

/* Fills in wall (from t0, CLOCK_MONOTONIC seconds), CPU and peak RSS. */
void compile_cost_measure(compile_cost *c, double t0);

/* Seconds of CLOCK_MONOTONIC. */
double compile_clock(void);

/* The worker threads shard_compile() starts for `threads` (-j). */
int compile_jobs(int threads);

/*
 * Prints the summary on stderr: time, accounting, each input (from the
 * manifest in `out`), speed and cost.
 */
void compile_summary_print(const shard_accounting *a, const char *out,
                           const compile_cost *c);

/*
 * Writes the report to `path` through a temporary file beside it, renamed
 * over it, so that a reader sees the old report or the whole new one.
 * `error` is NULL for a compile that succeeded (the inputs come from the
 * manifest in `out`), else why it failed.  Returns 0, or -1 after saying
 * why on stderr.
 */
int compile_report_write(const char *path, const char *out,
                         const shard_accounting *a, const compile_cost *c,
                         const char *error);

#endif
