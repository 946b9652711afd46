/*
 * template.c - chat templates, and record identity.
 *
 * A template renders the context of a record into the prompt and the
 * response into what follows it.  Structural tokens (<|im_start|>,
 * <|eot_id|>, ...) are never written as text: the rendering holds a
 * marker, the byte 0xFF and then the token id in four little-endian bytes.
 * 0xFF never occurs in UTF-8, and message text has been checked as UTF-8
 * by the JSON parser, so content can never produce a marker.  Encoding
 * cuts the rendering at the markers, tokenizes each run of text whole and
 * puts the ids of the markers between them.
 *
 * The templates:
 *   none    contexts joined by blank lines; the response as it is
 *   hh      "\n\nHuman: " / "\n\nAssistant: " transcript, as in HH-RLHF
 *   chatml  <|im_start|>ROLE\nCONTENT<|im_end|>\n per message, then
 *           <|im_start|>assistant\n; the response ends with <|im_end|>
 *   qwen    chatml, with Qwen2.5's default system message when the
 *           context has none
 *   llama3  <|begin_of_text|>, then <|start_header_id|>ROLE
 *           <|end_header_id|>\n\n CONTENT<|eot_id|> per message (content
 *           trimmed, as Meta's template does), then the assistant header;
 *           the response ends with <|eot_id|>
 * A tokenizer without a structural token gets its text instead, and the
 * template says so (shard_template_open).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "compile_internal.h"
#include "dedup.h"
#include "internal.h"

const char *const shard_template_names[] = {"none", "hh", "chatml", "qwen",
                                            "llama3", NULL};

/* Structural tokens a template may use. */
typedef enum {
    TPL_IM_START,
    TPL_IM_END,
    TPL_BEGIN,
    TPL_HEADER_START,
    TPL_HEADER_END,
    TPL_EOT,
    TPL_TOKENS
} tpl_token;

static const char *const tpl_token_text[TPL_TOKENS] = {
    "<|im_start|>",        "<|im_end|>",        "<|begin_of_text|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
};

typedef enum { TPL_NONE, TPL_HH, TPL_CHATML, TPL_QWEN, TPL_LLAMA3 } tpl_kind;

struct shard_template {
    tpl_kind kind;
    int64_t id[TPL_TOKENS]; /* -1: written as text */
};

static const char qwen_system[] =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

#define TPL_MARK 0xff

int shard_strbuf_append(shard_strbuf *b, const char *s, size_t n)
{
    if (shard_grow((void **)&b->p, &b->cap, b->len + n + 1, 1))
        return SHARD_ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

void shard_strbuf_free(shard_strbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static int tpl_uses(tpl_kind k, tpl_token t)
{
    if (k == TPL_CHATML || k == TPL_QWEN)
        return t == TPL_IM_START || t == TPL_IM_END;
    return k == TPL_LLAMA3 && t != TPL_IM_START && t != TPL_IM_END;
}

int shard_template_open(shard_template **out, const char *name,
                        const shard_tokenizer *tok, char *missing,
                        size_t cap)
{
    shard_template *t;
    tpl_kind kind;
    size_t used = 0;

    *out = NULL;
    if (missing && cap)
        missing[0] = '\0';
    for (kind = TPL_NONE; shard_template_names[kind]; kind++)
        if (strcmp(shard_template_names[kind], name) == 0)
            break;
    if (!shard_template_names[kind])
        return SHARD_ENOTFOUND;
    if (!(t = calloc(1, sizeof(*t))))
        return SHARD_ENOMEM;

    t->kind = kind;
    for (int i = 0; i < TPL_TOKENS; i++) {
        t->id[i] = tpl_uses(kind, (tpl_token)i)
                       ? shard_tokenizer_special(tok, tpl_token_text[i])
                       : -1;
        if (tpl_uses(kind, (tpl_token)i) && t->id[i] < 0 && missing &&
            used < cap)
            used += (size_t)snprintf(missing + used, cap - used, "%s%s",
                                     used ? " " : "", tpl_token_text[i]);
    }
    *out = t;
    return 0;
}

void shard_template_close(shard_template *t)
{
    free(t);
}

int64_t shard_template_begin(const shard_template *t)
{
    return t->kind == TPL_LLAMA3 ? t->id[TPL_BEGIN] : -1;
}

int64_t shard_template_end(const shard_template *t)
{
    if (t->kind == TPL_CHATML || t->kind == TPL_QWEN)
        return t->id[TPL_IM_END];
    return t->kind == TPL_LLAMA3 ? t->id[TPL_EOT] : -1;
}

/* Appends a structural token: its marker, or its text. */
static int tpl_token_put(const shard_template *t, tpl_token k,
                         shard_strbuf *b)
{
    unsigned char mark[5] = {TPL_MARK};
    uint32_t id;

    if (t->id[k] < 0)
        return shard_strbuf_append(b, tpl_token_text[k],
                                   strlen(tpl_token_text[k]));
    id = (uint32_t)t->id[k];
    for (int i = 0; i < 4; i++)
        mark[1 + i] = (unsigned char)(id >> (8 * i));
    return shard_strbuf_append(b, (const char *)mark, 5);
}

static int tpl_text(shard_strbuf *b, const char *s)
{
    return shard_strbuf_append(b, s, strlen(s));
}

static int role_is(const shard_message *m, const char *role)
{
    return m->role_len == strlen(role) &&
           memcmp(m->role, role, m->role_len) == 0;
}

/*
 * Length of the white-space character that starts at s[0..n) (or ends
 * there, when `at_end`), 0 if none.  White space is what Python's
 * str.strip() removes, since the `| trim` of HF chat templates runs in
 * Python's Jinja: ASCII \t-\r, \x1c-\x1f and space, U+0085, U+00A0,
 * U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
 */
static size_t tpl_space(const char *str, size_t n, int at_end)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c;

    if (n == 0)
        return 0;
    c = at_end ? s[n - 1] : s[0];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20))
        return 1;
    if (n >= 2) {
        const unsigned char *p = at_end ? s + n - 2 : s;

        if (p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
            return 2;
    }
    if (n >= 3) {
        const unsigned char *p = at_end ? s + n - 3 : s;
        unsigned cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 |
                      (p[2] & 0x3fu);

        if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 &&
            (p[2] & 0xc0) == 0x80 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
             cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
             cp == 0x3000))
            return 3;
    }
    return 0;
}

