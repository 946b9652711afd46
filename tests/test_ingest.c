/*
 * test_ingest.c - the input layer (rows from lines, arrays, compressed
 * and nested archives) and the pairs table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest_input.h"
#include "shard_pairs.h"
#include "test.h"

static char dir[256];

static const char *tmp_path(const char *name)
{
    static char p[4][512];
    static int k;

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "%s/shard-ingest-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir))
            FAILF("mkdtemp failed");
    }
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static const char *write_file(const char *name, const char *data, size_t n)
{
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");

    CHECK(f != NULL);
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
    return p;
}

/* Why the last read_all() or read_any() failed. */
static char read_err[SHARD_ERRMAX];

/* Every row of an input: "row:line:text" or "row:line:!problem" lines. */
static char *read_all(const char *path, size_t max_row, int *status)
{
    static char out[1 << 16];
    shard_input *in;
    shard_line l;
    size_t at = 0;
    int rc;

    out[0] = '\0';
    CHECK_EQ_INT(shard_input_open(&in, path, max_row), 0);
    while ((rc = shard_input_next(in, &l)) > 0) {
        CHECK(l.text[l.len] == '\0'); /* the padding is there */
        at += (size_t)snprintf(out + at, sizeof(out) - at, "%llu:%llu:",
                               (unsigned long long)l.row,
                               (unsigned long long)l.lineno);
        if (l.problem)
            at += (size_t)snprintf(out + at, sizeof(out) - at, "!%s|",
                                   l.problem);
        else
            at += (size_t)snprintf(out + at, sizeof(out) - at, "%.*s|",
                                   (int)(l.len > 200 ? 200 : l.len),
                                   l.text);
    }
    *status = rc;
    snprintf(read_err, sizeof(read_err), "%s",
             rc < 0 ? shard_input_errmsg(in) : "");
    shard_input_close(in);
    return out;
}

/* read_all() of an input that may fail as early as its opening, when
 * libarchive first reads ahead: then "" and a negative status. */
static char *read_any(const char *path, int *status)
{
    static char none[1];
    shard_input *in;

    *status = shard_input_open(&in, path, 1 << 20);
    if (*status < 0) {
        snprintf(read_err, sizeof(read_err), "%s", shard_last_error());
        return none;
    }
    shard_input_close(in);
    return read_all(path, 1 << 20, status);
}

TEST(json_lines_crlf_and_last_line)
{
    static const char text[] = "{\"a\":1}\r\n\n{\"b\":2}";
    const char *p = write_file("a.jsonl", text, sizeof(text) - 1);
    int rc;

    CHECK_EQ_STR(read_all(p, 1 << 20, &rc),
                 "1:1:{\"a\":1}|2:2:|3:3:{\"b\":2}|");
    CHECK_EQ_INT(rc, 0);
}

TEST(array_elements_rows_and_lines)
{
    static const char text[] =
        "\xef\xbb\xbf  [\r\n  {\"s\": \"a, ]\\\" [\"},\n"
        "  [1, {\"x\": [2]}] ,\n\n  \"str\\\\\"\n]\n";
    const char *p = write_file("arr.json", text, sizeof(text) - 1);
    int rc;

    CHECK_EQ_STR(read_all(p, 1 << 20, &rc),
                 "1:2:{\"s\": \"a, ]\\\" [\"}|2:3:[1, {\"x\": [2]}] |"
                 "3:5:\"str\\\\\"\n|");
    CHECK_EQ_INT(rc, 0);
}

TEST(array_problems_are_rows)
{
    const char *p;
    int rc;

    p = write_file("e1.json", "[1,,2,]", 7);
    CHECK_EQ_STR(read_all(p, 1 << 20, &rc),
                 "1:1:1|2:1:!empty element in JSON array|3:1:2|"
                 "4:1:!empty element in JSON array|");
    p = write_file("e2.json", " [ ] \n", 6);
    CHECK_EQ_STR(read_all(p, 1 << 20, &rc), "");
    p = write_file("e3.json", "[1]\n junk", 9);
    CHECK_EQ_STR(read_all(p, 1 << 20, &rc),
                 "1:1:1|2:2:!text after the end of the JSON array|");
    p = write_file("e4.json", "[1,\n{\"a\":", 9);
    CHECK_EQ_STR(read_all(p, 1 << 20, &rc),
                 "1:1:1|2:2:!JSON array ends without ']'|");
    CHECK_EQ_INT(rc, 0);
}

