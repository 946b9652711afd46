/*
 * cmd_tokenize.c - shard tokenize [--tokenizer T] [--template T] [FILE]
 *
 * Reads JSON lines (from FILE or stdin) and writes one line for each:
 *   - a string: the JSON array of its ids;
 *   - with --template, an array of {"role", "content"} messages, the last
 *     being the response: {"ids": [...], "prompt_len": N}, the ids the
 *     compiler stores for such a record;
 *   - with --decode, an array of ids: the JSON string they decode to
 *     (bytes that are not UTF-8 come out as U+FFFD).
 * A line that is none of these is reported as `FILE:LINE: what`, and the
 * command goes on; the exit status is then 1.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compile_internal.h"
#include "internal.h"
#include "json.h"
#include "pretok.h"
#include "shard_tokenizer.h"

typedef struct {
    shard_tokenizer *tok;
    shard_template *tpl;
    shard_json_parser *json;
    int added;
    shard_tokens ids;
    shard_strbuf prompt, response;
    char *text;
    size_t text_len, text_cap;
    shard_message *msgs;
    size_t msgs_cap;
} tokenize_ctx;

static void print_ids(const uint32_t *ids, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++)
        printf(i ? ",%u" : "%u", ids[i]);
    putchar(']');
}

static int encode_string(tokenize_ctx *t, shard_json_value v,
                         const char **why)
{
    const char *s;
    size_t n;
    int rc;

    if (!shard_json_get_string(v, &s, &n)) {
        *why = "expected a JSON string";
        return SHARD_EINPUT;
    }
    t->ids.len = 0;
    rc = t->added ? shard_tokenizer_encode_added(t->tok, s, n, &t->ids)
                  : shard_tokenizer_encode(t->tok, s, n, &t->ids);
    if (rc == 0) {
        print_ids(t->ids.ids, t->ids.len);
        putchar('\n');
    }
    return rc;
}

/* Reads [{"role", "content"}, ...] into t->msgs; returns the count, or 0
 * when the value is not such an array. */
static size_t read_messages(tokenize_ctx *t, shard_json_value v)
{
    shard_json_iter it;
    shard_json_value m, role, content;
    size_t n = 0;

    if (!shard_json_array_iter(v, &it) || shard_json_size(v) == 0)
        return 0;
    if (shard_grow((void **)&t->msgs, &t->msgs_cap, shard_json_size(v),
                   sizeof(*t->msgs)))
        return 0;
    while (shard_json_array_next(&it, &m)) {
        shard_message *d = &t->msgs[n++];

        if (!shard_json_get(m, "role", 4, &role) ||
            !shard_json_get_string(role, &d->role, &d->role_len) ||
            !shard_json_get(m, "content", 7, &content) ||
            !shard_json_get_string(content, &d->content, &d->content_len))
            return 0;
    }
    return n;
}

static int encode_messages(tokenize_ctx *t, shard_json_value v,
                           const char **why)
{
    size_t n = read_messages(t, v), prompt_len;
    int rc;

    if (n == 0) {
        *why = "expected an array of {\"role\", \"content\"} messages";
        return SHARD_EINPUT;
    }
    t->ids.len = 0;
    rc = shard_template_render(t->tpl, t->msgs, n, &t->prompt, &t->response);
    if (rc == 0)
        rc = shard_template_encode(t->tok, t->prompt.p, t->prompt.len,
                                   t->added, &t->ids);
    prompt_len = t->ids.len;
    if (rc == 0)
        rc = shard_template_encode(t->tok, t->response.p, t->response.len,
                                   t->added, &t->ids);
    if (rc == 0) {
        fputs("{\"ids\":", stdout);
        print_ids(t->ids.ids, t->ids.len);
        printf(",\"prompt_len\":%zu}\n", prompt_len);
    }
    return rc;
}

static int decode_ids(tokenize_ctx *t, shard_json_value v, const char **why)
{
    shard_json_iter it;
    shard_json_value e;
    int64_t id;
    int rc;

    t->ids.len = 0;
    if (!shard_json_array_iter(v, &it)) {
        *why = "expected a JSON array of ids";
        return SHARD_EINPUT;
    }
    while (shard_json_array_next(&it, &e)) {
        if (!shard_json_get_int64(e, &id) || id < 0 || id > UINT32_MAX) {
            *why = "expected a JSON array of ids";
            return SHARD_EINPUT;
        }
        if (shard_grow((void **)&t->ids.ids, &t->ids.cap, t->ids.len + 1,
                       sizeof(*t->ids.ids)))
            return SHARD_ENOMEM;
        t->ids.ids[t->ids.len++] = (uint32_t)id;
    }

    t->text_len = 0;
    rc = shard_tokenizer_decode(t->tok, t->ids.ids, t->ids.len, &t->text,
                                &t->text_len, &t->text_cap);
    if (rc == SHARD_EINVAL) {
        *why = "an id has no token";
        return SHARD_EINPUT;
    }
    if (rc == 0) {
        char *fixed = malloc(3 * t->text_len + 1);
        size_t replaced = 0, n;

        if (!fixed)
            return SHARD_ENOMEM;
        n = shard_utf8_repair(fixed, t->text, t->text_len, &replaced);
        shard_json_write_string(stdout, fixed, n);
        putchar('\n');
        free(fixed);
    }
    return rc;
}

