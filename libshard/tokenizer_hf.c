/*
 * tokenizer_hf.c - loads a Hugging Face tokenizer.json with a byte-level
 * BPE model.
 *
 * Byte-level files store every token in an alphabet of 256 printable code
 * points, one per byte (GPT-2's bytes_to_unicode): the 188 bytes that are
 * printable Latin-1 stand for themselves, the other 68 for U+0100 onwards
 * in byte order.  The loader maps tokens back to bytes, so that encoding
 * works on the text's own bytes and needs no alphabet at run time.
 *
 * What is accepted is listed in shard_tokenizer.h.  Each refusal names the
 * part of the file that is not supported, because a file that loads must
 * give exactly the ids HF gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "internal.h"
#include "json.h"
#include "tokenizer_internal.h"

/* Split patterns as HF files spell them, and the built-in pattern each
 * means.  Ours differ in spelling only (see tokenizer.c). */
static const struct {
    const char *hf;
    const char *ours;
} hf_patterns[] = {
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
     "\\s+(?!\\S)|\\s+",
     shard_pattern_cl100k},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
     "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
     "\\s+(?!\\S)|\\s+",
     shard_pattern_qwen},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*"
     "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
     "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
     "\\s+(?!\\S)|\\s+",
     shard_pattern_o200k},
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
     "\\s+(?!\\S)|\\s+",
     shard_pattern_gpt2},
};

/* State of one load: the file's label, the parsed document and the
 * byte-level alphabet's inverse. */
typedef struct {
    const char *label;
    shard_tokenizer *t;
    int16_t byte_of[512]; /* code point -> byte, or -1 */
    const char *pattern;  /* built-in split pattern chosen */
    unsigned char *tmp;   /* scratch for one token's bytes */
    size_t tmp_cap;
} hf_load;

static void hf_alphabet(hf_load *h)
{
    int next = 256;

    for (int i = 0; i < 512; i++)
        h->byte_of[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 &&
                        b <= 0xac) || (b >= 0xae && b <= 0xff);

        h->byte_of[printable ? b : next++] = (int16_t)b;
    }
}

/*
 * Maps a token in the byte-level alphabet (s[0..n), UTF-8) to its bytes
 * in dst (n bytes suffice: each code point is at least one byte).
 * Returns the number of bytes, or -1 when a character is outside the
 * alphabet.
 */
static long hf_token_bytes(const hf_load *h, const char *s, size_t n,
                           unsigned char *dst)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;

    while (i < n) {
        unsigned cp;

        if (p[i] < 0x80) {
            cp = p[i++];
        } else if ((p[i] & 0xe0) == 0xc0 && i + 1 < n) {
            cp = (unsigned)(p[i] & 0x1f) << 6 | (p[i + 1] & 0x3f);
            i += 2;
        } else {
            return -1; /* the alphabet stops below U+0800 */
        }
        if (cp >= 512 || h->byte_of[cp] < 0)
            return -1;
        dst[o++] = (unsigned char)h->byte_of[cp];
    }
    return (long)o;
}

static int hf_string_is(shard_json_value v, const char *want)
{
    const char *s;
    size_t n;

    return shard_json_get_string(v, &s, &n) && n == strlen(want) &&
           memcmp(s, want, n) == 0;
}

/* The string member `key` of `obj` equals `want`. */
static int hf_member_is(shard_json_value obj, const char *key,
                        const char *want)
{
    shard_json_value v;

    return shard_json_get(obj, key, strlen(key), &v) &&
           hf_string_is(v, want);
}

/* The member `key` is absent, null, false or an empty string. */
static int hf_member_unset(shard_json_value obj, const char *key)
{
    shard_json_value v;
    const char *s;
    size_t n;
    int b;

    if (!shard_json_get(obj, key, strlen(key), &v))
        return 1;
    switch (shard_json_typeof(v)) {
    case SHARD_JSON_NULL:
        return 1;
    case SHARD_JSON_BOOL:
        return shard_json_get_bool(v, &b) && !b;
    case SHARD_JSON_STRING:
        return shard_json_get_string(v, &s, &n) && n == 0;
    default:
        return 0;
    }
}

