// malloc-count: an LD_PRELOAD shim that counts malloc, calloc, realloc, posix_memalign and aligned_alloc
// calls with atomics and prints the totals to stderr when the process exits. With MCOUNT_TRACE=malloc
// (or calloc, memalign, all) it also prints the backtrace of every MCOUNT_EVERY-th such call after the
// first MCOUNT_SKIP (at most MCOUNT_MAX of them). See tools/malloc-count/README.md.
//
// Build: cc -O2 -shared -fPIC -o mcount.so mcount.c -ldl   (or `make malloc-count`)

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <execinfo.h>
static __thread int in_trace;
static long trace_skip = -1, trace_every = 1000, trace_max = 40;
static int trace_kind = 0; /* 1 malloc 2 calloc 3 memalign 4 all */
static atomic_long trace_seen, trace_done;
static void trace_init(void) {
    const char *k = getenv("MCOUNT_TRACE");
    if (!k) { trace_kind = -1; return; }
    trace_kind = !strcmp(k, "malloc") ? 1 : !strcmp(k, "calloc") ? 2 : !strcmp(k, "memalign") ? 3 : 4;
    const char *s = getenv("MCOUNT_SKIP"); trace_skip = s ? atol(s) : 0;
    const char *e = getenv("MCOUNT_EVERY"); if (e) trace_every = atol(e);
    const char *m = getenv("MCOUNT_MAX"); if (m) trace_max = atol(m);
}
static void maybe_trace(int kind) {
    if (trace_kind <= 0 || in_trace) return;
    if (trace_kind != 4 && trace_kind != kind) return;
    long n = atomic_fetch_add(&trace_seen, 1);
    if (n < trace_skip || (n - trace_skip) % trace_every) return;
    if (atomic_fetch_add(&trace_done, 1) >= trace_max) return;
    in_trace = 1;
    void *frames[24];
    int c = backtrace(frames, 24);
    write(2, "--bt\n", 5);
    backtrace_symbols_fd(frames, c, 2);
    in_trace = 0;
}

static atomic_ulong n_malloc, n_calloc, n_realloc, n_memalign, n_aligned;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static __thread int in_init;
static char bootstrap[8192];
static size_t boot_used;

static void init(void) {
    if (real_malloc) return;
    in_init = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    in_init = 0;
    trace_init();
}
void *malloc(size_t n) {
    if (!real_malloc) { if (in_init) { void *p = bootstrap + boot_used; boot_used += (n + 15) & ~15UL; return p; } init(); }
    atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed); maybe_trace(1);
    return real_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (!real_calloc) { if (in_init) { void *p = bootstrap + boot_used; boot_used += (a * b + 15) & ~15UL; memset(p, 0, a*b); return p; } init(); }
    atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed); maybe_trace(2);
    return real_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (!real_realloc) init();
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
    return real_realloc(p, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
    if (!real_posix_memalign) init();
    atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed); maybe_trace(3);
    return real_posix_memalign(p, a, n);
}
void *aligned_alloc(size_t a, size_t n) {
    if (!real_aligned_alloc) init();
    atomic_fetch_add_explicit(&n_aligned, 1, memory_order_relaxed);
    return real_aligned_alloc(a, n);
}
void free(void *p) {
    static void (*real_free)(void *);
    if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}
__attribute__((destructor)) static void report(void) {
    char buf[256];
    int len = snprintf(buf, sizeof buf, "mcount: malloc=%lu calloc=%lu realloc=%lu posix_memalign=%lu aligned_alloc=%lu total=%lu\n",
        atomic_load(&n_malloc), atomic_load(&n_calloc), atomic_load(&n_realloc), atomic_load(&n_memalign), atomic_load(&n_aligned),
        atomic_load(&n_malloc) + atomic_load(&n_calloc) + atomic_load(&n_realloc) + atomic_load(&n_memalign) + atomic_load(&n_aligned));
    write(2, buf, len);
}
