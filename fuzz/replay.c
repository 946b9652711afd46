/*
 * replay.c - runs a libFuzzer harness over saved inputs, without libFuzzer.
 *
 *     replay FILE|DIR...
 *
 * Each FILE is passed to LLVMFuzzerTestOneInput once; a DIR stands for the
 * regular files directly inside it, in byte order of their names (not
 * recursive).  Every input gets its own heap buffer of exactly its size, so
 * a harness that reads past the end is caught by the sanitizers as it would
 * be under libFuzzer.  A harness signals a finding by crashing or aborting;
 * this driver only reports the count.  Exits 1 when an input could not be
 * read (the others still run), 2 on a usage error, 0 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional in a harness; null here when it does not define one. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads the whole file; returns 0, or -1 with errno set. */
static int read_input(const char *path, uint8_t **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL, *grown;
    size_t len = 0, cap = 0, n;
    int saved;

    if (!f)
        return -1;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            grown = realloc(buf, cap);
            if (!grown) {
                errno = ENOMEM;
                goto fail;
            }
            buf = grown;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        errno = EIO;
        goto fail;
    }
    fclose(f);

    /* Exactly len bytes, so a harness over-read hits the heap redzone. */
    *out = malloc(len ? len : 1);
    if (!*out) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    memcpy(*out, buf, len);
    free(buf);
    *outlen = len;
    return 0;

fail:
    saved = errno;
    free(buf);
    fclose(f);
    errno = saved;
    return -1;
}

/* Replays one file; returns 0, or -1 after reporting why it was unread. */
static int replay_file(const char *path)
{
    uint8_t *data;
    size_t len;

    if (read_input(path, &data, &len) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the paths of the regular files in dir, sorted by name. */
static int list_dir(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, **grown;
    size_t n = 0, cap = 0;
    struct stat st;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);

        if (!path)
            goto nomem;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(names, cap * sizeof(*names));
            if (!grown) {
                free(path);
                goto nomem;
            }
            names = grown;
        }
        names[n++] = path;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), compare_names);
    *out = names;
    *count = n;
    return 0;

nomem:
    while (n > 0)
        free(names[--n]);
    free(names);
    closedir(d);
    errno = ENOMEM;
    return -1;
}

/* Replays a file or a directory; adds to *replayed, returns failures. */
static int replay_arg(const char *arg, size_t *replayed)
{
    struct stat st;
    char **names;
    size_t n;
    int failed = 0;

    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (replay_file(arg) != 0)
            return 1;
        (*replayed)++;
        return 0;
    }
    if (list_dir(arg, &names, &n) != 0) {
        fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (replay_file(names[i]) == 0)
            (*replayed)++;
        else
            failed++;
        free(names[i]);
    }
    free(names);
    return failed;
}

int main(int argc, char **argv)
{
    size_t replayed = 0;
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        failed += replay_arg(argv[i], &replayed);
    printf("%zu inputs replayed\n", replayed);
    return failed ? 1 : 0;
}
