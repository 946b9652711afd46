/*
 * journal.c - the record of committed shards (journal.h).
 *
 * The file: "shard-journal 1\n", the fingerprint lines, "begin\n", then
 * one line per committed shard:
 *
 *   shard LABEL PATH RECORDS TOKENS BYTES CHECKSUM ROW T0 T1 T2 REPL SPEC SUM
 *
 * numbers in decimal but CHECKSUM and SUM in 16 hex digits; SUM is the
 * XXH3-64 of the line up to the space before it.  The head is written
 * to a temporary file and renamed, so it is whole or absent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "format.h"
#include "internal.h"
#include "journal.h"

#define JOURNAL_MAGIC "shard-journal 1\n"
#define JOURNAL_BEGIN "begin\n"
#define JOURNAL_MAX (64u << 20)

struct shard_journal {
    int fd;
    char path[4400];
};

int shard_journal_create(shard_journal **out, const char *dir,
                         const char *fingerprint, char *err)
{
    shard_journal *j;
    char tmp[4400];
    int fd, bad;

    *out = NULL;
    if (!(j = calloc(1, sizeof(*j))))
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    snprintf(j->path, sizeof(j->path), "%s/%s", dir, SHARD_JOURNAL_PATH);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, SHARD_JOURNAL_PATH);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bad = fd < 0 ||
          shard_write_all(fd, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)) ||
          shard_write_all(fd, fingerprint, strlen(fingerprint)) ||
          shard_write_all(fd, JOURNAL_BEGIN, strlen(JOURNAL_BEGIN)) ||
          fsync(fd) != 0;
    if (bad || rename(tmp, j->path) != 0 || shard_sync_dir(dir) != 0) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        unlink(tmp);
        free(j);
        return shard_errf(err, SHARD_EIO, "%s: %s", tmp, strerror(e));
    }
    if (lseek(fd, 0, SEEK_END) < 0) {
        close(fd);
        free(j);
        return shard_errf(err, SHARD_EIO, "%s: %s", j->path,
                          strerror(errno));
    }
    j->fd = fd;
    *out = j;
    return 0;
}

/* Says which line of the two fingerprints differs first. */
static int fingerprint_differs(const char *was, size_t n, const char *now,
                               char *err)
{
    size_t i = 0, line = 0;
    const char *end_was, *end_now;
    int wl, nl;

    while (i < n && now[i] && was[i] == now[i]) {
        if (was[i] == '\n')
            line = i + 1;
        i++;
    }
    end_was = memchr(was + line, '\n', n - line);
    end_now = strchr(now + line, '\n');
    wl = end_was ? (int)(end_was - was - (long)line) : (int)(n - line);
    nl = end_now ? (int)(end_now - now - (long)line)
                 : (int)strlen(now + line);
    return shard_errf(err, SHARD_EINVAL, "the interrupted compile had "
                      "\"%.*s\", this one \"%.*s\"", wl > 200 ? 200 : wl,
                      was + line, nl > 200 ? 200 : nl, now + line);
}

/* Parses one commit line, s[0..n) without its newline, into st. */
static int parse_commit(const char *s, size_t n, shard_journal_state *st)
{
    char line[1024], label[16], path[256];
    shard_file_info f;
    shard_journal_mark m;
    uint64_t sum;
    int at = 0, l;

    if (n >= sizeof(line) || n < 17 || s[n - 17] != ' ')
        return -1;
    memcpy(line, s, n);
    line[n] = '\0';
    if (sscanf(line + n - 16, "%16" SCNx64, &sum) != 1 ||
        XXH3_64bits(line, n - 17) != sum)
        return -1;
    memset(&f, 0, sizeof(f));
    if (sscanf(line, "shard %15s %255s %" SCNu64 " %" SCNu64 " %" SCNu64
               " %16" SCNx64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %"
               SCNu64 " %" SCNu64 " %" SCNu64 " %n", label, path,
               &f.records, &f.tokens, &f.bytes, &f.checksum, &m.row,
               &m.tokens_by_label[0], &m.tokens_by_label[1],
               &m.tokens_by_label[2], &m.replaced_utf8, &m.special_text,
               &at) != 12 || at != (int)n - 16)
        return -1;
    for (l = 0; l < SHARD_LABEL_COUNT; l++)
        if (strcmp(label, shard_label_name(l)) == 0)
            break;
    if (l == SHARD_LABEL_COUNT)
        return -1;
    snprintf(f.path, sizeof(f.path), "%s", path);
    if (shard_grow((void **)&st->files[l], &st->cap_files[l],
                   st->n_files[l] + 1, sizeof(f)) < 0)
        return SHARD_ENOMEM;
    st->files[l][st->n_files[l]++] = f;
    st->records[l] += f.records;
    st->mark = m;
    return 0;
}

