/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Filesystem types by statfs(2) f_type (see fstype.h). */
#include <stdbool.h>
#include <stddef.h>
#include <sys/statfs.h>

#include "fstype.h"

const char *vp_fstype_local(unsigned long type)
{
	switch (type) {
	case 0xEF53: return "ext4";            /* EXT2/3/4_SUPER_MAGIC */
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x858458f6: return "ramfs";
	case 0x794c7630: return "overlayfs";
	case 0xF2F52010: return "f2fs";
	case 0x2fc12fc1: return "zfs";
	case 0x3153464a: return "jfs";
	case 0x52654973: return "reiserfs";
	case 0x4d44: return "vfat";
	case 0x2011BAB0: return "exfat";
	case 0x5346544e: return "ntfs";
	case 0xcafe4a11: return "bcachefs";
	case 0xf15f: return "ecryptfs";
	default: return NULL;
	}
}

const char *vp_fstype_remote(unsigned long type)
{
	switch (type) {
	case 0x6969: return "nfs";
	case 0xFF534D42: return "cifs";
	case 0xFE534D42: return "smb2";
	case 0x00c36400: return "ceph";
	case 0x65735546: return "fuse";
	case 0x0BD00BD0: return "lustre";
	case 0x47504653: return "gpfs";
	case 0x01021997: return "9p";
	case 0x5346414f: return "afs";
	case 0x19830326: return "fhgfs";
	default: return NULL;
	}
}

bool vp_fs_round_trips(int fd)
{
	struct statfs sf;

	return fstatfs(fd, &sf) == 0 && !vp_fstype_local((unsigned long)sf.f_type);
}
