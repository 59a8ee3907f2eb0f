// Package hwinventory tells the deploy agent what machine it runs on: the
// network interfaces, CPU, memory, disks, DMI identity, boot mode and BMC
// addresses, as the agentwire.Inventory of a native lookup (IPA's inventory
// shape, with IPA's values) and as the disks.Disk the agent writes to.
//
// Collect reads a live machine, or a recorded tree of one (Options.Root);
// RecordTree makes such a tree from what Collect reads. LoadProfile and
// SimulatedProfile stand in for a machine under simulation: a JSON profile
// whose disks are files.
//
// # Why sysfs and procfs, not ghw
//
// The agent runs in a busybox ramdisk without udev, and ghw (already a
// module of this repository) takes a disk's model, serial number, WWN and
// bus path from the udev database (/run/udev/data/b<major>:<minor>, see
// pkg/block/block_linux.go in ghw v0.27.0): there, every disk would be
// "unknown". ghw's NIC details shell out to ethtool, also absent. So this
// package reads the kernel's own files and derives what udev would have:
// the serial from the SCSI unit serial number page (vpd_pg80) or the
// controller's attribute, the WWN from the device identification page
// (vpd_pg83) as scsi_id and ata_id do, and the /dev/disk/by-path name as
// udev's path_id builtin composes it. Where udev did run (a by-path
// directory exists), its links are preferred. The values follow IPA's
// (lsblk and udev properties, the first IPMI LAN channel with an address)
// so that root device hints written for IPA match here too.
package hwinventory
