/*
 * kto.c - unpaired binary feedback (KTO): a conversation whose last
 * message is the rated response, and a desirability label.
 *
 *   {"messages": [{"role", "content"}...], "label": true|false}
 *       (LLaMA-Factory's kto_en_demo.json; "conversations" with ShareGPT
 *       {"from", "value"} turns and "kto_tag" are read the same way)
 *   {"prompt": "..." | [msgs], "completion": "..." | [msgs], "label": b}
 *       (TRL's unpaired preference form)
 *
 * The last message must come from the assistant; everything before it is
 * the context.  The label is read by shard_parse_label().
 */
#include "schema.h"

static const char *const msg_keys[] = {"messages", "conversations", NULL};

static int label_of(shard_json_value row, shard_json_value *v)
{
    return shard_json_get(row, "label", 5, v) ||
           shard_json_get(row, "kto_tag", 7, v);
}

static int kto_detect(shard_json_value row)
{
    shard_json_value v;

    if (!label_of(row, &v))
        return 0;
    for (int i = 0; msg_keys[i]; i++)
        if (shard_json_get(row, msg_keys[i], strlen(msg_keys[i]), &v) &&
            shard_json_typeof(v) == SHARD_JSON_ARRAY)
            return 1;
    return shard_json_get(row, "completion", 10, &v) &&
           shard_json_get(row, "prompt", 6, &v);
}

/* Appends a string (as one message of `role`) or a message list. */
static int read_turns(shard_emit *e, shard_json_value v, const char *role,
                      shard_msgs *l, const char *field)
{
    const char *s;
    size_t n;

    if (shard_json_get_string(v, &s, &n))
        return shard_msgs_push(l, shard_msg(role, s, n));
    return shard_read_messages(e, v, l, field);
}

static int read_conversation(shard_json_value row, shard_msgs *l,
                             shard_emit *e)
{
    shard_json_value v;
    int rc;

    for (int i = 0; msg_keys[i]; i++)
        if (shard_json_get(row, msg_keys[i], strlen(msg_keys[i]), &v))
            return shard_read_messages(e, v, l, msg_keys[i]);
    if ((rc = shard_need(e, row, "prompt", &v)) < 0 ||
        (rc = read_turns(e, v, "user", l, "prompt")) < 0 ||
        (rc = shard_need(e, row, "completion", &v)) < 0)
        return rc;
    return read_turns(e, v, "assistant", l, "completion");
}

static int kto_map(shard_json_value row, shard_emit *e)
{
    shard_msgs *l = shard_emit_scratch(e, 0);
    shard_json_value v;
    int rc, label;

    if ((rc = read_conversation(row, l, e)) < 0)
        return rc;
    if (l->n == 0 || !shard_role_is(&l->m[l->n - 1], "assistant"))
        return shard_emit_fail(e, SHARD_REASON_BAD_TRANSCRIPT,
                               "the last message is not the assistant's");
    if (!label_of(row, &v))
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"label\"");
    if ((label = shard_parse_label(v)) < 0)
        return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                               "unknown label (expected true or false)");
    return shard_emit_record(e, l->m, l->n, label, __builtin_nan(""), 0,
                             SHARD_PAIR_NONE);
}

const shard_format shard_format_kto = {
    "kto",
    "{messages|conversations, label|kto_tag} or {prompt, completion, "
    "label}: unpaired binary feedback",
    kto_detect,
    kto_map,
    NULL,
    NULL,
};