static int hf_member_true(shard_json_value obj, const char *key)
{
    shard_json_value v;
    int b = 0;

    return shard_json_get(obj, key, strlen(key), &v) &&
           shard_json_get_bool(v, &b) && b;
}

static int hf_refuse(const hf_load *h, const char *what)
{
    return shard_set_last_error(SHARD_EINPUT, "%s: unsupported tokenizer: "
                                "%s", h->label, what);
}

static int hf_normalizer(hf_load *h, shard_json_value root)
{
    shard_json_value n, list, item;
    shard_json_iter it;

    if (!shard_json_get(root, "normalizer", 10, &n) ||
        shard_json_typeof(n) == SHARD_JSON_NULL)
        return 0;
    if (hf_member_is(n, "type", "NFC")) {
        h->t->nfc = 1;
        return 0;
    }
    if (hf_member_is(n, "type", "Sequence") &&
        shard_json_get(n, "normalizers", 11, &list) &&
        shard_json_array_iter(list, &it)) {
        while (shard_json_array_next(&it, &item)) {
            if (!hf_member_is(item, "type", "NFC"))
                return hf_refuse(h, "normalizer other than NFC");
            h->t->nfc = 1;
        }
        return 0;
    }
    return hf_refuse(h, "normalizer other than NFC");
}

/* A Split pre-tokenizer on one of the known patterns. */
static int hf_split(hf_load *h, shard_json_value split)
{
    shard_json_value pat, re;
    const char *s;
    size_t n;

    if (!(hf_member_is(split, "behavior", "Isolated") &&
          hf_member_unset(split, "invert")) &&
        !(hf_member_is(split, "behavior", "Removed") &&
          hf_member_true(split, "invert")))
        return hf_refuse(h, "Split behavior other than Isolated");
    if (!shard_json_get(split, "pattern", 7, &pat) ||
        !shard_json_get(pat, "Regex", 5, &re) ||
        !shard_json_get_string(re, &s, &n))
        return hf_refuse(h, "Split without a Regex pattern");

    for (size_t i = 0; i < sizeof(hf_patterns) / sizeof(*hf_patterns);
         i++) {
        if (strlen(hf_patterns[i].hf) == n &&
            memcmp(hf_patterns[i].hf, s, n) == 0) {
            h->pattern = hf_patterns[i].ours;
            return 0;
        }
    }
    return shard_set_last_error(SHARD_EINPUT, "%s: unsupported tokenizer: "
                                "Split pattern \"%.60s%s\" is none of the "
                                "GPT-2, cl100k/Llama-3, Qwen2 or o200k "
                                "patterns", h->label, s, n > 60 ? "..." : "");
}

static int hf_byte_level(hf_load *h, shard_json_value bl, int alone)
{
    if (!hf_member_is(bl, "type", "ByteLevel"))
        return hf_refuse(h, "pre_tokenizer is not byte-level");
    if (hf_member_true(bl, "add_prefix_space")) {
        if (!alone)
            return hf_refuse(h, "ByteLevel add_prefix_space after Split");
        h->t->prefix_space = 1;
    }
    if (alone && !hf_member_true(bl, "use_regex"))
        return hf_refuse(h, "ByteLevel without a split pattern");
    if (!alone && hf_member_true(bl, "use_regex"))
        return hf_refuse(h, "ByteLevel use_regex after Split");
    if (alone)
        h->pattern = shard_pattern_gpt2;
    return 0;
}

