/*
 * cli.c - option parsing and diagnostics for the subcommands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shard_compile.h"

int cli_verbosity = 1;

void cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("shard: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;

    if (cli_verbosity < 1)
        return;
    fputs("shard: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_help(const cli_command *cmd, FILE *f)
{
    fprintf(f, "usage: shard %s %s\n\n%s\n\noptions:\n", cmd->name,
            cmd->usage, cmd->summary);
    for (const cli_option *o = cmd->options; o && o->name; o++) {
        char left[64];

        snprintf(left, sizeof(left), "%s%c%s--%s%s%s",
                 o->short_name ? "-" : "", o->short_name ? o->short_name : ' ',
                 o->short_name ? ", " : "  ", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        fprintf(f, "  %-28s %s\n", o->short_name ? left : left + 2, o->help);
    }
    fprintf(f, "  %-28s %s\n  %-28s %s\n  %-28s %s\n", "-q, --quiet",
            "print errors only", "-v, --verbose", "print more",
            "-h, --help", "show this help");
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int set_value(const cli_command *cmd, const cli_option *o,
                     const char *value)
{
    char *end;

    switch (o->kind) {
    case OPT_FLAG:
        *(int *)o->target = 1;
        return 0;
    case OPT_STRING:
        *(const char **)o->target = value;
        return 0;
    case OPT_SIZE:
        if (parse_size(value, (uint64_t *)o->target) == 0)
            return 0;
        break;
    case OPT_INT:
        *(int *)o->target = (int)strtol(value, &end, 10);
        if (*value && !*end)
            return 0;
        break;
    }
    cli_error("%s: --%s: bad value \"%s\"", cmd->name, o->name, value);
    return -1;
}

static const cli_option *find(const cli_command *cmd, const char *name,
                              size_t len, char short_name)
{
    for (const cli_option *o = cmd->options; o && o->name; o++)
        if (short_name ? o->short_name == short_name
                       : strlen(o->name) == len &&
                             strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* Handles one option at argv[*i]; returns 0, 1 (help) or -1. */
static int parse_one(const cli_command *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *value = NULL, *eq;
    const cli_option *o;

    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        cli_help(cmd, stdout);
        return 1;
    }
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
        cli_verbosity = 0;
        return 0;
    }
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        cli_verbosity = 2;
        return 0;
    }
    if (a[1] == '-') {
        eq = strchr(a + 2, '=');
        o = find(cmd, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2), 0);
        value = eq ? eq + 1 : NULL;
    } else { /* -x, or -xVALUE for an option that takes one */
        o = find(cmd, NULL, 0, a[1]);
        if (o && a[2] && o->kind == OPT_FLAG)
            o = NULL;
        value = o && a[2] ? a + 2 : NULL;
    }
    if (!o) {
        cli_error("%s: unknown option %s (see shard %s --help)", cmd->name,
                  a, cmd->name);
        return -1;
    }
    if (o->kind != OPT_FLAG && !value) {
        if (*i + 1 >= argc) {
            cli_error("%s: %s needs a value", cmd->name, a);
            return -1;
        }
        value = argv[++*i];
    }
    return set_value(cmd, o, value);
}

static int parse_args(const cli_command *cmd, int argc, char **argv,
                      char **operands, int *n_operands)
{
    int only_operands = 0, rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (only_operands || a[0] != '-' || !strcmp(a, "-")) {
            operands[(*n_operands)++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            only_operands = 1;
            continue;
        }
        if ((rc = parse_one(cmd, argc, argv, &i)) != 0)
            return rc;
    }
    if (*n_operands < cmd->min_operands ||
        (cmd->max_operands >= 0 && *n_operands > cmd->max_operands)) {
        cli_error("%s: expected %s (see shard %s --help)", cmd->name,
                  cmd->usage, cmd->name);
        return -1;
    }
    return 0;
}

int cli_parse(const cli_command *cmd, int argc, char **argv,
              char ***operands, int *n_operands)
{
    int rc;

    *n_operands = 0;
    *operands = calloc((size_t)argc + 1, sizeof(char *));
    if (!*operands) {
        cli_error("out of memory");
        return -1;
    }
    if ((rc = parse_args(cmd, argc, argv, *operands, n_operands)) != 0) {
        free(*operands);
        *operands = NULL;
    }
    return rc;
}

void cli_print_accounting(FILE *f, const shard_accounting *a)
{
    fprintf(f, "  rows     %llu read, %llu invalid\n",
            (unsigned long long)a->rows_read,
            (unsigned long long)a->rows_invalid);
    for (int r = 0; r < SHARD_REASONS; r++)
        if (a->invalid_by_reason[r])
            fprintf(f, "    %-16s %llu\n", shard_reason_label(r),
                    (unsigned long long)a->invalid_by_reason[r]);
    fprintf(f, "  records  %llu: kept %llu, duplicate %llu, "
            "near-duplicate %llu, conflict %llu\n",
            (unsigned long long)a->records, (unsigned long long)a->kept,
            (unsigned long long)a->duplicate,
            (unsigned long long)a->near_duplicate,
            (unsigned long long)a->conflict);
    for (int l = 1; l <= SHARD_LABEL_COUNT; l++) {
        int label = l % SHARD_LABEL_COUNT; /* pos, neg, unl */

        fprintf(f, "  %s      %llu records, %llu tokens\n",
                shard_label_name(label),
                (unsigned long long)a->kept_by_label[label],
                (unsigned long long)a->tokens_by_label[label]);
    }
    fprintf(f, "  pairs    %llu", (unsigned long long)a->pairs);
    if (a->pairs_duplicate || a->pairs_dropped)
        fprintf(f, " (%llu duplicate, %llu dropped with a record)",
                (unsigned long long)a->pairs_duplicate,
                (unsigned long long)a->pairs_dropped);
    fputc('\n', f);
    if (a->near_candidates || a->near_duplicate)
        fprintf(f, "  near-dup %llu candidates, %llu dropped\n",
                (unsigned long long)a->near_candidates,
                (unsigned long long)a->near_duplicate);
    if (a->special_text)
        fprintf(f, "  special  %llu records hold special-token text\n",
                (unsigned long long)a->special_text);
}

int cli_flush_stdout(const char *what)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    cli_error("%s: write to stdout failed: %s", what,
              strerror(errno ? errno : EIO));
    return -1;
}

void cli_print_merge(FILE *f, const shard_merge_stats *st)
{
    fprintf(f, "merged     %llu datasets (dedup %s): dropped %llu "
            "duplicate, %llu conflict, %llu conflicts recounted as "
            "duplicates; pairs: %llu duplicate, %llu dropped, %llu "
            "recounted\n", (unsigned long long)st->datasets,
            st->dedup ? "on" : "off", (unsigned long long)st->duplicate,
            (unsigned long long)st->conflict,
            (unsigned long long)st->recounted,
            (unsigned long long)st->pairs_duplicate,
            (unsigned long long)st->pairs_dropped,
            (unsigned long long)st->pairs_recounted);
}