/* Reads the whole journal at `path` into a buffer.  0 or negative. */
static int slurp(const char *path, char **buf, size_t *len, char *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    size_t n;

    if (!f)
        return errno == ENOENT
                   ? SHARD_ENOTFOUND
                   : shard_errf(err, SHARD_EIO, "%s: %s", path,
                                strerror(errno));
    if (fstat(fileno(f), &st) != 0 || st.st_size > JOURNAL_MAX) {
        fclose(f);
        return shard_errf(err, SHARD_ECORRUPT, "%s: not a journal "
                          "(unreadable or too large)", path);
    }
    if (!(*buf = malloc((size_t)st.st_size + 1))) {
        fclose(f);
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    }
    n = fread(*buf, 1, (size_t)st.st_size, f);
    fclose(f);
    (*buf)[n] = '\0';
    *len = n;
    return 0;
}

/*
 * Parses the journal text; returns the length of its valid part (torn
 * lines cut off) or a negative code.
 */
static long parse_journal(const char *buf, size_t len, const char *path,
                          const char *fingerprint, shard_journal_state *st,
                          char *err)
{
    size_t head = strlen(JOURNAL_MAGIC), fp = strlen(fingerprint);
    size_t at, valid;
    int rc;

    if (len < head || memcmp(buf, JOURNAL_MAGIC, head) != 0)
        return shard_errf(err, SHARD_ECORRUPT, "%s: not a journal", path);
    if (len - head < fp + strlen(JOURNAL_BEGIN) ||
        memcmp(buf + head, fingerprint, fp) != 0 ||
        memcmp(buf + head + fp, JOURNAL_BEGIN, strlen(JOURNAL_BEGIN)) != 0)
        return fingerprint_differs(buf + head, len - head, fingerprint, err);
    valid = at = head + fp + strlen(JOURNAL_BEGIN);
    while (at < len) {
        const char *nl = memchr(buf + at, '\n', len - at);

        if (!nl)
            break;
        rc = parse_commit(buf + at, (size_t)(nl - buf) - at, st);
        if (rc == SHARD_ENOMEM)
            return shard_errf(err, rc, "out of memory");
        if (rc < 0)
            break;
        at = valid = (size_t)(nl - buf) + 1;
    }
    return (long)valid;
}

int shard_journal_resume(shard_journal **out, const char *dir,
                         const char *fingerprint, shard_journal_state *st,
                         char *err)
{
    shard_journal *j;
    char *buf = NULL;
    size_t len = 0;
    long valid;
    int rc;

    *out = NULL;
    memset(st, 0, sizeof(*st));
    if (!(j = calloc(1, sizeof(*j))))
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    snprintf(j->path, sizeof(j->path), "%s/%s", dir, SHARD_JOURNAL_PATH);
    if ((rc = slurp(j->path, &buf, &len, err)) < 0) {
        free(buf);
        free(j);
        return rc;
    }
    valid = parse_journal(buf, len, j->path, fingerprint, st, err);
    free(buf);
    if (valid < 0) {
        free(j);
        shard_journal_state_free(st);
        return (int)valid;
    }
    j->fd = open(j->path, O_WRONLY | O_CLOEXEC);
    if (j->fd < 0 || ftruncate(j->fd, valid) != 0 ||
        lseek(j->fd, 0, SEEK_END) < 0 || fsync(j->fd) != 0) {
        rc = shard_errf(err, SHARD_EIO, "%s: %s", j->path, strerror(errno));
        shard_journal_close(j, 0);
        shard_journal_state_free(st);
        return rc;
    }
    *out = j;
    return 0;
}

int shard_journal_commit(shard_journal *j, int label,
                         const shard_file_info *f,
                         const shard_journal_mark *m, char *err)
{
    char line[1024];
    int n;

    n = snprintf(line, sizeof(line), "shard %s %s %" PRIu64 " %" PRIu64
                 " %" PRIu64 " %016" PRIx64 " %" PRIu64 " %" PRIu64 " %"
                 PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
                 shard_label_name(label), f->path, f->records, f->tokens,
                 f->bytes, f->checksum, m->row, m->tokens_by_label[0],
                 m->tokens_by_label[1], m->tokens_by_label[2],
                 m->replaced_utf8, m->special_text);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " %016" PRIx64 "\n",
                  (uint64_t)XXH3_64bits(line, (size_t)n));
    if (shard_write_all(j->fd, line, (size_t)n) != 0 || fsync(j->fd) != 0)
        return shard_errf(err, SHARD_EIO, "%s: %s", j->path,
                          strerror(errno ? errno : EIO));
    return 0;
}

