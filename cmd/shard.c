/*
 * shard.c - the `shard` command: dispatches to one cmd_<verb>.c each.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "shard_common.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"compile", cmd_compile, "compile feedback logs into a dataset"},
    {"inspect", cmd_inspect, "summarise a dataset"},
    {"verify", cmd_verify, "check every checksum of a dataset or shard"},
    {"cat", cmd_cat, "write records as JSON lines or a token stream"},
    {"export", cmd_export, "export to Megatron .bin/.idx or JSON lines"},
    {"tokenize", cmd_tokenize, "tokenize text or decode ids"},
    {"merge", cmd_merge, "join datasets compiled separately"},
};

static void usage(FILE *f)
{
    fputs("usage: shard COMMAND [OPTIONS] [ARGS]\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'shard COMMAND --help' describes a command; man shard(1) all "
          "of them.\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("shard %s\n", SHARD_VERSION_STRING);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command \"%s\" (see shard --help)", argv[1]);
    return EXIT_USAGE;
}
