/*
 * map.c - any JSON object, through a field mapping given on the command
 * line (--map) and, for scalar scores, a label rule (--label-rule):
 *
 *   --map 'prompt=question,response=answers.0.text,reward=rating'
 *   --label-rule 'rating>=7'            pos when it holds, neg otherwise
 *   --label-rule 'rating>=7;rating<=3'  pos, neg, and unl in between
 *
 * Targets: prompt (a string: one user message) or context (a message
 * list), system (a string put first), response (a string or a message),
 * label (read by shard_parse_label), reward (a number).  A source is a
 * dotted path of object keys and array indices.  response is required,
 * and so is one of label or --label-rule; with both, label wins where the
 * row has it.  The rule's field is a path too, and its value becomes the
 * reward unless reward is mapped.  Operators: >= > <= < == !=.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "schema.h"
#include "shard_compile.h"

enum { T_PROMPT, T_CONTEXT, T_SYSTEM, T_RESPONSE, T_LABEL, T_REWARD, T_N };

static const char *const target_names[T_N] = {
    "prompt", "context", "system", "response", "label", "reward"};

typedef struct {
    char path[128];
    char op[3];
    double value;
} condition;

typedef struct {
    char src[T_N][128]; /* "" when not mapped */
    condition rule[2];  /* pos when rule[0]; neg when rule[1] (or !rule[0]) */
    int n_rules;
    char rule_text[600];
} map_state;

/* Finds a dotted path: "a.b.2.c".  1 and *out when present. */
static int get_path(shard_json_value v, const char *path,
                    shard_json_value *out)
{
    while (*path) {
        size_t n = strcspn(path, ".");
        char *end;
        unsigned long idx = strtoul(path, &end, 10);

        if (shard_json_typeof(v) == SHARD_JSON_ARRAY &&
            end == path + n && n > 0) {
            shard_json_iter it;
            shard_json_value x;

            shard_json_array_iter(v, &it);
            do {
                if (!shard_json_array_next(&it, &x))
                    return 0;
            } while (idx--);
            v = x;
        } else if (!shard_json_get(v, path, n, &v)) {
            return 0;
        }
        path += n + (path[n] == '.');
    }
    *out = v;
    return shard_json_typeof(v) != SHARD_JSON_NULL;
}

static int parse_condition(const char *s, size_t n, condition *c)
{
    static const char *const ops[] = {">=", "<=", "==", "!=", ">", "<"};
    char buf[256], *end;

    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        char *at = strstr(buf, ops[i]);

        if (!at || at == buf || (size_t)(at - buf) >= sizeof(c->path))
            continue;
        snprintf(c->path, sizeof(c->path), "%.*s", (int)(at - buf), buf);
        if (c->path[strcspn(c->path, "<>=! \t")])
            return -1;
        snprintf(c->op, sizeof(c->op), "%s", ops[i]);
        c->value = strtod(at + strlen(ops[i]), &end);
        return end == at + strlen(ops[i]) || *end ? -1 : 0;
    }
    return -1;
}

static int holds(const condition *c, double x)
{
    switch (c->op[0]) {
    case '>':
        return c->op[1] ? x >= c->value : x > c->value;
    case '<':
        return c->op[1] ? x <= c->value : x < c->value;
    case '=':
        return x == c->value;
    default:
        return x != c->value;
    }
}

static int parse_mapping(map_state *st, const char *spec, char *err)
{
    while (spec && *spec) {
        size_t n = strcspn(spec, ","), k = strcspn(spec, "=");
        int t = 0;

        while (t < T_N && (strlen(target_names[t]) != k ||
                           strncmp(spec, target_names[t], k) != 0))
            t++;
        if (k >= n || t == T_N || n - k - 1 == 0 ||
            n - k - 1 >= sizeof(st->src[t]))
            return shard_errf(err, SHARD_EINVAL, "--map: bad entry \"%.*s\" "
                              "(expected TARGET=PATH, TARGET one of prompt, "
                              "context, system, response, label, reward)",
                              (int)n, spec);
        snprintf(st->src[t], sizeof(st->src[t]), "%.*s", (int)(n - k - 1),
                 spec + k + 1);
        spec += n + (spec[n] == ',');
    }
    return 0;
}

static int map_prepare(const void *options, void **state, char *err)
{
    const shard_compile_options *o = options;
    map_state *st = calloc(1, sizeof(*st));
    const char *r = o->label_rule;
    int rc;

    if (!st)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    *state = st;
    if ((rc = parse_mapping(st, o->field_map, err)) < 0)
        return rc;
    while (r && *r && st->n_rules < 2) {
        size_t n = strcspn(r, ";");

        if (parse_condition(r, n, &st->rule[st->n_rules++]) < 0)
            return shard_errf(err, SHARD_EINVAL, "--label-rule: bad "
                              "condition \"%.*s\" (expected PATH OP NUMBER)",
                              (int)n, r);
        r += n + (r[n] == ';');
    }
    if (!st->src[T_RESPONSE][0] || (!st->src[T_LABEL][0] && !st->n_rules))
        return shard_errf(err, SHARD_EINVAL, "format map needs --map with "
                          "response=PATH, and label=PATH or --label-rule");
    if (st->n_rules == 1)
        snprintf(st->rule_text, sizeof(st->rule_text),
                 "map: pos when %s%s%g, else neg", st->rule[0].path,
                 st->rule[0].op, st->rule[0].value);
    else if (st->n_rules == 2)
        snprintf(st->rule_text, sizeof(st->rule_text),
                 "map: pos when %s%s%g, neg when %s%s%g, else unl",
                 st->rule[0].path, st->rule[0].op, st->rule[0].value,
                 st->rule[1].path, st->rule[1].op, st->rule[1].value);
    return 0;
}

