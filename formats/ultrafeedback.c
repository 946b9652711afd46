/*
 * ultrafeedback.c - raw UltraFeedback rows (openbmb/UltraFeedback):
 *
 *   {"instruction": "...", "completions": [{"response": "...",
 *    "overall_score": 7.5, "annotations": {"helpfulness": {"Rating": "4",
 *    ...}, ...}, ...}, ...], ...}
 *
 * Each completion is a record in the context of the instruction.  Its
 * score is "overall_score" when that is a number, else the mean of the
 * numeric "Rating"s of its annotations; the reward is that score.  The
 * rule: completions with the row's highest score are pos, with its lowest
 * neg, others unl; when every score is equal (or missing) all are unl.
 * The first best is paired, as chosen, with the first worst.  A
 * completion without any score is unl and in no pair.  The binarized
 * form (prompt, chosen, rejected, score_*) is read by messages-pairs.
 */
#include <math.h>
#include <stdlib.h>

#include "schema.h"

#define UF_RULE                                                             \
    "ultrafeedback: score = overall_score, else mean annotation Rating; "   \
    "highest in the row pos, lowest neg, others unl; first best paired "    \
    "with first worst"

static int uf_detect(shard_json_value row)
{
    static const char *const keys[] = {"instruction", "completions", NULL};

    return shard_has_keys(row, keys);
}

/* Mean of the numeric "Rating" strings or numbers; NaN when none. */
static double mean_rating(shard_json_value annotations)
{
    shard_json_iter it;
    shard_json_value v, r;
    const char *k, *s;
    size_t kn, n;
    double sum = 0, x;
    int count = 0;

    if (!shard_json_object_iter(annotations, &it))
        return NAN;
    while (shard_json_object_next(&it, &k, &kn, &v)) {
        char buf[32], *end;

        if (!shard_json_get(v, "Rating", 6, &r))
            continue;
        if (!shard_json_get_double(r, &x)) {
            if (!shard_json_get_string(r, &s, &n) || n == 0 ||
                n >= sizeof(buf))
                continue;
            memcpy(buf, s, n);
            buf[n] = '\0';
            x = strtod(buf, &end);
            if (*end)
                continue; /* "N/A" */
        }
        sum += x;
        count++;
    }
    return count ? sum / count : NAN;
}

static double score_of(shard_json_value c)
{
    shard_json_value v;
    double d;

    if (shard_json_get(c, "overall_score", 13, &v) &&
        shard_json_get_double(v, &d))
        return d;
    if (shard_json_get(c, "annotations", 11, &v))
        return mean_rating(v);
    return NAN;
}

static int uf_map(shard_json_value row, shard_emit *e)
{
    shard_json_value list, c;
    shard_json_iter it;
    shard_message ctx, m;
    double lo = INFINITY, hi = -INFINITY;
    size_t first = shard_emit_count(e), best = 0, worst = 0, i = 0;
    int rc;

    if ((rc = shard_need_string(e, row, "instruction", &ctx.content,
                                &ctx.content_len)) < 0 ||
        (rc = shard_need(e, row, "completions", &list)) < 0)
        return rc;
    ctx = shard_msg("user", ctx.content, ctx.content_len);
    if (!shard_json_array_iter(list, &it))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"completions\" is not an array");
    while (shard_json_array_next(&it, &c)) {
        double s = score_of(c);

        if (shard_get_string(c, "response", &m.content,
                             &m.content_len) != 1)
            return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                                   "completion %zu lacks a string "
                                   "\"response\"", i);
        if ((rc = shard_emit_response(e, &ctx, 1,
                                      shard_msg("assistant", m.content,
                                                m.content_len),
                                      SHARD_LABEL_UNL, s)) < 0)
            return rc;
        if (s > hi)
            hi = s, best = i;
        if (s < lo)
            lo = s, worst = i;
        i++;
    }
    shard_emit_rule(e, UF_RULE);
    if (!(hi > lo))
        return 0;
    for (size_t k = first; k < first + i; k++) {
        double s = shard_emit_reward(e, k);

        if (s == hi)
            shard_emit_relabel(e, k, SHARD_LABEL_POS);
        else if (s == lo)
            shard_emit_relabel(e, k, SHARD_LABEL_NEG);
    }
    return shard_emit_pair(e, first + best, first + worst);
}

const shard_format shard_format_ultrafeedback = {
    "ultrafeedback",
    "{instruction, completions[{response, overall_score, annotations}]}: "
    "best pos, worst neg",
    uf_detect,
    uf_map,
    NULL,
    NULL,
};
