/*
 * read_shard.c - reading a dataset with the reader library alone.
 *
 *     cc read_shard.c -lshard-reader -lzstd -lxxhash -lpthread
 *     ./read_shard DIR [pos|neg|unl]
 *
 * Prints the record and token counts, then each of the first records'
 * label, prompt length and first tokens.  The tokens are read in place:
 * from the mapping (codec none) or from a shared decompressed frame.
 * Then makes one shuffled pass in packed batches, as a trainer's data
 * loader would, and prints the loader's state at its end.
 */
#include <stdio.h>

#include "shard_reader.h"

/* A shuffled pass in batches of at most 8 records and 4096 tokens. */
static int shuffled_pass(shard_dataset *d)
{
    shard_loader_options o = SHARD_LOADER_OPTIONS_INIT;
    static uint32_t tokens[4096], lengths[8];
    static uint8_t mask[4096];
    shard_batch b = {tokens, mask, 4096, 2048, lengths, NULL, NULL, 8,
                     0, 0, 0};
    unsigned long long n = 0, total = 0, response = 0;
    shard_loader_state st;
    shard_loader *l;
    int rc;

    o.shuffle = 1;
    o.seed = 1;
    o.readahead = 1;
    if (shard_loader_open(&l, d, &o) != 0) {
        fprintf(stderr, "read_shard: %s\n", shard_last_error());
        return 1;
    }
    while ((rc = shard_loader_batch(l, &b)) == 0 && b.n_records > 0) {
        n++;
        total += b.n_tokens;
        for (size_t i = 0; i < b.n_tokens; i++)
            response += mask[i];
    }
    if (rc != 0)
        fprintf(stderr, "read_shard: %s\n", shard_loader_errmsg(l));
    shard_loader_state_get(l, &st);
    printf("shuffled pass: %llu batches, %llu tokens, %llu in responses; "
           "state seed=%llu epoch=%llu position=%llu\n", n, total, response,
           (unsigned long long)st.seed, (unsigned long long)st.epoch,
           (unsigned long long)st.position);
    shard_loader_close(l);
    return rc != 0;
}

int main(int argc, char **argv)
{
    shard_dataset *d;
    uint64_t tokens = 0;
    int label = argc > 2 ? shard_label_parse(argv[2]) : -1;

    if (argc < 2 || (argc > 2 && label < 0)) {
        fprintf(stderr, "usage: read_shard DIR [pos|neg|unl]\n");
        return 2;
    }
    if (shard_dataset_open(&d, argv[1], label, NULL) != 0) {
        fprintf(stderr, "read_shard: %s\n", shard_last_error());
        return 1;
    }
    for (uint64_t i = 0; i < shard_dataset_count(d); i++) {
        shard_record r;

        if (shard_dataset_get(d, i, &r) != 0) {
            fprintf(stderr, "read_shard: %s\n", shard_dataset_errmsg(d));
            shard_dataset_close(d);
            return 1;
        }
        tokens += r.n_tokens;
        shard_record_release(&r);
    }
    printf("%llu records, %llu tokens\n",
           (unsigned long long)shard_dataset_count(d),
           (unsigned long long)tokens);

    for (uint64_t i = 0; i < shard_dataset_count(d) && i < 3; i++) {
        shard_record r;

        if (shard_dataset_get(d, i, &r) != 0)
            break;
        printf("%s prompt_len=%u tokens:", shard_label_name(r.label),
               r.prompt_len);
        for (size_t k = 0; k < r.n_tokens && k < 8; k++)
            printf(" %u", shard_record_token(&r, k));
        printf("%s\n", r.n_tokens > 8 ? " ..." : "");
        shard_record_release(&r);
    }
    int rc = shuffled_pass(d);
    shard_dataset_close(d);
    return rc;
}
