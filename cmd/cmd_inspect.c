/*
 * cmd_inspect.c - shard inspect DIR [--json]
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shard_compile.h"
#include "shard_pairs.h"

/*
 * Rows in DIR's pairs table, read from the table itself (so its header
 * and checksums are checked); -1 when the dataset has none or it is bad.
 */
static long long pairs_table_rows(const char *dir)
{
    char path[4400];
    shard_pairs *t;
    long long n;

    snprintf(path, sizeof(path), "%s/%s", dir, SHARD_PAIRS_PATH);
    if (shard_pairs_open(&t, path) < 0) {
        cli_warn("inspect: %s", shard_last_error());
        return -1;
    }
    n = (long long)shard_pairs_count(t);
    shard_pairs_close(t);
    return n;
}

/* What `shard merge` did, for a dataset it wrote, as a JSON member. */
static void print_merge_json(const shard_manifest *m)
{
    const shard_merge_stats *st = &m->merge;

    if (!m->merged)
        return;
    printf("\"merge\": {\"datasets\": %llu, \"dedup\": %s, "
           "\"duplicate\": %llu, \"conflict\": %llu, "
           "\"recounted\": %llu, \"pairs_duplicate\": %llu, "
           "\"pairs_dropped\": %llu, \"pairs_recounted\": %llu}, ",
           (unsigned long long)st->datasets, st->dedup ? "true" : "false",
           (unsigned long long)st->duplicate,
           (unsigned long long)st->conflict,
           (unsigned long long)st->recounted,
           (unsigned long long)st->pairs_duplicate,
           (unsigned long long)st->pairs_dropped,
           (unsigned long long)st->pairs_recounted);
}

static void print_json(const char *dir, const shard_manifest *m)
{
    const shard_accounting *a = &m->acct;

    printf("{\"records\": {\"pos\": %llu, \"neg\": %llu, \"unl\": %llu}, ",
           (unsigned long long)a->kept_by_label[SHARD_LABEL_POS],
           (unsigned long long)a->kept_by_label[SHARD_LABEL_NEG],
           (unsigned long long)a->kept_by_label[SHARD_LABEL_UNL]);
    printf("\"tokens\": {\"pos\": %llu, \"neg\": %llu, \"unl\": %llu}, ",
           (unsigned long long)a->tokens_by_label[SHARD_LABEL_POS],
           (unsigned long long)a->tokens_by_label[SHARD_LABEL_NEG],
           (unsigned long long)a->tokens_by_label[SHARD_LABEL_UNL]);
    printf("\"accounting\": {\"rows_read\": %llu, \"rows_invalid\": %llu, "
           "\"invalid_by_reason\": {",
           (unsigned long long)a->rows_read,
           (unsigned long long)a->rows_invalid);
    for (int r = 0; r < SHARD_REASONS; r++)
        printf("%s\"%s\": %llu", r ? ", " : "", shard_reason_label(r),
               (unsigned long long)a->invalid_by_reason[r]);
    printf("}, \"records\": %llu, \"kept\": %llu, \"duplicate\": %llu, "
           "\"near_duplicate\": %llu, \"conflict\": %llu}, ",
           (unsigned long long)a->records, (unsigned long long)a->kept,
           (unsigned long long)a->duplicate,
           (unsigned long long)a->near_duplicate,
           (unsigned long long)a->conflict);
    printf("\"pairs\": %llu, \"pairs_table\": {\"path\": \"%s\", "
           "\"rows\": %lld}, ", (unsigned long long)a->pairs,
           SHARD_PAIRS_PATH, pairs_table_rows(dir));
    print_merge_json(m);
    printf("\"schema\": ");
    shard_json_write_string(stdout, m->schema, strlen(m->schema));
    printf(", \"tokenizer\": {\"name\": ");
    shard_json_write_string(stdout, m->tokenizer, strlen(m->tokenizer));
    printf(", \"vocab_size\": %u, \"hash\": \"%016llx\", \"template\": ",
           m->vocab_size, (unsigned long long)m->tokenizer_hash);
    shard_json_write_string(stdout, m->template_name,
                            strlen(m->template_name));
    printf("}, \"shards\": [");
    for (size_t i = 0; i < m->n_shards; i++) {
        const shard_manifest_shard *s = &m->shards[i];

        printf("%s{\"path\": ", i ? ", " : "");
        shard_json_write_string(stdout, s->path, strlen(s->path));
        printf(", \"label\": \"%s\", \"records\": %llu, \"tokens\": %llu, "
               "\"bytes\": %llu, \"checksum\": \"%016llx\"}",
               shard_label_name(s->label), (unsigned long long)s->records,
               (unsigned long long)s->tokens, (unsigned long long)s->bytes,
               (unsigned long long)s->checksum);
    }
    printf("]}\n");
}

static void print_text(const char *dir, const shard_manifest *m)
{
    uint64_t bytes = 0;

    for (size_t i = 0; i < m->n_shards; i++)
        bytes += m->shards[i].bytes;
    printf("dataset    %s\nschema     %s\ntokenizer  %s (vocabulary %u, "
           "template %s)\nshards     %zu, %.1f MB\n", dir, m->schema,
           m->tokenizer, m->vocab_size, m->template_name, m->n_shards,
           bytes / 1e6);
    if (m->merged)
        cli_print_merge(stdout, &m->merge);
    cli_print_accounting(stdout, &m->acct);
    printf("pairs table %s: %lld rows\n", SHARD_PAIRS_PATH,
           pairs_table_rows(dir));
}

int cmd_inspect(int argc, char **argv)
{
    int json = 0, n, rc;
    cli_option opts[] = {
        {"json", 0, OPT_FLAG, &json, NULL, "print one JSON object"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"inspect", "DIR [--json]",
                       "Summarise a dataset: records, tokens, accounting "
                       "and shards, from its manifest.", opts, 1, 1};
    shard_manifest m;
    char **dirs;

    if ((rc = cli_parse(&cmd, argc, argv, &dirs, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (shard_manifest_read(dirs[0], &m) < 0) {
        cli_error("inspect: %s", shard_last_error());
        free(dirs);
        return EXIT_FAIL;
    }
    if (json)
        print_json(dirs[0], &m);
    else
        print_text(dirs[0], &m);
    shard_manifest_free(&m);
    free(dirs);
    return cli_flush_stdout("inspect") < 0 ? EXIT_FAIL : EXIT_OK;
}
