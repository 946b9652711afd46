/*
 * cmd_compile.c - shard compile INPUT... -o DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "compile_report.h"
#include "dedup.h"
#include "shard_compile.h"

/* The progress line: drawn on a terminal only (`draw`), after the first
 * batch and then at most four times a second; `shown` says it is on
 * screen.  `bytes` follows the rows' JSON bytes for the summary. */
typedef struct {
    double start, last; /* of the sweep, of the last drawing */
    double keys_end;    /* of the last batch of the key sweep, or 0 */
    int sweep, shown, draw;
    uint64_t bytes;
} progress_line;

static void progress_clear(progress_line *pl)
{
    if (pl && pl->shown) {
        fputs("\r\033[K", stderr);
        pl->shown = 0;
    }
}

/* "42%, 1:05 left, " when the input sizes are known, else "". */
static void progress_eta(char *buf, size_t cap, const shard_progress *p,
                         double secs)
{
    double left;
    unsigned long s;

    buf[0] = 0;
    if (!p->in_total)
        return;
    if (!p->in_done) {
        snprintf(buf, cap, "0%%, ");
        return;
    }
    left = secs * (double)(p->in_total - p->in_done) / (double)p->in_done;
    s = (unsigned long)(left + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%.0f%%, %lu:%02lu:%02lu left, ",
                 100.0 * p->in_done / p->in_total, s / 3600, s / 60 % 60,
                 s % 60);
    else
        snprintf(buf, cap, "%.0f%%, %lu:%02lu left, ",
                 100.0 * p->in_done / p->in_total, s / 60, s % 60);
}

static void progress_draw(void *ctx, const shard_progress *p)
{
    progress_line *pl = ctx;
    double t = compile_clock(), secs;
    char eta[64];

    pl->bytes = p->bytes;
    if (p->sweep == 1)
        pl->keys_end = t;
    if (p->sweep != pl->sweep) {
        pl->sweep = p->sweep;
        pl->start = t;
    }
    secs = t - pl->start;
    if (!pl->draw || t - pl->last < 0.25 || secs <= 0)
        return;
    pl->last = t;
    progress_eta(eta, sizeof(eta), p, secs);
    fprintf(stderr, "\rshard: %s: sweep %d/2, %s%llu rows, %.0f rows/s, "
            "%.1f MB/s, %.2f M tokens/s, %llu kept, %llu dropped\033[K",
            p->sweep == 1 ? "dedup keys" : "writing", p->sweep, eta,
            (unsigned long long)p->rows, p->rows / secs,
            p->bytes / secs / 1e6, p->tokens / secs / 1e6,
            (unsigned long long)p->kept, (unsigned long long)p->dropped);
    fflush(stderr);
    pl->shown = 1;
}

static void log_to_stderr(void *ctx, shard_msg_level level, const char *msg)
{
    progress_clear(ctx);
    if (level == SHARD_MSG_ERROR)
        cli_error("%s", msg);
    else if (level == SHARD_MSG_WARNING)
        cli_warn("%s", msg);
    else if (level == SHARD_MSG_INFO || cli_verbosity >= 2)
        cli_warn("%s", msg);
}

/* Dedup option strings into `o`: 0, or -1 after saying what is wrong. */
static int dedup_options(shard_compile_options *o, const char *norm,
                         const char *conflicts, const char *near,
                         const char *scope)
{
    char *end;

    if ((o->normalize = shard_normalize_parse(norm)) < 0) {
        cli_error("compile: --normalize: unknown \"%s\" (ws, none, nfkc)",
                  norm);
        return -1;
    }
    if ((o->conflicts = shard_conflicts_parse(conflicts)) < 0) {
        cli_error("compile: --conflicts: unknown \"%s\" (drop, keep, neg, "
                  "pos)", conflicts);
        return -1;
    }
    o->near_dup = near ? strtod(near, &end) : 0.0;
    if (near && (*end || end == near || !(o->near_dup > 0.0) ||
                 o->near_dup > 1.0)) {
        cli_error("compile: --near-dup: \"%s\" is not in (0, 1]", near);
        return -1;
    }
    if (strcmp(scope, "group") && strcmp(scope, "stream")) {
        cli_error("compile: --near-dup-scope: unknown \"%s\" (group, "
                  "stream)", scope);
        return -1;
    }
    o->near_dup_scope = strcmp(scope, "stream") == 0;
    return 0;
}

