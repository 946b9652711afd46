/*
 * messages_pairs.c - preference pairs given as message lists:
 *
 *   {"chosen_messages": [msgs], "rejected_messages": [msgs]}
 *       (LLaMA-Factory v1; messages may carry typed content parts and a
 *       per-message "loss_weight", which is ignored: the last message is
 *       the rated one)
 *   {"prompt"?: "..." | [msgs], "chosen": [msgs] | "...",
 *    "rejected": [msgs] | "...", "score_chosen"?, "score_rejected"?}
 *       (TRL's implicit and explicit prompt forms, ultrafeedback_binarized)
 *
 * With a prompt, chosen and rejected continue it.  The last message of
 * each side is the rated response and must be the assistant's; the
 * messages before it must be the same on both sides (the pair shares one
 * context), else the row is a bad_transcript.
 */
#include "schema.h"

static int pairs_detect(shard_json_value row)
{
    shard_json_value c, r;

    if (shard_json_get(row, "chosen_messages", 15, &c))
        return 1;
    if (!shard_json_get(row, "chosen", 6, &c) ||
        !shard_json_get(row, "rejected", 8, &r))
        return 0;
    if (shard_json_typeof(c) == SHARD_JSON_ARRAY)
        return 1;
    return shard_json_typeof(c) == SHARD_JSON_STRING &&
           shard_json_get(row, "prompt", 6, &r);
}

/* Appends field `key` (a string or messages) to l; 0 when absent. */
static int read_side(shard_emit *e, shard_json_value row, const char *key,
                     const char *role, shard_msgs *l)
{
    shard_json_value v;
    const char *s;
    size_t n;

    if (!shard_json_get(row, key, strlen(key), &v))
        return 0;
    if (shard_json_get_string(v, &s, &n))
        return shard_msgs_push(l, shard_msg(role, s, n));
    return shard_read_messages(e, v, l, key);
}

static int read_full(shard_emit *e, shard_json_value row, const char *key,
                     const char *alt, shard_msgs *l)
{
    shard_json_value v;
    int rc;

    if ((rc = read_side(e, row, "prompt", "user", l)) < 0)
        return rc;
    if (!shard_json_get(row, key, strlen(key), &v))
        key = alt;
    if (!shard_json_get(row, key, strlen(key), &v))
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"%s\"", key);
    if ((rc = read_side(e, row, key, "assistant", l)) < 0)
        return rc;
    if (l->n == 0 || !shard_role_is(&l->m[l->n - 1], "assistant"))
        return shard_emit_fail(e, SHARD_REASON_BAD_TRANSCRIPT,
                               "\"%s\" does not end with an assistant "
                               "message", key);
    return 0;
}

static int pairs_map(shard_json_value row, shard_emit *e)
{
    shard_msgs *c = shard_emit_scratch(e, 0), *r = shard_emit_scratch(e, 1);
    double sc = __builtin_nan(""), sr = __builtin_nan("");
    int rc;

    if ((rc = read_full(e, row, "chosen_messages", "chosen", c)) < 0 ||
        (rc = read_full(e, row, "rejected_messages", "rejected", r)) < 0 ||
        (rc = shard_get_number(e, row, "score_chosen", &sc)) < 0 ||
        (rc = shard_get_number(e, row, "score_rejected", &sr)) < 0)
        return rc;
    if (c->n != r->n || !shard_msgs_equal(c->m, r->m, c->n - 1))
        return shard_emit_fail(e, SHARD_REASON_BAD_TRANSCRIPT,
                               "chosen and rejected differ before their "
                               "last message");
    return shard_emit_comparison(e, c->m, c->n - 1, c->m[c->n - 1],
                                 r->m[r->n - 1], sc, sr);
}

const shard_format shard_format_messages_pairs = {
    "messages-pairs",
    "{chosen_messages, rejected_messages} or {prompt?, chosen, rejected} "
    "message lists",
    pairs_detect,
    pairs_map,
    NULL,
    NULL,
};
