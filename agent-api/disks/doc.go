// Package disks is what the deploy agent does to block devices: choosing the
// root device by Ironic's hints, adding the configdrive partition, and
// erasing metadata or whole disks when cleaning. The agent is a static
// binary in a ramdisk without sgdisk, parted or wipefs, so all of it is Go.
//
// # Disks and files
//
// A Disk's Path is either a block device or, under simulation, a regular
// (sparse) file standing in for one. Which it is comes from stat: block
// devices are measured and driven with ioctls (BLKGETSIZE64, BLKSSZGET,
// BLKZEROOUT, BLKRRPART, BLKPG), files by their size, with 512-byte sectors
// unless a GPT is found at 4096. Every read and write is checked against
// the device's size, so nothing found in a partition table can make the
// package write outside the disk.
//
// # Root device hints
//
// SelectRoot ports Ironic's parse_root_device_hints and
// find_devices_by_hints (ironic/common/utils.py, IPA's device_hints.py) and
// the grammar of oslo.utils' specs_matcher, quirks included: values are
// lower-cased, trimmed and URL-quoted before comparing, operators are
// matched as prefixes, a bare value means == (size) or s== (strings).
// Where Ironic would accept a hint and then fail or silently never match, it
// is rejected here with a message naming the hint (string operators, <in>
// and <all-in> on size; <all-in> and <range-in> on strings), except that
// size "<or>" compares numbers, as documented, where Ironic compares the
// GiB size with strings and never matches, and size "<range-in>" is taken
// as Ironic's conductor takes it. The name hint accepts names without
// /dev/ and /dev/disk/by-path/ links; by_path accepts the link's name
// alone. Without hints the smallest disk of at least 4 GiB is chosen, ties
// broken by name, as IPA's guess_root_disk does; like it, read-only and
// removable disks are not excluded.
//
// # Partition tables
//
// GPT and MBR are read and edited by this package rather than with
// go-diskfs's partition packages: its GPT writer rebuilds the table from
// its own model, which does not keep an existing table byte for byte (it
// writes 128-byte entries whatever the entry size read, only 92 header
// bytes, and a fresh protective MBR over a hybrid one), its reader refuses
// valid headers larger than 92 bytes, and neither bounds what a hostile
// table may ask for. Editing here works on the raw header and entry bytes, changes
// only the fields that must change, and recomputes the CRC32s. Parsing is
// strict for writing (checksums, usable LBAs, overlaps, entry array
// bounded to 4 MiB, at most 256 logical partitions, EBR loops) and lenient
// for erasing (what can be located is erased). FuzzParsePartitions checks
// both, and that adding a configdrive partition leaves the others intact.
//
// # Configdrive
//
// DecodeConfigDrive accepts what Ironic passes in instance_info.configdrive:
// base64 of a gzipped ISO9660 image (or of a plain one), an http(s) URL to
// download that from (with the caller's http.Client; the body is bounded,
// the image limited to 64 MiB as IPA does), or Ironic's JSON form, from which
// BuildConfigDrive makes the ISO9660 image Ironic's conductor would (via
// openstacksdk): label config-2, Rock Ridge and Joliet, openstack/2012-08-10
// and openstack/latest with meta_data.json, network_data.json,
// vendor_data2.json and user_data. The ISO9660 writer is go-diskfs's.
//
// WriteConfigDrive follows IPA's create_config_drive_partition: reuse the
// partition labelled config-2 (filesystem label, or GPT name), otherwise
// add a 64 MiB partition at the end of the disk (smaller if less is free
// but the image fits), 1 MiB aligned. On GPT the backup header and entries
// are first moved to the end of the disk and the primary's last usable LBA
// extended (sgdisk -e), the new entry is type Linux filesystem named
// config-2, and a plain protective MBR is resized; on MBR it is a primary
// partition of type 0x0c (what parted's "fat32" gives), below 2 TiB, and 4
// primary partitions already is an error, as in IPA. A disk without a
// partition table is an error. After writing: fsync, BLKRRPART, and BLKPG to
// add just the new partition when other partitions are busy.
//
// # Cleaning
//
// EraseMetadata does what IPA's erase_devices_metadata does with wipefs
// and dd: for the whole disk and for each partition in its tables (both GPT
// copies, the MBR and its extended boot records) it zeroes the first and
// the last MiB, plus 4 KiB at 1, 2 and 4 MiB (VMFS, LUKS2 secondary
// headers) and at 64 MiB, 256 GiB and 1 PiB (btrfs superblock mirrors). The
// first and last MiB hold every partition table, the primary superblocks
// of the common filesystems, swap, LVM, LUKS1, ISO9660/UDF, md RAID 0.90 to
// 1.2, ZFS's four labels and the firmware RAID anchors. It also zeroes the
// extended boot records and a backup GPT header left mid-disk by an image
// smaller than the disk. EraseAll zeroes everything: BLKZEROOUT on block
// devices (certain to read back zeros, unlike a discard), hole punching on
// files, writing zeros where neither works. Both honour cancellation
// between chunks of at most 64 MiB.
package disks
