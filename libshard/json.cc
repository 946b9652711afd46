/*
 * json.cc - the C interface of json.h, implemented over simdjson's DOM.
 *
 * This is the only C++ file in libshard.  Every entry point is extern "C"
 * and no exception leaves it: simdjson is used through its error-code API
 * (calls that return simdjson_result and are read with .get()), and the two
 * places that allocate catch std::bad_alloc.
 *
 * Values and cursors are simdjson's own small handles (a document pointer
 * and a tape index) copied byte for byte into the opaque C structs, so they
 * need no cleanup and die with the document they point into.
 */
#include <simdjson.h>

#include <cctype>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>

#include "json.h"

/* internal.h has no C++ guards of its own. */
extern "C" {
#include "internal.h"
}

using simdjson::error_code;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

struct shard_json_parser {
    simdjson::dom::parser dom;
    shard_json_error kind;
    char msg[SHARD_ERRMAX];
};

namespace {

struct array_cursor {
    array::iterator at;
    array::iterator end;
};

struct object_cursor {
    object::iterator at;
    object::iterator end;
};

static_assert(SHARD_JSON_PADDING >= simdjson::SIMDJSON_PADDING,
              "SHARD_JSON_PADDING must cover simdjson's wide loads");
static_assert(std::is_trivially_copyable<element>::value &&
                  sizeof(element) <= sizeof(shard_json_value),
              "a dom::element must fit shard_json_value");
static_assert(std::is_trivially_copyable<array_cursor>::value &&
                  sizeof(array_cursor) <= sizeof(shard_json_iter),
              "an array cursor must fit shard_json_iter");
static_assert(std::is_trivially_copyable<object_cursor>::value &&
                  sizeof(object_cursor) <= sizeof(shard_json_iter),
              "an object cursor must fit shard_json_iter");

/*
 * simdjson stores a container's member count in 24 bits on its tape and
 * saturates it there; a count equal to this value means "this many or
 * more" and the members must be counted by walking them.
 */
constexpr size_t saturated_count = 0xFFFFFF;

/*
 * v must have come out of this interface for the parser's current document;
 * a zeroed or stale value points at freed or reused tape.
 */
element value_load(shard_json_value v)
{
    element e;

    std::memcpy(static_cast<void *>(&e), v.opaque, sizeof(e));
    return e;
}

shard_json_value value_store(element e)
{
    shard_json_value v;

    std::memset(&v, 0, sizeof(v));
    std::memcpy(v.opaque, static_cast<const void *>(&e), sizeof(e));
    return v;
}

template <typename Cursor> Cursor cursor_load(const shard_json_iter *it)
{
    Cursor c;

    std::memcpy(static_cast<void *>(&c), it->opaque, sizeof(c));
    return c;
}

template <typename Cursor>
void cursor_store(shard_json_iter *it, const Cursor &c)
{
    std::memset(it, 0, sizeof(*it));
    std::memcpy(it->opaque, static_cast<const void *>(&c), sizeof(c));
}

/* Value of four hex digits at s, or -1 when one of them is not hex. */
long hex4(const char *s)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        int c = static_cast<unsigned char>(s[i]);
        int d;

        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * simdjson reports every bad escape sequence as STRING_ERROR, whether it is
 * malformed ("\q", "\u12G4") or an unpaired UTF-16 surrogate ("\ud800"),
 * and json.h counts the second kind as an encoding error.  Stage 2 parses
 * strings in document order and stops at the first bad one, so rescanning
 * the input for the first bad escape finds the one that failed.  Returns
 * the byte offset of its backslash when that escape is an unpaired
 * surrogate, -1 otherwise.  Reads only the len bytes of the document.
 */
long find_unpaired_surrogate(const char *buf, size_t len)
{
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];

        if (!in_string || c != '\\') {
            if (c == '"')
                in_string = !in_string;
            continue;
        }
        if (i + 1 >= len)
            return -1;
        c = buf[++i];
        if (c != 'u') {
            if (c == '\0' || !std::strchr("\"\\/bfnrt", c))
                return -1;
            continue;
        }

        size_t at = i - 1;
        long cp = i + 4 < len ? hex4(buf + i + 1) : -1;

