/*
 * hh_rlhf.c - Anthropic HH-RLHF rows: {"chosen": T, "rejected": T}, where
 * each T is a transcript of "\n\nHuman: " and "\n\nAssistant: " turns.
 *
 * The two transcripts share every turn but the last, in principle.  In
 * practice model text sometimes contains role markers, so the split is not
 * taken from either transcript alone: the context ends at the last
 * "\n\nAssistant:" marker lying wholly inside the longest common prefix of
 * both, and each response is everything after it.  So both records get the
 * same context, and a response keeps any marker-like text it contains.
 * Every message, the responses included, is trimmed of ASCII whitespace.
 */
#include <string.h>

#include "schema.h"

#define HUMAN "\n\nHuman:"
#define ASSISTANT "\n\nAssistant:"
#define MAX_TURNS 256

static int starts_with(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);

    return n >= l && memcmp(s, lit, l) == 0;
}

/* Offset of the last ASSISTANT marker ending at or before `limit`. */
static long last_assistant(const char *s, size_t limit)
{
    size_t l = strlen(ASSISTANT);

    for (size_t i = limit >= l ? limit - l + 1 : 0; i-- > 0;)
        if (memcmp(s + i, ASSISTANT, l) == 0)
            return (long)i;
    return -1;
}

/* Splits the context s[0..n) into turns at each marker. */
static int split_turns(const char *s, size_t n, shard_message *m,
                       size_t *count, shard_emit *e)
{
    size_t i = 0, k = 0;

    if (!starts_with(s, n, HUMAN))
        return shard_emit_fail(e, SHARD_REASON_BAD_TRANSCRIPT,
                               "transcript does not start with a Human "
                               "turn");
    while (i < n) {
        int human = starts_with(s + i, n - i, HUMAN);
        size_t start = i + strlen(human ? HUMAN : ASSISTANT), end = start;

        while (end < n && !starts_with(s + end, n - end, HUMAN) &&
               !starts_with(s + end, n - end, ASSISTANT))
            end++;
        if (k == MAX_TURNS)
            return shard_emit_fail(e, SHARD_REASON_OVER_LIMIT,
                                   "more than %d turns", MAX_TURNS);
        m[k].role = human ? "user" : "assistant";
        m[k].role_len = strlen(m[k].role);
        m[k].content = s + start;
        m[k].content_len = end - start;
        shard_trim(&m[k].content, &m[k].content_len);
        k++;
        i = end;
    }
    *count = k;
    return 0;
}

static int hh_detect(shard_json_value row)
{
    const char *s;
    size_t n;

    return shard_get_string(row, "chosen", &s, &n) == 1 &&
           shard_get_string(row, "rejected", &s, &n) == 1 &&
           starts_with(s, n, HUMAN);
}

static int get_transcript(shard_json_value row, const char *key,
                          const char **s, size_t *n, shard_emit *e)
{
    int rc = shard_get_string(row, key, s, n);

    if (rc == 0)
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"%s\"", key);
    if (rc < 0)
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"%s\" is not a string", key);
    return 0;
}

static int hh_map(shard_json_value row, shard_emit *e)
{
    static _Thread_local shard_message m[MAX_TURNS + 1];
    const char *c, *r;
    size_t cn, rn, common = 0, turns = 0;
    long cut;
    int rc;

    if ((rc = get_transcript(row, "chosen", &c, &cn, e)) < 0 ||
        (rc = get_transcript(row, "rejected", &r, &rn, e)) < 0)
        return rc;
    while (common < cn && common < rn && c[common] == r[common])
        common++;
    if ((cut = last_assistant(c, common)) < 0)
        return shard_emit_fail(e, SHARD_REASON_BAD_TRANSCRIPT,
                               "chosen and rejected share no Assistant "
                               "turn");
    if ((rc = split_turns(c, (size_t)cut, m, &turns, e)) < 0)
        return rc;

    size_t skip = (size_t)cut + strlen(ASSISTANT);
    const char *texts[2] = {c + skip, r + skip};
    size_t lens[2] = {cn - skip, rn - skip};
    for (int side = 0; side < 2; side++) {
        m[turns] = (shard_message){"assistant", 9, texts[side], lens[side]};
        shard_trim(&m[turns].content, &m[turns].content_len);
        rc = shard_emit_record(e, m, turns + 1,
                               side ? SHARD_LABEL_NEG : SHARD_LABEL_POS,
                               __builtin_nan(""), 0,
                               side ? SHARD_PAIR_REJECTED
                                    : SHARD_PAIR_CHOSEN);
        if (rc < 0)
            return rc;
    }
    return 0;
}

const shard_format shard_format_hh_rlhf = {
    "hh-rlhf",
    "{chosen, rejected} Human/Assistant transcripts (Anthropic HH-RLHF)",
    hh_detect,
    hh_map,
    NULL,
    NULL,
};
