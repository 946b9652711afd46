/*
 * sharegpt_dpo.c - ShareGPT-style preference rows (LLaMA-Factory's
 * dpo_en_demo.json):
 *
 *   {"conversations": [{"from", "value"}...], "system"?: "...",
 *    "chosen": {"from", "value"} | "...", "rejected": {...} | "..."}
 *
 * The conversation is the context (after the optional system prompt); the
 * chosen reply becomes a pos record, the rejected one a neg record, and
 * the two a pair.  Messages are kept as they are.
 */
#include "schema.h"

static int dpo_detect(shard_json_value row)
{
    static const char *const keys[] = {"conversations", "chosen",
                                       "rejected", NULL};

    return shard_has_keys(row, keys);
}

/* A reply: a message object, or a bare string from the assistant. */
static int read_reply(shard_emit *e, shard_json_value row, const char *key,
                      shard_message *m)
{
    shard_json_value v;
    int rc;

    if ((rc = shard_need(e, row, key, &v)) < 0)
        return rc;
    if (shard_json_get_string(v, &m->content, &m->content_len)) {
        *m = shard_msg("assistant", m->content, m->content_len);
        return 0;
    }
    return shard_read_message(e, v, m, key);
}

static int dpo_map(shard_json_value row, shard_emit *e)
{
    shard_msgs *ctx = shard_emit_scratch(e, 0);
    shard_message chosen, rejected, sys;
    shard_json_value v;
    int rc;

    if (shard_get_string(row, "system", &sys.content,
                         &sys.content_len) == 1 &&
        shard_msgs_push(ctx, shard_msg("system", sys.content,
                                       sys.content_len)) < 0)
        return SHARD_ENOMEM;
    if ((rc = shard_need(e, row, "conversations", &v)) < 0 ||
        (rc = shard_read_messages(e, v, ctx, "conversations")) < 0 ||
        (rc = read_reply(e, row, "chosen", &chosen)) < 0 ||
        (rc = read_reply(e, row, "rejected", &rejected)) < 0)
        return rc;
    return shard_emit_comparison(e, ctx->m, ctx->n, chosen, rejected,
                                 __builtin_nan(""), __builtin_nan(""));
}

const shard_format shard_format_sharegpt_dpo = {
    "sharegpt-dpo",
    "{conversations, chosen, rejected}: ShareGPT preference pairs",
    dpo_detect,
    dpo_map,
    NULL,
    NULL,
};
