/*
 * internal.h - helpers shared inside libshard; not installed.
 */
#ifndef SHARD_INTERNAL_H
#define SHARD_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "shard_common.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libshard maps little-endian files directly; big-endian hosts are unsupported"
#endif

#define SHARD_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Formats a one-line message into buf (SHARD_ERRMAX bytes).  Returns code. */
int shard_errf(char *buf, int code, const char *fmt, ...) SHARD_PRINTF(3, 4);

/* Formats the thread's last-error message.  Returns code. */
int shard_set_last_error(int code, const char *fmt, ...) SHARD_PRINTF(2, 3);

/* Copies a handle's message into the thread's last-error message. */
void shard_copy_last_error(const char *msg);

/*
 * Makes room for `need` elements of `elem` bytes in the array *p of
 * capacity *cap (doubling, from 8).  Returns 0 or SHARD_ENOMEM, leaving
 * the array as it was.
 */
int shard_grow(void **p, size_t *cap, size_t need, size_t elem);

/*
 * Writes all n bytes to fd, again after a short write or EINTR.  Returns 0,
 * or -1 with errno set.
 */
int shard_write_all(int fd, const void *buf, size_t n);

/* fsync of a directory, so that a rename or unlink in it lasts.  Returns
 * 0, or -1 with errno set. */
int shard_sync_dir(const char *dir);

/*
 * splitmix64: advances *s and returns the next output of a full-period
 * 64-bit generator with a strong output mix.  Cannot fail.
 */
static inline uint64_t shard_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Aligns v up to a multiple of a (a power of two). */
static inline uint64_t shard_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

#endif
