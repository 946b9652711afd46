/*
 * read_shard.c - reading a dataset with the reader library alone.
 *
 *     cc read_shard.c -lshard-reader -lzstd -lxxhash -lpthread
 *     ./read_shard DIR [pos|neg|unl]
 *
 * Prints the record and token counts, then each of the first records'
 * label, prompt length and first tokens.  The tokens are read in place:
 * from the mapping (codec none) or from a shared decompressed frame.
 */
#include <stdio.h>

#include "shard_reader.h"

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
    shard_dataset_close(d);
    return 0;
}