static void tpl_trim(const char **s, size_t *n)
{
    size_t k;

    while ((k = tpl_space(*s, *n, 0)) > 0)
        *s += k, *n -= k;
    while ((k = tpl_space(*s, *n, 1)) > 0)
        *n -= k;
}

static int render_none(const shard_message *m, size_t n, shard_strbuf *p)
{
    int bad = 0;

    for (size_t i = 0; i + 1 < n; i++) {
        bad |= shard_strbuf_append(p, m[i].content, m[i].content_len);
        bad |= shard_strbuf_append(p, "\n\n", 2);
    }
    return bad ? SHARD_ENOMEM : 0;
}

static int render_hh(const shard_message *m, size_t n, shard_strbuf *p)
{
    int bad = 0;

    for (size_t i = 0; i + 1 < n; i++) {
        const char *tag = role_is(&m[i], "assistant") ? "\n\nAssistant: "
                          : role_is(&m[i], "system")  ? "\n\n"
                                                      : "\n\nHuman: ";

        bad |= tpl_text(p, tag);
        bad |= shard_strbuf_append(p, m[i].content, m[i].content_len);
    }
    bad |= tpl_text(p, "\n\nAssistant:");
    return bad ? SHARD_ENOMEM : 0;
}

static int chatml_turn(const shard_template *t, const char *role,
                       size_t role_len, const char *s, size_t n,
                       shard_strbuf *p)
{
    int bad = tpl_token_put(t, TPL_IM_START, p);

    bad |= shard_strbuf_append(p, role, role_len);
    bad |= tpl_text(p, "\n");
    bad |= shard_strbuf_append(p, s, n);
    bad |= tpl_token_put(t, TPL_IM_END, p);
    bad |= tpl_text(p, "\n");
    return bad;
}

static int render_chatml(const shard_template *t, const shard_message *m,
                         size_t n, shard_strbuf *p)
{
    int bad = 0;

    if (t->kind == TPL_QWEN && (n < 2 || !role_is(&m[0], "system")))
        bad |= chatml_turn(t, "system", 6, qwen_system,
                           strlen(qwen_system), p);
    for (size_t i = 0; i + 1 < n; i++)
        bad |= chatml_turn(t, m[i].role, m[i].role_len, m[i].content,
                           m[i].content_len, p);
    bad |= tpl_token_put(t, TPL_IM_START, p);
    bad |= tpl_text(p, "assistant\n");
    return bad ? SHARD_ENOMEM : 0;
}

static int llama3_header(const shard_template *t, const char *role,
                         size_t role_len, shard_strbuf *p)
{
    int bad = tpl_token_put(t, TPL_HEADER_START, p);

    bad |= shard_strbuf_append(p, role, role_len);
    bad |= tpl_token_put(t, TPL_HEADER_END, p);
    bad |= tpl_text(p, "\n\n");
    return bad;
}

static int render_llama3(const shard_template *t, const shard_message *m,
                         size_t n, shard_strbuf *p)
{
    int bad = tpl_token_put(t, TPL_BEGIN, p);

    for (size_t i = 0; i + 1 < n; i++) {
        const char *s = m[i].content;
        size_t len = m[i].content_len;

        tpl_trim(&s, &len);
        bad |= llama3_header(t, m[i].role, m[i].role_len, p);
        bad |= shard_strbuf_append(p, s, len);
        bad |= tpl_token_put(t, TPL_EOT, p);
    }
    bad |= llama3_header(t, "assistant", 9, p);
    return bad ? SHARD_ENOMEM : 0;
}

