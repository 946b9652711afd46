/*
 * format.h - the interface every input schema implements (internal).
 *
 * A schema turns one parsed input row into zero or more records through an
 * emitter: each record is a list of messages (the context, then the rated
 * response last), a label, a reward, and optionally a pair it belongs to.
 * Message strings may point into the parsed JSON: they need to live only
 * until the schema's map() returns.  A row the schema cannot use is
 * rejected with shard_emit_fail(), naming a reason; the row then yields no
 * record at all, even if some were emitted before the failure.
 */
#ifndef SHARD_FORMAT_SCHEMA_H
#define SHARD_FORMAT_SCHEMA_H

#include "internal.h"
#include "json.h"
#include "shard_writer.h"

/* Why a row was rejected.  Names appear in the manifest; keep them. */
typedef enum {
    SHARD_REASON_BAD_JSON,
    SHARD_REASON_BAD_UTF8,
    SHARD_REASON_MISSING_FIELD,
    SHARD_REASON_WRONG_TYPE,
    SHARD_REASON_UNKNOWN_LABEL,
    SHARD_REASON_OVER_LIMIT,
    SHARD_REASON_BAD_TRANSCRIPT,
    SHARD_REASON_COUNT
} shard_reason;

const char *shard_reason_name(shard_reason r);

/* Which side of a comparison a record is. */
#define SHARD_PAIR_NONE 0
#define SHARD_PAIR_CHOSEN 1
#define SHARD_PAIR_REJECTED 2

typedef struct shard_emit shard_emit;

/*
 * Adds a record of `n` messages (n >= 1; the last is the response).
 * `pair_group` links the chosen and the rejected record of one comparison
 * within the row (any small integer, the same for both); `pair_side` says
 * which is which, SHARD_PAIR_NONE for a record outside any pair.
 * Returns 0 or SHARD_ENOMEM.
 */
int shard_emit_record(shard_emit *e, const shard_message *msgs, size_t n,
                      int label, double reward, int pair_group,
                      int pair_side);

/* Rejects the row.  Returns SHARD_EINPUT, for `return shard_emit_fail()`. */
int shard_emit_fail(shard_emit *e, shard_reason reason, const char *fmt,
                    ...) SHARD_PRINTF(3, 4);

typedef struct {
    const char *name;
    const char *summary;
    /* Nonzero when a row looks like this schema (for --format auto). */
    int (*detect)(shard_json_value row);
    /* Emits the row's records, or fails it. */
    int (*map)(shard_json_value row, shard_emit *e);
} shard_format;

/* The schemas, in the order auto-detection tries them; NULL-terminated. */
extern const shard_format *const shard_formats[];

/* The schema called `name`, or NULL. */
const shard_format *shard_format_find(const char *name);

/* Shared helpers for schemas. */

/* Trims ASCII whitespace (space, tab, CR, LF) from both ends. */
void shard_trim(const char **s, size_t *len);

/* Looks up a string member; 1 found, 0 absent, -1 not a string. */
int shard_get_string(shard_json_value obj, const char *key, const char **s,
                     size_t *len);

/*
 * Reads a label: "pos"/"neg"/"unl" (also "positive", "negative",
 * "chosen", "rejected", "good", "bad"), true/false, 1/-1/0.  Returns the
 * label or -1.
 */
int shard_parse_label(shard_json_value v);

#endif
