/*
 * cmd_cat.c - shard cat DIR [--label SEL] [--format jsonl|tokens]
 *             [--shuffle] [--seed N] [--epoch N] [--rank R --world W]
 *
 * Writes records to stdout, in dataset order or shuffled as a loader
 * would give them.  jsonl: context, response, label, reward and ids, from
 * the text section when the shard has one, else decoded from the tokens
 * (the context then comes back as one "prompt" message).  tokens: the
 * binary token stream of docs/FORMAT.md ("Token stream"), for a trainer
 * reading a pipe with no library.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

#include "cli.h"
#include "shard_compile.h"
#include "shard_reader.h"
#include "shard_tokenizer.h"

typedef struct {
    FILE *out;
    shard_tokenizer *tok; /* opened on first need */
    char *buf;
    size_t len, cap;
} decoder;

static void print_message(FILE *out, const char *role, size_t rl,
                          const char *content, size_t cl, int first)
{
    fputs(first ? "{\"role\": " : ", {\"role\": ", out);
    shard_json_write_string(out, role, rl);
    fputs(", \"content\": ", out);
    shard_json_write_string(out, content, cl);
    fputc('}', out);
}

/* Decodes tokens [from, to) of rec into d->buf. */
static int decode(decoder *d, shard_reader *r, const shard_record *rec,
                  size_t from, size_t to)
{
    uint32_t *ids = malloc((to - from + 1) * sizeof(*ids));
    int rc;

    if (!ids)
        return SHARD_ENOMEM;
    if (!d->tok &&
        shard_tokenizer_open(&d->tok, shard_reader_info(r)->tokenizer) < 0) {
        free(ids);
        cli_error("cat: %s", shard_last_error());
        return SHARD_ENOTFOUND;
    }
    for (size_t i = from; i < to; i++)
        ids[i - from] = shard_record_token(rec, i);
    d->len = 0;
    rc = shard_tokenizer_decode(d->tok, ids, to - from, &d->buf, &d->len,
                                &d->cap);
    free(ids);
    return rc;
}

static int print_body(decoder *d, shard_reader *r, const shard_record *rec)
{
    shard_text t;
    int rc;

    rc = shard_reader_text(r, rec->index, &t);
    if (rc == 0 && t.n_messages > 0) {
        fputs("{\"context\": [", d->out);
        for (size_t i = 0; i + 1 < t.n_messages; i++)
            print_message(d->out, t.messages[i].role,
                          t.messages[i].role_len, t.messages[i].content,
                          t.messages[i].content_len, i == 0);
        fputs("], \"response\": ", d->out);
        shard_json_write_string(d->out, t.messages[t.n_messages - 1].content,
                                t.messages[t.n_messages - 1].content_len);
        shard_text_free(&t);
        return 0;
    }
    if (rc != SHARD_ENOTFOUND) {
        cli_error("cat: %s", shard_reader_errmsg(r));
        return rc < 0 ? rc : SHARD_ECORRUPT;
    }
    if ((rc = decode(d, r, rec, 0, rec->prompt_len)) < 0)
        return rc;
    fputs("{\"context\": [", d->out);
    if (d->len)
        print_message(d->out, "prompt", 6, d->buf, d->len, 1);
    fputs("], \"response\": ", d->out);
    if ((rc = decode(d, r, rec, rec->prompt_len, rec->n_tokens)) < 0)
        return rc;
    shard_json_write_string(d->out, d->buf, d->len);
    return 0;
}

static int print_record(decoder *d, shard_reader *r, const shard_record *rec)
{
    int rc = print_body(d, r, rec);

    if (rc < 0)
        return rc;
    fprintf(d->out, ", \"label\": \"%s\", \"reward\": ",
            shard_label_name(rec->label));
    if (isnan(rec->reward) || isinf(rec->reward))
        fputs("null", d->out);
    else
        fprintf(d->out, "%.17g", rec->reward);
    fprintf(d->out, ", \"prompt_id\": \"%016llx\", \"pair_id\": ",
            (unsigned long long)rec->prompt_id);
    if (rec->pair_id)
        fprintf(d->out, "\"%016llx\"", (unsigned long long)rec->pair_id);
    else
        fputs("null", d->out);
    fprintf(d->out, ", \"record_id\": \"%016llx\", \"n_tokens\": %zu, "
            "\"prompt_len\": %u}\n", (unsigned long long)rec->record_id,
            rec->n_tokens, rec->prompt_len);
    return 0;
}

/* The token stream (docs/FORMAT.md): magic, then records, then a trailer. */
#define TOKSTREAM_MAGIC "\x89STK\r\n\x1a\n"
#define TOKSTREAM_END 0xffffffffu

static void put_stream_header(FILE *out)
{
    unsigned char h[16] = {0};

    memcpy(h, TOKSTREAM_MAGIC, 8);
    shard_put32(h + 8, 1);  /* version */
    shard_put32(h + 12, 4); /* bytes per token */
    fwrite(h, 1, sizeof(h), out);
}

static void put_record_header(FILE *out, uint32_t n, uint32_t prompt_len,
                              int label, uint64_t pair_id,
                              uint64_t record_id)
{
    unsigned char h[32] = {0};

    shard_put32(h, n);
    shard_put32(h + 4, prompt_len);
    h[8] = (unsigned char)label;
    shard_put64(h + 16, pair_id);
    shard_put64(h + 24, record_id);
    fwrite(h, 1, sizeof(h), out);
}

