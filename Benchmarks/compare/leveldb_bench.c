/*
 * LevelDB peer for Benchmarks/compare/run.sh: N threads, each doing leveldb_put with sync=true
 * (write + fdatasync of LevelDB's log, group-committed across threads by LevelDB's writer queue)
 * of a 16-byte key and a value of --value-size bytes, for --seconds after a warm-up.
 * Default LevelDB options otherwise (4 MiB write buffer, snappy). Prints one JSON line.
 *
 * Build: gcc -O2 -pthread leveldb_bench.c -lleveldb -o leveldb_bench   (Debian: libleveldb-dev)
 */
#include "harness.h"

#include <leveldb/c.h>

const char *harness_name = "leveldb";

static leveldb_t *db;
static leveldb_options_t *options;
static leveldb_writeoptions_t *sync_write;
static char *value;
static size_t value_len;

int harness_setup(const struct harness_args *a) {
    char *err = NULL;
    options = leveldb_options_create();
    leveldb_options_set_create_if_missing(options, 1);
    db = leveldb_open(options, a->path, &err);
    if (err) {
        fprintf(stderr, "leveldb: open %s: %s\n", a->path, err);
        leveldb_free(err);
        return 1;
    }
    sync_write = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(sync_write, 1);
    value_len = (size_t)a->value_size;
    value = malloc(value_len ? value_len : 1);
    if (!value) return 1;
    for (size_t i = 0; i < value_len; i++) value[i] = (char)('a' + i % 26);
    return 0;
}

void *harness_thread_open(const struct harness_args *a, int thread) {
    (void)a;
    return (void *)(intptr_t)(thread + 1); /* no per-thread state: LevelDB handles are thread-safe */
}

int harness_op(void *ctx, int thread, unsigned long long seq) {
    (void)ctx;
    char key[32];
    snprintf(key, sizeof key, "%03u%013llu", (unsigned)thread % 1000u, seq % 10000000000000ull);
    char *err = NULL;
    leveldb_put(db, sync_write, key, 16, value, value_len, &err);
    if (err) {
        fprintf(stderr, "leveldb: put: %s\n", err);
        leveldb_free(err);
        return 1;
    }
    return 0;
}

void harness_thread_close(void *ctx) { (void)ctx; }

void harness_teardown(void) {
    leveldb_close(db);
    leveldb_writeoptions_destroy(sync_write);
    leveldb_options_destroy(options);
    free(value);
}
