/*
 * gunzip.c - gzip files inflated with ISA-L's igzip; see gunzip.h.
 *
 * igzip parses each member's header and trailer itself (ISAL_GZIP) and
 * checks the CRC-32 and length; this file only feeds it, finds where the
 * next member starts and tells a clean end from a cut one.  When a member
 * ends, igzip hands back the input bytes it read past the trailer, so the
 * next member's header is at next_in.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <isa-l/igzip_lib.h>

#include "gunzip.h"
#include "internal.h"

#define GZ_IN (1 << 16) /* one read(), as libarchive reads files */
#define GZ_OUT (1 << 18)

struct shard_gunzip {
    struct inflate_state st;
    int fd;
    int in_member; /* a member is started and its trailer not yet read */
    int eof;       /* read() has returned 0 */
    int done;
    uint64_t consumed;
    unsigned char in[GZ_IN];
    unsigned char out[GZ_OUT];
};

/* Whether the three bytes at p open a gzip member of the deflate method. */
static int gz_magic(const unsigned char *p)
{
    return p[0] == 0x1f && p[1] == 0x8b && p[2] == 8;
}

int shard_gunzip_sniff(int fd)
{
    unsigned char m[3];
    off_t at = lseek(fd, 0, SEEK_CUR);

    return at >= 0 && pread(fd, m, sizeof(m), at) == (ssize_t)sizeof(m) &&
           gz_magic(m);
}

int shard_gunzip_new(shard_gunzip **out, int fd)
{
    shard_gunzip *g = malloc(sizeof(*g));

    *out = NULL;
    if (!g)
        return SHARD_ENOMEM;
    memset(g, 0, offsetof(shard_gunzip, in));
    isal_inflate_init(&g->st);
    g->st.next_in = g->in;
    g->fd = fd;
    *out = g;
    return 0;
}

/* Moves the unread input to the front of the buffer and reads after it
 * (the buffer must have room).  0, or -1 with err set. */
static int gz_fill(shard_gunzip *g, char *err)
{
    size_t have = g->st.avail_in;
    ssize_t n;

    if (have && g->st.next_in != g->in)
        memmove(g->in, g->st.next_in, have);
    g->st.next_in = g->in;
    do
        n = read(g->fd, g->in + have, GZ_IN - have);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        shard_errf(err, SHARD_EIO, "%s", strerror(errno));
        return -1;
    }
    g->eof = n == 0;
    g->consumed += (uint64_t)n;
    g->st.avail_in = (uint32_t)(have + (size_t)n);
    return 0;
}

/*
 * Between members: 1 when the next one starts at next_in, 0 at the end
 * of the file (after zero bytes of padding, if any), or -1 with err set
 * when other bytes follow.
 */
static int gz_next_member(shard_gunzip *g, char *err)
{
    for (;;) {
        const unsigned char *p = g->st.next_in;
        uint32_t n = g->st.avail_in;

        if (n < 3 && !g->eof) {
            if (gz_fill(g, err) < 0)
                return -1;
            continue;
        }
        if (n == 0)
            return 0;
        if (n >= 3 && gz_magic(p)) {
            isal_inflate_reset(&g->st);
            g->st.crc_flag = ISAL_GZIP;
            return 1;
        }
        if (p[0] == 0x1f && n < 3) {
            shard_errf(err, SHARD_EIO, "truncated gzip stream");
            return -1;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (p[i] != 0) {
                shard_errf(err, SHARD_EIO,
                           "bytes after the last gzip member are neither "
                           "a member nor zero padding");
                return -1;
            }
        }
        g->st.avail_in = 0;
        if (g->eof)
            return 0;
    }
}

static long gz_corrupt(char *err, int rc)
{
    const char *what =
        rc == ISAL_INCORRECT_CHECKSUM
            ? "gzip member fails its CRC-32 or length check"
        : rc == ISAL_INVALID_WRAPPER || rc == ISAL_UNSUPPORTED_METHOD
            ? "bad gzip member header"
            : "corrupt deflate data in gzip stream";

    shard_errf(err, SHARD_EIO, "%s", what);
    return -1;
}

long shard_gunzip_read(shard_gunzip *g, const void **buf, char *err)
{
    while (!g->done) {
        uint32_t before;
        size_t made;
        int rc;

        if (!g->in_member) {
            if ((rc = gz_next_member(g, err)) < 0)
                return -1;
            g->done = rc == 0;
            g->in_member = rc == 1;
            continue;
        }

        before = g->st.avail_in;
        g->st.next_out = g->out;
        g->st.avail_out = GZ_OUT;
        if ((rc = isal_inflate(&g->st)) < 0)
            return gz_corrupt(err, rc);
        made = GZ_OUT - g->st.avail_out;
        if (g->st.block_state == ISAL_BLOCK_FINISH) {
            g->in_member = 0;
        } else if (!made && g->st.avail_in == before) {
            /* Nothing taken, nothing given (none held back from a full
             * output either): igzip wants more input. */
            if (!g->eof && before < GZ_IN) {
                if (gz_fill(g, err) < 0)
                    return -1;
                continue;
            }
            shard_errf(err, SHARD_EIO, "%s",
                       g->eof ? "truncated gzip stream"
                              : "corrupt deflate data in gzip stream");
            return -1;
        }
        if (made) {
            *buf = g->out;
            return (long)made;
        }
    }
    return 0;
}

uint64_t shard_gunzip_consumed(const shard_gunzip *g)
{
    return g->consumed;
}

void shard_gunzip_free(shard_gunzip *g)
{
    free(g);
}