TEST(overlong_rows_skipped_next_row_kept)
{
    const char *p = write_file("long.jsonl", "12345678\n1234\n", 14);
    int rc;

    CHECK_EQ_STR(read_all(p, 5, &rc),
                 "1:1:!row longer than 5 bytes|2:2:1234|");
    p = write_file("long.json", "[12345678, 1234]", 16);
    CHECK_EQ_STR(read_all(p, 5, &rc),
                 "1:1:!row longer than 5 bytes|2:1:1234|");
}

/* An element and a line far larger than libarchive's blocks. */
TEST(rows_spanning_blocks)
{
    size_t n = 300000;
    char *buf = malloc(n + 64);
    shard_input *in;
    shard_line l;
    const char *p;

    CHECK(buf != NULL);
    buf[0] = '[';
    buf[1] = '"';
    memset(buf + 2, 'x', n);
    memcpy(buf + 2 + n, "\",\n7]", 5);
    p = write_file("big.json", buf, n + 7);
    CHECK_EQ_INT(shard_input_open(&in, p, 1 << 20), 0);
    CHECK_EQ_INT(shard_input_next(in, &l), 1);
    CHECK_EQ_INT(l.len, n + 2);
    CHECK(l.text[0] == '"' && l.text[n + 1] == '"' && l.text[n / 2] == 'x');
    CHECK_EQ_INT(shard_input_next(in, &l), 1);
    CHECK_EQ_INT(l.lineno, 2);
    CHECK_EQ_INT(l.row, 2);
    CHECK_EQ_INT(shard_input_next(in, &l), 0);
    shard_input_close(in);

    /* Nesting that is open across block ends, escapes among the bytes. */
    memcpy(buf, "[{\"a\": [", 8);
    memset(buf + 8, ' ', n - 8);
    for (size_t i = 8; i + 6 <= n; i += 6)
        memcpy(buf + i, "\"\\\"\n\",", 6); /* "\"<LF>", */
    memcpy(buf + n, "1]},\n7]", 7);
    p = write_file("nested.json", buf, n + 7);
    CHECK_EQ_INT(shard_input_open(&in, p, 1 << 20), 0);
    CHECK_EQ_INT(shard_input_next(in, &l), 1);
    CHECK_EQ_INT(l.len, n + 2);
    CHECK_EQ_INT(l.lineno, 1);
    CHECK_EQ_INT(shard_input_next(in, &l), 1);
    CHECK_EQ_INT(l.len, 1);
    CHECK(l.text[0] == '7' && l.row == 2);
    CHECK_EQ_INT(l.lineno, (n - 8) / 6 + 2); /* one LF per string, one more */
    CHECK_EQ_INT(shard_input_next(in, &l), 0);
    shard_input_close(in);
    free(buf);
}

static void run(const char *cmd)
{
    char full[2048];

    snprintf(full, sizeof(full), "cd '%s' && %s", dir, cmd);
    if (system(full) != 0)
        FAILF("command failed: %s", cmd);
}

TEST(nested_archives_and_compression)
{
    int rc;
    const char *out;

    write_file("x.jsonl", "{\"x\":1}\n{\"x\":2}\n", 16);
    write_file("y.json", "[{\"y\":1}]", 9);
    run("gzip -c x.jsonl > x.jsonl.gz && mkdir -p d && cp y.json d/ && "
        "tar cf d.tar d && xz -c d.tar > d.tar.xz && "
        "tar cf outer.tar x.jsonl.gz d.tar.xz");
    out = read_all(tmp_path("outer.tar"), 1 << 20, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(out, "1:1:{\"x\":1}|2:2:{\"x\":2}|1:1:{\"y\":1}|");
}

/* Every codec the issue names, recognised by bytes (names say nothing). */
TEST(every_codec_by_bytes)
{
    static const char *const tools[] = {"gzip", "zstd -q", "xz", "bzip2",
                                        "lz4 -q"};
    char cmd[256], name[32];
    int rc;

    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        snprintf(name, sizeof(name), "codec%zu.bin", i);
        snprintf(cmd, sizeof(cmd), "%s -c < x.jsonl > %s", tools[i], name);
        run(cmd);
        if (strcmp(read_all(tmp_path(name), 1 << 20, &rc),
                   "1:1:{\"x\":1}|2:2:{\"x\":2}|") != 0 || rc != 0)
            FAILF("%s: rows differ", tools[i]);
    }
}

/* A zip, from a file and (streamed) as a member of a tar. */
TEST(zip_members)
{
    int rc;

    run("rm -f z.zip && zip -q z.zip x.jsonl y.json && tar cf zt.tar z.zip");
    CHECK_EQ_STR(read_all(tmp_path("z.zip"), 1 << 20, &rc),
                 "1:1:{\"x\":1}|2:2:{\"x\":2}|1:1:{\"y\":1}|");
    CHECK_EQ_STR(read_all(tmp_path("zt.tar"), 1 << 20, &rc),
                 "1:1:{\"x\":1}|2:2:{\"x\":2}|1:1:{\"y\":1}|");
    CHECK_EQ_INT(rc, 0);
}

