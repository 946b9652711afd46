/*
 * registry.c - the list of input schemas and helpers they share.
 */
#include <string.h>

#include "schema.h"

extern const shard_format shard_format_canonical;
extern const shard_format shard_format_hh_rlhf;

const shard_format *const shard_formats[] = {
    &shard_format_canonical,
    &shard_format_hh_rlhf,
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
