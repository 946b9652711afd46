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

#include <string.h>

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

/*
 * Records a pair between two records of this row, by their 0-based order
 * of emission: `chosen` was preferred to `rejected`.  A record may be in
 * several pairs (its pair_id column then names the first).  The pair
 * joins the pairs table only when the row as a whole is valid.  Returns 0
 * or SHARD_ENOMEM.
 */
int shard_emit_pair(shard_emit *e, size_t chosen, size_t rejected);

/* Records emitted for this row so far. */
size_t shard_emit_count(const shard_emit *e);

/* Record i's reward, and changing its label after the fact. */
double shard_emit_reward(const shard_emit *e, size_t i);
void shard_emit_relabel(shard_emit *e, size_t i, int label);

/*
 * Names a rule that turned a score into a label ("oasst: pos when ...").
 * Each distinct rule that labelled at least one record of a valid row is
 * written to the manifest's label_rules.  `rule` must stay valid for the
 * whole compile (a string literal, or the format's state).
 */
void shard_emit_rule(shard_emit *e, const char *rule);

/*
 * n bytes of storage that live until the row is done, for text a schema
 * builds (joined content parts).  NULL when out of memory.
 */
char *shard_emit_alloc(shard_emit *e, size_t n);

/*
 * Parses n JSON texts s[0..n) (values embedded as strings in the row) as
 * one array of n elements, into *root.  Values from it live until the
 * next call or the end of the row.  A text that is not JSON fails the
 * row (bad_json).
 */
int shard_emit_parse_list(shard_emit *e, const char *const *s,
                          const size_t *len, size_t n,
                          shard_json_value *root);

/* The state the schema's prepare() made, or NULL. */
const void *shard_emit_state(const shard_emit *e);

/* A list of messages owned by the emitter, reused from row to row. */
typedef struct {
    shard_message *m;
    size_t n, cap;
} shard_msgs;

#define SHARD_SCRATCH_LISTS 4

/* Scratch list `slot` (< SHARD_SCRATCH_LISTS), emptied. */
shard_msgs *shard_emit_scratch(shard_emit *e, int slot);

/* Appends a message.  Returns 0 or SHARD_ENOMEM. */
int shard_msgs_push(shard_msgs *l, shard_message m);

typedef struct {
    const char *name;
    const char *summary;
    /* Nonzero when a row looks like this schema (for --format auto). */
    int (*detect)(shard_json_value row);
    /* Emits the row's records, or fails it. */
    int (*map)(shard_json_value row, shard_emit *e);
    /*
     * Optional: builds the schema's state from the compile options before
     * the first row (message into err, SHARD_ERRMAX bytes), and frees it.
     */
    int (*prepare)(const void *compile_options, void **state, char *err);
    void (*release)(void *state);
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

/*
 * Reads one message: {"role", "content"} or ShareGPT's {"from", "value"}.
 * Content is a string or a list of typed parts [{"type": "text", "text"
 * (or "value"): ...}], whose texts are joined.  Roles are normalised:
 * human, user, prompter -> user; gpt, assistant, bot, model -> assistant;
 * others kept.  `what` names the message in failure messages.  Returns 0
 * or fails the row.
 */
int shard_read_message(shard_emit *e, shard_json_value msg,
                       shard_message *out, const char *what);

/* Appends every message of the array `arr` to l; fails the row if any
 * is malformed or `arr` is not an array (`field` names it). */
int shard_read_messages(shard_emit *e, shard_json_value arr, shard_msgs *l,
                        const char *field);

/*
 * Looks up `key` in row: 1 and *v when present (and not null), else fails
 * the row with missing_field and returns SHARD_EINPUT.
 */
int shard_need(shard_emit *e, shard_json_value row, const char *key,
               shard_json_value *v);

/* Like shard_need for a string; wrong_type when it is not one. */
int shard_need_string(shard_emit *e, shard_json_value row, const char *key,
                      const char **s, size_t *len);

/* A message of role `role` (a literal) with the given content. */
shard_message shard_msg(const char *role, const char *s, size_t n);

/* Nonzero when the n messages of a and b have equal roles and contents. */
int shard_msgs_equal(const shard_message *a, const shard_message *b,
                     size_t n);

/*
 * Emits context ctx[0..n) followed by `response` as one record (no pair).
 * Uses the last scratch list.  Returns 0 or SHARD_ENOMEM.
 */
int shard_emit_response(shard_emit *e, const shard_message *ctx, size_t n,
                        shard_message response, int label, double reward);

/*
 * Emits a comparison in one context: `chosen` as pos, `rejected` as neg,
 * and the pair between them.
 */
int shard_emit_comparison(shard_emit *e, const shard_message *ctx, size_t n,
                          shard_message chosen, shard_message rejected,
                          double chosen_reward, double rejected_reward);

/*
 * An optional number: 1 and *d when present, 0 when absent or null, and
 * a failed row (wrong_type) when it is something else.
 */
int shard_get_number(shard_emit *e, shard_json_value row, const char *key,
                     double *d);

/* Nonzero when m's role is `role`. */
int shard_role_is(const shard_message *m, const char *role);

/* Nonzero when row has every key of the NULL-terminated list. */
int shard_has_keys(shard_json_value row, const char *const *keys);

#endif