        if (cp < 0)
            return -1;
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return static_cast<long>(at);
        if (cp < 0xD800 || cp > 0xDBFF)
            continue;
        if (i + 6 < len && buf[i + 1] == '\\' && buf[i + 2] == 'u') {
            long low = hex4(buf + i + 3);

            if (low >= 0xDC00 && low <= 0xDFFF) {
                i += 6;
                continue;
            }
        }
        return static_cast<long>(at);
    }
    return -1;
}

shard_json_error error_kind(error_code err)
{
    switch (err) {
    case simdjson::SUCCESS:
        return SHARD_JSON_ERR_NONE;
    case simdjson::UTF8_ERROR:
        return SHARD_JSON_ERR_UTF8;
    case simdjson::DEPTH_ERROR:
        return SHARD_JSON_ERR_DEPTH;
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
        return SHARD_JSON_ERR_NUMBER;
    case simdjson::CAPACITY:
        return SHARD_JSON_ERR_SIZE;
    case simdjson::EMPTY:
        return SHARD_JSON_ERR_EMPTY;
    default:
        return SHARD_JSON_ERR_SYNTAX;
    }
}

/* Records a failed parse in p and returns the code shard_json_parse gives. */
int parse_failed(shard_json_parser *p, error_code err, const char *buf,
                 size_t len)
{
    if (err == simdjson::MEMALLOC) {
        p->kind = SHARD_JSON_ERR_NONE;
        return shard_errf(p->msg, SHARD_ENOMEM,
                          "out of memory parsing a %zu-byte JSON document",
                          len);
    }

    p->kind = error_kind(err);
    if (err == simdjson::STRING_ERROR) {
        long at = find_unpaired_surrogate(buf, len);

        if (at >= 0) {
            p->kind = SHARD_JSON_ERR_UTF8;
            return shard_errf(p->msg, SHARD_EINPUT,
                              "invalid JSON: unpaired UTF-16 surrogate "
                              "%.6s at byte %ld",
                              buf + at, at);
        }
    }

    /* simdjson's messages are capitalised sentences; ours are not. */
    const char *text = simdjson::error_message(err);
    size_t n = std::strlen(text);

    while (n > 0 && std::isspace(static_cast<unsigned char>(text[n - 1])))
        n--;
    return shard_errf(p->msg, SHARD_EINPUT, "invalid JSON: %c%.*s",
                      std::tolower(static_cast<unsigned char>(text[0])),
                      n > 0 ? static_cast<int>(n - 1) : 0,
                      n > 0 ? text + 1 : "");
}

template <typename Container> size_t count_members(Container c)
{
    size_t n = c.size();

    if (n < saturated_count)
        return n;
    n = 0;
    for (auto it = c.begin(), end = c.end(); it != end; ++it)
        n++;
    return n;
}

} // namespace

