/*
 * shard_reader.h - reading shard files and datasets (reader side).
 *
 * Links with libc, zstd and xxHash only, so a trainer can use it without
 * the compiler side.
 *
 * A shard_reader maps one shard file.  Opening checks, before touching any
 * mapped byte past them, that the file is as long as its header says; then
 * the header checksum, the section table bounds, and the checksums of every
 * metadata section (record columns and frame tables).  The token and text
 * frames are checked at first use: a frame whose checksum fails makes every
 * record in it unreadable, never wrong.
 *
 * Zero copy.  With codec none, a record's tokens point into the mapping.
 * With zstd, they point into a 64-byte aligned buffer holding the
 * decompressed frame, shared through a reference count by every record
 * view of that frame and by the reader's frame cache.  In both cases a
 * shard_record holds a reference that keeps its tokens valid, even after
 * shard_reader_close(), until shard_record_release().
 *
 * A reader may be used from several threads at once.
 */
#ifndef SHARD_READER_H
#define SHARD_READER_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shard_reader shard_reader;
typedef struct shard_buf shard_buf;

/* A record view.  Release it with shard_record_release(). */
typedef struct {
    uint64_t index;      /* within its shard */
    const void *tokens;  /* n_tokens ids of `dtype` bytes each */
    size_t n_tokens;
    unsigned dtype;      /* 2 (uint16) or 4 (uint32) */
    uint32_t prompt_len; /* tokens before the response */
    int label;           /* shard_label */
    double reward;       /* NaN when the input had none */
    uint64_t prompt_id;
    uint64_t pair_id;
    uint64_t record_id;
    uint32_t source_file;
    uint64_t source_line;
    uint32_t flags;
    shard_buf *ref;      /* keeps `tokens` alive */
} shard_record;

/* Token i of a record, whatever the dtype.  Cannot fail. */
static inline uint32_t shard_record_token(const shard_record *r, size_t i)
{
    return r->dtype == 2 ? ((const uint16_t *)r->tokens)[i]
                         : ((const uint32_t *)r->tokens)[i];
}

/* Drops the record's reference.  Safe on a zeroed or released record. */
void shard_record_release(shard_record *r);

typedef struct {
    int version;             /* SHARD_READER_OPTIONS_VERSION */
    uint64_t cache_bytes;    /* decompressed frames kept; 64 MiB */
} shard_reader_options;

#define SHARD_READER_OPTIONS_VERSION 1
#define SHARD_READER_OPTIONS_INIT {SHARD_READER_OPTIONS_VERSION, 64ull << 20}

/* Header facts of an open shard. */
typedef struct {
    uint16_t major, minor;
    uint64_t records;
    uint64_t tokens;
    uint64_t file_size;
    uint64_t shard_seq;
    int label;           /* 255 for a mixed shard */
    unsigned dtype;
    int codec;           /* 0 none, 1 zstd */
    int has_text;
    uint64_t frames;     /* token frames */
    uint64_t checksum;   /* header checksum: identifies the whole file */
    char tokenizer[33];
    char template_name[17];
    uint64_t tokenizer_hash;
    uint32_t vocab_size;
    uint32_t bos_id, eos_id, pad_id;
} shard_info;

/*
 * Opens and checks a shard file; `opts` may be NULL.  On failure *out is
 * NULL and shard_last_error() names the file and what failed.
 */
int shard_reader_open(shard_reader **out, const char *path,
                      const shard_reader_options *opts);

/* Drops the reader; records still held keep their own references. */
void shard_reader_close(shard_reader *r);

const shard_info *shard_reader_info(const shard_reader *r);
uint64_t shard_reader_count(const shard_reader *r);
const char *shard_reader_path(const shard_reader *r);
const char *shard_reader_errmsg(const shard_reader *r);

/*
 * Fills *rec with record i.  Returns 0, SHARD_EINVAL (i out of range) or
 * SHARD_ECORRUPT (its frame failed to decode or its checksum) with the
 * message naming the shard, section and frame.
 */
int shard_reader_get(shard_reader *r, uint64_t i, shard_record *rec);

/*
 * Frames, the unit of decompression.  Token frame k holds records
 * [first, first + count) of its shard; holding a shard_frame keeps its
 * decoded bytes alive and lets every record of it be read without going
 * through the frame cache again, so a caller that walks a frame's records
 * decodes it once whatever the cache budget.
 */
