/*
 * pku_saferlhf.c - PKU-SafeRLHF rows:
 *
 *   {"prompt": "...", "response_0": "...", "response_1": "...",
 *    "is_response_0_safe": bool, "is_response_1_safe": bool,
 *    "safer_response_id": 0|1, "better_response_id": 0|1, ...}
 *
 * Each response is a record labelled by its own safety flag: pos when
 * safe, neg when unsafe (both may be unsafe), reward 1 or 0.  The safer
 * response is paired, as chosen, with the other.  The helpfulness axis
 * (better_response_id) is checked to be 0 or 1 and not stored.
 */
#include "schema.h"

#define PKU_RULE                                                            \
    "pku-saferlhf: pos when is_response_k_safe, else neg; pair: "           \
    "safer_response_id over the other"

static int pku_detect(shard_json_value row)
{
    static const char *const keys[] = {"prompt", "response_0", "response_1",
                                       NULL};

    return shard_has_keys(row, keys);
}

static int need_bool(shard_emit *e, shard_json_value row, const char *key,
                     int *b)
{
    shard_json_value v;
    int rc;

    if ((rc = shard_need(e, row, key, &v)) < 0)
        return rc;
    if (!shard_json_get_bool(v, b))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"%s\" is not a boolean", key);
    return 0;
}

static int need_id(shard_emit *e, shard_json_value row, const char *key,
                   int64_t *id)
{
    shard_json_value v;
    int rc;

    if ((rc = shard_need(e, row, key, &v)) < 0)
        return rc;
    if (!shard_json_get_int64(v, id) || (*id != 0 && *id != 1))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"%s\" is not 0 or 1", key);
    return 0;
}

static int pku_map(shard_json_value row, shard_emit *e)
{
    static const char *const resp[2] = {"response_0", "response_1"};
    static const char *const safe[2] = {"is_response_0_safe",
                                        "is_response_1_safe"};
    shard_message ctx, m[2];
    int64_t safer, better;
    int ok[2], rc;

    if ((rc = shard_need_string(e, row, "prompt", &ctx.content,
                                &ctx.content_len)) < 0)
        return rc;
    ctx = shard_msg("user", ctx.content, ctx.content_len);
    for (int k = 0; k < 2; k++) {
        if ((rc = shard_need_string(e, row, resp[k], &m[k].content,
                                    &m[k].content_len)) < 0 ||
            (rc = need_bool(e, row, safe[k], &ok[k])) < 0)
            return rc;
        m[k] = shard_msg("assistant", m[k].content, m[k].content_len);
    }
    if ((rc = need_id(e, row, "safer_response_id", &safer)) < 0 ||
        (rc = need_id(e, row, "better_response_id", &better)) < 0)
        return rc;
    for (int k = 0; k < 2; k++)
        if ((rc = shard_emit_response(e, &ctx, 1, m[k],
                                      ok[k] ? SHARD_LABEL_POS
                                            : SHARD_LABEL_NEG,
                                      ok[k] ? 1.0 : 0.0)) < 0)
            return rc;
    shard_emit_rule(e, PKU_RULE);
    return shard_emit_pair(e, (size_t)safer, (size_t)(1 - safer));
}

const shard_format shard_format_pku_saferlhf = {
    "pku-saferlhf",
    "{prompt, response_0/1, is_response_k_safe, safer_response_id}: "
    "safety labels and the safer-response pair",
    pku_detect,
    pku_map,
    NULL,
    NULL,
};