extern "C" {

int shard_json_parser_new(shard_json_parser **out)
{
    *out = nullptr;
    try {
        shard_json_parser *p = new shard_json_parser;

        p->kind = SHARD_JSON_ERR_NONE;
        p->msg[0] = '\0';
        *out = p;
        return SHARD_OK;
    } catch (const std::bad_alloc &) {
        return shard_set_last_error(SHARD_ENOMEM,
                                    "out of memory creating a JSON parser");
    }
}

void shard_json_parser_free(shard_json_parser *p)
{
    delete p;
}

/*
 * The buffer is never copied: the caller promises the padding, so simdjson
 * is told not to reallocate.  The parser's own buffers grow to fit each
 * document (up to simdjson's 4 GiB limit, CAPACITY beyond) and are kept
 * for the next one.
 */
int shard_json_parse(shard_json_parser *p, const char *buf, size_t len,
                     shard_json_value *root)
{
    element e;
    error_code err;

    try {
        err = p->dom.parse(buf, len, false).get(e);
    } catch (const std::bad_alloc &) {
        err = simdjson::MEMALLOC;
    }
    if (err != simdjson::SUCCESS)
        return parse_failed(p, err, buf, len);

    p->kind = SHARD_JSON_ERR_NONE;
    p->msg[0] = '\0';
    *root = value_store(e);
    return SHARD_OK;
}

const char *shard_json_errmsg(const shard_json_parser *p)
{
    return p->msg;
}

shard_json_error shard_json_last_error(const shard_json_parser *p)
{
    return p->kind;
}

shard_json_type shard_json_typeof(shard_json_value v)
{
    switch (value_load(v).type()) {
    case element_type::ARRAY:
        return SHARD_JSON_ARRAY;
    case element_type::OBJECT:
        return SHARD_JSON_OBJECT;
    case element_type::INT64:
        return SHARD_JSON_INT;
    case element_type::UINT64:
        return SHARD_JSON_UINT;
    case element_type::DOUBLE:
        return SHARD_JSON_DOUBLE;
    case element_type::STRING:
        return SHARD_JSON_STRING;
    case element_type::BOOL:
        return SHARD_JSON_BOOL;
    case element_type::NULL_VALUE:
    default:
        return SHARD_JSON_NULL;
    }
}

int shard_json_get(shard_json_value obj, const char *key, size_t keylen,
                   shard_json_value *out)
{
    object o;
    element e;

    if (value_load(obj).get_object().get(o) != simdjson::SUCCESS)
        return 0;
    /* at_key walks the members in order, so the first duplicate wins. */
    if (o.at_key(std::string_view(key, keylen)).get(e) != simdjson::SUCCESS)
        return 0;
    *out = value_store(e);
    return 1;
}

int shard_json_get_string(shard_json_value v, const char **s, size_t *len)
{
    std::string_view sv;

    if (value_load(v).get_string().get(sv) != simdjson::SUCCESS)
        return 0;
    *s = sv.data();
    *len = sv.size();
    return 1;
}

int shard_json_get_bool(shard_json_value v, int *b)
{
    bool x;

    if (value_load(v).get_bool().get(x) != simdjson::SUCCESS)
        return 0;
    *b = x;
    return 1;
}

/* Only INT: a UINT value is above INT64_MAX, and DOUBLE is not converted. */
int shard_json_get_int64(shard_json_value v, int64_t *i)
{
    element e = value_load(v);
    int64_t x;

    if (e.type() != element_type::INT64 ||
        e.get_int64().get(x) != simdjson::SUCCESS)
        return 0;
    *i = x;
    return 1;
}

int shard_json_get_double(shard_json_value v, double *d)
{
    double x;

    if (value_load(v).get_double().get(x) != simdjson::SUCCESS)
        return 0;
    *d = x;
    return 1;
}

size_t shard_json_size(shard_json_value v)
{
    element e = value_load(v);
    array a;
    object o;

    if (e.get_array().get(a) == simdjson::SUCCESS)
        return count_members(a);
    if (e.get_object().get(o) == simdjson::SUCCESS)
        return count_members(o);
    return 0;
}

int shard_json_array_iter(shard_json_value arr, shard_json_iter *it)
{
    array a;

    if (value_load(arr).get_array().get(a) != simdjson::SUCCESS)
        return 0;
    cursor_store(it, array_cursor{a.begin(), a.end()});
    return 1;
}

int shard_json_array_next(shard_json_iter *it, shard_json_value *out)
{
    array_cursor c = cursor_load<array_cursor>(it);

    if (c.at == c.end)
        return 0;
    *out = value_store(*c.at);
    ++c.at;
    cursor_store(it, c);
    return 1;
}

int shard_json_object_iter(shard_json_value obj, shard_json_iter *it)
{
    object o;

    if (value_load(obj).get_object().get(o) != simdjson::SUCCESS)
        return 0;
    cursor_store(it, object_cursor{o.begin(), o.end()});
    return 1;
}

int shard_json_object_next(shard_json_iter *it, const char **key,
                           size_t *keylen, shard_json_value *val)
{
    object_cursor c = cursor_load<object_cursor>(it);

    if (c.at == c.end)
        return 0;

    std::string_view k = c.at.key();

    *key = k.data();
    *keylen = k.size();
    *val = value_store(c.at.value());
    ++c.at;
    cursor_store(it, c);
    return 1;
}

} /* extern "C" */
