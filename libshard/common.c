/*
 * common.c - error strings, the per-thread last-error message, and small
 * file helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static _Thread_local char last_error[SHARD_ERRMAX];

static const char *const label_names[SHARD_LABEL_COUNT] = {"unl", "pos",
                                                           "neg"};

const char *shard_label_name(int label)
{
    if (label < 0 || label >= SHARD_LABEL_COUNT)
        return "?";
    return label_names[label];
}

int shard_label_parse(const char *name)
{
    for (int i = 0; i < SHARD_LABEL_COUNT; i++)
        if (strcmp(name, label_names[i]) == 0)
            return i;
    return -1;
}

const char *shard_strerror(int code)
{
    switch (code) {
    case SHARD_OK:
        return "ok";
    case SHARD_ENOMEM:
        return "out of memory";
    case SHARD_EIO:
        return "i/o error";
    case SHARD_ECORRUPT:
        return "corrupt data";
    case SHARD_EINVAL:
        return "invalid argument";
    case SHARD_EFORMAT:
        return "unsupported format";
    case SHARD_EINPUT:
        return "invalid input";
    case SHARD_ENOTFOUND:
        return "not found";
    default:
        return "unknown error";
    }
}

const char *shard_last_error(void)
{
    return last_error;
}

int shard_errf(char *buf, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, SHARD_ERRMAX, fmt, ap);
    va_end(ap);
    return code;
}

int shard_set_last_error(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return code;
}

void shard_copy_last_error(const char *msg)
{
    snprintf(last_error, sizeof(last_error), "%s", msg);
}

int shard_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 8;
    void *q;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem || !(q = realloc(*p, n * elem)))
        return SHARD_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

int shard_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int shard_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e;

    if (fd < 0)
        return -1;
    if (fsync(fd) == 0)
        return close(fd);
    e = errno;
    close(fd);
    errno = e;
    return -1;
}