static void map_release(void *state)
{
    free(state);
}

static int map_detect(shard_json_value row)
{
    return 0; /* chosen with --format map only */
}

/* The context: system, then prompt or context. */
static int map_context(shard_emit *e, const map_state *st,
                       shard_json_value row, shard_msgs *l)
{
    shard_json_value v;
    const char *s;
    size_t n;

    if (st->src[T_SYSTEM][0] && get_path(row, st->src[T_SYSTEM], &v)) {
        if (!shard_json_get_string(v, &s, &n))
            return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE, "\"%s\" is "
                                   "not a string", st->src[T_SYSTEM]);
        if (shard_msgs_push(l, shard_msg("system", s, n)) < 0)
            return SHARD_ENOMEM;
    }
    if (st->src[T_CONTEXT][0]) {
        if (!get_path(row, st->src[T_CONTEXT], &v))
            return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                                   "missing field \"%s\"",
                                   st->src[T_CONTEXT]);
        return shard_read_messages(e, v, l, st->src[T_CONTEXT]);
    }
    if (!st->src[T_PROMPT][0])
        return 0;
    if (!get_path(row, st->src[T_PROMPT], &v))
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"%s\"", st->src[T_PROMPT]);
    if (!shard_json_get_string(v, &s, &n))
        return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                               "\"%s\" is not a string", st->src[T_PROMPT]);
    return shard_msgs_push(l, shard_msg("user", s, n));
}

static int map_response(shard_emit *e, const map_state *st,
                        shard_json_value row, shard_message *m)
{
    shard_json_value v;

    if (!get_path(row, st->src[T_RESPONSE], &v))
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"%s\"", st->src[T_RESPONSE]);
    if (shard_json_get_string(v, &m->content, &m->content_len)) {
        *m = shard_msg("assistant", m->content, m->content_len);
        return 0;
    }
    return shard_read_message(e, v, m, st->src[T_RESPONSE]);
}

/* A number at `path`: 1 found, 0 absent, or a failed row. */
static int map_number(shard_emit *e, shard_json_value row, const char *path,
                      double *d)
{
    shard_json_value v;

    if (!get_path(row, path, &v))
        return 0;
    if (shard_json_get_double(v, d))
        return 1;
    return shard_emit_fail(e, SHARD_REASON_WRONG_TYPE,
                           "\"%s\" is not a number", path);
}

/* The label from label=PATH, else from the rule (which sets *reward). */
static int map_label(shard_emit *e, const map_state *st,
                     shard_json_value row, double *reward)
{
    shard_json_value v;
    double x;
    int rc, label;

    if (st->src[T_LABEL][0] && get_path(row, st->src[T_LABEL], &v)) {
        if ((label = shard_parse_label(v)) < 0)
            return shard_emit_fail(e, SHARD_REASON_UNKNOWN_LABEL,
                                   "unknown label in \"%s\"",
                                   st->src[T_LABEL]);
        return label;
    }
    if (!st->n_rules)
        return shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                               "missing field \"%s\"", st->src[T_LABEL]);
    if ((rc = map_number(e, row, st->rule[0].path, &x)) <= 0)
        return rc < 0 ? rc : shard_emit_fail(e, SHARD_REASON_MISSING_FIELD,
                                             "missing field \"%s\"",
                                             st->rule[0].path);
    *reward = x;
    shard_emit_rule(e, st->rule_text);
    if (holds(&st->rule[0], x))
        return SHARD_LABEL_POS;
    if (st->n_rules == 1)
        return SHARD_LABEL_NEG;
    if ((rc = map_number(e, row, st->rule[1].path, &x)) < 0)
        return rc;
    return rc && holds(&st->rule[1], x) ? SHARD_LABEL_NEG : SHARD_LABEL_UNL;
}

static int map_map(shard_json_value row, shard_emit *e)
{
    const map_state *st = shard_emit_state(e);
    shard_msgs *ctx = shard_emit_scratch(e, 0);
    shard_message resp;
    double reward = NAN, r;
    int rc, label;

    if ((rc = map_context(e, st, row, ctx)) < 0 ||
        (rc = map_response(e, st, row, &resp)) < 0)
        return rc;
    if ((label = map_label(e, st, row, &reward)) < 0)
        return label;
    if (st->src[T_REWARD][0]) {
        if ((rc = map_number(e, row, st->src[T_REWARD], &r)) < 0)
            return rc;
        if (rc)
            reward = r;
    }
    return shard_emit_response(e, ctx->m, ctx->n, resp, label, reward);
}

const shard_format shard_format_map = {
    "map",
    "any object, through --map TARGET=PATH,... and --label-rule",
    map_detect,
    map_map,
    map_prepare,
    map_release,
};
