/*
 * SQLite peer for Benchmarks/compare/run.sh: N threads, one connection each, to one database in WAL
 * mode with synchronous=FULL (every commit fsyncs the WAL). Each operation is one transaction:
 * BEGIN IMMEDIATE; INSERT one row (thread, seq, value of --value-size bytes); COMMIT. SQLite admits
 * one writer at a time, so the threads take turns through a mutex around each transaction, as a
 * multi-threaded application would. (Left to SQLite's own locking, waiting writers poll: busy_timeout
 * sleeps 1 to 100 ms between retries and leaves the database idle most of the time at 16 threads, and
 * a tight retry loop starves the lock holder of CPU on a small machine.) busy_timeout stays as a
 * safety net. Prints one JSON line.
 *
 * Build: gcc -O2 -pthread sqlite_bench.c -lsqlite3 -o sqlite_bench   (Debian: libsqlite3-dev)
 */
#include "harness.h"

#include <sqlite3.h>

const char *harness_name = "sqlite";

static unsigned char *value;
static int value_len;

struct conn {
    sqlite3 *db;
    sqlite3_stmt *begin, *insert, *commit;
};

/* One writer at a time (SQLite's rule), without polling for the lock. */
static pthread_mutex_t writer = PTHREAD_MUTEX_INITIALIZER;

static int exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        return 1;
    }
    return 0;
}

static sqlite3 *open_db(const char *path) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000);
    if (exec(db, "PRAGMA journal_mode=WAL") || exec(db, "PRAGMA synchronous=FULL")) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int harness_setup(const struct harness_args *a) {
    sqlite3 *db = open_db(a->path);
    if (!db) return 1;
    int rc = exec(db, "CREATE TABLE IF NOT EXISTS t(thread INTEGER, seq INTEGER, v BLOB)");
    sqlite3_close(db);
    value_len = a->value_size;
    value = malloc(value_len ? (size_t)value_len : 1);
    if (!value) return 1;
    for (int i = 0; i < value_len; i++) value[i] = (unsigned char)('a' + i % 26);
    return rc;
}

void *harness_thread_open(const struct harness_args *a, int thread) {
    (void)thread;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->db = open_db(a->path);
    if (!c->db ||
        sqlite3_prepare_v2(c->db, "BEGIN IMMEDIATE", -1, &c->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "INSERT INTO t(thread, seq, v) VALUES(?, ?, ?)", -1, &c->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "COMMIT", -1, &c->commit, NULL) != SQLITE_OK) {
        if (c->db) fprintf(stderr, "sqlite: prepare: %s\n", sqlite3_errmsg(c->db));
        harness_thread_close(c);
        return NULL;
    }
    return c;
}

static int step(struct conn *c, sqlite3_stmt *s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "sqlite: %s: %s\n", sqlite3_sql(s), sqlite3_errmsg(c->db));
        return 1;
    }
    return 0;
}

int harness_op(void *ctx, int thread, unsigned long long seq) {
    struct conn *c = ctx;
    int rc = 1;
    pthread_mutex_lock(&writer);
    if (step(c, c->begin)) goto out;
    sqlite3_bind_int(c->insert, 1, thread);
    sqlite3_bind_int64(c->insert, 2, (sqlite3_int64)seq);
    sqlite3_bind_blob(c->insert, 3, value, value_len, SQLITE_STATIC);
    if (step(c, c->insert)) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    rc = step(c, c->commit);
out:
    pthread_mutex_unlock(&writer);
    return rc;
}

void harness_thread_close(void *ctx) {
    struct conn *c = ctx;
    if (!c) return;
    sqlite3_finalize(c->begin);
    sqlite3_finalize(c->insert);
    sqlite3_finalize(c->commit);
    sqlite3_close(c->db);
    free(c);
}

void harness_teardown(void) { free(value); }
