/*
 * registry.c - the list of input schemas and helpers they share.
 */
#include <stdio.h>
#include <string.h>

#include "schema.h"

extern const shard_format shard_format_canonical, shard_format_hh_rlhf,
    shard_format_kto, shard_format_sharegpt_dpo, shard_format_messages_pairs,
    shard_format_oasst, shard_format_verl, shard_format_ultrafeedback,
    shard_format_pku_saferlhf, shard_format_arena, shard_format_critique,
    shard_format_map;

/*
 * Detection tries these in order, so a schema whose fields are a subset
 * of another's comes after it: critique before canonical (both have
 * "response"), hh-rlhf (string transcripts) before messages-pairs.
 */
const shard_format *const shard_formats[] = {
    &shard_format_oasst,
    &shard_format_critique,
    &shard_format_canonical,
    &shard_format_kto,
    &shard_format_sharegpt_dpo,
    &shard_format_ultrafeedback,
    &shard_format_hh_rlhf,
    &shard_format_messages_pairs,
    &shard_format_pku_saferlhf,
    &shard_format_arena,
    &shard_format_verl,
    &shard_format_map,
    NULL,
};

static const char *const reason_names[SHARD_REASON_COUNT] = {
    "bad_json",      "bad_utf8",  "missing_field",  "wrong_type",
    "unknown_label", "over_limit", "bad_transcript",
};

const char *shard_reason_name(shard_reason r)
{
    return (unsigned)r < SHARD_REASON_COUNT ? reason_names[r] : "unknown";
}

const shard_format *shard_format_find(const char *name)
{
    for (size_t i = 0; shard_formats[i]; i++)
        if (strcmp(shard_formats[i]->name, name) == 0)
            return shard_formats[i];
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void shard_trim(const char **s, size_t *len)
{
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

int shard_get_string(shard_json_value obj, const char *key, const char **s,
                     size_t *len)
{
    shard_json_value v;

    if (!shard_json_get(obj, key, strlen(key), &v))
        return 0;
    return shard_json_get_string(v, s, len) ? 1 : -1;
}

static int label_word(const char *s, size_t n)
{
    static const struct {
        const char *word;
        int label;
    } words[] = {
        {"pos", SHARD_LABEL_POS},      {"positive", SHARD_LABEL_POS},
        {"chosen", SHARD_LABEL_POS},   {"good", SHARD_LABEL_POS},
        {"neg", SHARD_LABEL_NEG},      {"negative", SHARD_LABEL_NEG},
        {"rejected", SHARD_LABEL_NEG}, {"bad", SHARD_LABEL_NEG},
        {"unl", SHARD_LABEL_UNL},      {"unlabeled", SHARD_LABEL_UNL},
        {"neutral", SHARD_LABEL_UNL},
    };

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i].word) == n && memcmp(words[i].word, s, n) == 0)
            return words[i].label;
    return -1;
}

int shard_parse_label(shard_json_value v)
{
    const char *s;
    size_t n;
    int64_t i;
    int b;

    if (shard_json_get_string(v, &s, &n))
        return label_word(s, n);
    if (shard_json_get_bool(v, &b))
        return b ? SHARD_LABEL_POS : SHARD_LABEL_NEG;
    if (shard_json_typeof(v) == SHARD_JSON_INT &&
        shard_json_get_int64(v, &i)) {
        if (i == 1)
            return SHARD_LABEL_POS;
        if (i == -1)
            return SHARD_LABEL_NEG;
        if (i == 0)
            return SHARD_LABEL_UNL;
    }
    return -1;
}

/* ---- messages --------------------------------------------------------- */

shard_message shard_msg(const char *role, const char *s, size_t n)
{
    return (shard_message){role, strlen(role), s, n};
}

static int word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

static void normalise_role(shard_message *m)
{
    static const char *const user[] = {"human", "user", "prompter", NULL};
    static const char *const bot[] = {"gpt", "assistant", "bot", "model",
                                      NULL};

    for (int i = 0; user[i]; i++)
        if (word_is(m->role, m->role_len, user[i]))
            *m = shard_msg("user", m->content, m->content_len);
    for (int i = 0; bot[i]; i++)
        if (word_is(m->role, m->role_len, bot[i]))
            *m = shard_msg("assistant", m->content, m->content_len);
}

/* The text of one typed part: {"type": "text", "text"|"value": ...}. */
static int part_text(shard_emit *e, shard_json_value part, const char **s,
                     size_t *n, const char *what)
{
    const char *type;
    size_t tn;

    if (shard_get_string(part, "type", &type, &tn) == 1 &&
        !word_is(type, tn, "text"))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "%s has a content part of type \"%.*s\"",
                               what, (int)(tn > 32 ? 32 : tn), type);
    if (shard_get_string(part, "text", s, n) == 1 ||
        shard_get_string(part, "value", s, n) == 1)
        return 0;
    return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                           "%s has a content part without a \"text\" "
                           "string", what);
}

