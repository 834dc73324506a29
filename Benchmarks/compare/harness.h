/*
 * Shared driver for the peer harnesses of Benchmarks/compare (leveldb_bench.c, sqlite_bench.c):
 * N threads call one durable operation in a loop for a fixed time after a warm-up, and the driver
 * prints one JSON line with ops/s and latency percentiles. Only operations that start and end inside
 * the measured interval count, as in `txlog bench commit`. Each harness is one program: it includes
 * this header once, which supplies main().
 *
 * A harness defines:
 *   int  harness_setup(const struct harness_args *a);      once, before the threads start
 *   void *harness_thread_open(const struct harness_args *a, int thread);   per thread
 *   int  harness_op(void *ctx, int thread, unsigned long long seq);  one durable operation; 0 = ok
 *   void harness_thread_close(void *ctx);
 *   void harness_teardown(void);
 *   const char *harness_name;
 */
#ifndef COMPARE_HARNESS_H
#define COMPARE_HARNESS_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct harness_args {
    const char *path;   /* database directory or file */
    int threads;
    double seconds;
    double warmup;
    int value_size;
};

extern const char *harness_name;
int harness_setup(const struct harness_args *a);
void *harness_thread_open(const struct harness_args *a, int thread);
int harness_op(void *ctx, int thread, unsigned long long seq);
void harness_thread_close(void *ctx);
void harness_teardown(void);

enum { PHASE_WARMUP = 0, PHASE_MEASURING = 1, PHASE_STOPPED = 2 };
static atomic_int harness_phase = PHASE_WARMUP;
static atomic_int harness_failed = 0;

static uint64_t harness_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct harness_thread {
    pthread_t tid;
    int index;
    const struct harness_args *args;
    uint64_t *lat;     /* latencies of measured operations, ns */
    size_t count, cap;
};

static void *harness_run_thread(void *p) {
    struct harness_thread *t = p;
    void *ctx = harness_thread_open(t->args, t->index);
    if (!ctx) {
        atomic_store(&harness_failed, 1);
        return NULL;
    }
    unsigned long long seq = 0;
    for (;;) {
        int phase = atomic_load(&harness_phase);
        if (phase == PHASE_STOPPED) break;
        uint64_t start = harness_now_ns();
        if (harness_op(ctx, t->index, seq++) != 0) {
            atomic_store(&harness_failed, 1);
            break;
        }
        uint64_t end = harness_now_ns();
        if (phase == PHASE_MEASURING && atomic_load(&harness_phase) == PHASE_MEASURING) {
            if (t->count == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 65536;
                uint64_t *n = realloc(t->lat, cap * sizeof *n);
                if (!n) {
                    atomic_store(&harness_failed, 1);
                    break;
                }
                t->lat = n;
                t->cap = cap;
            }
            t->lat[t->count++] = end - start;
        }
    }
    harness_thread_close(ctx);
    return NULL;
}

static int harness_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void harness_usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --path PATH [--threads N] [--seconds S] [--warmup S] [--value-size BYTES]\n"
            "Runs N threads doing one durable %s operation each in a loop; prints one JSON line.\n",
            argv0, harness_name);
}

static void harness_sleep(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

int main(int argc, char **argv) {
    struct harness_args a = {NULL, 1, 5.0, 0.5, 100};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            harness_usage(argv[0]);
            return 0;
        }
        if (!v) {
            harness_usage(argv[0]);
            return 2;
        }
        if (!strcmp(k, "--path")) a.path = v;
        else if (!strcmp(k, "--threads")) a.threads = atoi(v);
        else if (!strcmp(k, "--seconds")) a.seconds = atof(v);
        else if (!strcmp(k, "--warmup")) a.warmup = atof(v);
        else if (!strcmp(k, "--value-size")) a.value_size = atoi(v);
        else {
            harness_usage(argv[0]);
            return 2;
        }
        i++;
    }
    if (!a.path || a.threads < 1 || a.threads > 1024 || a.seconds <= 0 || a.warmup < 0 || a.value_size < 0 ||
        a.value_size > (1 << 20)) {
        harness_usage(argv[0]);
        return 2;
    }
    if (harness_setup(&a) != 0) return 1;
    struct harness_thread *ts = calloc((size_t)a.threads, sizeof *ts);
    if (!ts) return 1;
    for (int i = 0; i < a.threads; i++) {
        ts[i].index = i;
        ts[i].args = &a;
        if (pthread_create(&ts[i].tid, NULL, harness_run_thread, &ts[i]) != 0) {
            fprintf(stderr, "%s: pthread_create failed\n", harness_name);
            return 1;
        }
    }
    harness_sleep(a.warmup);
    uint64_t t0 = harness_now_ns();
    atomic_store(&harness_phase, PHASE_MEASURING);
    harness_sleep(a.seconds);
    atomic_store(&harness_phase, PHASE_STOPPED);
    uint64_t t1 = harness_now_ns();
    size_t total = 0;
    for (int i = 0; i < a.threads; i++) {
        pthread_join(ts[i].tid, NULL);
        total += ts[i].count;
    }
    harness_teardown();
    if (atomic_load(&harness_failed)) {
        fprintf(stderr, "%s: an operation failed\n", harness_name);
        return 1;
    }
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) return 1;
    size_t n = 0;
    for (int i = 0; i < a.threads; i++) {
        memcpy(all + n, ts[i].lat, ts[i].count * sizeof *all);
        n += ts[i].count;
        free(ts[i].lat);
    }
    qsort(all, n, sizeof *all, harness_cmp);
    double secs = (double)(t1 - t0) / 1e9;
    double p50 = n ? (double)all[n / 2] / 1e3 : 0, p99 = n ? (double)all[(size_t)((double)n * 0.99)] / 1e3 : 0;
    printf("{\"engine\":\"%s\",\"threads\":%d,\"valueBytes\":%d,\"ops\":%zu,\"seconds\":%.3f,"
           "\"opsPerSecond\":%.1f,\"p50us\":%.1f,\"p99us\":%.1f}\n",
           harness_name, a.threads, a.value_size, n, secs, (double)n / secs, p50, p99);
    free(all);
    free(ts);
    return 0;
}

#endif
