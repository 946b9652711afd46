/*
 * oasst.c - OpenAssistant export trees, one tree per row:
 *
 *   {"message_tree_id", "prompt": {"text", "role": "prompter", "replies":
 *    [{"text", "role": "assistant", "emojis": {"+1": 3, ...}, "rank": 0,
 *      "deleted": false, "review_result": true, "replies": [...]}...]}}
 *
 * The rule, exactly:
 *   1. A message with "deleted": true or "review_result": false is
 *      dropped together with every reply below it (their context is gone).
 *   2. Every other assistant message is one record; its context is the
 *      path of messages from the root prompt down to its parent
 *      (prompter -> user, assistant -> assistant).
 *   3. Label from the votes in "emojis": up = "+1", down = "-1" plus
 *      "red_flag"; pos when up > down, neg when down > up, unl otherwise
 *      (no votes included).  Keys starting with "_" ("_skip_reply",
 *      "_skip_ranking", ...) are task events, not votes, and other emojis
 *      are not votes either.  The reward is up - down.
 *   4. Among the kept assistant replies to one message, the first one
 *      with "rank": 0 is paired, as chosen, with each sibling of rank
 *      1 or more, as rejected.  Siblings without a rank are in no pair.
 * A tree whose root is itself dropped, or has no assistant reply, is a
 * valid row with no records.
 */
#include "schema.h"

#define OASST_RULE                                                          \
    "oasst: pos when emojis \"+1\" > \"-1\" + \"red_flag\", neg when "      \
    "fewer, else unl; reward = the difference; \"_\" keys ignored"

static int oasst_detect(shard_json_value row)
{
    shard_json_value p, r;

    return shard_json_get(row, "prompt", 6, &p) &&
           shard_json_typeof(p) == SHARD_JSON_OBJECT &&
           shard_json_get(p, "replies", 7, &r);
}

static int is_dropped(shard_json_value msg)
{
    shard_json_value v;
    int b;

    if (shard_json_get(msg, "deleted", 7, &v) && shard_json_get_bool(v, &b)
        && b)
        return 1;
    return shard_json_get(msg, "review_result", 13, &v) &&
           shard_json_get_bool(v, &b) && !b;
}

static int64_t emoji(shard_json_value emojis, const char *name)
{
    shard_json_value v;
    int64_t n;

    if (shard_json_get(emojis, name, strlen(name), &v) &&
        shard_json_get_int64(v, &n) && n > 0)
        return n;
    return 0;
}

static int vote_label(shard_json_value msg, double *reward)
{
    shard_json_value em;
    int64_t up = 0, down = 0;

    if (shard_json_get(msg, "emojis", 6, &em)) {
        up = emoji(em, "+1");
        down = emoji(em, "-1") + emoji(em, "red_flag");
    }
    *reward = (double)(up - down);
    return up > down ? SHARD_LABEL_POS
                     : down > up ? SHARD_LABEL_NEG : SHARD_LABEL_UNL;
}

typedef struct {
    int64_t rank; /* -1 when none */
    size_t record;
} ranked;

static int walk(shard_emit *e, shard_json_value msg, shard_msgs *path,
                int64_t *rank, long *record);

/* Walks the replies of the message at the end of `path`; pairs them. */
static int walk_replies(shard_emit *e, shard_json_value msg,
                        shard_msgs *path)
{
    shard_json_value replies, r;
    shard_json_iter it;
    size_t n = 0, best = 0;
    ranked *kids;
    int rc, have_best = 0;

    if (!shard_json_get(msg, "replies", 7, &replies) ||
        shard_json_typeof(replies) == SHARD_JSON_NULL)
        return 0;
    if (!shard_json_array_iter(replies, &it))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "\"replies\" is not an array");
    kids = (ranked *)(void *)shard_emit_alloc(
        e, (shard_json_size(replies) + 1) * sizeof(*kids));
    if (!kids)
        return SHARD_ENOMEM;
    while (shard_json_array_next(&it, &r)) {
        int64_t rank;
        long rec;

        if ((rc = walk(e, r, path, &rank, &rec)) < 0)
            return rc;
        if (rec < 0 || rank < 0)
            continue;
        if (rank == 0 && !have_best) {
            have_best = 1;
            best = (size_t)rec;
            continue;
        }
        if (rank > 0)
            kids[n++] = (ranked){rank, (size_t)rec};
    }
    for (size_t i = 0; have_best && i < n; i++)
        if ((rc = shard_emit_pair(e, best, kids[i].record)) < 0)
            return rc;
    return 0;
}

/*
 * Emits the record of `msg` (when it is a kept assistant message) and of
 * its replies.  *record is its record's index or -1; *rank its rank or -1.
 */
static int walk(shard_emit *e, shard_json_value msg, shard_msgs *path,
                int64_t *rank, long *record)
{
    shard_message m;
    shard_json_value v;
    double reward;
    int rc, label;

    *rank = -1;
    *record = -1;
    if (shard_json_typeof(msg) != SHARD_JSON_OBJECT)
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "a message is not an object");
    if (is_dropped(msg))
        return 0;
    if (shard_get_string(msg, "role", &m.role, &m.role_len) != 1 ||
        shard_get_string(msg, "text", &m.content, &m.content_len) != 1)
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "a message lacks a string \"role\" or "
                               "\"text\"");
    if (shard_role_is(&m, "prompter"))
        m = shard_msg("user", m.content, m.content_len);
    else if (shard_role_is(&m, "assistant")) {
        m = shard_msg("assistant", m.content, m.content_len);
        label = vote_label(msg, &reward);
        *record = (long)shard_emit_count(e);
        if ((rc = shard_emit_response(e, path->m, path->n, m, label,
                                      reward)) < 0)
            return rc;
        shard_emit_rule(e, OASST_RULE);
        if (shard_json_get(msg, "rank", 4, &v))
            shard_json_get_int64(v, rank);
    }
    if (shard_msgs_push(path, m) < 0)
        return SHARD_ENOMEM;
    rc = walk_replies(e, msg, path);
    path->n--;
    return rc;
}

static int oasst_map(shard_json_value row, shard_emit *e)
{
    shard_msgs *path = shard_emit_scratch(e, 0);
    shard_json_value root;
    int64_t rank;
    long rec;
    int rc;

    if ((rc = shard_need(e, row, "prompt", &root)) < 0)
        return rc;
    return walk(e, root, path, &rank, &rec);
}

const shard_format shard_format_oasst = {
    "oasst",
    "OpenAssistant export trees: a record per assistant reply, labels "
    "from emoji votes, pairs from ranks",
    oasst_detect,
    oasst_map,
    NULL,
    NULL,
};
