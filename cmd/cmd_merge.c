/*
 * cmd_merge.c - shard merge DIR... -o OUT [--dedup] [--conflicts POLICY]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dedup.h"
#include "shard_merge.h"

static void log_to_stderr(void *ctx, shard_msg_level level, const char *msg)
{
    if (level == SHARD_MSG_ERROR)
        cli_error("%s", msg);
    else if (level != SHARD_MSG_DETAIL || cli_verbosity >= 2)
        cli_warn("%s", msg);
}

/* What the merge did, then OUT's accounting. */
static void summary(const char *out, const shard_accounting *a,
                    const shard_merge_stats *st)
{
    if (cli_verbosity < 1)
        return;
    fprintf(stderr, "shard: merged %llu dataset%s into %s: %llu shard "
            "files linked, %llu copied\n", (unsigned long long)st->datasets,
            st->datasets == 1 ? "" : "s", out,
            (unsigned long long)st->linked,
            (unsigned long long)st->copied);
    if (st->dedup)
        cli_print_merge(stderr, st);
    cli_print_accounting(stderr, a);
}

int cmd_merge(int argc, char **argv)
{
    shard_merge_options o = SHARD_MERGE_OPTIONS_INIT;
    const char *out = NULL, *conflicts = NULL;
    cli_option opts[] = {
        {"output", 'o', OPT_STRING, &out, "DIR",
         "dataset directory to write (new or empty)"},
        {"dedup", 0, OPT_FLAG, &o.dedup, NULL,
         "drop what one compile over every input would (tombstones)"},
        {"conflicts", 0, OPT_STRING, &conflicts, "POLICY",
         "with --dedup: the inputs' policy, checked (drop, keep, neg, "
         "pos)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"merge", "DIR... -o OUT [--dedup]",
                       "Join datasets compiled separately into one, over "
                       "their shard files.", opts, 1, -1};
    shard_accounting acct;
    shard_merge_stats st;
    char **dirs;
    int n, rc;

    if ((rc = cli_parse(&cmd, argc, argv, &dirs, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (!out || (conflicts &&
                 (o.conflicts = shard_conflicts_parse(conflicts)) < 0)) {
        if (out)
            cli_error("merge: --conflicts: unknown \"%s\" (drop, keep, "
                      "neg, pos)", conflicts);
        else
            cli_error("merge: missing -o DIR");
        free(dirs);
        return EXIT_USAGE;
    }
    o.log = log_to_stderr;
    rc = shard_merge((const char *const *)dirs, (size_t)n, out, &o, &acct,
                     &st);
    free(dirs);
    if (rc < 0) {
        cli_error("merge: %s", shard_last_error());
        return EXIT_FAIL;
    }
    summary(out, &acct, &st);
    return EXIT_OK;
}
