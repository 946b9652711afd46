/*
 * cmd_cat.c - shard cat DIR [--label L] [--jsonl]
 *
 * Prints records as JSON lines: context, response, label, reward and ids,
 * from the text section when the shard has one, else decoded from the
 * tokens (the context then comes back as one "prompt" message).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shard_compile.h"
#include "shard_reader.h"
#include "shard_tokenizer.h"

typedef struct {
    shard_tokenizer *tok; /* opened on first need */
    char *buf;
    size_t len, cap;
} decoder;

static void print_message(const char *role, size_t rl, const char *content,
                          size_t cl, int first)
{
    fputs(first ? "{\"role\": " : ", {\"role\": ", stdout);
    shard_json_write_string(stdout, role, rl);
    fputs(", \"content\": ", stdout);
    shard_json_write_string(stdout, content, cl);
    fputc('}', stdout);
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
        fputs("{\"context\": [", stdout);
        for (size_t i = 0; i + 1 < t.n_messages; i++)
            print_message(t.messages[i].role, t.messages[i].role_len,
                          t.messages[i].content, t.messages[i].content_len,
                          i == 0);
        fputs("], \"response\": ", stdout);
        shard_json_write_string(stdout, t.messages[t.n_messages - 1].content,
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
    fputs("{\"context\": [", stdout);
    if (d->len)
        print_message("prompt", 6, d->buf, d->len, 1);
    fputs("], \"response\": ", stdout);
    if ((rc = decode(d, r, rec, rec->prompt_len, rec->n_tokens)) < 0)
        return rc;
    shard_json_write_string(stdout, d->buf, d->len);
    return 0;
}

static int print_record(decoder *d, shard_reader *r, const shard_record *rec)
{
    int rc = print_body(d, r, rec);

    if (rc < 0)
        return rc;
    printf(", \"label\": \"%s\", \"reward\": ", shard_label_name(rec->label));
    if (isnan(rec->reward) || isinf(rec->reward))
        fputs("null", stdout);
    else
        printf("%.17g", rec->reward);
    printf(", \"prompt_id\": \"%016llx\", \"pair_id\": ",
           (unsigned long long)rec->prompt_id);
    if (rec->pair_id)
        printf("\"%016llx\"", (unsigned long long)rec->pair_id);
    else
        fputs("null", stdout);
    printf(", \"record_id\": \"%016llx\", \"n_tokens\": %zu, "
           "\"prompt_len\": %u}\n", (unsigned long long)rec->record_id,
           rec->n_tokens, rec->prompt_len);
    return 0;
}

int cmd_cat(int argc, char **argv)
{
    const char *label = NULL;
    int jsonl = 0, n, rc, lab = -1, status = EXIT_OK;
    cli_option opts[] = {
        {"label", 'l', OPT_STRING, &label, "L", "only pos, neg or unl"},
        {"jsonl", 0, OPT_FLAG, &jsonl, NULL, "JSON lines (the default)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"cat", "DIR|SHARD [--label L] [--jsonl]",
                       "Print records as JSON lines.", opts, 1, 1};
    decoder d = {0};
    shard_dataset *ds;
    char **paths;

    if ((rc = cli_parse(&cmd, argc, argv, &paths, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (label && (lab = shard_label_parse(label)) < 0) {
        cli_error("cat: unknown label \"%s\" (pos, neg or unl)", label);
        free(paths);
        return EXIT_USAGE;
    }
    if (shard_dataset_open(&ds, paths[0], lab, NULL) < 0) {
        cli_error("cat: %s", shard_last_error());
        free(paths);
        return EXIT_FAIL;
    }
    for (size_t k = 0; k < shard_dataset_shards(ds); k++) {
        shard_reader *r = shard_dataset_shard(ds, k);

        for (uint64_t i = 0; i < shard_reader_count(r); i++) {
            shard_record rec;

            if (shard_reader_get(r, i, &rec) < 0) {
                cli_error("cat: %s", shard_reader_errmsg(r));
                status = EXIT_FAIL;
                continue;
            }
            if ((lab < 0 || rec.label == lab) &&
                print_record(&d, r, &rec) < 0)
                status = EXIT_FAIL;
            shard_record_release(&rec);
        }
    }
    shard_dataset_close(ds);
    shard_tokenizer_close(d.tok);
    free(d.buf);
    free(paths);
    return status;
}
