/*
 * template.c - chat templates as text, and record identity.
 *
 * Templates here are plain text: `none` joins the context contents with
 * blank lines and leaves the response as it is; `hh` writes the
 * "\n\nHuman: " / "\n\nAssistant: " transcript form.  Neither adds special
 * tokens, so content can never become a control token.
 */
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "compile_internal.h"
#include "internal.h"

const char *const shard_template_names[] = {"none", "hh", NULL};

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

static int role_is(const shard_message *m, const char *role)
{
    return m->role_len == strlen(role) &&
           memcmp(m->role, role, m->role_len) == 0;
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

        bad |= shard_strbuf_append(p, tag, strlen(tag));
        bad |= shard_strbuf_append(p, m[i].content, m[i].content_len);
    }
    bad |= shard_strbuf_append(p, "\n\nAssistant:", 12);
    return bad ? SHARD_ENOMEM : 0;
}

int shard_template_render(const char *name, const shard_message *m,
                          size_t n, shard_strbuf *prompt,
                          shard_strbuf *response)
{
    const shard_message *r = &m[n - 1];
    int rc;

    prompt->len = response->len = 0;
    if (strcmp(name, "none") == 0)
        rc = render_none(m, n, prompt);
    else if (strcmp(name, "hh") == 0)
        rc = render_hh(m, n, prompt);
    else
        return SHARD_ENOTFOUND;
    if (rc == 0 && strcmp(name, "hh") == 0)
        rc = shard_strbuf_append(response, " ", 1);
    if (rc == 0)
        rc = shard_strbuf_append(response, r->content, r->content_len);
    return rc;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Feeds content with ends trimmed and inner whitespace runs folded. */
static void hash_folded(XXH3_state_t *st, const char *s, size_t n)
{
    size_t i = 0, start;
    int first = 1;

    while (i < n) {
        while (i < n && is_ws((unsigned char)s[i]))
            i++;
        if (i == n)
            break;
        start = i;
        while (i < n && !is_ws((unsigned char)s[i]))
            i++;
        if (!first)
            XXH3_64bits_update(st, " ", 1);
        XXH3_64bits_update(st, s + start, i - start);
        first = 0;
    }
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
        hash_folded(&st, m[i].content, m[i].content_len);
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

uint64_t shard_pair_id(uint64_t prompt_id, uint64_t chosen,
                       uint64_t rejected)
{
    uint64_t v[3] = {prompt_id, chosen, rejected};
    uint64_t h = XXH3_64bits(v, sizeof(v));

    return h ? h : 1;
}
