/*
 * cli.h - what the subcommands of `shard` share: an option table that
 * drives both parsing and --help, and diagnostics on stderr.
 */
#ifndef SHARD_CLI_H
#define SHARD_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "shard_compile.h"
#include "shard_reader.h"

/* Exit statuses. */
#define EXIT_OK 0
#define EXIT_FAIL 1   /* the command failed; a message says why */
#define EXIT_USAGE 2  /* bad command line */
#define EXIT_STRICT 3 /* --strict and an input row was invalid */

typedef enum {
    OPT_FLAG,   /* int, set to 1 */
    OPT_STRING, /* const char * */
    OPT_SIZE,   /* uint64_t, with optional K, M, G suffix */
    OPT_INT     /* int */
} cli_kind;

typedef struct {
    const char *name; /* long name, without the dashes */
    char short_name;  /* or 0 */
    cli_kind kind;
    void *target;
    const char *arg;  /* argument name in --help, or NULL for flags */
    const char *help;
} cli_option;

typedef struct {
    const char *name;    /* subcommand */
    const char *usage;   /* e.g. "INPUT... -o DIR" */
    const char *summary; /* one line */
    const cli_option *options;
    int min_operands; /* operands the command needs */
    int max_operands; /* at most; -1 for any number */
} cli_command;

/* Verbosity from -q / -v: 0 quiet, 1 normal, 2 verbose. */
extern int cli_verbosity;

/*
 * Parses argv[1..] (argv[0] is the subcommand) against cmd->options.
 * Operands are collected into *operands (allocated; free it on success)
 * and their count checked against the command's bounds.  Handles --help,
 * -q and -v.  Returns 0, 1 when help was printed, or -1 after printing a
 * usage error; on a non-zero return *operands is already freed.
 */
int cli_parse(const cli_command *cmd, int argc, char **argv,
              char ***operands, int *n_operands);

void cli_help(const cli_command *cmd, FILE *f);

/*
 * Flushes standard output.  Returns 0, or -1 after printing
 * "shard: WHAT: write to stdout failed: REASON" (a full disk, a closed
 * pipe).
 */
int cli_flush_stdout(const char *what);

/* "shard: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Prints the accounting as aligned lines: rows and reasons, records and
 * where they went, then records and tokens per label and the pairs.
 */
void cli_print_accounting(FILE *f, const shard_accounting *a);

/* One line: what `shard merge` dropped and recounted (merge and inspect). */
void cli_print_merge(FILE *f, const shard_merge_stats *st);

/*
 * Opens the dataset at `path` keeping what `label` selects (NULL: all;
 * see shard_select_parse) and a loader over it (`o` may be NULL).
 * Returns EXIT_OK, or EXIT_USAGE / EXIT_FAIL after printing "cmd: why".
 * Defined in cmd_cat.c, like the next one.
 */
int cli_open_loader(const char *cmd, const char *path, const char *label,
                    const shard_loader_options *o, shard_dataset **ds,
                    shard_loader **l);

/*
 * Writes every record the loader gives to `out`: JSON lines, or with
 * `tokens` the binary token stream of docs/FORMAT.md.  Returns an exit
 * status.
 */
int cli_write_records(FILE *out, shard_dataset *ds, shard_loader *l,
                      int tokens);

int cmd_compile(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_merge(int argc, char **argv);

#endif
