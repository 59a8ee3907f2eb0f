#!/usr/bin/env bash
# Builds Ferric's deploy ramdisk from Debian packages and ferric-agent:
#   ferric-agent-ARCH.kernel     Debian's kernel (linux-image-ARCH)
#   ferric-agent-ARCH.initramfs  busybox, the drivers, CA certificates, the agent
#   ferric-agent-ARCH.iso        both on a BIOS-bootable CD (amd64 only)
# and a manifest of what went in. Two runs on the same inputs give the same
# bytes. Run it from anywhere; `build.sh -h` lists the options.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: build.sh [options]
  -o, --out DIR      output directory (default: bin/ramdisk in the repository)
  -a, --arch ARCH    amd64 (default) or arm64
      --agent FILE   a static ferric-agent binary (default: build it)
      --cache DIR    where downloaded .debs are kept (default: OUT/cache)
      --ca FILE      PEM bundle baked in as /etc/ferric/ca.pem (for ferric.ca=)
      --no-iso       skip the virtual-media ISO
Environment: FERRIC_API (the ISO's ferric.api=, default http://10.0.2.2:6386),
FERRIC_KERNEL_ARGS (more ISO kernel arguments), KERNEL_PACKAGE (pin the
kernel, e.g. linux-image-6.1.0-57-amd64), SOURCE_DATE_EPOCH (default: the
kernel's date), VERSION (the agent's version string).
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/bin/ramdisk
arch=amd64
agent=""
cache=""
ca=""
iso=1
while (($#)); do
	case $1 in
	-o | --out) out=$2 && shift 2 ;;
	-a | --arch) arch=$2 && shift 2 ;;
	--agent) agent=$2 && shift 2 ;;
	--cache) cache=$2 && shift 2 ;;
	--ca) ca=$2 && shift 2 ;;
	--no-iso) iso=0 && shift ;;
	-h | --help) usage && exit 0 ;;
	*) usage >&2 && exit 2 ;;
	esac
done
case $arch in
amd64 | arm64) ;;
*) echo "build.sh: arch $arch: amd64 or arm64" >&2 && exit 2 ;;
esac
# isolinux is BIOS x86 only; an arm64 virtual-media CD needs a UEFI loader.
[[ $arch == amd64 ]] || iso=0

# The drivers, by module name; build.sh adds what they depend on. A name
# this kernel lacks is reported and left out.
modules=(
	# virtio: VMs, the qemu lab, the e2e test
	virtio_pci virtio_blk virtio_scsi virtio_net virtio_rng
	# disks: NVMe, AHCI/SATA, SCSI disks, the common server RAID/HBAs
	# (Broadcom MegaRAID and SAS3, Microchip/HPE Smart Array)
	nvme ahci sd_mod megaraid_sas mpt3sas smartpqi
	# virtual media: BMCs present a USB (or SATA) CD-ROM
	sr_mod isofs xhci_pci ehci_pci usb_storage uas
	# NICs: Intel 1G-100G, Broadcom NetXtreme/-E, Mellanox ConnectX-4+, Realtek
	e1000 e1000e igb igc ixgbe i40e ice tg3 bnxt_en mlx5_core r8169
	# UEFI variables (boot order)
	efivarfs
)
[[ $arch == arm64 ]] && modules+=(virtio_mmio ahci_platform)

