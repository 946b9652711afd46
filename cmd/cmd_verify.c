/*
 * cmd_verify.c - shard verify DIR|SHARD...
 *
 * Checks every byte of every shard (header, body and section checksums,
 * every frame, padding) and that each shard is the one the manifest lists.
 * Exits 0 only when everything holds.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "shard_compile.h"
#include "shard_reader.h"

static void print_problem(void *ctx, const char *msg)
{
    cli_error("verify: %s", msg);
}

/* Compares the shard's header with its manifest entry. */
static int check_listed(const char *path, const shard_manifest_shard *s)
{
    shard_reader *r;
    const shard_info *in;
    int bad = 0;

    if (shard_reader_open(&r, path, NULL) < 0)
        return 0; /* already reported by shard_verify_file */
    in = shard_reader_info(r);
    if (in->checksum != s->checksum || in->records != s->records ||
        in->file_size != s->bytes || in->label != s->label) {
        cli_error("verify: %s: differs from its manifest entry "
                  "(checksum, records, size or label)", path);
        bad = 1;
    }
    shard_reader_close(r);
    return bad;
}

static int verify_dataset(const char *dir, size_t *shards)
{
    shard_manifest m;
    char path[4400];
    int problems = 0;

    if (shard_manifest_read(dir, &m) < 0) {
        cli_error("verify: %s", shard_last_error());
        return 1;
    }
    for (size_t i = 0; i < m.n_shards; i++) {
        int n;

        snprintf(path, sizeof(path), "%s/%s", dir, m.shards[i].path);
        n = shard_verify_file(path, print_problem, NULL);
        problems += n < 0 ? 1 : n;
        if (n == 0)
            problems += check_listed(path, &m.shards[i]);
    }
    *shards += m.n_shards;
    shard_manifest_free(&m);
    return problems;
}

int cmd_verify(int argc, char **argv)
{
    cli_option opts[] = {{NULL, 0, 0, NULL, NULL, NULL}};
    cli_command cmd = {"verify", "DIR|SHARD...",
                       "Check every checksum of datasets or shard files.",
                       opts, 1, -1};
    char **paths;
    size_t shards = 0;
    int n, rc, problems = 0;

    if ((rc = cli_parse(&cmd, argc, argv, &paths, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    for (int i = 0; i < n; i++) {
        struct stat st;

        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            problems += verify_dataset(paths[i], &shards);
        } else {
            int k = shard_verify_file(paths[i], print_problem, NULL);

            problems += k < 0 ? 1 : k;
            shards++;
        }
    }
    if (cli_verbosity >= 1)
        printf("%zu shards verified, %d problem%s\n", shards, problems,
               problems == 1 ? "" : "s");
    free(paths);
    return problems ? EXIT_FAIL : EXIT_OK;
}