/* Joins the texts of typed content parts (no separator). */
static int read_parts(shard_emit *e, shard_json_value parts,
                      shard_message *out, const char *what)
{
    shard_json_iter it;
    shard_json_value p;
    const char *s;
    size_t n, total = 0, count = 0;
    char *buf;
    int rc;

    shard_json_array_iter(parts, &it);
    while (shard_json_array_next(&it, &p)) {
        if ((rc = part_text(e, p, &s, &n, what)) < 0)
            return rc;
        out->content = s;
        out->content_len = n;
        total += n;
        count++;
    }
    if (count == 0)
        out->content = "", out->content_len = 0;
    if (count <= 1)
        return 0;
    if (!(buf = shard_emit_alloc(e, total)))
        return SHARD_ENOMEM;
    out->content = buf;
    out->content_len = total;
    shard_json_array_iter(parts, &it);
    while (shard_json_array_next(&it, &p)) {
        part_text(e, p, &s, &n, what);
        memcpy(buf, s, n);
        buf += n;
    }
    return 0;
}

int shard_read_message(shard_emit *e, shard_json_value msg,
                       shard_message *out, const char *what)
{
    shard_json_value c;

    if (shard_json_typeof(msg) != SHARD_JSON_OBJECT)
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "%s is not an object", what);
    if (shard_get_string(msg, "role", &out->role, &out->role_len) != 1 &&
        shard_get_string(msg, "from", &out->role, &out->role_len) != 1)
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "%s lacks a string \"role\" or \"from\"",
                               what);
    normalise_role(out);
    if (!shard_json_get(msg, "content", 7, &c) &&
        !shard_json_get(msg, "value", 5, &c))
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "%s lacks \"content\" or \"value\"", what);
    if (shard_json_get_string(c, &out->content, &out->content_len))
        return 0;
    if (shard_json_typeof(c) == SHARD_JSON_ARRAY)
        return read_parts(e, c, out, what);
    return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                           "%s content is neither a string nor a list of "
                           "parts", what);
}

int shard_read_messages(shard_emit *e, shard_json_value arr, shard_msgs *l,
                        const char *field)
{
    shard_json_iter it;
    shard_json_value v;
    shard_message m;
    char what[96];
    int rc;

    if (!shard_json_array_iter(arr, &it))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"%s\" is not an array", field);
    while (shard_json_array_next(&it, &v)) {
        snprintf(what, sizeof(what), "%s[%zu]", field, l->n);
        if ((rc = shard_read_message(e, v, &m, what)) < 0)
            return rc;
        if (shard_msgs_push(l, m) < 0)
            return SHARD_ENOMEM;
    }
    return 0;
}

int shard_need(shard_emit *e, shard_json_value row, const char *key,
               shard_json_value *v)
{
    if (shard_json_get(row, key, strlen(key), v) &&
        shard_json_typeof(*v) != SHARD_JSON_NULL)
        return 0;
    return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                           "missing field \"%s\"", key);
}

int shard_need_string(shard_emit *e, shard_json_value row, const char *key,
                      const char **s, size_t *len)
{
    shard_json_value v;
    int rc;

    if ((rc = shard_need(e, row, key, &v)) < 0)
        return rc;
    if (!shard_json_get_string(v, s, len))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "field \"%s\" is not a string", key);
    return 0;
}

int shard_msgs_equal(const shard_message *a, const shard_message *b,
                     size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].role_len != b[i].role_len ||
            a[i].content_len != b[i].content_len ||
            memcmp(a[i].role, b[i].role, a[i].role_len) != 0 ||
            memcmp(a[i].content, b[i].content, a[i].content_len) != 0)
            return 0;
    return 1;
}

int shard_has_keys(shard_json_value row, const char *const *keys)
{
    shard_json_value v;

    for (size_t i = 0; keys[i]; i++)
        if (!shard_json_get(row, keys[i], strlen(keys[i]), &v))
            return 0;
    return 1;
}

int shard_msgs_push(shard_msgs *l, shard_message m)
{
    if (shard_grow((void **)&l->m, &l->cap, l->n + 1, sizeof(*l->m)))
        return SHARD_ENOMEM;
    l->m[l->n++] = m;
    return 0;
}

int shard_role_is(const shard_message *m, const char *role)
{
    return word_is(m->role, m->role_len, role);
}

int shard_emit_response(shard_emit *e, const shard_message *ctx, size_t n,
                        shard_message response, int label, double reward)
{
    shard_msgs *l = shard_emit_scratch(e, SHARD_SCRATCH_LISTS - 1);

    for (size_t i = 0; i < n; i++)
        if (shard_msgs_push(l, ctx[i]) < 0)
            return SHARD_ENOMEM;
    if (shard_msgs_push(l, response) < 0)
        return SHARD_ENOMEM;
    return shard_emit_record(e, l->m, l->n, label, reward, 0,
                             SHARD_PAIR_NONE);
}

int shard_emit_comparison(shard_emit *e, const shard_message *ctx, size_t n,
                          shard_message chosen, shard_message rejected,
                          double chosen_reward, double rejected_reward)
{
    size_t first = shard_emit_count(e);
    int rc;

    if ((rc = shard_emit_response(e, ctx, n, chosen, SHARD_LABEL_POS,
                                  chosen_reward)) < 0 ||
        (rc = shard_emit_response(e, ctx, n, rejected, SHARD_LABEL_NEG,
                                  rejected_reward)) < 0)
        return rc;
    return shard_emit_pair(e, first, first + 1);
}

int shard_get_number(shard_emit *e, shard_json_value row, const char *key,
                     double *d)
{
    shard_json_value v;

    if (!shard_json_get(row, key, strlen(key), &v) ||
        shard_json_typeof(v) == SHARD_JSON_NULL)
        return 0;
    if (shard_json_get_double(v, d))
        return 1;
    return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                           "field \"%s\" is not a number", key);
}