TEST(members_are_named_and_counted)
{
    shard_input *in;
    shard_line l;

    CHECK_EQ_INT(shard_input_open(&in, tmp_path("outer.tar"), 1 << 20), 0);
    CHECK_EQ_INT(shard_input_next(in, &l), 1);
    CHECK(strstr(l.where, "outer.tar:x.jsonl.gz") != NULL);
    CHECK_EQ_INT(l.member, 1);
    shard_input_next(in, &l);
    CHECK_EQ_INT(shard_input_next(in, &l), 1);
    CHECK(strstr(l.where, "outer.tar:d.tar.xz:d/y.json") != NULL);
    CHECK_EQ_INT(l.member, 2);
    shard_input_close(in);
}

TEST(truncated_stream_is_an_error_naming_the_file)
{
    shard_input *in;
    shard_line l;
    char *buf = malloc(1 << 20);
    uint32_t x = 2463534242u;
    int rc;

    CHECK(buf != NULL);
    for (int i = 0; i < (1 << 20); i++) { /* xorshift: incompressible */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (i % 61 == 60) ? '\n' : (char)('a' + x % 26);
    }
    write_file("t.jsonl", buf, 1 << 20);
    free(buf);
    run("gzip -c t.jsonl | head -c 30000 > t.gz");
    /* libarchive may notice when it first reads ahead, or later. */
    if (shard_input_open(&in, tmp_path("t.gz"), 1 << 20) < 0) {
        CHECK(strstr(shard_last_error(), "t.gz") != NULL);
    } else {
        while ((rc = shard_input_next(in, &l)) > 0)
            ;
        CHECK(rc < 0);
        CHECK(strstr(shard_input_errmsg(in), "t.gz: truncated") != NULL);
        shard_input_close(in);
    }
    CHECK(shard_input_open(&in, tmp_path("absent.jsonl"), 100) < 0);
}