typedef struct {
    uint64_t index;            /* frame number within the shard */
    uint64_t first, count;     /* its records */
    const unsigned char *data; /* its decoded tokens */
    shard_buf *ref;            /* keeps `data` alive */
} shard_frame;

/* Number of token frames; records per frame.  Cannot fail (k < frames). */
uint64_t shard_reader_frames(const shard_reader *r);
void shard_reader_frame_span(const shard_reader *r, uint64_t k,
                             uint64_t *first, uint64_t *count);
/*
 * Token frames this reader has decompressed so far (zstd; a cache hit or
 * codec none counts nothing).  Cannot fail.
 */
uint64_t shard_reader_frames_decoded(const shard_reader *r);

/* The frame holding record i (i < records).  Cannot fail. */
uint64_t shard_reader_frame_of(const shard_reader *r, uint64_t i);

/*
 * Decodes (or finds in the cache) frame k and checks its checksum.
 * Returns 0, SHARD_EINVAL or SHARD_ECORRUPT; release with
 * shard_frame_release().  Thread-safe.
 */
int shard_reader_frame(shard_reader *r, uint64_t k, shard_frame *out);

/*
 * Fills *rec with record i of the held frame f (first <= i < first +
 * count), taking a reference of its own.  SHARD_EINVAL when i is outside
 * the frame.  No decoding, no lock.
 */
int shard_reader_frame_record(const shard_reader *r, const shard_frame *f,
                              uint64_t i, shard_record *rec);

/* Drops the frame's reference.  Safe on a zeroed or released frame. */
void shard_frame_release(shard_frame *f);

/*
 * A column as an array of `count` elements of `width` bytes, pointing into
 * the mapping (valid while the reader is open).  `kind` is a section kind
 * of docs/FORMAT.md (SHARD_COL_*).  Returns NULL when the shard lacks it.
 */
#define SHARD_COL_PROMPT_LEN 2
#define SHARD_COL_LABEL 3
#define SHARD_COL_REWARD 4
#define SHARD_COL_PROMPT_ID 5
#define SHARD_COL_PAIR_ID 6
#define SHARD_COL_RECORD_ID 7
const void *shard_reader_column(const shard_reader *r, int kind,
                                size_t *count, size_t *width);

/* A record's text: messages of the context, then the response. */
typedef struct {
    const char *role;
    size_t role_len;
    const char *content;
    size_t content_len;
} shard_text_message;

typedef struct {
    shard_text_message *messages;
    size_t n_messages;
    void *storage;
} shard_text;

/*
 * Decodes record i's text section entry into *out (free with
 * shard_text_free).  SHARD_ENOTFOUND when the shard has no text section.
 */
int shard_reader_text(shard_reader *r, uint64_t i, shard_text *out);
void shard_text_free(shard_text *t);

/*
 * Checks every byte of the file at `path`: header, body checksum, every
 * section checksum, every frame, and the padding.  Calls report() once per
 * problem with a one-line message naming the file and the section; returns
 * the number of problems (0 when the shard is sound) or a negative code
 * when the file cannot be read at all.
 */
typedef void (*shard_report_fn)(void *ctx, const char *message);
int shard_verify_file(const char *path, shard_report_fn report, void *ctx);

/*
 * A dataset: the directory a compile writes, or a single shard file.  A
 * directory is opened through DIR/manifest.json (written last, so its
 * presence marks a complete dataset): its "shards" list names the files,
 * and each file's record count and header checksum must match its entry.
 * Records are numbered across the selected streams: pos first, then neg,
 * then unl, each stream in manifest order.
 */
typedef struct shard_dataset shard_dataset;

/* Streams a dataset keeps, as a mask; PAIRS iterates (chosen, rejected). */
#define SHARD_SELECT_UNL (1u << SHARD_LABEL_UNL)
#define SHARD_SELECT_POS (1u << SHARD_LABEL_POS)
#define SHARD_SELECT_NEG (1u << SHARD_LABEL_NEG)
#define SHARD_SELECT_BOTH (SHARD_SELECT_POS | SHARD_SELECT_NEG)
#define SHARD_SELECT_ALL (SHARD_SELECT_BOTH | SHARD_SELECT_UNL)
#define SHARD_SELECT_PAIRS (1u << 8)

/*
 * Parses "pos", "neg", "unl", "both" (pos and neg), "all" or "pairs" into
 * a SHARD_SELECT_* mask.  Returns 0 or SHARD_EINVAL.
 */
int shard_select_parse(const char *name, unsigned *select);

