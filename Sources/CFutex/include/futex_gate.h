/*
 * The few primitives the log's flush gate needs that Swift cannot reach directly: a futex wait and
 * wake-all on a 32-bit word (the futex system call is variadic in glibc), and acquire / release
 * loads and stores on plain memory, so the threads sleeping on the word can read what the waking
 * thread published without taking the log's lock.
 *
 * Linux only, like the rest of TxLog. On other systems the wait degrades to a short sleep loop (the
 * callers re-check their condition after every return), which is correct but slow.
 */
#ifndef TXLOG_FUTEX_GATE_H
#define TXLOG_FUTEX_GATE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sleeps while *word == expected. Returns when woken, at once if *word != expected, and possibly
 * spuriously (signals): callers always re-check. */
void txlog_futex_wait(uint32_t *word, uint32_t expected);

/* Wakes every thread sleeping in txlog_futex_wait on word. */
void txlog_futex_wake_all(uint32_t *word);

uint32_t txlog_load_acquire_u32(const uint32_t *word);
void txlog_store_release_u32(uint32_t *word, uint32_t value);
uint64_t txlog_load_acquire_u64(const uint64_t *word);
void txlog_store_release_u64(uint64_t *word, uint64_t value);

#ifdef __cplusplus
}
#endif

#endif