/* The bytes of a file in the test directory; *n its length. */
static unsigned char *slurp(const char *name, size_t *n)
{
    FILE *f = fopen(tmp_path(name), "rb");
    unsigned char *b = malloc(1 << 20);

    CHECK(f != NULL && b != NULL);
    *n = fread(b, 1, 1 << 20, f);
    CHECK(*n < (1 << 20));
    fclose(f);
    return b;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

/* gzip files are inflated by gunzip.c: members back to back and zero
 * padding read through; other trailing bytes, a damaged trailer and a
 * bad deflate block each an error naming the file. */
TEST(gzip_members_padding_and_damage)
{
    static const char two[] = "1:1:{\"x\":1}|2:2:{\"x\":2}|";
    unsigned char *b;
    const char *out;
    size_t n;
    int rc;

    run("gzip -c x.jsonl > m.gz && gzip -c x.jsonl >> m.gz && "
        "head -c 3000 /dev/zero >> m.gz");
    CHECK_EQ_STR(read_all(tmp_path("m.gz"), 1 << 20, &rc),
                 "1:1:{\"x\":1}|2:2:{\"x\":2}|3:3:{\"x\":1}|4:4:{\"x\":2}|");
    CHECK_EQ_INT(rc, 0);

    run("gzip -c -n x.jsonl > g.gz && printf 'junk' >> g.gz");
    out = read_any(tmp_path("g.gz"), &rc);
    CHECK(rc < 0 && strncmp(two, out, strlen(out)) == 0);
    CHECK(strstr(read_err, "g.gz: bytes after the last gzip member"));

    b = slurp("g.gz", &n);
    n -= 4;     /* the junk off again */
    b[n - 8] ^= 1; /* the CRC-32 */
    write_file("crc.gz", (const char *)b, n);
    out = read_any(tmp_path("crc.gz"), &rc);
    CHECK(rc < 0 && strncmp(two, out, strlen(out)) == 0);
    CHECK(strstr(read_err, "crc.gz: gzip member fails its CRC-32"));
    b[n - 8] ^= 1;
    b[10] = 0xff; /* a first deflate block of the reserved type 3 */
    write_file("bad.gz", (const char *)b, n);
    out = read_any(tmp_path("bad.gz"), &rc);
    CHECK(rc < 0 && out[0] == '\0');
    CHECK(strstr(read_err, "bad.gz: corrupt deflate data"));
    free(b);
}

/* Extra field, name, comment and header CRC, all of which gzip(1) may
 * skip but a reader must step over. */
TEST(gzip_header_fields_are_stepped_over)
{
    unsigned char *b, *o;
    size_t n, h;
    uint32_t crc;
    int rc;

    run("gzip -c -n x.jsonl > plain.gz");
    b = slurp("plain.gz", &n);
    CHECK(n > 18 && b[3] == 0);
    o = malloc(n + 64);
    CHECK(o != NULL);
    memcpy(o, b, 10);
    o[3] = 2 | 4 | 8 | 16; /* FHCRC FEXTRA FNAME FCOMMENT */
    h = 10;
    memcpy(o + h, "\x06\x00" "AB\x02\x00xy", 8);
    h += 8;
    memcpy(o + h, "x.jsonl", 8);
    h += 8;
    memcpy(o + h, "a comment", 10);
    h += 10;
    crc = crc32_of(o, h);
    o[h++] = (unsigned char)crc;
    o[h++] = (unsigned char)(crc >> 8);
    memcpy(o + h, b + 10, n - 10);
    write_file("fields.gz", (const char *)o, h + n - 10);
    CHECK_EQ_STR(read_all(tmp_path("fields.gz"), 1 << 20, &rc),
                 "1:1:{\"x\":1}|2:2:{\"x\":2}|");
    CHECK_EQ_INT(rc, 0);
    free(o);
    free(b);
}

/* A gzip file cut anywhere past its first three bytes fails, having
 * handed out only whole rows of the uncut file, in order. */
TEST(gzip_cut_anywhere_fails_after_whole_rows)
{
    static char full[1 << 16];
    char text[8192];
    unsigned char *b;
    size_t at = 0, n;
    int rc;

    for (int i = 0; i < 300; i++)
        at += (size_t)snprintf(text + at, sizeof(text) - at,
                               "{\"i\":%d}\n", i * 7919 % 1000);
    write_file("rows.jsonl", text, at);
    run("gzip -c -9 rows.jsonl > rows.gz");
    snprintf(full, sizeof(full), "%s",
             read_all(tmp_path("rows.gz"), 1 << 20, &rc));
    CHECK_EQ_INT(rc, 0);
    CHECK(strstr(full, "300:300:{\"i\":") != NULL);

    b = slurp("rows.gz", &n);
    for (size_t cut = 3; cut < n; cut++) {
        const char *out;

        write_file("cut.gz", (const char *)b, cut);
        out = read_any(tmp_path("cut.gz"), &rc);
        if (rc >= 0 || strncmp(full, out, strlen(out)) != 0 ||
            !strstr(read_err, "cut.gz: truncated gzip stream"))
            FAILF("cut at %zu of %zu: status %d, \"%.200s\", after \"%.60s\"",
                  cut, n, rc, read_err, out);
    }
    free(b);
}

TEST(pairs_table_round_trip_and_damage)
{
    shard_pairs_writer *w;
    shard_pairs *t;
    uint64_t count, bytes, sum;
    char path[600];
    FILE *f;

    tmp_path("x");
    CHECK_EQ_INT(shard_pairs_writer_open(&w, dir), 0);
    for (uint64_t i = 0; i < 1000; i++) {
        shard_pair p = {i + 1, 2 * i + 1, 2 * i + 2, 7 * i + 3};

        CHECK_EQ_INT(shard_pairs_writer_add(w, &p), 0);
    }
    CHECK_EQ_INT(shard_pairs_writer_finish(w, &count, &bytes, &sum), 0);
    shard_pairs_writer_free(w);
    CHECK_EQ_INT(count, 1000);
    CHECK_EQ_INT(bytes, 64 + 32 * 1000);

    snprintf(path, sizeof(path), "%s/%s", dir, SHARD_PAIRS_PATH);
    CHECK_EQ_INT(shard_pairs_open(&t, path), 0);
    CHECK_EQ_INT(shard_pairs_count(t), 1000);
    CHECK(shard_pairs_checksum(t) == sum);
    CHECK(shard_pairs_rows(t)[999].rejected == 2000);
    CHECK(shard_pairs_rows(t)[5].pair_id == 38);
    shard_pairs_close(t);

    for (long at = 0; at < (long)bytes; at += 997) {
        int c;

        CHECK((f = fopen(path, "r+b")) != NULL);
        fseek(f, at, SEEK_SET);
        c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x20, f);
        fclose(f);
        if (shard_pairs_open(&t, path) == 0)
            FAILF("flipped byte %ld not detected", at);
        CHECK((f = fopen(path, "r+b")) != NULL);
        fseek(f, at, SEEK_SET);
        fputc(c, f);
        fclose(f);
    }
    CHECK_EQ_INT(shard_pairs_open(&t, path), 0);
    shard_pairs_close(t);
    run("cd .. && rm -rf \"$OLDPWD\"");
}

TEST_MAIN()
