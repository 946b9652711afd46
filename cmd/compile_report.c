/*
 * compile_report.c - the summary of `shard compile` and --report FILE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "compile_report.h"

double compile_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void compile_cost_measure(compile_cost *c, double t0)
{
    struct rusage ru;

    c->wall = compile_clock() - t0;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return;
    c->user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    c->sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    c->peak_rss = (uint64_t)ru.ru_maxrss * 1024; /* Linux: kilobytes */
}

int compile_jobs(int threads)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = threads > 0 ? threads : cores > 0 ? (int)cores : 1;

    return n > SHARD_MAX_THREADS ? SHARD_MAX_THREADS : n;
}

static uint64_t tokens_total(const shard_accounting *a)
{
    uint64_t n = 0;

    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        n += a->tokens_by_label[l];
    return n;
}

/* x per second of wall time; 0 for a run too short to time. */
static double per_second(double x, const compile_cost *c)
{
    return c->wall > 0 ? x / c->wall : 0.0;
}

/*
 * Per input: rows read = kept + skipped, records, and why an input
 * skipped by --keep-going stopped; from the manifest just written.
 */
static void summary_inputs(const char *out)
{
    shard_manifest m;

    if (shard_manifest_read(out, &m) < 0)
        return;
    for (size_t i = 0; i < m.n_inputs; i++) {
        const shard_manifest_input *in = &m.inputs[i];

        fprintf(stderr, "  input    %s (%s): %llu read = %llu kept + %llu "
                "skipped, %llu records%s%s\n", in->path, in->format,
                (unsigned long long)in->rows_read,
                (unsigned long long)in->rows_kept,
                (unsigned long long)in->rows_invalid,
                (unsigned long long)in->records,
                in->error[0] ? "; stopped: " : "", in->error);
    }
    shard_manifest_free(&m);
}

void compile_summary_print(const shard_accounting *a, const char *out,
                           const compile_cost *c)
{
    if (cli_verbosity < 1)
        return;
    fprintf(stderr, "shard: compiled %s in %.2f s\n", out, c->wall);
    cli_print_accounting(stderr, a);
    summary_inputs(out);
    /* One line, so that tests comparing runs can leave it out. */
    fprintf(stderr, "  speed    %.0f rows/s, %.1f MB/s, %.2f M tokens/s; "
            "-j%d, key sweep %.2f s of %.2f, %.2f s CPU, peak RSS %.1f MB\n",
            per_second((double)a->rows_read, c),
            per_second(c->bytes / 1e6, c),
            per_second(tokens_total(a) / 1e6, c), c->jobs, c->keys, c->wall,
            c->user + c->sys, c->peak_rss / 1e6);
}

/* "name": {"pos": n, "neg": n, "unl": n}, in that order */
static void json_by_label(FILE *f, const char *name, const uint64_t *v)
{
    static const int order[] = {SHARD_LABEL_POS, SHARD_LABEL_NEG,
                                SHARD_LABEL_UNL};

    fprintf(f, "  \"%s\": {", name);
    for (int i = 0; i < SHARD_LABEL_COUNT; i++)
        fprintf(f, "%s\"%s\": %llu", i ? ", " : "",
                shard_label_name(order[i]), (unsigned long long)v[order[i]]);
    fputs("},\n", f);
}

static void json_accounting(FILE *f, const shard_accounting *a)
{
    const struct {
        const char *name;
        uint64_t n;
    } counts[] = {
        {"records", a->records}, {"kept", a->kept},
        {"duplicate", a->duplicate}, {"near_duplicate", a->near_duplicate},
        {"conflict", a->conflict}, {"pairs", a->pairs},
        {"pairs_duplicate", a->pairs_duplicate},
        {"pairs_dropped", a->pairs_dropped},
        {"near_candidates", a->near_candidates},
        {"replaced_utf8", a->replaced_utf8},
        {"special_text", a->special_text},
        {"inputs_failed", a->inputs_failed},
    };

    fprintf(f, "  \"accounting\": {\"rows_read\": %llu, \"rows_invalid\": "
            "%llu, \"invalid_by_reason\": {",
            (unsigned long long)a->rows_read,
            (unsigned long long)a->rows_invalid);
    for (int r = 0; r < SHARD_REASONS; r++)
        fprintf(f, "%s\"%s\": %llu", r ? ", " : "", shard_reason_label(r),
                (unsigned long long)a->invalid_by_reason[r]);
    fputc('}', f);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        fprintf(f, ",%s\"%s\": %llu", i % 4 ? " " : "\n    ",
                counts[i].name, (unsigned long long)counts[i].n);
    fputs("},\n", f);
    json_by_label(f, "records", a->kept_by_label);
    json_by_label(f, "tokens", a->tokens_by_label);
}

