/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_CRC32C_H
#define VOLPERM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), as iSCSI/ext4/btrfs use it. `crc` is the running value:
 * start with 0; crc32c(crc32c(0, a), b) == crc32c(0, a||b). */
uint32_t vp_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