typedef struct {
    int version;          /* SHARD_DATASET_OPTIONS_VERSION */
    unsigned select;      /* SHARD_SELECT_* mask; 0 means all */
    uint64_t cache_bytes; /* decompressed frames kept per shard */
} shard_dataset_options;

#define SHARD_DATASET_OPTIONS_VERSION 1
#define SHARD_DATASET_OPTIONS_INIT \
    {SHARD_DATASET_OPTIONS_VERSION, SHARD_SELECT_ALL, 64ull << 20}

/*
 * Opens a dataset with the streams `o` selects (`o` may be NULL: all).
 * With SHARD_SELECT_PAIRS every stream is opened and records are joined
 * into (chosen, rejected) pairs: from the dataset's pairs table
 * (shard_pairs.h) when it has one, each row whose two records are in the
 * dataset, whatever their labels (a record may be in several pairs);
 * otherwise each pos record with the first neg record of the same
 * non-zero pair_id.  Pairs are ordered by chosen record.  Records without
 * a partner are left out of the pairs (but still count in
 * shard_dataset_count).  On failure *out is NULL and shard_last_error()
 * says why: a missing manifest, a listed shard that is missing, damaged
 * or does not match its entry.
 */
int shard_dataset_open_with(shard_dataset **out, const char *path,
                            const shard_dataset_options *o);

/* The same with one label (-1 for all streams). */
int shard_dataset_open(shard_dataset **out, const char *path, int label,
                       const shard_reader_options *opts);
void shard_dataset_close(shard_dataset *d);
uint64_t shard_dataset_count(const shard_dataset *d);
size_t shard_dataset_shards(const shard_dataset *d);
shard_reader *shard_dataset_shard(const shard_dataset *d, size_t k);
/* Dataset index of shard k's first record (k <= shards).  Cannot fail. */
uint64_t shard_dataset_shard_start(const shard_dataset *d, size_t k);
unsigned shard_dataset_select(const shard_dataset *d);
/*
 * The shard holding dataset record i (i < count) and, in *local, its
 * index there (for shard_reader_text and the like).  Cannot fail.
 */
shard_reader *shard_dataset_reader_of(const shard_dataset *d, uint64_t i,
                                      uint64_t *local);
const char *shard_dataset_errmsg(const shard_dataset *d);

/*
 * 1 when dataset record i was removed after it was written (compile
 * --append found a conflict; shard_tombstones.h): the loader skips it,
 * and so should any other iteration.  shard_dataset_get still returns it.
 * Cannot fail.
 */
int shard_dataset_tombstoned(const shard_dataset *d, uint64_t i);

/* Record i of the dataset; see shard_reader_get. */
int shard_dataset_get(shard_dataset *d, uint64_t i, shard_record *rec);

/*
 * The records a reader should see: those not tombstoned, numbered
 * 0..shard_dataset_live_count()-1 in dataset order.  live_index gives
 * the dataset index of live record j (j < live_count; cannot fail), and
 * live_get reads it.  Without tombstones they equal count and get.
 */
uint64_t shard_dataset_live_count(const shard_dataset *d);
uint64_t shard_dataset_live_index(const shard_dataset *d, uint64_t j);
int shard_dataset_live_get(shard_dataset *d, uint64_t j, shard_record *rec);

/*
 * Pairs (SHARD_SELECT_PAIRS only; 0 otherwise), in order of their chosen
 * record.  Pair j is the dataset indexes of its chosen and its rejected
 * record.
 */
uint64_t shard_dataset_pairs(const shard_dataset *d);
int shard_dataset_pair(const shard_dataset *d, uint64_t j, uint64_t *pos,
                       uint64_t *neg);

/*
 * A loader: one pass (epoch) over a dataset's records in a deterministic
 * order, restricted to one partition, resumable from a small state.
 *
 * Units.  A unit is a record, or a pair with SHARD_SELECT_PAIRS (yielded
 * as two records, chosen then rejected).  Units are grouped by the token
 * frame of their (chosen) record.
 *
 * Order.  Without shuffle, dataset order.  With shuffle, for each epoch
 * the frames are permuted from (seed, epoch); consecutive runs of
 * `window` permuted frames form windows, and the units of a window are
 * permuted from (seed, epoch, window).  The loader holds a window's frames
 * while it yields their records, so each frame is decoded once per pass
 * (the rejected side of pairs goes through the frame cache instead).
 *
 * Partitions.  The epoch's order is cut into world × workers contiguous
 * ranges, partition rank × workers + worker taking the
 * [p·U/P, (p+1)·U/P) one of U units: they are disjoint, cover every unit,
 * and differ in size by at most one.  Contiguous ranges keep each
 * partition on its own frames.
 *
 * State.  (seed, epoch, position), position counting records yielded in
 * this partition's epoch.  shard_loader_seek() to a state taken from a
 * loader with the same dataset and options resumes with exactly the
 * records an unbroken run would have given next, at the cost of computing
 * the epoch's frame order (linear in frames) and one window's order:
 * no record before the position is read.
 *
 * Read-ahead.  With `readahead`, a background thread decodes the next
 * window's frames while the current one is consumed.
 *
 * A loader is used from one thread at a time.  Records it returns stay
 * valid until released, after the loader and dataset are closed too.
 */
