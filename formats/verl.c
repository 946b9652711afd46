/*
 * verl.c - verifier-rewarded samples, as negative-sample reinforcement
 * (NSR) and GRPO-style training read them:
 *
 *   {"prompt": [{"role", "content"}...] | "...", "response": "...",
 *    "reward": 0 | 1}                       ("score" is read like "reward")
 *   {"prompt": ..., "responses": ["...", ...], "rewards": [0, 1, ...]}
 *
 * Rule: reward >= 1 is pos, reward <= 0 is neg, anything between is unl
 * (NSR-style trainers expect exactly 0 or 1; a fractional reward is kept
 * with its value and no label).  Other fields (data_source, ability,
 * reward_model, extra_info) are ignored.
 */
#include "schema.h"

#define VERL_RULE                                                           \
    "verl: pos when reward >= 1, neg when reward <= 0, unl in between"

static int verl_detect(shard_json_value row)
{
    shard_json_value v;

    return shard_json_get(row, "prompt", 6, &v) &&
           (shard_json_get(row, "reward", 6, &v) ||
            shard_json_get(row, "score", 5, &v) ||
            shard_json_get(row, "rewards", 7, &v));
}

static int reward_label(double r)
{
    return r >= 1.0 ? SHARD_LABEL_POS
                    : r <= 0.0 ? SHARD_LABEL_NEG : SHARD_LABEL_UNL;
}

static int emit_scored(shard_emit *e, const shard_msgs *ctx,
                       shard_json_value resp, shard_json_value reward,
                       size_t i)
{
    shard_message m;
    double r;

    if (!shard_json_get_string(resp, &m.content, &m.content_len))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "response %zu is not a string", i);
    if (!shard_json_get_double(reward, &r))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "reward %zu is not a number", i);
    shard_emit_rule(e, VERL_RULE);
    return shard_emit_response(e, ctx->m, ctx->n,
                               shard_msg("assistant", m.content,
                                         m.content_len),
                               reward_label(r), r);
}

static int emit_group(shard_emit *e, const shard_msgs *ctx,
                      shard_json_value row)
{
    shard_json_value resps, rewards, a, b;
    shard_json_iter ia, ib;
    size_t i = 0;
    int rc;

    if ((rc = shard_need(e, row, "responses", &resps)) < 0 ||
        (rc = shard_need(e, row, "rewards", &rewards)) < 0)
        return rc;
    if (!shard_json_array_iter(resps, &ia) ||
        !shard_json_array_iter(rewards, &ib) ||
        shard_json_size(resps) != shard_json_size(rewards))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "\"responses\" and \"rewards\" are not "
                               "arrays of one length");
    while (shard_json_array_next(&ia, &a) && shard_json_array_next(&ib, &b))
        if ((rc = emit_scored(e, ctx, a, b, i++)) < 0)
            return rc;
    return 0;
}

static int verl_map(shard_json_value row, shard_emit *e)
{
    shard_msgs *ctx = shard_emit_scratch(e, 0);
    shard_json_value p, resp, reward;
    const char *s;
    size_t n;
    int rc;

    if ((rc = shard_need(e, row, "prompt", &p)) < 0)
        return rc;
    if (shard_json_get_string(p, &s, &n))
        rc = shard_msgs_push(ctx, shard_msg("user", s, n));
    else
        rc = shard_read_messages(e, p, ctx, "prompt");
    if (rc < 0)
        return rc;
    if (!shard_json_get(row, "response", 8, &resp))
        return emit_group(e, ctx, row);
    if (!shard_json_get(row, "reward", 6, &reward) &&
        (rc = shard_need(e, row, "score", &reward)) < 0)
        return rc;
    return emit_scored(e, ctx, resp, reward, 0);
}

const shard_format shard_format_verl = {
    "verl",
    "{prompt, response, reward 0|1} or {prompt, responses, rewards}: "
    "verifier rewards",
    verl_detect,
    verl_map,
    NULL,
    NULL,
};
