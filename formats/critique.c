/*
 * critique.c - a response with its critique and revision (Constitutional
 * AI's supervised stage, or a human correction):
 *
 *   {"prompt": "..." | "context": [msgs], "response": "...",
 *    "critique": "...", "revision": "..."}
 *
 * ("initial_response" and "revised_response" are read like "response"
 * and "revision".)  The original response becomes a neg record, the
 * revision a pos record in the same context, and the two a pair (the
 * revision preferred).  The critique is required and not stored.
 */
#include "schema.h"

static int critique_detect(shard_json_value row)
{
    shard_json_value v;

    return shard_json_get(row, "critique", 8, &v) &&
           (shard_json_get(row, "revision", 8, &v) ||
            shard_json_get(row, "revised_response", 16, &v));
}

static int read_context(shard_emit *e, shard_json_value row, shard_msgs *l)
{
    shard_json_value v;
    const char *s;
    size_t n;
    int rc;

    if (shard_json_get(row, "context", 7, &v))
        return shard_read_messages(e, v, l, "context");
    if ((rc = shard_need_string(e, row, "prompt", &s, &n)) < 0)
        return rc;
    return shard_msgs_push(l, shard_msg("user", s, n));
}

static int need_either(shard_emit *e, shard_json_value row, const char *a,
                       const char *b, shard_message *m)
{
    if (shard_get_string(row, b, &m->content, &m->content_len) == 1) {
        *m = shard_msg("assistant", m->content, m->content_len);
        return 0;
    }
    if (shard_need_string(e, row, a, &m->content, &m->content_len) < 0)
        return SHARD_EINPUT;
    *m = shard_msg("assistant", m->content, m->content_len);
    return 0;
}

static int critique_map(shard_json_value row, shard_emit *e)
{
    shard_msgs *ctx = shard_emit_scratch(e, 0);
    shard_message original, revision;
    const char *s;
    size_t n;
    int rc;

    if ((rc = read_context(e, row, ctx)) < 0 ||
        (rc = need_either(e, row, "response", "initial_response",
                          &original)) < 0 ||
        (rc = need_either(e, row, "revision", "revised_response",
                          &revision)) < 0 ||
        (rc = shard_need_string(e, row, "critique", &s, &n)) < 0)
        return rc;
    return shard_emit_comparison(e, ctx->m, ctx->n, revision, original,
                                 __builtin_nan(""), __builtin_nan(""));
}

const shard_format shard_format_critique = {
    "critique",
    "{prompt|context, response, critique, revision}: the response neg, "
    "the revision pos",
    critique_detect,
    critique_map,
    NULL,
    NULL,
};
