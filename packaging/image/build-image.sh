#!/usr/bin/env bash
# Builds the gate appliance image: Debian 12 (bookworm), the gate-agent
# package, a read-only root in slot A of an A/B pair, a FAT boot partition and
# an ext4 data partition for the agent's store; on amd64 also GRUB (UEFI) and
# RAUC for A/B updates, and on request an update bundle of the same root.
# Layout, boot and updates: README.md (section "Image") beside
# packaging/build.sh.
#
#   packaging/image/build-image.sh [options] ARCH DEBDIR OUT.img
#   packaging/image/build-image.sh [options] --bundle OUT.raucb ARCH DEBDIR -
#
#   ARCH      amd64 or arm64
#   DEBDIR    holds gate-agent_*_ARCH.deb (packaging/build.sh OUTDIR)
#   options   --profile vm|pi   vm: serial scanner on ttyS1, a camera on
#                               /dev/video0 (vivid, loaded by the test, and
#                               v4l-utils), log outputs, status page on
#                               0.0.0.0:8088, root autologin on the serial
#                               console (tests only); pi: the
#                               package's own config (GPIO HAT), no login.
#                               Default: vm for amd64, pi for arm64.
#             --ntp HOST        default NTP server baked into the image
#             --data-size MIB   data partition (default 256)
#             --root-size MIB   each root slot (default: the root tree plus a
#                               quarter and 64 MiB, in 64 MiB steps); later
#                               updates must fit in it
#             --mirror URL      Debian mirror (default http://deb.debian.org/debian)
#             --release TEXT    a name for this build in /etc/gate-image-release
#                               (default: the package version)
#             --disk-id HEX     the MBR disk id, which names the partitions
#                               (root=PARTUUID=HEX-02); default 6a7e0a7e for
#                               every build, so that any later update bundle
#                               fits any box
#             --customize FILE  a shell script run with the root tree's path
#                               before the file systems are written (site
#                               files, a venue's config)
#   A/B updates (amd64):
#             --bundle FILE     also write a RAUC update bundle of this root
#                               (OUT.img may then be - for no image)
#             --rauc-cert FILE  --rauc-key FILE   the bundle's signer; the
#                               image trusts --rauc-keyring FILE (default:
#                               the signer's certificate). Default for all
#                               three: a development key pair made once under
#                               the cache folder below (not for production)
#
# Runs as root (chroot, and owners kept in the file systems). No loop
# devices or mounts: partitions are written into the image file at their
# offsets (mke2fs -d; the FAT made with mkfs.vfat and filled with mtools in
# a file of its own, then copied in). The Debian base (everything
# but the agent) is cached as a tarball under
# ${XDG_CACHE_HOME:-~/.cache}/nft-gate/image, keyed by its recipe, so a warm
# build only installs the agent and writes the file systems.
# arm64 on an amd64 machine needs qemu-user-static and binfmt-support.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
profile="" ntp="" data_mib=256 root_mib="" mirror=http://deb.debian.org/debian
release="" customize="" disk_id=6a7e0a7e bundle="" rauc_cert="" rauc_key="" rauc_keyring=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --ntp) ntp=$2; shift 2 ;;
    --data-size) data_mib=$2; shift 2 ;;
    --root-size) root_mib=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --release) release=$2; shift 2 ;;
    --disk-id) disk_id=$2; shift 2 ;;
    --customize) customize=$(realpath "$2"); shift 2 ;;
    --bundle) bundle=$(realpath -m "$2"); shift 2 ;;
    --rauc-cert) rauc_cert=$(realpath "$2"); shift 2 ;;
    --rauc-key) rauc_key=$(realpath "$2"); shift 2 ;;
    --rauc-keyring) rauc_keyring=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 3 ] || { echo "usage: $0 [--profile vm|pi] [--ntp HOST] ARCH DEBDIR OUT.img" >&2; exit 2; }
