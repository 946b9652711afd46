/*
 * json.h - a small C interface over simdjson's DOM parser (internal).
 *
 * This is the only way C code in libshard reads JSON.  A parser holds one
 * parsed document at a time; values and strings obtained from it stay valid
 * until the next shard_json_parse() on the same parser or until it is freed.
 * A parser is not thread-safe; use one per thread.  Strings are copied out
 * of the input, so the input buffer may be freed once the parse returns.
 *
 * Input buffers must be followed by SHARD_JSON_PADDING readable bytes (their
 * content does not matter): simdjson reads past the end in wide loads.
 *
 * Choices simdjson 3.0.1 makes where RFC 8259 leaves room:
 *   1. Nesting is limited to 1024 arrays and objects (SHARD_JSON_ERR_DEPTH).
 *   2. An unpaired UTF-16 surrogate escape ("\ud800", "\udc00", a high
 *      surrogate not followed by a low one) is rejected as
 *      SHARD_JSON_ERR_UTF8, so every string and key is valid UTF-8.
 *   3. Integers below INT64_MIN or above UINT64_MAX, and numbers beyond the
 *      range of a double, are rejected (SHARD_JSON_ERR_NUMBER), never
 *      rounded to a double.  A number that underflows reads as 0.0, and
 *      "-0" is the integer 0 ("-0.0" and "-0e0" are a negative zero).
 *   4. Duplicate keys are kept: iteration and shard_json_size see every
 *      member, while shard_json_get returns the first.
 */
#ifndef SHARD_JSON_H
#define SHARD_JSON_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHARD_JSON_PADDING 64

typedef struct shard_json_parser shard_json_parser;

/* A value inside the current document.  Copyable; no cleanup needed. */
typedef struct {
    uint64_t opaque[2];
} shard_json_value;

/* An array or object cursor.  Copyable; no cleanup needed. */
typedef struct {
    uint64_t opaque[4];
} shard_json_iter;

typedef enum {
    SHARD_JSON_NULL,
    SHARD_JSON_BOOL,
    SHARD_JSON_INT,    /* integer that fits int64 */
    SHARD_JSON_UINT,   /* integer above INT64_MAX that fits uint64 */
    SHARD_JSON_DOUBLE, /* number with a fraction or an exponent */
    SHARD_JSON_STRING,
    SHARD_JSON_ARRAY,
    SHARD_JSON_OBJECT
} shard_json_type;

/*
 * Why a parse failed, for accounting.  Meaningful after SHARD_EINPUT;
 * SHARD_JSON_ERR_NONE after a success or SHARD_ENOMEM.
 */
typedef enum {
    SHARD_JSON_ERR_NONE,
    SHARD_JSON_ERR_SYNTAX, /* not JSON, or trailing content */
    SHARD_JSON_ERR_UTF8,   /* invalid UTF-8 or lone surrogate escape */
    SHARD_JSON_ERR_DEPTH,  /* nested deeper than the parser allows */
    SHARD_JSON_ERR_NUMBER, /* number out of range or malformed */
    SHARD_JSON_ERR_SIZE,   /* document too large */
    SHARD_JSON_ERR_EMPTY   /* nothing but whitespace */
} shard_json_error;

/* Returns SHARD_OK or SHARD_ENOMEM. */
int shard_json_parser_new(shard_json_parser **out);
void shard_json_parser_free(shard_json_parser *p);

/*
 * Parses one JSON document of `len` bytes at `buf` (padding required, see
 * above).  Returns 0 and sets *root, or SHARD_EINPUT (message in
 * shard_json_errmsg, kind in shard_json_last_error) or SHARD_ENOMEM.
 */
int shard_json_parse(shard_json_parser *p, const char *buf, size_t len,
                     shard_json_value *root);
const char *shard_json_errmsg(const shard_json_parser *p);
shard_json_error shard_json_last_error(const shard_json_parser *p);

shard_json_type shard_json_typeof(shard_json_value v);

/*
 * Looks up `key` (keylen bytes) in an object.  Returns 1 and sets *out when
 * present, 0 when absent or when `obj` is not an object.  With duplicate
 * keys the first one wins.
 */
int shard_json_get(shard_json_value obj, const char *key, size_t keylen,
                   shard_json_value *out);

/*
 * Scalar accessors: each returns 1 and stores the value when `v` has that
 * type, 0 otherwise.  Strings are unescaped UTF-8, not NUL-terminated, and
 * may contain NUL bytes.  get_double accepts every numeric type.
 */
int shard_json_get_string(shard_json_value v, const char **s, size_t *len);
int shard_json_get_bool(shard_json_value v, int *b);
int shard_json_get_int64(shard_json_value v, int64_t *i);
int shard_json_get_double(shard_json_value v, double *d);

/* Number of elements of an array or members of an object; 0 otherwise. */
size_t shard_json_size(shard_json_value v);

/*
 * Iteration.  *_iter returns 1 when `v` has the right type and starts the
 * cursor, 0 otherwise.  *_next returns 1 with the next element, 0 at the end.
 */
int shard_json_array_iter(shard_json_value arr, shard_json_iter *it);
int shard_json_array_next(shard_json_iter *it, shard_json_value *out);
int shard_json_object_iter(shard_json_value obj, shard_json_iter *it);
int shard_json_object_next(shard_json_iter *it, const char **key,
                           size_t *keylen, shard_json_value *val);

#ifdef __cplusplus
}
#endif

#endif