static void put_tokens(FILE *out, const shard_record *rec)
{
    uint32_t buf[1024];

    put_record_header(out, (uint32_t)rec->n_tokens, rec->prompt_len, rec->label,
                      rec->pair_id, rec->record_id);
    if (rec->dtype == 4) {
        fwrite(rec->tokens, 4, rec->n_tokens, out);
        return;
    }
    for (size_t i = 0; i < rec->n_tokens; i += 1024) {
        size_t n = rec->n_tokens - i < 1024 ? rec->n_tokens - i : 1024;

        for (size_t k = 0; k < n; k++)
            buf[k] = shard_record_token(rec, i + k);
        fwrite(buf, 4, n, out);
    }
}

typedef struct {
    const char *label, *format;
    int jsonl, shuffle, rank, world;
    uint64_t seed, epoch;
} cat_args;

static int parse_cat(int argc, char **argv, cat_args *a, char ***paths)
{
    int n, rc;
    cli_option opts[] = {
        {"label", 'l', OPT_STRING, &a->label, "SEL",
         "pos, neg, unl, both, all (default) or pairs"},
        {"format", 0, OPT_STRING, &a->format, "F",
         "jsonl (default) or tokens (binary stream)"},
        {"jsonl", 0, OPT_FLAG, &a->jsonl, NULL, "same as --format jsonl"},
        {"shuffle", 0, OPT_FLAG, &a->shuffle, NULL,
         "the loader's shuffled order (frames, then windows)"},
        {"seed", 0, OPT_SIZE, &a->seed, "N", "shuffle seed (0)"},
        {"epoch", 0, OPT_SIZE, &a->epoch, "N", "shuffle epoch (0)"},
        {"rank", 0, OPT_INT, &a->rank, "R",
         "write partition R of --world (0)"},
        {"world", 0, OPT_INT, &a->world, "W",
         "partitions: disjoint, covering, in order (1)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"cat", "DIR|SHARD [--label SEL] [--format F]",
                       "Write records to stdout as JSON lines or as a "
                       "binary token stream.", opts, 1, 1};

    if ((rc = cli_parse(&cmd, argc, argv, paths, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a->jsonl)
        a->format = a->format ? a->format : "jsonl";
    if (!a->format)
        a->format = "jsonl";
    if (strcmp(a->format, "jsonl") && strcmp(a->format, "tokens")) {
        cli_error("cat: unknown format \"%s\" (jsonl or tokens)", a->format);
        free(*paths);
        return EXIT_USAGE;
    }
    return -1;
}

int cli_write_records(FILE *out, shard_dataset *ds, shard_loader *l,
                      int tokens)
{
    decoder d = {out, NULL, NULL, 0, 0};
    uint64_t count = 0, local;
    int rc, status = EXIT_OK;
    shard_record rec;

    if (tokens)
        put_stream_header(out);
    while ((rc = shard_loader_next(l, &rec)) != 0) {
        if (rc < 0) {
            cli_error("cat: %s", shard_loader_errmsg(l));
            status = EXIT_FAIL;
            break;
        }
        shard_reader *r = shard_dataset_reader_of(ds, shard_loader_last(l),
                                                  &local);
        if (tokens)
            put_tokens(out, &rec);
        else if (print_record(&d, r, &rec) < 0)
            status = EXIT_FAIL;
        count++;
        shard_record_release(&rec);
    }
    if (tokens) /* the trailer: a truncated pipe is detectable */
        put_record_header(out, TOKSTREAM_END, 0, 0, 0, count);
    shard_tokenizer_close(d.tok);
    free(d.buf);
    if ((fflush(out) != 0 || ferror(out)) && status == EXIT_OK) {
        cli_error("write error: %s", strerror(errno));
        status = EXIT_FAIL;
    }
    return status;
}

int cli_open_loader(const char *cmd, const char *path, const char *label,
                    const shard_loader_options *o, shard_dataset **ds,
                    shard_loader **l)
{
    shard_dataset_options dopt = SHARD_DATASET_OPTIONS_INIT;

    if (label && shard_select_parse(label, &dopt.select) < 0) {
        cli_error("%s: unknown label \"%s\" (pos, neg, unl, both, all or "
                  "pairs)", cmd, label);
        return EXIT_USAGE;
    }
    if (shard_dataset_open_with(ds, path, &dopt) < 0) {
        cli_error("%s: %s", cmd, shard_last_error());
        return EXIT_FAIL;
    }
    if (shard_loader_open(l, *ds, o) < 0) {
        cli_error("%s: %s", cmd, shard_last_error());
        shard_dataset_close(*ds);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_cat(int argc, char **argv)
{
    cat_args a = {NULL, NULL, 0, 0, 0, 1, 0, 0};
    shard_loader_options lopt = SHARD_LOADER_OPTIONS_INIT;
    shard_dataset *ds;
    shard_loader *l;
    char **paths;
    int rc;

    if ((rc = parse_cat(argc, argv, &a, &paths)) >= 0)
        return rc;
    lopt.shuffle = a.shuffle;
    lopt.seed = a.seed;
    lopt.readahead = 1;
    lopt.rank = (uint32_t)a.rank;
    lopt.world = (uint32_t)a.world;
    if (a.rank < 0 || a.world < 1 || a.rank >= a.world) {
        cli_error("cat: --rank %d of --world %d: need 0 <= rank < world",
                  a.rank, a.world);
        free(paths);
        return EXIT_USAGE;
    }
    rc = cli_open_loader("cat", paths[0], a.label, &lopt, &ds, &l);
    if (rc == EXIT_OK && a.epoch) {
        shard_loader_state st = {a.seed, a.epoch, 0};

        shard_loader_seek(l, &st);
    }
    if (rc == EXIT_OK) {
        rc = cli_write_records(stdout, ds, l, !strcmp(a.format, "tokens"));
        shard_loader_close(l);
        shard_dataset_close(ds);
    }
    free(paths);
    return rc;
}