static int hf_pre_tokenizer(hf_load *h, shard_json_value root)
{
    shard_json_value pre, list, a, b;
    shard_json_iter it;
    int rc;

    if (!shard_json_get(root, "pre_tokenizer", 13, &pre) ||
        shard_json_typeof(pre) != SHARD_JSON_OBJECT)
        return hf_refuse(h, "no pre_tokenizer (not byte-level BPE)");
    if (hf_member_is(pre, "type", "ByteLevel"))
        return hf_byte_level(h, pre, 1);
    if (!hf_member_is(pre, "type", "Sequence") ||
        !shard_json_get(pre, "pretokenizers", 13, &list) ||
        shard_json_size(list) != 2 || !shard_json_array_iter(list, &it))
        return hf_refuse(h, "pre_tokenizer other than ByteLevel or "
                            "Sequence[Split, ByteLevel]");
    shard_json_array_next(&it, &a);
    shard_json_array_next(&it, &b);
    if (!hf_member_is(a, "type", "Split"))
        return hf_refuse(h, "pre_tokenizer other than ByteLevel or "
                            "Sequence[Split, ByteLevel]");
    if ((rc = hf_split(h, a)) != 0)
        return rc;
    return hf_byte_level(h, b, 0);
}

/* Checks the model's settings; the vocabulary and merges come later. */
static int hf_model(hf_load *h, shard_json_value model)
{
    if (!hf_member_is(model, "type", "BPE"))
        return hf_refuse(h, "model type is not BPE (WordPiece, Unigram "
                            "and WordLevel are not supported)");
    if (!hf_member_unset(model, "dropout"))
        return hf_refuse(h, "BPE dropout");
    if (!hf_member_unset(model, "continuing_subword_prefix") ||
        !hf_member_unset(model, "end_of_word_suffix"))
        return hf_refuse(h, "continuing_subword_prefix or "
                            "end_of_word_suffix");
    h->t->whole_piece = hf_member_true(model, "ignore_merges");
    return 0;
}

/* Token bytes of a vocabulary or merge string into h->tmp. */
static long hf_bytes(hf_load *h, const char *s, size_t n)
{
    if (shard_grow((void **)&h->tmp, &h->tmp_cap, n + 1, 1))
        return SHARD_ENOMEM;
    return hf_token_bytes(h, s, n, h->tmp);
}

static int hf_vocab(hf_load *h, shard_json_value model)
{
    shard_json_value vocab, v;
    shard_json_iter it;
    shard_bpe_entry *e = NULL;
    unsigned char *arena = NULL;
    size_t n = 0, used = 0, cap = 0, bad = 0;
    const char *key;
    size_t klen;
    int rc;

    if (!shard_json_get(model, "vocab", 5, &vocab) ||
        !shard_json_object_iter(vocab, &it))
        return hf_refuse(h, "model has no vocab object");
    e = malloc((shard_json_size(vocab) + 1) * sizeof(*e));
    if (!e)
        return SHARD_ENOMEM;

    while (shard_json_object_next(&it, &key, &klen, &v)) {
        int64_t id;
        long got = hf_bytes(h, key, klen);

        if (got == SHARD_ENOMEM) {
            rc = SHARD_ENOMEM;
            goto out;
        }
        if (got <= 0) {
            rc = shard_set_last_error(SHARD_EINPUT, "%s: unsupported "
                                      "tokenizer: vocab token \"%.*s\" is "
                                      "not in the byte-level alphabet",
                                      h->label, (int)(klen > 40 ? 40 : klen),
                                      key);
            goto out;
        }
        if (!shard_json_get_int64(v, &id) || id < 0 ||
            id >= SHARD_BPE_RANK_LIMIT) {
            rc = shard_set_last_error(SHARD_EINPUT, "%s: vocab token "
                                      "\"%.*s\": bad id", h->label,
                                      (int)(klen > 40 ? 40 : klen), key);
            goto out;
        }
        if (shard_grow((void **)&arena, &cap, used + (size_t)got, 1)) {
            rc = SHARD_ENOMEM;
            goto out;
        }
        memcpy(arena + used, h->tmp, (size_t)got);
        e[n++] = (shard_bpe_entry){(uint32_t)used, (uint32_t)got,
                                   (uint32_t)id};
        used += (size_t)got;
    }

    rc = shard_bpe_build(&h->t->bpe, arena, e, n, &bad);
    arena = NULL;
    if (rc == SHARD_EINPUT && bad == n)
        rc = hf_refuse(h, "a byte has no token (not byte-level)");
    else if (rc == SHARD_EINPUT)
        rc = shard_set_last_error(rc, "%s: vocab: id %u or its token "
                                  "appears twice", h->label, e[bad].rank);
out:
    free(arena);
    free(e);
    return rc;
}