static int render_response(const shard_template *t, const shard_message *r,
                           shard_strbuf *b)
{
    const char *s = r->content;
    size_t n = r->content_len;
    int bad = 0;

    if (t->kind == TPL_HH)
        bad |= tpl_text(b, " ");
    if (t->kind == TPL_LLAMA3)
        tpl_trim(&s, &n);
    bad |= shard_strbuf_append(b, s, n);
    if (t->kind == TPL_CHATML || t->kind == TPL_QWEN)
        bad |= tpl_token_put(t, TPL_IM_END, b);
    if (t->kind == TPL_LLAMA3)
        bad |= tpl_token_put(t, TPL_EOT, b);
    return bad ? SHARD_ENOMEM : 0;
}

int shard_template_render(const shard_template *t, const shard_message *m,
                          size_t n, shard_strbuf *prompt,
                          shard_strbuf *response)
{
    int rc;

    prompt->len = response->len = 0;
    switch (t->kind) {
    case TPL_NONE:
        rc = render_none(m, n, prompt);
        break;
    case TPL_HH:
        rc = render_hh(m, n, prompt);
        break;
    case TPL_LLAMA3:
        rc = render_llama3(t, m, n, prompt);
        break;
    default:
        rc = render_chatml(t, m, n, prompt);
        break;
    }
    if (rc == 0)
        rc = render_response(t, &m[n - 1], response);
    return rc;
}

int shard_template_encode(const shard_tokenizer *tok, const char *s,
                          size_t n, int added, shard_tokens *out)
{
    const char *end = s + n;
    int rc = 0;

    while (rc == 0 && s < end) {
        const char *mark = memchr(s, TPL_MARK, (size_t)(end - s));
        size_t run = mark ? (size_t)(mark - s) : (size_t)(end - s);

        rc = added ? shard_tokenizer_encode_added(tok, s, run, out)
                   : shard_tokenizer_encode(tok, s, run, out);
        s += run;
        if (rc == 0 && mark && end - mark < 5)
            rc = SHARD_EINVAL;
        if (rc == 0 && mark) {
            const unsigned char *u = (const unsigned char *)mark + 1;

            if (shard_grow((void **)&out->ids, &out->cap, out->len + 1,
                           sizeof(*out->ids)))
                return SHARD_ENOMEM;
            out->ids[out->len++] = (uint32_t)u[0] | (uint32_t)u[1] << 8 |
                                   (uint32_t)u[2] << 16 |
                                   (uint32_t)u[3] << 24;
            s = mark + 5;
        }
    }
    return rc;
}

static void fold_into_xxh64(void *st, const char *p, size_t n)
{
    XXH3_64bits_update(st, p, n);
}

static uint64_t hash_messages(const shard_message *m, size_t n, int tag)
{
    XXH3_state_t st;
    unsigned char sep[2] = {0x1f, 0x1e};
    uint64_t h;

    XXH3_INITSTATE(&st);
    XXH3_64bits_reset_withSeed(&st, (uint64_t)tag);
    for (size_t i = 0; i < n; i++) {
        XXH3_64bits_update(&st, m[i].role, m[i].role_len);
        XXH3_64bits_update(&st, &sep[0], 1);
        shard_fold_ws(m[i].content, m[i].content_len, fold_into_xxh64,
                      &st);
        XXH3_64bits_update(&st, &sep[1], 1);
    }
    h = XXH3_64bits_digest(&st);
    return h ? h : 1;
}

uint64_t shard_prompt_id(const shard_message *m, size_t n_context)
{
    return hash_messages(m, n_context, 1);
}

uint64_t shard_record_id(const shard_message *m, size_t n)
{
    return hash_messages(m, n, 2);
}

/* XXH3-64 of the folded bytes: hash_messages() in one call. */
static uint64_t hash_folded_messages(const char *folded, size_t n, int tag)
{
    uint64_t h = XXH3_64bits_withSeed(folded, n, (uint64_t)tag);

    return h ? h : 1;
}

uint64_t shard_prompt_id_folded(const char *folded, size_t context_len)
{
    return hash_folded_messages(folded, context_len, 1);
}

uint64_t shard_record_id_folded(const char *folded, size_t n)
{
    return hash_folded_messages(folded, n, 2);
}

uint64_t shard_pair_id(uint64_t prompt_id, uint64_t chosen,
                       uint64_t rejected)
{
    uint64_t v[3] = {prompt_id, chosen, rejected};
    uint64_t h = XXH3_64bits(v, sizeof(v));

    return h ? h : 1;
}
