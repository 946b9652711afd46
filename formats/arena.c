/*
 * arena.c - Chatbot Arena battles, in two shapes:
 *
 *   {"model_a", "model_b", "winner": "model_a" | "model_b" | "tie" |
 *    "tie (bothbad)", "conversation_a": [msgs], "conversation_b": [msgs]}
 *       (lmsys/chatbot_arena_conversations, mt_bench_human_judgments)
 *   {"prompt": "[\"...\"]", "response_a": "[\"...\"]", "response_b": ...,
 *    "winner_model_a": 0|1, "winner_model_b": 0|1, "winner_tie": 0|1}
 *       (the Kaggle 55k set: prompt and responses are JSON-encoded lists
 *       of strings, one per turn; the conversation interleaves them)
 *
 * Each conversation's last message is its rated response, the messages
 * before it its context.  The winner is pos and the loser neg; a "tie"
 * makes both unl; "tie (bothbad)" makes both neg.  Winner and loser form
 * a pair when their contexts are equal (always in single-turn battles).
 */
#include "schema.h"

#define ARENA_RULE                                                          \
    "arena: winner pos, loser neg (paired when the contexts match); tie "   \
    "both unl; tie (bothbad) both neg"

enum { A_WINS, B_WINS, TIE, BOTH_BAD };

static int arena_detect(shard_json_value row)
{
    static const char *const lmsys[] = {"winner", "conversation_a",
                                        "conversation_b", NULL};
    static const char *const kaggle[] = {"response_a", "response_b",
                                         "winner_model_a", NULL};

    return shard_has_keys(row, lmsys) || shard_has_keys(row, kaggle);
}

static int lmsys_outcome(shard_emit *e, shard_json_value row, int *out)
{
    static const char *const names[] = {"model_a", "model_b", "tie",
                                        "tie (bothbad)"};
    const char *w;
    size_t n;
    int rc;

    if ((rc = shard_need_string(e, row, "winner", &w, &n)) < 0)
        return rc;
    for (int i = 0; i < 4; i++)
        if (strlen(names[i]) == n && memcmp(names[i], w, n) == 0) {
            *out = i;
            return 0;
        }
    return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                           "unknown winner \"%.*s\"",
                           (int)(n > 40 ? 40 : n), w);
}

static int kaggle_outcome(shard_emit *e, shard_json_value row, int *out)
{
    static const char *const keys[] = {"winner_model_a", "winner_model_b",
                                       "winner_tie"};
    shard_json_value v;
    int64_t x;
    int found = -1;

    for (int i = 0; i < 3; i++) {
        if (shard_need(e, row, keys[i], &v) < 0)
            return SHARD_EINPUT;
        if (!shard_json_get_int64(v, &x) || (x != 0 && x != 1))
            return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                                   "field \"%s\" is not 0 or 1", keys[i]);
        if (x == 1 && found >= 0)
            return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                                   "more than one winner flag set");
        if (x == 1)
            found = i;
    }
    if (found < 0)
        return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                               "no winner flag set");
    *out = found;
    return 0;
}

/* Interleaves user turns and assistant turns (lists of strings). */
static int interleave(shard_emit *e, shard_json_value user,
                      shard_json_value bot, shard_msgs *l)
{
    shard_json_iter iu, ib;
    shard_json_value u, b;
    shard_message m;

    if (!shard_json_array_iter(user, &iu) ||
        !shard_json_array_iter(bot, &ib) ||
        shard_json_size(user) != shard_json_size(bot))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "prompt and response are not lists of one "
                               "length");
    while (shard_json_array_next(&iu, &u) && shard_json_array_next(&ib, &b)) {
        if (!shard_json_get_string(u, &m.content, &m.content_len) ||
            shard_msgs_push(l, shard_msg("user", m.content,
                                         m.content_len)) < 0)
            return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                                   "a prompt turn is not a string");
        if (shard_json_typeof(b) == SHARD_JSON_NULL)
            m.content = "", m.content_len = 0;
        else if (!shard_json_get_string(b, &m.content, &m.content_len))
            return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                                   "a response turn is not a string");
        if (shard_msgs_push(l, shard_msg("assistant", m.content,
                                         m.content_len)) < 0)
            return SHARD_ENOMEM;
    }
    return 0;
}