start=$SECONDS
say() { echo "build.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

need=(apt-get apt-cache dpkg-deb cpio gzip depmod modprobe sha256sum)
((iso)) && need+=(xorriso)
[[ -n $agent ]] || need+=(go)
missing=()
for c in "${need[@]}"; do command -v "$c" >/dev/null || missing+=("$c"); done
((${#missing[@]} == 0)) || die "missing ${missing[*]}; on Debian: apt-get install cpio kmod xorriso isolinux syslinux-common (and Go)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${cache:-$out/cache}
mkdir -p "$cache/debs"
work=$out/.work-$arch
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# apt: the machine's own lists for its architecture; for another one, a
# private list directory under the cache, so the host's apt is not changed.
# Sandbox::User: the cache is ours, _apt may not be able to write it.
apt_opts=(-o APT::Sandbox::User=root -q)
if [[ $arch != "$(dpkg --print-architecture)" ]] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
	mkdir -p "$cache/apt-$arch/lists/partial" "$cache/apt-$arch/archives/partial"
	apt_opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
		-o "Dir::State::Lists=$cache/apt-$arch/lists" -o "Dir::Cache=$cache/apt-$arch")
fi
if ! apt-cache "${apt_opts[@]}" show "linux-image-$arch" >/dev/null 2>&1; then
	say "no apt package lists for $arch: running apt-get update once"
	timeout 600 apt-get "${apt_opts[@]}" update >&2 || die "apt-get update failed"
fi

# linux-image-ARCH is a metapackage: its dependency is the kernel.
kpkg=${KERNEL_PACKAGE:-}
if [[ -z $kpkg ]]; then
	kpkg=$(apt-cache "${apt_opts[@]}" depends "linux-image-$arch" |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	[[ -n $kpkg ]] || die "linux-image-$arch depends on no linux-image-6.x package"
fi
kver=${kpkg#linux-image-}

# fetch PKG: the candidate's .deb in the cache, downloaded unless a copy
# with the archive's SHA256 is there already. Prints its path.
fetch() {
	local info ver debarch sha file
	info=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$1") || die "no package $1"
	ver=$(awk '$1 == "Version:" { print $2; exit }' <<<"$info")
	debarch=$(awk '$1 == "Architecture:" { print $2; exit }' <<<"$info")
	sha=$(awk '$1 == "SHA256:" { print $2; exit }' <<<"$info")
	file=$cache/debs/${1}_${ver/:/%3a}_$debarch.deb
	if ! sha256sum -c --status <<<"$sha  $file" 2>/dev/null; then
		say "downloading $1 $ver"
		rm -f "$file"
		(cd "$cache/debs" && timeout 600 apt-get "${apt_opts[@]}" download "$1=$ver" >&2) ||
			die "apt-get download $1=$ver failed"
		sha256sum -c --status <<<"$sha  $file" || die "$file: not the archive's SHA256"
	fi
	echo "$1 $ver" >>"$work/packages"
	echo "$file"
}

# busybox-static: the shell, mount, insmod, ip, udhcpc in one static binary.
# ca-certificates: the system CA bundle, so TLS to image servers verifies.
# ipmitool is left out: dynamically linked (its libraries would come too),
# and the agent does without it (the BMC address only enriches inspection).
for p in "$kpkg" busybox-static ca-certificates; do
	dir=$work/pkg/$p
	mkdir -p "$dir"
	deb=$(fetch "$p")
	dpkg-deb -x "$deb" "$dir"
done
kroot=$work/pkg/$kpkg
kernel=$kroot/boot/vmlinuz-$kver
[[ -f $kernel ]] || die "$kpkg has no boot/vmlinuz-$kver"
# Every timestamp in the outputs: the kernel's, unless the caller says.
epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$kernel")}
export SOURCE_DATE_EPOCH=$epoch

if [[ -z $agent ]]; then
	say "building ferric-agent for linux/$arch"
	ldflags="-s -w"
	[[ -n ${VERSION:-} ]] && ldflags+=" -X github.com/ferric-metal/ferric/shared/buildinfo.Version=$VERSION"
	(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch timeout 600 go build -trimpath \
		-ldflags "$ldflags" -o "$work/ferric-agent" ./agent-api/ferric-agent) ||
		die "go build ./agent-api/ferric-agent failed"
	agent=$work/ferric-agent
fi
[[ -f $agent ]] || die "$agent: no such file"
# The ramdisk has no libc: the agent must not need an ELF interpreter.
if command -v readelf >/dev/null && readelf -l "$agent" 2>/dev/null | grep -q 'Requesting program interpreter'; then
	die "$agent is dynamically linked: build it with CGO_ENABLED=0"
fi

# The module tree ships no modules.dep: depmod makes one, and modprobe
# --show-depends prints each module's dependencies in load order.
depmod -b "$kroot" "$kver"
root=$work/root
mdir=lib/modules/$kver
mkdir -p "$root/$mdir"
: >"$work/ferric.load"
for m in "${modules[@]}"; do
	if ! deps=$(modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>&1); then
		say "module $m: not in $kpkg, left out"
		continue
	fi
	while read -r kind path _; do
		[[ $kind == insmod ]] || continue # "builtin NAME": in the kernel already
		rel=${path#"$kroot/$mdir/"}
		ko=${rel%.xz}
		ko=${ko%.zst}
		ko=${ko%.gz}
		grep -qxF "$ko" "$work/ferric.load" && continue
		echo "$ko" >>"$work/ferric.load"
		mkdir -p "$root/$mdir/${ko%/*}"
		# busybox insmod loads plain ELF only; the outer gzip compresses them.
		case $rel in
		*.xz) xz -dc "$path" >"$root/$mdir/$ko" ;;
		*.zst) zstd -qdc "$path" >"$root/$mdir/$ko" ;;
		*.gz) gzip -dc "$path" >"$root/$mdir/$ko" ;;
		*) cp "$path" "$root/$mdir/$ko" ;;
		esac
	done <<<"$deps"
done
cp "$work/ferric.load" "$root/$mdir/ferric.load"

install -D -m 0755 "$here/init" "$root/init"
install -D -m 0755 "$work/pkg/busybox-static/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -D -m 0755 "$agent" "$root/usr/bin/ferric-agent"
install -D -m 0755 "$here/udhcpc.script" "$root/etc/udhcpc/default.script"
# What update-ca-certificates would make: the Mozilla bundle, in name order
# (awk 1: each file ends its last line).
mkdir -p "$root/etc/ssl/certs"
find "$work/pkg/ca-certificates/usr/share/ca-certificates" -name '*.crt' -print0 |
	LC_ALL=C sort -z | xargs -0 awk 1 >"$root/etc/ssl/certs/ca-certificates.crt"
[[ -s $root/etc/ssl/certs/ca-certificates.crt ]] || die "ca-certificates has no certificates"
[[ -z $ca ]] || install -D -m 0644 "$ca" "$root/etc/ferric/ca.pem"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
echo "ferric-ramdisk $arch, $kpkg, $(grep -c . "$root/$mdir/ferric.load") modules" >"$root/etc/ferric-ramdisk"
# busybox --install -s links its applets into these.
mkdir -p "$root"/{proc,sys,dev,run,tmp,root,sbin,usr/bin,usr/sbin}

# Reproducible cpio: one owner, one mtime, modes without the umask's say,
# names in byte order, inode numbers from cpio --reproducible, gzip -n (its
# default level: -9 takes 6 s more for 1% less).
chmod -R u+rwX,go+rX,go-w "$root"
find "$root" -exec touch -h -d "@$epoch" {} +
name=ferric-agent-$arch
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
	gzip -n >"$work/$name.initramfs"
cp "$kernel" "$work/$name.kernel"
touch -d "@$epoch" "$work/$name.kernel" "$work/$name.initramfs"

outputs=("$name.kernel" "$name.initramfs")
if ((iso)); then
	cmdline="console=tty0 console=ttyS0,115200n8 ferric.api=${FERRIC_API:-http://10.0.2.2:6386}${FERRIC_KERNEL_ARGS:+ $FERRIC_KERNEL_ARGS}"
	bash "$here/make-iso.sh" "$work/$name.kernel" "$work/$name.initramfs" "$cmdline" "$work/$name.iso"
	outputs+=("$name.iso")
fi

{
	echo "# ferric-agent ramdisk for $arch; SOURCE_DATE_EPOCH=$epoch"
	sort "$work/packages" | sed 's/^/package /'
	echo "agent sha256 $(sha256sum <"$agent" | cut -d' ' -f1)"
	sed 's/^/module /' "$work/ferric.load"
} >"$work/$name.manifest"
outputs+=("$name.manifest")
for f in "${outputs[@]}"; do mv -f "$work/$f" "$out/$f"; done
(cd "$out" && sha256sum "${outputs[@]}" >"$name.sha256")

for f in "${outputs[@]}"; do
	[[ $f == *.manifest ]] && continue
	printf '%-32s %9s  %s\n' "$f" "$(numfmt --to=iec-i --suffix=B "$(stat -c %s "$out/$f")")" "$(cut -c1-16 <<<"$(sha256sum "$out/$f")")"
done
say "$kpkg, $(grep -c . "$work/ferric.load") modules, in $out; $((SECONDS - start)) s"