int cmd_compile(int argc, char **argv)
{
    shard_compile_options o = SHARD_COMPILE_OPTIONS_INIT;
    const char *out = NULL, *codec = "zstd";
    const char *norm = "ws", *conflicts = "drop", *near = NULL;
    const char *scope = "group", *append = NULL;
    const char *report = NULL;
    int no_text = 0, no_progress = 0;
    progress_line pl = {0};
    compile_cost cost = {0};
    cli_option opts[] = {
        {"output", 'o', OPT_STRING, &out, "DIR", "dataset directory to write"},
        {"format", 'f', OPT_STRING, &o.format, "NAME",
         "input schema: auto (default, per file), canonical, hh-rlhf, "
         "kto, sharegpt-dpo, messages-pairs, oasst, verl, ultrafeedback, "
         "pku-saferlhf, arena, critique, map"},
        {"map", 0, OPT_STRING, &o.field_map, "T=PATH,...",
         "format map: prompt|context|system|response|label|reward=PATH"},
        {"label-rule", 0, OPT_STRING, &o.label_rule, "RULE",
         "format map: score to label, e.g. 'score>=7' or 's>=7;s<=3'"},
        {"tokenizer", 't', OPT_STRING, &o.tokenizer, "NAME|PATH",
         "tokenizer (default cl100k_base)"},
        {"template", 0, OPT_STRING, &o.template_name, "T",
         "chat template: none (default), hh, chatml, qwen, llama3"},
        {"hf-added-tokens", 0, OPT_FLAG, &o.hf_added_tokens, NULL,
         "special-token strings in text become tokens, as HF does"},
        {"codec", 0, OPT_STRING, &codec, "C", "token codec: zstd, none"},
        {"level", 0, OPT_INT, &o.zstd_level, "N", "zstd level (3)"},
        {"shard-size", 0, OPT_SIZE, &o.shard_size, "SIZE",
         "start a new shard past SIZE bytes (256M)"},
        {"frame-size", 0, OPT_SIZE, &o.frame_size, "SIZE",
         "raw token bytes per frame (512K)"},
        {"max-row-bytes", 0, OPT_SIZE, &o.max_line, "SIZE",
         "rows longer than SIZE are invalid (64M)"},
        {"no-text", 0, OPT_FLAG, &no_text, NULL,
         "do not store the original text"},
        {"strict", 0, OPT_FLAG, &o.strict, NULL,
         "fail (exit 3) on any invalid row"},
        {"keep-going", 0, OPT_FLAG, &o.keep_going, NULL,
         "report an unreadable or truncated input and go on"},
        {"force", 0, OPT_FLAG, &o.force, NULL,
         "replace a dataset already in DIR"},
        {"resume", 0, OPT_FLAG, &o.resume, NULL,
         "continue the compile interrupted in DIR (same inputs, options)"},
        {"normalize", 0, OPT_STRING, &norm, "MODE",
         "dedup key text: ws (default), none, nfkc"},
        {"conflicts", 0, OPT_STRING, &conflicts, "POLICY",
         "a key with several labels: drop (default), keep, neg, pos"},
        {"mem-limit", 0, OPT_SIZE, &o.mem_limit, "SIZE",
         "dedup table memory before it goes to disk (1G)"},
        {"near-dup", 0, OPT_STRING, &near, "J",
         "drop responses with MinHash Jaccard >= J to an earlier one"},
        {"near-dup-scope", 0, OPT_STRING, &scope, "S",
         "near duplicates within: group (label and prompt), stream"},
        {"near-dup-seed", 0, OPT_SIZE, &o.near_dup_seed, "N",
         "MinHash seed (1)"},
        {"append", 0, OPT_STRING, &append, "DIR",
         "add INPUT... to the dataset in DIR (instead of -o)"},
        {"no-progress", 0, OPT_FLAG, &no_progress, NULL,
         "no progress line on a terminal"},
        {"report", 0, OPT_STRING, &report, "FILE",
         "write the summary as JSON to FILE"},
        {"jobs", 'j', OPT_INT, &o.threads, "N",
         "worker threads (default: one per core); same output for any N"},
        {"mpi", 0, OPT_FLAG, &o.mpi, NULL,
         "run as one rank of an MPI job (under mpirun or srun)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"compile", "INPUT... -o DIR | --append DIR INPUT...",
                       "Compile feedback logs (files, directories of them, "
                       "or - for stdin) into a dataset.", opts, 1, -1};
    shard_accounting acct;
    char **inputs;
    int n, rc;
    double t0;

    if ((rc = cli_parse(&cmd, argc, argv, &inputs, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (append && out) {
        cli_error("compile: --append DIR and -o DIR exclude each other");
        free(inputs);
        return EXIT_USAGE;
    }
    if (append) {
        out = append;
        o.append = 1;
    }
    if (!out) {
        cli_error("compile: missing -o DIR");
        free(inputs);
        return EXIT_USAGE;
    }
    if (strcmp(codec, "zstd") && strcmp(codec, "none")) {
        cli_error("compile: unknown codec \"%s\"", codec);
        free(inputs);
        return EXIT_USAGE;
    }
    if (o.threads < 0 || o.threads > SHARD_MAX_THREADS) {
        cli_error("compile: -j: %d is not in 1..%d (0: one per core)",
                  o.threads, SHARD_MAX_THREADS);
        free(inputs);
        return EXIT_USAGE;
    }
    o.codec = strcmp(codec, "zstd") == 0 ? SHARD_CODEC_ZSTD
                                         : SHARD_CODEC_NONE;
    o.with_text = !no_text;
    o.log = log_to_stderr;
    o.log_ctx = &pl;
    o.progress = progress_draw;
    o.progress_ctx = &pl;
    pl.draw = !no_progress && cli_verbosity >= 1 && isatty(STDERR_FILENO);
    if (dedup_options(&o, norm, conflicts, near, scope) < 0) {
        free(inputs);
        return EXIT_USAGE;
    }

    t0 = pl.start = compile_clock(); /* pl.last 0: the first batch is drawn */
    rc = shard_compile((const char *const *)inputs, (size_t)n, out, &o,
                       &acct);
    progress_clear(&pl);
    free(inputs);
    compile_cost_measure(&cost, t0);
    cost.bytes = pl.bytes;
    cost.keys = pl.keys_end > 0 ? pl.keys_end - t0 : 0;
    cost.jobs = compile_jobs(o.threads);
    /* Under --mpi every rank knows the outcome; rank 0 tells it. */
    if (shard_compile_rank() != 0)
        return rc == SHARD_EINPUT && o.strict ? EXIT_STRICT
               : rc < 0                      ? EXIT_FAIL
                                             : EXIT_OK;
    if (rc < 0) {
        cli_error("compile: %s", shard_last_error());
        if (report)
            compile_report_write(report, out, &acct, &cost,
                                 shard_last_error());
        return rc == SHARD_EINPUT && o.strict ? EXIT_STRICT : EXIT_FAIL;
    }
    compile_summary_print(&acct, out, &cost);
    if (report && compile_report_write(report, out, &acct, &cost, NULL) < 0)
        return EXIT_FAIL;
    return EXIT_OK;
}