/* Decodes the Kaggle form's three JSON-encoded lists into a and b. */
static int kaggle_conversations(shard_emit *e, shard_json_value row,
                                shard_msgs *a, shard_msgs *b)
{
    static const char *const keys[] = {"prompt", "response_a",
                                       "response_b"};
    shard_json_value doc, part[3];
    shard_json_iter it;
    const char *s[3];
    size_t n[3];
    int rc;

    for (int i = 0; i < 3; i++)
        if ((rc = shard_need_string(e, row, keys[i], &s[i], &n[i])) < 0)
            return rc;
    if ((rc = shard_emit_parse_list(e, s, n, 3, &doc)) < 0)
        return rc;
    shard_json_array_iter(doc, &it);
    for (int i = 0; i < 3; i++)
        shard_json_array_next(&it, &part[i]);
    if ((rc = interleave(e, part[0], part[1], a)) < 0)
        return rc;
    return interleave(e, part[0], part[2], b);
}

static int arena_map(shard_json_value row, shard_emit *e)
{
    static const int labels[4][2] = {
        {SHARD_LABEL_POS, SHARD_LABEL_NEG}, {SHARD_LABEL_NEG, SHARD_LABEL_POS},
        {SHARD_LABEL_UNL, SHARD_LABEL_UNL}, {SHARD_LABEL_NEG, SHARD_LABEL_NEG}};
    shard_msgs *c[2] = {shard_emit_scratch(e, 0), shard_emit_scratch(e, 1)};
    shard_json_value v;
    size_t first = shard_emit_count(e);
    int outcome = TIE, rc;

    if (shard_json_get(row, "winner", 6, &v)) {
        if ((rc = lmsys_outcome(e, row, &outcome)) < 0 ||
            (rc = shard_need(e, row, "conversation_a", &v)) < 0 ||
            (rc = shard_read_messages(e, v, c[0], "conversation_a")) < 0 ||
            (rc = shard_need(e, row, "conversation_b", &v)) < 0 ||
            (rc = shard_read_messages(e, v, c[1], "conversation_b")) < 0)
            return rc;
    } else if ((rc = kaggle_outcome(e, row, &outcome)) < 0 ||
               (rc = kaggle_conversations(e, row, c[0], c[1])) < 0)
        return rc;

    for (int k = 0; k < 2; k++) {
        if (c[k]->n == 0 ||
            !shard_role_is(&c[k]->m[c[k]->n - 1], "assistant"))
            return shard_emit_fail(e, SHARD_REASON_BAD_TRANSCRIPT,
                                   "conversation %c does not end with an "
                                   "assistant message", 'a' + k);
        if ((rc = shard_emit_record(e, c[k]->m, c[k]->n, labels[outcome][k],
                                    __builtin_nan(""), 0,
                                    SHARD_PAIR_NONE)) < 0)
            return rc;
    }
    shard_emit_rule(e, ARENA_RULE);
    if (outcome > B_WINS || c[0]->n != c[1]->n ||
        !shard_msgs_equal(c[0]->m, c[1]->m, c[0]->n - 1))
        return 0;
    return shard_emit_pair(e, first + (outcome == B_WINS),
                           first + (outcome == A_WINS));
}

const shard_format shard_format_arena = {
    "arena",
    "{winner, conversation_a, conversation_b} or the Kaggle {prompt, "
    "response_a/b, winner_*} form: Chatbot Arena battles",
    arena_detect,
    arena_map,
    NULL,
    NULL,
};