/* The id of a merge side; -1 when it is not a token. */
static int64_t hf_side_id(hf_load *h, const char *s, size_t n)
{
    long got = hf_bytes(h, s, n);
    uint32_t id;

    if (got <= 0)
        return -1;
    id = shard_bpe_rank(&h->t->bpe, h->tmp, (size_t)got);
    return id == SHARD_BPE_NONE ? -1 : (int64_t)id;
}

/* Splits one merge, "a b" or ["a", "b"], into its two sides. */
static int hf_merge_sides(shard_json_value m, const char **a, size_t *an,
                          const char **b, size_t *bn)
{
    shard_json_iter it;
    shard_json_value x, y;
    const char *s, *sp;
    size_t n;

    if (shard_json_get_string(m, &s, &n)) {
        sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - s) - 1))
            return -1;
        *a = s;
        *an = (size_t)(sp - s);
        *b = sp + 1;
        *bn = n - *an - 1;
        return 0;
    }
    if (shard_json_size(m) != 2 || !shard_json_array_iter(m, &it))
        return -1;
    shard_json_array_next(&it, &x);
    shard_json_array_next(&it, &y);
    return shard_json_get_string(x, a, an) && shard_json_get_string(y, b, bn)
               ? 0
               : -1;
}

static int hf_merges(hf_load *h, shard_json_value model)
{
    shard_bpe *bpe = &h->t->bpe;
    shard_json_value merges, m;
    shard_json_iter it;
    uint32_t index = 0;
    int rc;

    if (!shard_json_get(model, "merges", 6, &merges) ||
        !shard_json_array_iter(merges, &it))
        return hf_refuse(h, "model has no merges array");
    if ((rc = shard_merges_init(&h->t->merges, shard_json_size(merges))))
        return rc;

    while (shard_json_array_next(&it, &m)) {
        const char *a, *b;
        size_t an, bn;
        int64_t left, right;
        uint32_t merged;

        if (hf_merge_sides(m, &a, &an, &b, &bn) != 0)
            return shard_set_last_error(SHARD_EINPUT, "%s: merge %u is "
                                        "neither \"a b\" nor [a, b]",
                                        h->label, index);
        left = hf_side_id(h, a, an);
        right = hf_side_id(h, b, bn);
        if (left < 0 || right < 0)
            return shard_set_last_error(SHARD_EINPUT, "%s: merge %u: a "
                                        "side is not in the vocab",
                                        h->label, index);

        /* The result is the two sides' bytes together. */
        size_t ln = bpe->tok_len[left], rn = bpe->tok_len[right];

        if (shard_grow((void **)&h->tmp, &h->tmp_cap, ln + rn, 1))
            return SHARD_ENOMEM;
        memcpy(h->tmp, bpe->arena + bpe->tok_off[left], ln);
        memcpy(h->tmp + ln, bpe->arena + bpe->tok_off[right], rn);
        merged = shard_bpe_rank(bpe, h->tmp, ln + rn);
        if (merged == SHARD_BPE_NONE)
            return shard_set_last_error(SHARD_EINPUT, "%s: merge %u: the "
                                        "result is not in the vocab",
                                        h->label, index);
        shard_merges_add(&h->t->merges, (uint32_t)left, (uint32_t)right,
                         index, merged);
        index++;
    }
    return 0;
}

