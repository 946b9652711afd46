/*
 * shard_common.h - definitions shared by every part of libshard.
 *
 * This header is part of the reader side: it depends on libc alone.
 *
 * Error model.  Every function that can fail returns an int: 0 on success,
 * one of the negative SHARD_E* codes below on failure.  Handles keep a
 * one-line message describing the last failure (see the *_errmsg functions
 * of each handle).  A constructor that fails returns no handle; its message
 * is then available from shard_last_error(), which is per thread.
 */
#ifndef SHARD_COMMON_H
#define SHARD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHARD_VERSION_STRING "0.1.0"

/* Return codes.  Values are stable across releases. */
#define SHARD_OK 0
#define SHARD_ENOMEM (-1)    /* allocation failed */
#define SHARD_EIO (-2)       /* a system call failed (errno in the message) */
#define SHARD_ECORRUPT (-3)  /* a shard or dataset failed a check */
#define SHARD_EINVAL (-4)    /* bad argument, index out of range */
#define SHARD_EFORMAT (-5)   /* valid but unsupported version or feature */
#define SHARD_EINPUT (-6)    /* an input row was rejected */
#define SHARD_ENOTFOUND (-7) /* a file, field or name does not exist */

/* Longest message kept by a handle, terminating NUL included. */
#define SHARD_ERRMAX 512

/*
 * Labels.  The numeric values are part of the file format (the label
 * column stores them as one byte) and never change.
 */
typedef enum {
    SHARD_LABEL_UNL = 0, /* unlabeled or neutral */
    SHARD_LABEL_POS = 1, /* desirable, chosen */
    SHARD_LABEL_NEG = 2, /* undesirable, rejected */
    SHARD_LABEL_COUNT = 3
} shard_label;

/* "unl", "pos", "neg"; "?" for a value out of range.  Cannot fail. */
const char *shard_label_name(int label);

/* Parses "unl", "pos" or "neg"; returns -1 for anything else. */
int shard_label_parse(const char *name);

/* Name of a return code ("corrupt", "io error", ...).  Cannot fail. */
const char *shard_strerror(int code);

/* Message of the last constructor that failed on this thread. */
const char *shard_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
