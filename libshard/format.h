/*
 * format.h - byte layout of a shard file, version 1 (internal).
 *
 * docs/FORMAT.md is the normative description; this header mirrors it.
 * Every integer is little-endian; every section starts at a multiple of
 * SHARD_ALIGN and the bytes between sections are zero.
 */
#ifndef SHARD_FORMAT_H
#define SHARD_FORMAT_H

#include <stdint.h>
#include <string.h>

#define SHARD_MAGIC "\x89SHD\r\n\x1a\n"
#define SHARD_MAGIC_LEN 8
#define SHARD_FORMAT_MAJOR 1
#define SHARD_FORMAT_MINOR 0
#define SHARD_ALIGN 64

/* Fixed part of the header; the section table follows it. */
#define SHARD_HEADER_FIXED 256
#define SHARD_SECTION_ENTRY 32
#define SHARD_FRAME_ENTRY 48

/* Header field offsets. */
enum {
    HDR_MAGIC = 0,
    HDR_MAJOR = 8,
    HDR_MINOR = 10,
    HDR_HEADER_SIZE = 12,
    HDR_FLAGS = 16,
    HDR_FILE_SIZE = 24,
    HDR_RECORDS = 32,
    HDR_TOKENS = 40,
    HDR_SHARD_SEQ = 48,
    HDR_LABEL = 56,
    HDR_DTYPE = 57,
    HDR_CODEC = 58,
    HDR_SECTION_COUNT = 60,
    HDR_TOK_HASH = 64,
    HDR_TOK_VOCAB = 72,
    HDR_TOK_BOS = 76,
    HDR_TOK_EOS = 80,
    HDR_TOK_PAD = 84,
    HDR_TOK_NAME = 88,  /* 32 bytes, NUL padded */
    HDR_TEMPLATE = 120, /* 16 bytes, NUL padded */
    HDR_FRAME_TARGET = 136,
    HDR_BODY_SUM = 144,
    HDR_HEADER_SUM = 152
};

#define SHARD_TOK_NAME_MAX 32
#define SHARD_TEMPLATE_MAX 16

/* Header flags.  Bits 32-63 are incompatible: a reader refuses unknown. */
#define SHARD_FLAG_TEXT (1ull << 0)
#define SHARD_FLAGS_INCOMPAT_MASK 0xffffffff00000000ull
#define SHARD_FLAGS_KNOWN (SHARD_FLAG_TEXT)

/* Section table entry: kind, flags, offset, size, checksum. */
enum {
    SEC_KIND = 0,
    SEC_FLAGS = 4,
    SEC_OFFSET = 8,
    SEC_SIZE = 16,
    SEC_SUM = 24
};

/* A section flagged required must be understood by the reader. */
#define SHARD_SECTION_REQUIRED 1u

enum shard_section_kind {
    SHARD_SEC_TOKEN_OFFSETS = 1, /* u64[N+1], in tokens */
    SHARD_SEC_PROMPT_LEN = 2,    /* u32[N] */
    SHARD_SEC_LABEL = 3,         /* u8[N] */
    SHARD_SEC_REWARD = 4,        /* f64[N], NaN when absent */
    SHARD_SEC_PROMPT_ID = 5,     /* u64[N] */
    SHARD_SEC_PAIR_ID = 6,       /* u64[N] */
    SHARD_SEC_RECORD_ID = 7,     /* u64[N] */
    SHARD_SEC_SOURCE_FILE = 8,   /* u32[N] */
    SHARD_SEC_SOURCE_LINE = 9,   /* u64[N] */
    SHARD_SEC_FLAGS = 10,        /* u32[N] */
    SHARD_SEC_TOKEN_FRAMES = 16, /* frame table */
    SHARD_SEC_TOKENS = 17,       /* frames, seekable zstd or raw */
    SHARD_SEC_TEXT_OFFSETS = 18, /* u64[N+1], in bytes */
    SHARD_SEC_TEXT_FRAMES = 19,  /* frame table */
    SHARD_SEC_TEXT = 20          /* frames, seekable zstd */
};

/* Frame table entry field offsets. */
enum {
    FRM_OFFSET = 0, /* from the start of the data section */
    FRM_STORED = 8, /* bytes in the file */
    FRM_RAW = 16,   /* bytes once decompressed */
    FRM_FIRST = 24, /* first record */
    FRM_COUNT = 32, /* records */
    FRM_SUM = 40    /* XXH64 (seed 0) of the raw bytes */
};

/* zstd seekable format trailer (see docs/FORMAT.md). */
#define SHARD_SEEK_SKIPPABLE_MAGIC 0x184D2A5Eu
#define SHARD_SEEK_FOOTER_MAGIC 0x8F92EAB1u
#define SHARD_SEEK_CHECKSUM_FLAG 0x80u

static inline uint16_t shard_le16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint32_t shard_le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t shard_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void shard_put16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, sizeof(v));
}

static inline void shard_put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static inline void shard_put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

#endif