typedef struct shard_loader shard_loader;

typedef struct {
    uint64_t seed;
    uint64_t epoch;
    uint64_t position;
} shard_loader_state;

typedef struct {
    int version;        /* SHARD_LOADER_OPTIONS_VERSION */
    int shuffle;        /* 0: dataset order */
    uint64_t seed;
    uint32_t window;    /* frames shuffled together; 8 */
    uint32_t rank, world;       /* 0, 1 */
    uint32_t worker, workers;   /* 0, 1 */
    int readahead;      /* 1: decode the next window on a thread */
} shard_loader_options;

#define SHARD_LOADER_OPTIONS_VERSION 1
#define SHARD_LOADER_OPTIONS_INIT \
    {SHARD_LOADER_OPTIONS_VERSION, 0, 0, 8, 0, 1, 0, 1, 0}

/*
 * Opens a loader at (seed, epoch 0, position 0).  The dataset must stay
 * open while the loader is.  SHARD_EINVAL for rank >= world, worker >=
 * workers or a zero window; *out is NULL on failure.
 */
int shard_loader_open(shard_loader **out, shard_dataset *d,
                      const shard_loader_options *o);
void shard_loader_close(shard_loader *l);

/* Records this partition yields per epoch (2 per pair).  Cannot fail. */
uint64_t shard_loader_records(const shard_loader *l);

/*
 * The next record of the epoch into *rec (release it).  Returns 1, 0 at
 * the end of the epoch (then shard_loader_seek to the next epoch), or a
 * negative code with the message in shard_loader_errmsg(); the position
 * does not move on failure.
 */
int shard_loader_next(shard_loader *l, shard_record *rec);

/* Dataset index of the record the last next() returned.  Cannot fail. */
uint64_t shard_loader_last(const shard_loader *l);

/* The current state.  Cannot fail. */
void shard_loader_state_get(const shard_loader *l, shard_loader_state *st);

/*
 * Moves to a state (any epoch; a position up to shard_loader_records).
 * Returns 0, SHARD_EINVAL for a position past the end, or SHARD_ENOMEM.
 */
int shard_loader_seek(shard_loader *l, const shard_loader_state *st);

/*
 * A batch: records packed one after the other into caller buffers.
 * Fill the buffer fields; shard_loader_batch sets the result fields.
 */
typedef struct {
    uint32_t *tokens;      /* max_tokens ids, packed */
    uint8_t *loss_mask;    /* max_tokens: 0 prompt, 1 response; or NULL */
    size_t max_tokens;
    size_t max_len;        /* cut every record to this many tokens; 0: no */
    uint32_t *lengths;     /* max_records: tokens of each record */
    uint32_t *prompt_lens; /* max_records, or NULL */
    uint8_t *labels;       /* max_records, or NULL */
    size_t max_records;
    size_t n_records;      /* result: records packed */
    size_t n_tokens;       /* result: tokens packed */
    size_t truncated;      /* result: tokens cut from an oversized record */
} shard_batch;

/*
 * Packs the next records into b until max_records or until the next
 * record would not fit in max_tokens.  Records are first cut to max_len
 * tokens when it is set (so max_tokens = max_records × max_len always
 * gives full batches); a record longer than max_tokens alone is cut to
 * max_tokens, so the loader always advances.  `truncated` counts the
 * tokens cut.  With pairs, an even max_records and max_tokens of at
 * least max_records × max_len keep both records of a pair in one batch.
 * Returns 0 (n_records is 0 only at the end of the epoch) or a negative
 * code; records packed before a failure stay packed and counted.
 */
int shard_loader_batch(shard_loader *l, shard_batch *b);

const char *shard_loader_errmsg(const shard_loader *l);

#ifdef __cplusplus
}
#endif

#endif
