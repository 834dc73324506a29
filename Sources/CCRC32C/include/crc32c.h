/*
 * CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as used by iSCSI
 * (RFC 3720), ext4 and LevelDB (before masking).
 *
 * All functions take and return a *finalized* CRC: start with 0, feed the
 * returned value back in to continue. The initial and final inversions are
 * applied inside, so
 *
 *     txlog_crc32c_update(txlog_crc32c_update(0, a, na), b, nb)
 *         == txlog_crc32c_update(0, a || b, na + nb)
 *
 * and txlog_crc32c_update(0, "123456789", 9) == 0xE3069283.
 *
 * buf may be NULL when len is 0. Buffers need no particular alignment.
 * All functions are thread-safe and allocate nothing.
 */
#ifndef TXLOG_CRC32C_H
#define TXLOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fastest available implementation (SSE4.2 on x86_64 when the CPU has it,
 * chosen on first call; the portable software path otherwise). */
uint32_t txlog_crc32c_update(uint32_t crc, const void *buf, size_t len);

/* Portable software implementation (slice-by-8), same semantics.
 * Exposed so tests can compare it with txlog_crc32c_update. */
uint32_t txlog_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* 1 if txlog_crc32c_update uses the SSE4.2 hardware path, 0 otherwise. */
int txlog_crc32c_hw_available(void);

#ifdef __cplusplus
}
#endif

#endif /* TXLOG_CRC32C_H */
