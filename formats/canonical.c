/*
 * canonical.c - the canonical record, one JSON object per line:
 *
 *   {"context": [{"role": R, "content": C}, ...] | "prompt": "...",
 *    "response": "...", "label": L, "reward": 0.5, "id": "..."}
 *
 * `label` is read by shard_parse_label(); `reward` is optional; `id` is
 * accepted and not stored.  Messages are kept as they are (no trimming).
 */
#include <math.h>

#include "schema.h"

#define MAX_MESSAGES 1024

static int canonical_detect(shard_json_value row)
{
    shard_json_value v;

    return shard_json_get(row, "response", 8, &v) &&
           shard_json_get(row, "label", 5, &v);
}

static int read_context(shard_json_value row, shard_message *m, size_t *n,
                        shard_emit *e)
{
    shard_json_value ctx, msg, f;
    shard_json_iter it;

    *n = 0;
    if (shard_json_get(row, "context", 7, &ctx)) {
        if (!shard_json_array_iter(ctx, &it))
            return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                                   "\"context\" is not an array");
        while (shard_json_array_next(&it, &msg)) {
            if (*n == MAX_MESSAGES)
                return shard_emit_fail(e, SHARD_REASON_OVER_LIMIT,
                                       "more than %d messages",
                                       MAX_MESSAGES);
            if (!shard_json_get(msg, "role", 4, &f) ||
                !shard_json_get_string(f, &m[*n].role, &m[*n].role_len) ||
                !shard_json_get(msg, "content", 7, &f) ||
                !shard_json_get_string(f, &m[*n].content,
                                       &m[*n].content_len))
                return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                                       "context message %zu lacks string "
                                       "\"role\" and \"content\"", *n);
            (*n)++;
        }
        return 0;
    }
    switch (shard_get_string(row, "prompt", &m[0].content,
                             &m[0].content_len)) {
    case 1:
        m[0].role = "user";
        m[0].role_len = 4;
        *n = 1;
        return 0;
    case 0:
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"context\" or \"prompt\"");
    default:
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"prompt\" is not a string");
    }
}

static int canonical_map(shard_json_value row, shard_emit *e)
{
    static _Thread_local shard_message m[MAX_MESSAGES + 1];
    shard_json_value v;
    double reward = NAN;
    size_t n;
    int label, rc;

    if ((rc = read_context(row, m, &n, e)) < 0)
        return rc;
    switch (shard_get_string(row, "response", &m[n].content,
                             &m[n].content_len)) {
    case 0:
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"response\"");
    case -1:
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"response\" is not a string");
    }
    m[n].role = "assistant";
    m[n].role_len = 9;

    if (!shard_json_get(row, "label", 5, &v))
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"label\"");
    if ((label = shard_parse_label(v)) < 0) {
        const char *l;
        size_t ln;

        if (shard_json_get_string(v, &l, &ln))
            return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                                   "unknown label \"%.*s\"",
                                   (int)(ln > 40 ? 40 : ln), l);
        return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                               "unknown label (expected \"pos\", \"neg\", "
                               "\"unl\", true, false, 1, -1 or 0)");
    }
    if (shard_json_get(row, "reward", 6, &v) &&
        shard_json_typeof(v) != SHARD_JSON_NULL &&
        !shard_json_get_double(v, &reward))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"reward\" is not a number");
    return shard_emit_record(e, m, n + 1, label, reward, 0,
                             SHARD_PAIR_NONE);
}

const shard_format shard_format_canonical = {
    "canonical",
    "{context|prompt, response, label, reward?, id?} records",
    canonical_detect,
    canonical_map,
    NULL,
    NULL,
};