static int hf_added(hf_load *h, shard_json_value root)
{
    shard_json_value list, a, content, idv;
    shard_json_iter it;
    const char *s;
    size_t n;
    int64_t id;
    int rc;

    if (!shard_json_get(root, "added_tokens", 12, &list) ||
        shard_json_typeof(list) == SHARD_JSON_NULL)
        return 0;
    if (!shard_json_array_iter(list, &it))
        return hf_refuse(h, "added_tokens is not an array");
    while (shard_json_array_next(&it, &a)) {
        if (!shard_json_get(a, "content", 7, &content) ||
            !shard_json_get_string(content, &s, &n) ||
            !shard_json_get(a, "id", 2, &idv) ||
            !shard_json_get_int64(idv, &id) || id < 0 || id > UINT32_MAX - 1)
            return hf_refuse(h, "added token without content or id");
        if (hf_member_true(a, "lstrip") || hf_member_true(a, "rstrip") ||
            hf_member_true(a, "single_word"))
            return shard_set_last_error(SHARD_EINPUT, "%s: unsupported "
                                        "tokenizer: added token \"%.*s\" "
                                        "has lstrip, rstrip or "
                                        "single_word", h->label,
                                        (int)(n > 40 ? 40 : n), s);
        if ((rc = shard_tok_add_special(h->t, s, n, (uint32_t)id)) != 0)
            return rc;
    }
    return 0;
}

/* Reads the parsed document into h->t. */
static int hf_read(hf_load *h, shard_json_value root)
{
    shard_json_value model;
    char err[SHARD_ERRMAX];
    int rc;

    if (!shard_json_get(root, "model", 5, &model) ||
        shard_json_typeof(model) != SHARD_JSON_OBJECT)
        return hf_refuse(h, "no model object (not a tokenizer.json)");
    if ((rc = hf_model(h, model)) || (rc = hf_normalizer(h, root)) ||
        (rc = hf_pre_tokenizer(h, root)) || (rc = hf_vocab(h, model)) ||
        (rc = hf_merges(h, model)) || (rc = hf_added(h, root)) ||
        (rc = shard_tok_finish_added(h->t, h->label)))
        return rc;
    if ((rc = shard_tok_compile_pattern(&h->t->split, h->pattern,
                                        shard_numbers_hf, err)) != 0)
        return shard_set_last_error(rc, "%s: %s", h->label, err);
    return 0;
}

int shard_tok_load_hf(shard_tokenizer *t, const char *path,
                      const char *label)
{
    hf_load h = {.label = label, .t = t};
    shard_json_parser *p = NULL;
    shard_json_value root;
    char *data = NULL;
    size_t size = 0;
    int rc;

    if ((rc = shard_tok_read_file(path, label, &data, &size)) != 0)
        return rc;
    t->kind = TOK_MERGES;
    t->hash = XXH3_64bits(data, size);
    hf_alphabet(&h);

    if ((rc = shard_json_parser_new(&p)) != 0) {
        rc = shard_set_last_error(rc, "%s: out of memory", label);
        goto out;
    }
    rc = shard_json_parse(p, data, size, &root);
    if (rc == SHARD_EINPUT)
        shard_set_last_error(rc, "%s: not JSON: %s", label,
                             shard_json_errmsg(p));
    else if (rc == 0 && shard_json_typeof(root) != SHARD_JSON_OBJECT)
        rc = hf_refuse(&h, "not a JSON object");
    else if (rc == 0)
        rc = hf_read(&h, root);
    if (rc == SHARD_ENOMEM)
        shard_set_last_error(rc, "%s: out of memory", label);
out:
    shard_json_parser_free(p);
    free(h.tmp);
    free(data);
    return rc;
}
