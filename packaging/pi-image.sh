#!/usr/bin/env bash
# Builds the Raspberry Pi (arm64) gate image on an amd64 machine and boots it
# once under emulation to show it comes up: the arm64 gate-agent package
# (cross-compiled), the image (pi profile, arm64 package scripts run through
# qemu-user), then a boot of that image in qemu-system-aarch64's `virt`
# machine from the boot partition's slot-a/ kernel and initrd. The check
# passes when systemd reports the agent started (its Type=notify readiness:
# store open, scanners set up), the root is read-only and no unit failed.
#
#   sudo packaging/pi-image.sh OUTDIR
#
# Writes OUTDIR/debs/gate-agent_VERSION_arm64.deb and OUTDIR/gate-pi.img (write
# it to an SD card with dd or any card writer). Environment: PROFILE (cargo
# profile, default release), DEBDIR=DIR uses an arm64 package built already,
# BOOT=0 skips the emulated boot, BOOT_TIMEOUT (seconds, default 900).
# Needs: the aarch64 Rust target and Debian's cross toolchain
# (rustup target add aarch64-unknown-linux-gnu; apt-get install
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross
# libclang-dev), and for the image qemu-user-static, binfmt-support,
# mmdebstrap, and qemu-system-arm for the boot; the Debian packages are
# installed when missing. Runs as root (the image build chroots).
#
# The emulated boot is not a Raspberry Pi: `virt` has no Pi firmware, GPIO
# header or UART at ttyS1. It proves the arm64 root, kernel, initramfs and
# package work together; the Pi's firmware files and config.txt are checked
# for presence only. The agent logs that the turnstile HAT's GPIO chip is
# missing and runs on, as it would on a Pi whose HAT is unplugged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:?usage: packaging/pi-image.sh OUTDIR}
[ "$(id -u)" -eq 0 ] || { echo "run as root: building the image needs it (chroot, file owners)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

T0=$(date +%s)
step() { printf '\n==> [%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
say() { printf '    %s\n' "$*"; }
die() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

need=()
want() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] || need+=("$2"); }
want aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
want /usr/aarch64-linux-gnu/include/stdio.h libc6-dev-arm64-cross
want /usr/aarch64-linux-gnu/include/linux/videodev2.h linux-libc-dev-arm64-cross
want mmdebstrap mmdebstrap
want qemu-aarch64-static qemu-user-static
want update-binfmts binfmt-support
want qemu-system-aarch64 qemu-system-arm
want mcopy mtools
want mkfs.vfat dosfstools
want sfdisk fdisk
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  step "installing system packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# arm64 programs run through qemu-user (binfmt_misc), as mmdebstrap needs.
if ! [ -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
[ "$(cat /proc/sys/fs/binfmt_misc/qemu-aarch64 | head -n1)" = enabled ] || die "qemu-aarch64 is not registered with binfmt_misc"

if [ -n "${DEBDIR:-}" ]; then
  debs=$DEBDIR
else
  step "package: PACKAGES=gate-agent TARGET=aarch64-unknown-linux-gnu packaging/build.sh"
  rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
    rustup target add aarch64-unknown-linux-gnu
  debs=$out/debs
  PACKAGES=gate-agent TARGET=aarch64-unknown-linux-gnu "$here/build.sh" "$debs" | sed 's/^/    /'
fi
deb=$(ls "$debs"/gate-agent_*_arm64.deb | sort -V | tail -n1)
say "$(basename "$deb"): $(stat -c %s "$deb") bytes"

step "image: packaging/image/build-image.sh arm64 (pi profile)"
t=$(date +%s)
img=$out/gate-pi.img
"$here/image/build-image.sh" arm64 "$debs" "$img" 2>&1 |
  grep -v '^I: \|^Get:\|^Reading\|^Preparing\|^Unpacking\|^Setting up\|^Selecting' | sed 's/^/    /'
image_secs=$(( $(date +%s) - t ))
boot_off=$(( $(sfdisk -J "$img" | python3 -c "import json,sys; print(json.load(sys.stdin)['partitiontable']['partitions'][0]['start'])") * 512 ))
bootfs="$img@@$boot_off"
listing=$(mdir -b -/ -i "$bootfs" ::)
for f in config.txt tryboot.txt start4.elf fixup4.dat bootcode.bin slot-a/vmlinuz slot-a/initrd.img slot-a/cmdline.txt slot-a/bcm2711-rpi-4-b.dtb slot-a/bcm2837-rpi-3-b.dtb; do
  grep -qi "::/$f\$" <<<"$listing" || die "the boot partition lacks $f"
done
say "boot partition: Pi firmware, config.txt and tryboot.txt, slot-a/ with kernel, initrd, cmdline.txt and the Pi 3 and 4 device trees"
grep -q '^os_prefix=slot-a/' <(mtype -i "$bootfs" ::config.txt) || die "config.txt does not boot slot-a/"
grep -q '^os_prefix=slot-b/' <(mtype -i "$bootfs" ::tryboot.txt) || die "tryboot.txt does not boot slot-b/"

if [ "${BOOT:-1}" = 0 ]; then
  say "BOOT=0: not booted"
else
  step "boot under emulation: qemu-system-aarch64 -machine virt (TCG)"
  work=$(mktemp -d "${TMPDIR:-/tmp}/gate-pi-boot.XXXXXX")
  qemu_pid=""
  trap '[ -n "$qemu_pid" ] && kill -9 "$qemu_pid" 2>/dev/null; rm -rf "$work"' EXIT
  for f in vmlinuz initrd.img cmdline.txt; do mcopy -n -i "$bootfs" "::slot-a/$f" "$work/$f"; done
  # The slot's own command line, with virt's UART as the console and
  # systemd's unit status on it (the image says `quiet`); no login prompt
  # there, which would end the status lines before the agent's.
  cmdline=$(sed 's/console=[^ ]*//g; s/ quiet//; s/  */ /g' "$work/cmdline.txt")
  cmdline="$cmdline console=ttyAMA0 systemd.show_status=1 systemd.mask=serial-getty@ttyAMA0.service systemd.journald.forward_to_console=1"
  say "kernel command line: $cmdline"
  # The image stays as built: the guest writes to a throwaway overlay.
  t=$(date +%s)
  qemu-system-aarch64 -machine virt -cpu max -smp 2 -m 1024 -display none -no-reboot \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -append "$cmdline" \
    -drive "file=$img,format=raw,if=virtio,snapshot=on" -nic user,restrict=on,model=virtio-net-pci \
    -serial "file:$work/console.log" -monitor none > "$work/qemu.log" 2>&1 &
  qemu_pid=$!
  limit=${BOOT_TIMEOUT:-900}
  # The journal's line (forwarded to the console), not systemd's status
  # line, which it shortens to the console's width.
  started='systemd\[1\]: Started gate-agent\.service'
  until grep -aq "$started" "$work/console.log" 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || { tail -40 "$work/console.log"; cat "$work/qemu.log"; die "qemu exited before the agent started"; }
    [ $(( $(date +%s) - t )) -lt "$limit" ] || { tail -40 "$work/console.log"; die "the agent did not start within $limit s"; }
    sleep 2
  done
  boot_secs=$(( $(date +%s) - t ))
  # Let the boot settle, then look at what it said.
  sleep 20
  kill -9 "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""
  tr -d '\r' < "$work/console.log" | sed 's/\x1b\[[0-9;]*m//g' > "$work/console.txt"
  grep -a 'Linux version' "$work/console.txt" | head -n1 | sed 's/^/    guest: /'
  grep -aE 'EXT4-fs \(vda[24]\): mounted|Started gate-agent|Reached target.*Multi-User|Mounted boot-firmware|FAILED|DEPEND|TIME' "$work/console.txt" | sed 's/^/    guest: /'
  grep -aq 'EXT4-fs (vda2): mounted filesystem .*ro' "$work/console.txt" ||
    grep -aq 'EXT4-fs (vda2): mounted filesystem .* r/o' "$work/console.txt" ||
    grep -aq 'EXT4-fs (vda2): mounted filesystem without journal' "$work/console.txt" ||
    die "slot A (vda2) was not mounted as the root"
  ! grep -aqE 'FAILED|DEPEND' "$work/console.txt" || die "a unit failed during the boot (above)"
  grep -aq 'Mounted boot-firmware.mount' "$work/console.txt" || die "the boot partition was not mounted"
  grep -aq 'EXT4-fs (vda4): mounted filesystem with journalled data mode' "$work/console.txt" ||
    die "the data partition was not mounted with data=journal"
  say "ok: the arm64 image boots from slot A, mounts its boot and data partitions, and systemd starts gate-agent (ready) after $boot_secs s of emulated boot; no unit failed"
fi

step "figures"
say "gate-agent package (arm64): $(stat -c %s "$deb") bytes"
say "image: $(stat -c %s "$img") bytes ($(( $(stat -c %s "$img") / 1048576 )) MiB partitioned), $(du -k "$img" | cut -f1) KiB allocated; built in $image_secs s"
command -v zstd >/dev/null && say "compressed for distribution (zstd -3): $(zstd -q -3 -T0 -c "$img" | wc -c) bytes"
[ -n "${boot_secs:-}" ] && say "emulated boot (TCG, virt, 2 vCPUs) to the agent started: $boot_secs s"
say "total: $(( $(date +%s) - T0 )) s"
printf '\nPASS: %s\n' "$img"