int shard_journal_close(shard_journal *j, int remove)
{
    int rc = 0;

    if (!j)
        return 0;
    if (j->fd >= 0)
        close(j->fd);
    if (remove && unlink(j->path) != 0 && errno != ENOENT)
        rc = SHARD_EIO;
    free(j);
    return rc;
}

void shard_journal_state_free(shard_journal_state *st)
{
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        free(st->files[l]);
    memset(st, 0, sizeof(*st));
}

/* ---- fingerprint and tidying ------------------------------------------ */

char *shard_journal_fingerprint(const shard_compile_options *o,
                                uint64_t tokenizer_hash,
                                char *const *paths, size_t n)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    struct stat st;

    if (!f)
        return NULL;
    fprintf(f, "format %s\ntokenizer %s %016" PRIx64 "\ntemplate %s\n",
            o->format, o->tokenizer, tokenizer_hash, o->template_name);
    fprintf(f, "codec %d level %d shard-size %" PRIu64 " frame-size %"
            PRIu64 " text %d\n", (int)o->codec, o->zstd_level,
            o->shard_size, o->frame_size, o->with_text);
    fprintf(f, "max-row-bytes %zu strict %d keep-going %d "
            "hf-added-tokens %d\n", o->max_line, o->strict, o->keep_going,
            o->hf_added_tokens);
    fprintf(f, "map %s\nlabel-rule %s\n", o->field_map ? o->field_map : "",
            o->label_rule ? o->label_rule : "");
    fprintf(f, "normalize %d conflicts %d near-dup %.17g scope %d seed %"
            PRIu64 "\n", o->normalize, o->conflicts, o->near_dup,
            o->near_dup_scope, o->near_dup_seed);
    for (size_t i = 0; i < n; i++) {
        memset(&st, 0, sizeof(st));
        stat(paths[i], &st);
        fprintf(f, "input %s %lld %lld.%09ld\n", paths[i],
                (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                st.st_mtim.tv_nsec);
    }
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Whether `path` is the committed shard `f`: its size and its header
 * checksum. */
static int shard_intact(const char *path, const shard_file_info *f)
{
    unsigned char sum[8];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int ok = fd >= 0 && fstat(fd, &st) == 0 &&
             (uint64_t)st.st_size == f->bytes &&
             pread(fd, sum, 8, HDR_HEADER_SUM) == 8 &&
             shard_le64(sum) == f->checksum;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* Removes from `dir` the files a compile writes that `keep` (n names)
 * does not list. */
static int tidy_dir(const char *dir, const shard_file_info *keep, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[8400];
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name), i = 0;
        int ours = (len > 6 && strcmp(e->d_name + len - 6, ".shard") == 0) ||
                   (len > 6 && strcmp(e->d_name + len - 6, ".pairs") == 0) ||
                   (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0);

        while (i < n && strcmp(keep[i].path, e->d_name) != 0)
            i++;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (ours && i == n && unlink(p) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int shard_journal_tidy(const char *dir, const shard_journal_state *st,
                       char *err)
{
    char p[8400];

    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        for (size_t i = 0; i < st->n_files[l]; i++) {
            snprintf(p, sizeof(p), "%s/%s/%s", dir, shard_label_name(l),
                     st->files[l][i].path);
            if (!shard_intact(p, &st->files[l][i]))
                return shard_errf(err, SHARD_ECORRUPT, "%s: not the shard "
                                  "the journal committed", p);
        }
        snprintf(p, sizeof(p), "%s/%s", dir, shard_label_name(l));
        if (tidy_dir(p, st->files[l], st->n_files[l]) != 0)
            return shard_errf(err, SHARD_EIO, "%s: %s", p, strerror(errno));
    }
    snprintf(p, sizeof(p), "%s/pairs", dir);
    if (tidy_dir(p, NULL, 0) != 0 || tidy_dir(dir, NULL, 0) != 0)
        return shard_errf(err, SHARD_EIO, "%s: %s", dir, strerror(errno));
    return 0;
}
