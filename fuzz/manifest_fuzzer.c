/*
 * manifest_fuzzer.c - fuzzes the reader's own manifest.json parser
 * (libshard/dataset_manifest.c), which reads untrusted bytes from a
 * dataset directory.
 *
 * For each input the harness checks, and aborts when one fails:
 *   1. A failure is SHARD_ECORRUPT or SHARD_ENOMEM with a one-line message
 *      "byte N: why", N at most the input's size; a success lists entries.
 *   2. Every entry's path is LABEL/NAME: its label's directory, a name not
 *      starting with a dot and without another slash, NUL-free.
 *   3. Parsing is deterministic: a second parse gives the same entries.
 *   4. The entries written back out as a canonical manifest parse to the
 *      same entries.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failure(int rc, const char *err, size_t size)
{
    unsigned long long at;

    REQUIRE(rc == SHARD_ECORRUPT || rc == SHARD_ENOMEM);
    REQUIRE(!strchr(err, '\n'));
    if (rc == SHARD_ECORRUPT) {
        REQUIRE(sscanf(err, "byte %llu: ", &at) == 1);
        REQUIRE(at <= size);
    }
}

static void check_entry(const shard_manifest_entry *e)
{
    const char *dir = shard_label_name(e->label);
    size_t n = strlen(dir);

    REQUIRE(e->label >= 0 && e->label < SHARD_LABEL_COUNT);
    REQUIRE(strncmp(e->path, dir, n) == 0 && e->path[n] == '/');
    REQUIRE(e->path[n + 1] && e->path[n + 1] != '.');
    REQUIRE(!strchr(e->path + n + 1, '/'));
}

/* The entries as a manifest; NULL when out of memory. */
static char *rewrite(const shard_manifest_entry *e, size_t n, size_t *len)
{
    size_t cap = 64 + n * (6 * sizeof(e->path) + 200), at = 0;
    char *s = malloc(cap);

    if (!s)
        return NULL;
    at += (size_t)snprintf(s + at, cap - at, "{\"shards\": [");
    for (size_t i = 0; i < n; i++) {
        at += (size_t)snprintf(s + at, cap - at, "%s{\"path\": \"", i ? ","
                                                                      : "");
        for (const char *p = e[i].path; *p; p++)
            at += (size_t)snprintf(s + at, cap - at,
                                   (unsigned char)*p < 0x20 || *p == '"' ||
                                           *p == '\\'
                                       ? "\\u%04x"
                                       : "%c",
                                   (unsigned char)*p);
        at += (size_t)snprintf(s + at, cap - at,
                               "\", \"label\": \"%s\", \"records\": %llu, "
                               "\"checksum\": \"%016llx\"}",
                               shard_label_name(e[i].label),
                               (unsigned long long)e[i].records,
                               (unsigned long long)e[i].checksum);
    }
    at += (size_t)snprintf(s + at, cap - at, "]}");
    *len = at;
    return s;
}

static int same(const shard_manifest_entry *a, size_t na,
                const shard_manifest_entry *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].path, b[i].path) || a[i].label != b[i].label ||
            a[i].records != b[i].records || a[i].checksum != b[i].checksum)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shard_manifest_entry *e, *again, *back;
    size_t n, n2, n3, len;
    char err[SHARD_ERRMAX], *text;
    int rc = shard_manifest_parse((const char *)data, size, &e, &n, err);

    if (rc < 0) {
        check_failure(rc, err, size);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        check_entry(&e[i]);
    REQUIRE(shard_manifest_parse((const char *)data, size, &again, &n2,
                                 err) == 0);
    REQUIRE(same(e, n, again, n2));
    free(again);
    if ((text = rewrite(e, n, &len))) {
        REQUIRE(shard_manifest_parse(text, len, &back, &n3, err) == 0);
        REQUIRE(same(e, n, back, n3));
        free(back);
        free(text);
    }
    free(e);
    return 0;
}