arch=$1 debdir=$2 out=$3
case "$arch" in amd64|arm64) ;; *) echo "ARCH must be amd64 or arm64" >&2; exit 2 ;; esac
[ -n "$profile" ] || { [ "$arch" = amd64 ] && profile=vm || profile=pi; }
case "$profile" in vm|pi) ;; *) echo "--profile must be vm or pi" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh runs as root (chroot, file owners)" >&2; exit 2; }
[[ "$disk_id" =~ ^[0-9a-f]{8}$ ]] || { echo "--disk-id is 8 lower-case hex digits" >&2; exit 2; }
# The release name goes into a one-line file and the bundle's manifest.
[[ "$release" =~ ^[A-Za-z0-9._+~-]{0,64}$ ]] || { echo "--release: up to 64 letters, digits and . _ + ~ -" >&2; exit 2; }
[ "$out" != - ] || [ -n "$bundle" ] || { echo "OUT.img is - (no image) but no --bundle was asked for" >&2; exit 2; }
# A/B updates with RAUC: amd64 (GRUB). The Pi's tryboot scheme is designed,
# not built (README.md, "A/B updates").
ab=no
[ "$arch" = amd64 ] && ab=yes
[ -z "$bundle" ] || [ "$ab" = yes ] || { echo "--bundle: A/B updates are built for amd64 only" >&2; exit 2; }
if [ -n "$bundle" ]; then
  for tool in rauc mksquashfs openssl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install rauc squashfs-tools openssl)" >&2; exit 2; }
  done
fi
deb=$(ls "$debdir"/gate-agent_*_"$arch".deb 2>/dev/null | sort -V | tail -n1)
[ -n "$deb" ] || { echo "no gate-agent_*_$arch.deb in $debdir" >&2; exit 2; }
for tool in mmdebstrap sfdisk mke2fs mkfs.vfat mcopy mmd; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install mmdebstrap fdisk e2fsprogs dosfstools mtools)" >&2; exit 2; }
done

say() { printf '[build-image %s] %s\n' "$(date +%T)" "$*"; }
t0=$(date +%s)

# --- the Debian base, cached ------------------------------------------------
# The packages of the appliance. No recommends (mmdebstrap's default).
packages=(systemd systemd-sysv udev systemd-timesyncd systemd-resolved
  ca-certificates kmod initramfs-tools zstd e2fsprogs dosfstools)
components=main
case "$arch" in
  # GRUB for UEFI (its modules, built into one EFI binary below; grub-common
  # has grub-editenv, RAUC's way to the boot selection) and RAUC.
  amd64) packages+=(linux-image-amd64 grub-efi-amd64-bin grub-common rauc rauc-service) ;;
  # raspi-firmware: the Pi's boot firmware (non-free-firmware component).
  arm64) packages+=(linux-image-arm64 raspi-firmware); components=main,non-free-firmware ;;
esac
# The VM test shows QR codes to the agent's camera through vivid's video
# loop, set up and fed with v4l2-ctl.
[ "$profile" = vm ] && packages+=(v4l-utils)
dpkg_opts=('path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright' 'path-exclude=/usr/share/lintian/*')
# initramfs: generic (the image boots on any board of the arch), zstd.
initramfs_conf='MODULES=most\nCOMPRESS=zstd\n'
recipe="bookworm $arch $components $mirror ${packages[*]} ${dpkg_opts[*]} $initramfs_conf merged-usr v1"
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/image
base=$cache/base-$arch-$key.tar
mkdir -p "$cache"

# A/B updates: the image trusts RAUC bundles signed under its keyring.
if [ "$ab" = yes ]; then
  if [ -z "$rauc_cert" ] && [ -z "$rauc_key" ] && { [ -n "$bundle" ] || [ -z "$rauc_keyring" ]; }; then
    dev=$cache/rauc-development
    if [ ! -s "$dev/cert.pem" ]; then
      say "making a development signing key for update bundles: $dev (use your own for production)"
      install -d -m 0700 "$dev"
      openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -keyout "$dev/key.pem" -out "$dev/cert.pem" \
        -subj "/O=nft-gate development/CN=gate image updates (development key)" 2>/dev/null
    fi
    rauc_cert=$dev/cert.pem rauc_key=$dev/key.pem
  fi
  [ -n "$rauc_keyring" ] || rauc_keyring=$rauc_cert
  if [ -n "$bundle" ] && { [ -z "$rauc_cert" ] || [ -z "$rauc_key" ]; }; then
    echo "--bundle needs both --rauc-cert and --rauc-key (or neither, for the development key)" >&2; exit 2
  fi
fi
if [ -s "$base" ]; then
  say "Debian base from the cache: $base"
