/*
 * cmd_export.c - shard export DIR --to megatron|jsonl -o PREFIX
 *                [--label SEL]
 *
 * megatron: PREFIX.bin holds every selected record's tokens, one document
 * per record, in dataset order; PREFIX.idx is Megatron-Core's indexed
 * dataset index (docs/FORMAT.md, "Megatron export"), read by its
 * IndexedDataset with no conversion.  jsonl: PREFIX.jsonl, the lines
 * `shard cat --format jsonl` prints.  Each file is written under a
 * temporary name and renamed when complete.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "shard_reader.h"

#define MEGATRON_MAGIC "MMIDIDX\0\0"
#define MEGATRON_MAGIC_LEN 9
#define MEGATRON_UINT16 8 /* dtype codes of Megatron-Core's DType enum */
#define MEGATRON_INT32 4

typedef struct {
    char tmp[4200], final[4200];
    FILE *f;
} out_file;

static int out_open(out_file *o, const char *prefix, const char *ext)
{
    snprintf(o->final, sizeof(o->final), "%s%s", prefix, ext);
    snprintf(o->tmp, sizeof(o->tmp), "%s%s.tmp", prefix, ext);
    if (!(o->f = fopen(o->tmp, "wb"))) {
        cli_error("export: %s: %s", o->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* Closes and renames into place; on failure (or !ok) removes the file. */
static int out_close(out_file *o, int ok)
{
    if (!o->f)
        return ok ? 0 : -1;
    if (fclose(o->f) != 0 && ok) {
        cli_error("export: %s: %s", o->tmp, strerror(errno));
        ok = 0;
    }
    o->f = NULL;
    if (ok && rename(o->tmp, o->final) != 0) {
        cli_error("export: %s: %s", o->final, strerror(errno));
        ok = 0;
    }
    if (!ok)
        unlink(o->tmp);
    return ok ? 0 : -1;
}

typedef struct {
    int32_t *lengths;
    size_t n, cap;
    uint64_t tokens;
} doc_list;

/* Appends rec's tokens to bin as `width`-byte ids; notes its length. */
static int put_document(FILE *bin, const shard_record *rec, unsigned width,
                        doc_list *docs)
{
    unsigned char buf[4096];
    size_t per = sizeof(buf) / width;

    if (rec->n_tokens > INT32_MAX) {
        cli_error("export: record %016llx: %zu tokens, more than the "
                  "Megatron index holds", (unsigned long long)rec->record_id,
                  rec->n_tokens);
        return -1;
    }
    for (size_t i = 0; i < rec->n_tokens; i += per) {
        size_t n = rec->n_tokens - i < per ? rec->n_tokens - i : per;

        for (size_t k = 0; k < n; k++) {
            uint32_t t = shard_record_token(rec, i + k);

            if (width == 2)
                shard_put16(buf + 2 * k, (uint16_t)t);
            else
                shard_put32(buf + 4 * k, t);
        }
        fwrite(buf, width, n, bin);
    }
    if (docs->n == docs->cap) {
        size_t cap = docs->cap ? docs->cap * 2 : 1024;
        int32_t *p = realloc(docs->lengths, cap * sizeof(*p));

        if (!p) {
            cli_error("export: out of memory");
            return -1;
        }
        docs->lengths = p;
        docs->cap = cap;
    }
    docs->lengths[docs->n++] = (int32_t)rec->n_tokens;
    docs->tokens += rec->n_tokens;
    return 0;
}

/*
 * The index: magic, u64 version 1, u8 dtype code, u64 sequence count,
 * u64 document count (entries of the document index), i32 lengths,
 * i64 byte pointers, i64 document index (0, 1, ..., n: one document per
 * sequence).  Little-endian throughout.
 */
static void put_index(FILE *idx, const doc_list *docs, unsigned width)
{
    unsigned char h[8];
    uint64_t ptr = 0;

    fwrite(MEGATRON_MAGIC, 1, MEGATRON_MAGIC_LEN, idx);
    shard_put64(h, 1);
    fwrite(h, 1, 8, idx);
    fputc(width == 2 ? MEGATRON_UINT16 : MEGATRON_INT32, idx);
    shard_put64(h, docs->n);
    fwrite(h, 1, 8, idx);
    shard_put64(h, docs->n + 1);
    fwrite(h, 1, 8, idx);
    for (size_t i = 0; i < docs->n; i++) {
        shard_put32(h, (uint32_t)docs->lengths[i]);
        fwrite(h, 1, 4, idx);
    }
    for (size_t i = 0; i < docs->n; i++) {
        shard_put64(h, ptr);
        fwrite(h, 1, 8, idx);
        ptr += (uint64_t)docs->lengths[i] * width;
    }
    for (size_t i = 0; i <= docs->n; i++) {
        shard_put64(h, i);
        fwrite(h, 1, 8, idx);
    }
}

/* Megatron's own rule: uint16 when every id fits below 65500. */
static unsigned token_width(shard_dataset *ds)
{
    for (size_t k = 0; k < shard_dataset_shards(ds); k++)
        if (shard_reader_info(shard_dataset_shard(ds, k))->vocab_size >=
            65500)
            return 4;
    return 2;
}

static int export_megatron(shard_dataset *ds, shard_loader *l,
                           const char *prefix)
{
    out_file bin = {0}, idx = {0};
    doc_list docs = {0};
    unsigned width = token_width(ds);
    shard_record rec;
    int rc, ok = 1;

    if (out_open(&bin, prefix, ".bin") < 0)
        return EXIT_FAIL;
    while (ok && (rc = shard_loader_next(l, &rec)) != 0) {
        if (rc < 0) {
            cli_error("export: %s", shard_loader_errmsg(l));
            ok = 0;
            break;
        }
        ok = put_document(bin.f, &rec, width, &docs) == 0;
        shard_record_release(&rec);
    }
    if (ok && out_open(&idx, prefix, ".idx") == 0)
        put_index(idx.f, &docs, width);
    ok = ok && idx.f && !ferror(bin.f) && !ferror(idx.f);
    ok = out_close(&idx, ok) == 0 && ok;
    ok = out_close(&bin, ok) == 0 && ok;
    if (ok && cli_verbosity > 0)
        fprintf(stderr, "shard: exported %zu documents, %llu tokens "
                "(%s) to %s.bin and %s.idx\n", docs.n,
                (unsigned long long)docs.tokens,
                width == 2 ? "uint16" : "int32", prefix, prefix);
    free(docs.lengths);
    return ok ? EXIT_OK : EXIT_FAIL;
}

static int export_jsonl(shard_dataset *ds, shard_loader *l,
                        const char *prefix)
{
    out_file o = {0};
    int status;

    if (out_open(&o, prefix, ".jsonl") < 0)
        return EXIT_FAIL;
    status = cli_write_records(o.f, ds, l, 0);
    if (out_close(&o, status == EXIT_OK) < 0)
        return EXIT_FAIL;
    if (status == EXIT_OK && cli_verbosity > 0)
        fprintf(stderr, "shard: exported %llu records to %s.jsonl\n",
                (unsigned long long)shard_loader_records(l), prefix);
    return status;
}

int cmd_export(int argc, char **argv)
{
    const char *to = NULL, *prefix = NULL, *label = NULL;
    int n, rc;
    cli_option opts[] = {
        {"to", 0, OPT_STRING, &to, "FORMAT", "megatron or jsonl"},
        {"output", 'o', OPT_STRING, &prefix, "PREFIX",
         "write PREFIX.bin and PREFIX.idx, or PREFIX.jsonl"},
        {"label", 'l', OPT_STRING, &label, "SEL",
         "pos, neg, unl, both, all (default) or pairs"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_command cmd = {"export", "DIR|SHARD --to FORMAT -o PREFIX",
                       "Export records for other trainers: Megatron-Core "
                       "indexed dataset (.bin/.idx) or JSON lines.",
                       opts, 1, 1};
    shard_dataset *ds;
    shard_loader *l;
    char **paths;

    if ((rc = cli_parse(&cmd, argc, argv, &paths, &n)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (!to || (strcmp(to, "megatron") && strcmp(to, "jsonl"))) {
        cli_error("export: --to megatron or --to jsonl is needed");
        rc = EXIT_USAGE;
    } else if (!prefix) {
        cli_error("export: -o PREFIX is needed");
        rc = EXIT_USAGE;
    } else {
        rc = cli_open_loader("export", paths[0], label, NULL, &ds, &l);
    }
    if (rc == EXIT_OK) {
        rc = !strcmp(to, "megatron") ? export_megatron(ds, l, prefix)
                                     : export_jsonl(ds, l, prefix);
        shard_loader_close(l);
        shard_dataset_close(ds);
    }
    free(paths);
    return rc;
}