/* Handles one input line; returns 0, SHARD_EINPUT after reporting the
 * line, or another negative code that ends the command. */
static int tokenize_line(tokenize_ctx *t, int decode, const char *where,
                         size_t lineno, char *line, size_t n)
{
    const char *why = NULL;
    shard_json_value v;
    int rc;

    rc = shard_json_parse(t->json, line, n, &v);
    if (rc == SHARD_EINPUT)
        why = shard_json_errmsg(t->json);
    else if (rc == 0 && decode)
        rc = decode_ids(t, v, &why);
    else if (rc == 0 && t->tpl)
        rc = encode_messages(t, v, &why);
    else if (rc == 0)
        rc = encode_string(t, v, &why);
    if (rc == SHARD_EINPUT)
        cli_warn("%s:%zu: %s", where, lineno, why);
    else if (rc < 0)
        cli_error("tokenize: %s", shard_strerror(rc));
    return rc;
}

static int tokenize_stream(tokenize_ctx *t, FILE *f, const char *where,
                           int decode)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int bad = 0, rc = 0;

    while (rc >= 0 && (got = getline(&line, &cap, f)) >= 0) {
        size_t n = (size_t)got;

        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        /* The parser reads up to SHARD_JSON_PADDING bytes past the end. */
        if (cap < n + SHARD_JSON_PADDING) {
            char *p = realloc(line, n + SHARD_JSON_PADDING);

            if (!p) {
                rc = SHARD_ENOMEM;
                break;
            }
            line = p;
            cap = n + SHARD_JSON_PADDING;
        }
        rc = tokenize_line(t, decode, where, lineno, line, n);
        bad |= rc == SHARD_EINPUT;
        if (rc == SHARD_EINPUT)
            rc = 0;
    }
    free(line);
    return rc < 0 ? rc : bad;
}

static int tokenize_setup(tokenize_ctx *t, const char *spec,
                          const char *template_name)
{
    char missing[256];
    int rc;

    if (shard_tokenizer_open(&t->tok, spec) < 0) {
        cli_error("tokenize: %s", shard_last_error());
        return -1;
    }
    if (shard_json_parser_new(&t->json) < 0) {
        cli_error("tokenize: out of memory");
        return -1;
    }
    if (!template_name)
        return 0;
    rc = shard_template_open(&t->tpl, template_name, t->tok, missing,
                             sizeof(missing));
    if (rc == SHARD_ENOTFOUND) {
        cli_error("tokenize: unknown template \"%s\" (known: none, hh, "
                  "chatml, qwen, llama3)", template_name);
        return -1;
    }
    if (rc < 0) {
        cli_error("tokenize: out of memory");
        return -1;
    }
    if (missing[0])
        cli_warn("template %s: tokenizer %s has no %s; written as text",
                 template_name, shard_tokenizer_name(t->tok), missing);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *spec = "cl100k_base", *template_name = NULL;
    int decode = 0, rc;
    tokenize_ctx t = {0};
    cli_option opts[] = {
        {"tokenizer", 't', OPT_STRING, &spec, "NAME|PATH",
         "tokenizer (default cl100k_base)"},
        {"template", 0, OPT_STRING, &template_name, "T",
         "lines are message arrays rendered with chat template T"},
        {"decode", 'd', OPT_FLAG, &decode, NULL,
         "lines are arrays of ids; print their text"},
        {"hf-added-tokens", 0, OPT_FLAG, &t.added, NULL,
         "special-token strings in text become tokens, as HF does"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"tokenize", "[FILE]",
                       "Tokenize JSON lines (strings, or message arrays "
                       "with --template), or decode arrays of ids.",
                       opts, 0, 1};
    char **operands;
    FILE *f = stdin;
    int n;

    if ((rc = cli_parse(&cmd, argc, argv, &operands, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (n == 1 && strcmp(operands[0], "-") != 0 &&
        !(f = fopen(operands[0], "rb"))) {
        cli_error("tokenize: %s: cannot open", operands[0]);
        free(operands);
        return EXIT_FAIL;
    }

    rc = tokenize_setup(&t, spec, template_name);
    if (rc == 0)
        rc = tokenize_stream(&t, f, n == 1 ? operands[0] : "<stdin>",
                             decode);
    if (f != stdin)
        fclose(f);
    free(operands);
    shard_template_close(t.tpl);
    shard_tokenizer_close(t.tok);
    shard_json_parser_free(t.json);
    shard_tokens_free(&t.ids);
    shard_strbuf_free(&t.prompt);
    shard_strbuf_free(&t.response);
    free(t.text);
    free(t.msgs);
    if (cli_flush_stdout("tokenize") < 0)
        return EXIT_FAIL;
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}