else
  say "Debian base: mmdebstrap bookworm $arch (${packages[*]})"
  args=(--mode=root --format=tar --variant=essential --arch="$arch" --components="$components"
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --include="$(IFS=,; echo "${packages[*]}")"
    --essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" && printf '$initramfs_conf' > \"\$1/etc/initramfs-tools/conf.d/gate-image.conf\""
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*')
  for o in "${dpkg_opts[@]}"; do args+=(--dpkgopt="$o"); done
  mmdebstrap "${args[@]}" bookworm "$base.partial" "$mirror"
  mv "$base.partial" "$base"
  # Older bases of this arch are other recipes: keep the cache small.
  find "$cache" -maxdepth 1 -name "base-$arch-*.tar" ! -name "$(basename "$base")" -delete
fi

# --- the root tree --------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/gate-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf "$base"

say "installing $(basename "$deb")"
cp "$deb" "$root/tmp/gate-agent.deb"
chroot "$root" dpkg -i /tmp/gate-agent.deb >/dev/null
rm -f "$root/tmp/gate-agent.deb"
version=$(dpkg-deb -f "$deb" Version)
agent_help=$(chroot "$root" /usr/bin/gate-agent enrol --help 2>&1 || true)

# Kernel modules no gate box drives (sound, GPUs of desktops, InfiniBand,
# Wi-Fi other than the Pi's own, staging drivers): a smaller root. The
# initramfs was made before, with everything.
kver=$(ls "$root/usr/lib/modules" | sort -V | tail -n1)
mods=$root/usr/lib/modules/$kver/kernel
rm -rf "$mods/sound" "$mods/drivers/infiniband" "$mods/drivers/staging" \
  "$mods/drivers/gpu/drm/amd" "$mods/drivers/gpu/drm/radeon" "$mods/drivers/gpu/drm/nouveau" \
  "$mods/drivers/gpu/drm/i915" "$mods/drivers/comedi" "$mods/drivers/iio" \
  "$mods/drivers/isdn" "$mods/net/mac80211"
find "$mods/drivers/net/wireless" -mindepth 1 -maxdepth 1 ! -name broadcom -exec rm -rf {} + 2>/dev/null || true
[ "$arch" = arm64 ] || rm -rf "$mods/drivers/net/wireless"
chroot "$root" depmod "$kver"

# The partition table's disk id: PARTUUID=<id>-02 is slot A's root.
part_a=PARTUUID=$disk_id-02
part_b=PARTUUID=$disk_id-03

say "configuring the appliance ($profile profile)"
gid_agent=$(awk -F: '$1=="gate-agent"{print $3}' "$root/etc/group")
[ -n "$gid_agent" ] || { echo "the package did not create the gate-agent group" >&2; exit 1; }
# Mount points, empty (raspi-firmware's kernel hook fills /boot/firmware in
# the chroot: the boot partition gets its own copy below).
rm -rf "$root/boot/firmware"
install -d "$root/boot/firmware" "$root/var/lib/gate-agent" "$root/media/gate-usb"
cat > "$root/etc/fstab" <<FSTAB
# The root file system is read-only; its slot (A or B) is the kernel's root=.
/dev/root        /                    ext4   ro,noatime                    0 0
# Boot partition: boot loader, firmware, and what a technician drops here
# (gate-enrol.toml, gate-cache.bin, gate-ntp.conf). Readable by the agent.
# nofail: the gate scans without it (a late or damaged FAT must not stop
# the boot in an emergency shell).
LABEL=GATE-BOOT  /boot/firmware       vfat   rw,noatime,flush,nofail,uid=0,gid=$gid_agent,fmask=0137,dmask=0027,x-systemd.device-timeout=90s  0 2
# Data partition: the agent's store, journal and device key. data=journal:
# file data goes through the ext4 journal too (the agent also syncs every
# commit: SQLite WAL, synchronous=FULL).
LABEL=gate-data  /var/lib/gate-agent  ext4   rw,noatime,nodev,nosuid,noexec,data=journal,errors=remount-ro  0 2
# Everything else that changes at run time lives in memory.
tmpfs            /tmp                 tmpfs  mode=1777,nosuid,nodev,size=64M    0 0
tmpfs            /var/tmp             tmpfs  mode=1777,nosuid,nodev,size=16M    0 0
tmpfs            /var/log             tmpfs  mode=0755,nosuid,nodev,size=32M    0 0
tmpfs            /var/lib/systemd     tmpfs  mode=0755,nosuid,nodev,size=8M     0 0
tmpfs            /var/cache           tmpfs  mode=0755,nosuid,nodev,size=8M     0 0
FSTAB

# An empty machine-id: systemd makes one at each boot and keeps it in /run.
# Nothing on the box depends on it lasting (the agent's identity is its
# device key on the data partition).
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo gate > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgate\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# Logs in memory only; the agent's journal is its own, on the data partition.
install -d "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' > "$root/etc/systemd/journald.conf.d/gate-image.conf"

# The board's hardware watchdog (the Pi's bcm2835-wdt, a PC's iTCO), fed by
# systemd: a hung kernel or service manager resets the box, and so does a
# reboot that never finishes. (A hung agent is its unit's WatchdogSec.)
# The Pi's watchdog counts 15 s at most (the kernel refuses more).
wd_secs=30
[ "$arch" = arm64 ] && wd_secs=15
install -d "$root/etc/systemd/system.conf.d"
printf '[Manager]\nRuntimeWatchdogSec=%ss\nRebootWatchdogSec=2min\n' "$wd_secs" > "$root/etc/systemd/system.conf.d/gate-watchdog.conf"

# Wired network by DHCP (NTP servers from DHCP are used too).
install -d "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/80-gate-wired.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
# network-online.target (the enrolment waits on it) once any link is up,
# and never more than a minute: the gate works offline.
install -d "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat > "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/gate-image.conf" <<'WAIT'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60
WAIT

# Time: systemd-timesyncd. Servers from the boot partition's gate-ntp.conf
# (timesyncd.conf syntax, or one host per line), else from the DHCP lease,
# else the one baked in with --ntp, else Debian's pool.
install -d "$root/etc/systemd/timesyncd.conf.d" "$root/usr/libexec/gate-image"
if [ -n "$ntp" ]; then
  printf '[Time]\nNTP=%s\n' "$ntp" > "$root/etc/systemd/timesyncd.conf.d/50-gate-image.conf"
fi
install -m 0755 "$here/files/ntp-from-boot" "$root/usr/libexec/gate-image/ntp-from-boot"
install -m 0644 "$here/files/gate-ntp-from-boot.service" "$root/etc/systemd/system/gate-ntp-from-boot.service"
# The clock starts no earlier than the image's build (boxes without RTC).
touch "$root/usr/lib/clock-epoch"

# The enrolment's token and the agent's offline cache file are on the boot
# partition, a nofail mount: both wait for it (mounted or given up) before
# they look.
for unit in gate-agent-enrol gate-agent; do
  install -d "$root/etc/systemd/system/$unit.service.d"
  printf '[Unit]\nWants=boot-firmware.mount\nAfter=boot-firmware.mount\n' \
    > "$root/etc/systemd/system/$unit.service.d/40-boot-partition.conf"
done

# The agent's enrolment reads /boot/firmware/gate-enrol.toml; packages
# whose gate-agent has no `enrol --from-file` get a wrapper that reads the
# file and calls `enrol --server --token` until the server answers.
if ! grep -q -- '--from-file' <<<"$agent_help"; then
  say "gate-agent $version has no 'enrol --from-file': installing the enrolment wrapper"
  install -m 0755 "$here/files/enrol-from-file" "$root/usr/libexec/gate-image/enrol-from-file"
  install -d "$root/etc/systemd/system/gate-agent-enrol.service.d"
  cat > "$root/etc/systemd/system/gate-agent-enrol.service.d/50-gate-image-wrapper.conf" <<'DROPIN'
[Service]
ExecStart=
ExecStart=/usr/libexec/gate-image/enrol-from-file /boot/firmware/gate-enrol.toml 600
DROPIN
fi

if [ "$profile" = vm ]; then
  install -m 0640 -g "$gid_agent" "$here/files/gate-agent.vm.toml" "$root/etc/gate-agent/gate-agent.toml"
  # The camera of the VM test: vivid with one HDMI input (/dev/video0) whose
  # "Loop Video" control shows what is written to its one HDMI output
  # (/dev/video1). Not loaded at boot: the test plugs it in (modprobe vivid).
  install -D -m 0644 "$here/files/vivid-camera.conf" "$root/etc/modprobe.d/gate-vm-camera.conf"
  # Tests log in on the first serial port without a password.
  install -d "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
  cat > "$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'GETTY'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 - $TERM
GETTY
  console="console=ttyS0,115200n8"
else
  # Debian's kernel with the upstream device trees: the Pi's UART is ttyS1.
  console="console=ttyS1,115200 console=tty0"
fi

cmdline_rest="rootfstype=ext4 ro rootwait $console panic=10 quiet"
compatible=nft-gate-$arch-$profile
if [ "$ab" = yes ]; then
  # RAUC: the two root slots, GRUB's boot selection, the keyring; the
  # booted slot is committed once the agent is ready (boot-verdict).
  install -d "$root/etc/rauc"
  install -m 0644 "$rauc_keyring" "$root/etc/rauc/keyring.pem"
  sed -e "s/@COMPATIBLE@/$compatible/" -e "s/@DISK_ID@/$disk_id/g" "$here/files/rauc-system.conf" > "$root/etc/rauc/system.conf"
  install -m 0755 "$here/files/boot-verdict" "$root/usr/libexec/gate-image/boot-verdict"
  install -m 0644 "$here/files/gate-boot-verdict.service" "$root/etc/systemd/system/gate-boot-verdict.service"
  # The VM test's box gives up on a slot sooner than a venue's (5 min).
  [ "$profile" != vm ] || printf 'READY_TIMEOUT=60\n' > "$root/etc/default/gate-boot-verdict"
  # GRUB reads the kernel from the slot itself: stable names for it.
  ln -sf "vmlinuz-$kver" "$root/boot/vmlinuz"
  ln -sf "initrd.img-$kver" "$root/boot/initrd.img"
  systemctl --root="$root" enable gate-boot-verdict.service >/dev/null 2>&1
fi
systemctl --root="$root" enable systemd-networkd.service systemd-networkd-wait-online.service \
  systemd-resolved.service systemd-timesyncd.service gate-ntp-from-boot.service \
  gate-agent.service gate-agent-enrol.service >/dev/null 2>&1
# Nothing left for first-boot or update-time services to do on a read-only root.
touch "$root/etc/.updated" "$root/var/.updated"
printf '%s\n' "gate-image ${release:-$version} $arch $profile $(date -u +%FT%TZ)" > "$root/etc/gate-image-release"
if [ -n "$customize" ]; then
  say "customizing the root tree: $customize"
  sh "$customize" "$root"
fi

# --- the root tree size -------------------------------------------------------
used_kib=$(du -sk --apparent-size "$root" | cut -f1)
min_mib=$(( (used_kib * 5 / 4 / 1024 + 64 + 63) / 64 * 64 ))
[ -n "$root_mib" ] || root_mib=$min_mib
[ "$root_mib" -ge $((used_kib / 1024 + 32)) ] || { echo "--root-size $root_mib MiB is too small for the root tree ($((used_kib / 1024)) MiB)" >&2; exit 2; }

# --- the update bundle ------------------------------------------------------------
if [ -n "$bundle" ]; then
  say "update bundle: the root slot as a verity RAUC bundle ($compatible)"
  b=$work/bundle
  install -d "$b"
  mke2fs -q -t ext4 -L root -b 4096 -O ^has_journal -m 0 -d "$root" -E root_owner=0:0 \
    "$b/rootfs.ext4" $((root_mib * 256))
  cat > "$b/manifest.raucm" <<MANIFEST
[update]
compatible=$compatible
version=${release:-$version}
description=$(cat "$root/etc/gate-image-release")

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST
  rm -f "$bundle"
  install -d "$(dirname "$bundle")"
  # zstd at a low level: about as small as the default gzip, built in a
  # fraction of the time (Debian's kernel reads zstd squashfs).
  rauc bundle --cert="$rauc_cert" --key="$rauc_key" --keyring="$rauc_keyring" \
    --mksquashfs-args="-comp zstd -Xcompression-level 3" "$b" "$bundle" >/dev/null
  rm -rf "$b"
  say "bundle: $bundle ($(du -h --apparent-size "$bundle" | cut -f1); slot image ${root_mib} MiB)"
  if [ "$out" = - ]; then
    say "done in $(( $(date +%s) - t0 )) s"
    exit 0
  fi
fi

# --- the boot partition's content --------------------------------------------
bootdir=$work/boot
install -d "$bootdir"
if [ "$ab" = yes ]; then
  # UEFI: GRUB as the removable-media loader, its modules built in, its
  # configuration and RAUC's boot selection (grubenv) beside it. Slot A is
  # installed and good, slot B empty.
  install -d "$bootdir/EFI/BOOT" "$bootdir/EFI/gate"
  chroot "$root" grub-mkimage -O x86_64-efi -p /EFI/gate -o /tmp/BOOTX64.EFI \
    part_msdos fat ext2 normal linux loadenv regexp test echo search configfile \
    gzio efi_gop all_video
  mv "$root/tmp/BOOTX64.EFI" "$bootdir/EFI/BOOT/BOOTX64.EFI"
  sed -e "s|@ROOT_A@|$part_a|" -e "s|@ROOT_B@|$part_b|" -e "s|@CMDLINE@|$cmdline_rest|" \
    "$here/files/grub.cfg" > "$bootdir/EFI/gate/grub.cfg"
  chroot "$root" sh -c 'grub-editenv /tmp/grubenv create &&
    grub-editenv /tmp/grubenv set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0'
  mv "$root/tmp/grubenv" "$bootdir/EFI/gate/grubenv"
fi
if [ "$arch" = arm64 ]; then
  install -d "$bootdir/slot-a"
  cp "$root/boot/vmlinuz-$kver" "$bootdir/slot-a/vmlinuz"
  cp "$root/boot/initrd.img-$kver" "$bootdir/slot-a/initrd.img"
  echo "root=$part_a $cmdline_rest" > "$bootdir/slot-a/cmdline.txt"
  # Raspberry Pi firmware; config.txt takes kernel, initrd, device trees and
  # cmdline.txt from the slot's folder (os_prefix). tryboot.txt is the
  # config the firmware uses for one boot after `reboot "0 tryboot"`.
  cp -r "$root/usr/lib/raspi-firmware/." "$bootdir/"
  cp "$root/usr/lib/linux-image-$kver"/broadcom/bcm27*.dtb "$root/usr/lib/linux-image-$kver"/broadcom/bcm2837*.dtb "$bootdir/slot-a/"
  sed "s/@SLOT@/slot-a/" "$here/files/config.txt" > "$bootdir/config.txt"
  sed "s/@SLOT@/slot-b/" "$here/files/config.txt" > "$bootdir/tryboot.txt"
fi
cp "$here/files/README-boot.txt" "$bootdir/README.txt"

# --- the image ------------------------------------------------------------------
# MBR, four primary partitions, 1 MiB aligned (the Pi's firmware reads MBR):
#   1 GATE-BOOT  FAT32  256 MiB   /boot/firmware
#   2 rootA      ext4   root slot A (read-only, this build)
#   3 rootB      -      root slot B, same size, empty until an update
#   4 gate-data  ext4   /var/lib/gate-agent
mib=$((1024 * 1024))
boot_mib=256
rm -f "$out"
# The boot partition is an EFI system partition on amd64 (UEFI finds GRUB
# there), plain FAT32 on the Pi (its firmware wants type 0x0c).
boot_type=c
[ "$ab" = yes ] && boot_type=ef
total_mib=$((1 + boot_mib + 2 * root_mib + data_mib))
truncate -s "${total_mib}M" "$out"
sfdisk --quiet "$out" <<SFDISK
label: dos
label-id: 0x$disk_id
unit: sectors
start=$((1 * 2048)), size=$((boot_mib * 2048)), type=$boot_type, bootable
start=$(((1 + boot_mib) * 2048)), size=$((root_mib * 2048)), type=83
start=$(((1 + boot_mib + root_mib) * 2048)), size=$((root_mib * 2048)), type=83
start=$(((1 + boot_mib + 2 * root_mib) * 2048)), size=$((data_mib * 2048)), type=83
SFDISK
off_boot=$((1 * mib))
off_a=$(((1 + boot_mib) * mib))
off_data=$(((1 + boot_mib + 2 * root_mib) * mib))

say "writing file systems: boot ${boot_mib} MiB, root slots 2 x ${root_mib} MiB, data ${data_mib} MiB"
# FAT: made in its own file (mkfs.vfat --offset gives a FAT mtools cannot
# read back), then written at its offset, sparse.
mkfs.vfat -F 32 -n GATE-BOOT -i "$disk_id" -h $((off_boot / 512)) -C "$work/boot.fat" $((boot_mib * 1024)) >/dev/null
mcopy -i "$work/boot.fat" -s "$bootdir"/* ::
dd if="$work/boot.fat" of="$out" bs=1M seek=$((off_boot / mib)) conv=notrunc,sparse status=none
rm -f "$work/boot.fat"
# Root: no journal (never written while mounted), owners and modes as built.
mke2fs -q -t ext4 -L rootA -b 4096 -O ^has_journal -m 0 -d "$root" \
  -E offset=$off_a,root_owner=0:0 "$out" $((root_mib * 256))
# Data: empty; the agent makes its files on first start.
mke2fs -q -t ext4 -L gate-data -b 4096 -m 1 -E offset=$off_data,root_owner=0:0 \
  "$out" $((data_mib * 256))

say "done in $(( $(date +%s) - t0 )) s: $out ($(du -h --apparent-size "$out" | cut -f1) apparent, $(du -h "$out" | cut -f1) allocated; root tree $((used_kib / 1024)) MiB)"
