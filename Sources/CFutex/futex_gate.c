#include "futex_gate.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <limits.h>

void txlog_futex_wait(uint32_t *word, uint32_t expected) {
    /* EAGAIN (the word already changed) and EINTR both just return: the caller re-checks. */
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void txlog_futex_wake_all(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
#include <time.h>

void txlog_futex_wait(uint32_t *word, uint32_t expected) {
    struct timespec pause = {0, 50000};
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == expected) nanosleep(&pause, NULL);
}

void txlog_futex_wake_all(uint32_t *word) { (void)word; }
#endif

uint32_t txlog_load_acquire_u32(const uint32_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
void txlog_store_release_u32(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }
uint64_t txlog_load_acquire_u64(const uint64_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
void txlog_store_release_u64(uint64_t *word, uint64_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }
