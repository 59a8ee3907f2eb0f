#!/usr/bin/env bash
# make-iso.sh KERNEL INITRD CMDLINE OUT
#
# Writes a BIOS-bootable CD image (isolinux; isohybrid, so it also boots
# written to a USB stick) that boots KERNEL with INITRD and CMDLINE. The
# virtual-media boot interface makes one per node this way: the command line
# carries the node's ferric.api= (and BOOTIF= of the port to use), and a CD
# has nowhere else to put it. Kernel and initramfs are the generic ones, so a
# per-node ISO costs a copy and under a second of xorriso.
#
# Needs xorriso and Debian's isolinux and syslinux-common (ISOLINUX_DIR and
# SYSLINUX_MODULES override where their files are). Timestamps come from
# SOURCE_DATE_EPOCH (default: the kernel's mtime): the same inputs give the
# same bytes.
set -euo pipefail

if (($# != 4)); then
	echo "usage: make-iso.sh KERNEL INITRD CMDLINE OUT" >&2
	exit 2
fi
kernel=$1 initrd=$2 cmdline=$3 out=$4
isolinux=${ISOLINUX_DIR:-/usr/lib/ISOLINUX}
modules=${SYSLINUX_MODULES:-/usr/lib/syslinux/modules/bios}

for f in "$kernel" "$initrd" "$isolinux/isolinux.bin" "$isolinux/isohdpfx.bin" "$modules/ldlinux.c32"; do
	[[ -f $f ]] || {
		echo "make-iso.sh: $f: missing (apt-get install isolinux syslinux-common)" >&2
		exit 1
	}
done
# The command line becomes one line of isolinux.cfg: a newline in it would
# add directives of the caller's choosing. isolinux reads at most ~2 KiB.
if [[ $cmdline == *[[:cntrl:]]* ]] || ((${#cmdline} > 2000)); then
	echo "make-iso.sh: the command line must be one line of at most 2000 characters" >&2
	exit 1
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$kernel")}

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/isolinux" "$tree/boot"
cp "$isolinux/isolinux.bin" "$modules/ldlinux.c32" "$tree/isolinux/"
cp "$kernel" "$tree/boot/vmlinuz"
cp "$initrd" "$tree/boot/initrd"
# SERIAL: the loader's own messages on serial-over-LAN too.
cat >"$tree/isolinux/isolinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT ferric
PROMPT 0
TIMEOUT 0
LABEL ferric
  LINUX /boot/vmlinuz
  INITRD /boot/initrd
  APPEND $cmdline
EOF
chmod -R u+rwX,go+rX,go-w "$tree"
find "$tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# xorriso takes its dates and volume UUID from SOURCE_DATE_EPOCH; -r sets
# owners to root and normalises modes.
# Its banner and notes only matter when it fails.
if ! log=$(timeout 300 xorriso -as mkisofs -quiet -r -V FERRIC_AGENT \
	-o "$out.tmp" \
	-b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table \
	-isohybrid-mbr "$isolinux/isohdpfx.bin" \
	"$tree" 2>&1); then
	echo "$log" >&2
	echo "make-iso.sh: xorriso failed" >&2
	rm -f "$out.tmp"
	exit 1
fi
mv -f "$out.tmp" "$out"
