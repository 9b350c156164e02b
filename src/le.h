/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_LE_H
#define VOLPERM_LE_H

/* Little-endian integers of the on-disk formats (the journal, the shard
 * manifest and sightings): byte by byte, so the files are the same on every
 * host and no unaligned access is ever made. Internal to the core. */

#include <stdint.h>

static inline void vp_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vp_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t vp_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t vp_get64(const uint8_t *p)
{
	return (uint64_t)vp_get32(p) | (uint64_t)vp_get32(p + 4) << 32;
}

#endif
