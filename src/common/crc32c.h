/*
 * crc32c: CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF; "123456789" gives 0xE3069283), the
 * checksum of cache log records and snapshots.  Slicing-by-8 from tables
 * built once (thread-safe).
 *
 *	uint32_t c = RS_CRC32C_INIT;
 *	c = rs_crc32c_update(c, buf, len);   ... more fields ...
 *	checksum = rs_crc32c_final(c);
 */
#ifndef RS_CRC32C_H
#define RS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define RS_CRC32C_INIT 0xffffffffu

uint32_t rs_crc32c_update(uint32_t state, const void *buf, size_t len);
/* 8 bytes, little-endian. */
uint32_t rs_crc32c_u64(uint32_t state, uint64_t v);
/* The length as rs_crc32c_u64, then the bytes: unambiguous field framing. */
uint32_t rs_crc32c_lenbytes(uint32_t state, const void *buf, size_t len);

static inline uint32_t rs_crc32c_final(uint32_t state)
{
	return ~state;
}

#endif