/* The inputs as the manifest in `out` accounts for them; [] without one. */
static void json_inputs(FILE *f, const char *out)
{
    shard_manifest m;

    fputs("  \"inputs\": [", f);
    if (!out || shard_manifest_read(out, &m) < 0) {
        fputs("],\n", f);
        return;
    }
    for (size_t i = 0; i < m.n_inputs; i++) {
        const shard_manifest_input *in = &m.inputs[i];

        fprintf(f, "%s\n    {\"path\": ", i ? "," : "");
        shard_json_write_string(f, in->path, strlen(in->path));
        fputs(", \"format\": ", f);
        shard_json_write_string(f, in->format, strlen(in->format));
        fprintf(f, ", \"rows_read\": %llu, \"rows_kept\": %llu, "
                "\"rows_invalid\": %llu, \"records\": %llu, \"kept\": %llu,"
                " \"error\": ", (unsigned long long)in->rows_read,
                (unsigned long long)in->rows_kept,
                (unsigned long long)in->rows_invalid,
                (unsigned long long)in->records,
                (unsigned long long)in->kept);
        if (in->error[0])
            shard_json_write_string(f, in->error, strlen(in->error));
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs(m.n_inputs ? "\n  ],\n" : "],\n", f);
    shard_manifest_free(&m);
}

static void json_cost(FILE *f, const shard_accounting *a,
                      const compile_cost *c)
{
    fprintf(f, "  \"tokens_total\": %llu, \"bytes\": %llu, \"jobs\": %d,\n",
            (unsigned long long)tokens_total(a),
            (unsigned long long)c->bytes, c->jobs);
    fprintf(f, "  \"seconds\": {\"wall\": %.3f, \"key_sweep\": %.3f, "
            "\"cpu\": %.3f, \"user\": %.3f, \"system\": %.3f},\n", c->wall,
            c->keys, c->user + c->sys, c->user, c->sys);
    fprintf(f, "  \"throughput\": {\"rows_per_s\": %.1f, \"mb_per_s\": %.3f, "
            "\"tokens_per_s\": %.1f},\n",
            per_second((double)a->rows_read, c),
            per_second(c->bytes / 1e6, c),
            per_second((double)tokens_total(a), c));
    fprintf(f, "  \"peak_rss_bytes\": %llu\n",
            (unsigned long long)c->peak_rss);
}

static void json_report(FILE *f, const char *out, const shard_accounting *a,
                        const compile_cost *c, const char *error)
{
    fputs("{\n  \"status\": ", f);
    fputs(error ? "\"failed\", \"error\": " : "\"ok\", \"error\": ", f);
    if (error)
        shard_json_write_string(f, error, strlen(error));
    else
        fputs("null", f);
    fputs(",\n  \"output\": ", f);
    shard_json_write_string(f, out, strlen(out));
    fputs(",\n", f);
    json_accounting(f, a);
    json_inputs(f, error ? NULL : out);
    json_cost(f, a, c);
    fputs("}\n", f);
}

/* Writes the report straight to `path`: a terminal, a pipe, /dev/stdout. */
static int report_write_direct(const char *path, const char *out,
                               const shard_accounting *a,
                               const compile_cost *c, const char *error)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        cli_error("compile: --report %s: %s", path, strerror(errno));
        return -1;
    }
    json_report(f, out, a, c, error);
    if ((fflush(f) != 0 || ferror(f)) | (fclose(f) != 0)) {
        cli_error("compile: --report %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes the report into a temporary file beside `path`, renamed over it. */
static int report_write_atomic(const char *path, const char *out,
                               const shard_accounting *a,
                               const compile_cost *c, const char *error)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    FILE *f = NULL;
    int fd = -1, bad;
    mode_t mask;

    if (!tmp) {
        cli_error("compile: --report %s: out of memory", path);
        return -1;
    }
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0 || !(f = fdopen(fd, "w"))) {
        cli_error("compile: --report %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return -1;
    }
    mask = umask(0); /* mkstemp makes it private: the umask decides */
    umask(mask);
    fchmod(fd, 0666 & ~mask);

    json_report(f, out, a, c, error);
    bad = fflush(f) != 0 || ferror(f) || fsync(fd) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        cli_error("compile: --report %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int compile_report_write(const char *path, const char *out,
                         const shard_accounting *a, const compile_cost *c,
                         const char *error)
{
    struct stat st;
    char *real;
    int rc;

    /* What is not a regular file (/dev/stdout, a pipe) is written, never
     * replaced; a symbolic link keeps pointing at the report. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return report_write_direct(path, out, a, c, error);
    real = realpath(path, NULL);
    rc = report_write_atomic(real ? real : path, out, a, c, error);
    free(real);
    return rc;
}
