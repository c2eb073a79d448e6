#!/usr/bin/env bash
# Builds the Debian packages of the gate agent and the sync server.
#
#   packaging/build.sh OUTDIR            amd64 (or whatever this machine is)
#   TARGET=aarch64-unknown-linux-gnu packaging/build.sh OUTDIR   arm64
#
# The version is the crates' (workspace) version. The gate agent is built
# with the camera feature (V4L2 through the v4l crate: needs libclang-dev and
# linux-libc-dev). Packages are assembled with dpkg-deb, which every Debian
# machine has: each package's files are listed below, next to what they are.
# PROFILE (default release) picks the cargo profile; STRIP the strip program
# (aarch64-linux-gnu-strip for arm64); BINDIR packages binaries already built
# there instead of building; PACKAGES (default "gate-agent sync-server") which
# packages to build: a Raspberry Pi gate needs only gate-agent, and the server
# compiles all of Solana (about half an hour more on a 2-core machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:?usage: packaging/build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
profile=${PROFILE:-release}
target=${TARGET:-}
packages=${PACKAGES:-gate-agent sync-server}
want() { [[ " $packages " == *" $1 "* ]]; }
for p in $packages; do
  case "$p" in gate-agent|sync-server) ;; *) echo "unknown package $p in PACKAGES" >&2; exit 2 ;; esac
done

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
case "$target" in
  "") arch=$(dpkg --print-architecture) ;;
  aarch64-*) arch=arm64 ;;
  x86_64-*) arch=amd64 ;;
  armv7-*) arch=armhf ;;
  *) echo "unknown TARGET $target" >&2; exit 2 ;;
esac

# Cross builds: Debian's cross toolchain (gcc-aarch64-linux-gnu) links and
# strips unless told otherwise.
if [ "$arch" = arm64 ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}
  export CC_aarch64_unknown_linux_gnu=${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}
  STRIP=${STRIP:-aarch64-linux-gnu-strip}
fi
cargo_args=(--locked --profile "$profile")
[ -n "$target" ] && cargo_args+=(--target "$target")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/target}"
if [ -n "${BINDIR:-}" ]; then
  # Binaries built already (the test suite's workspace build, which has the
  # camera feature): package those instead of building again.
  dir=$BINDIR
  echo "==> packaging $packages $version for $arch from $dir"
else
  echo "==> building $packages $version for $arch ($profile)"
  if want gate-agent; then
    (cd "$root" && cargo build "${cargo_args[@]}" -p gate-agent --features camera --bin gate-agent)
  fi
  if want sync-server; then
    (cd "$root" && cargo build "${cargo_args[@]}" -p sync-server --bin sync-server)
  fi
  dir="$CARGO_TARGET_DIR/${target:+$target/}$([ "$profile" = dev ] && echo debug || echo "$profile")"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# control FILE-TREE PACKAGE DESCRIPTION DEPENDS
control() {
  local tree=$1 name=$2 summary=$3 depends=$4 body=$5
  mkdir -p "$tree/DEBIAN"
  local size
  size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
  cat > "$tree/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: nft-gate developers <nft-gate@example.invalid>
Section: net
Priority: optional
Installed-Size: $size
Depends: $depends
Homepage: https://example.invalid/nft-gate
Description: $summary
$body
CONTROL
  find "$tree/etc" -type f 2>/dev/null | sed "s|^$tree||" | sort > "$tree/DEBIAN/conffiles"
  [ -s "$tree/DEBIAN/conffiles" ] || rm -f "$tree/DEBIAN/conffiles"
}

# Maintainer scripts shared by both packages: create the user, reload
# systemd and udev, enable and (re)start the unit, stop it on removal.
scripts() {
  local tree=$1 unit=$2 sysusers=$3 extra_units=$4
  cat > "$tree/DEBIAN/postinst" <<POSTINST
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
  systemd-sysusers $sysusers || true
  # The config may hold secrets: readable by the service's group only.
  if [ -f /etc/$unit/$unit.toml ]; then
    chgrp $unit /etc/$unit/$unit.toml && chmod 0640 /etc/$unit/$unit.toml
  fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    [ -x /usr/bin/udevadm ] && [ -d /run/udev ] && udevadm control --reload || true
    systemctl enable $unit $extra_units >/dev/null || true
    systemctl restart $unit || true
  else
    systemctl enable $unit $extra_units >/dev/null 2>&1 || true
  fi
fi
POSTINST
  cat > "$tree/DEBIAN/prerm" <<PRERM
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
  systemctl stop $unit || true
fi
PRERM
  cat > "$tree/DEBIAN/postrm" <<POSTRM
#!/bin/sh
set -e
if [ "\$1" = purge ]; then
  rm -rf /var/lib/$unit
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
POSTRM
  chmod 0755 "$tree/DEBIAN/postinst" "$tree/DEBIAN/prerm" "$tree/DEBIAN/postrm"
}

# --- gate-agent ---------------------------------------------------------------
if want gate-agent; then
t="$stage/gate-agent"
install -D -m 0755 "$dir/gate-agent" "$t/usr/bin/gate-agent"
install -D -m 0644 "$here/gate-agent/gate-agent.service" "$t/lib/systemd/system/gate-agent.service"
install -D -m 0644 "$here/gate-agent/gate-agent-enrol.service" "$t/lib/systemd/system/gate-agent-enrol.service"
install -D -m 0644 "$here/gate-agent/sysusers.conf" "$t/usr/lib/sysusers.d/gate-agent.conf"
install -D -m 0644 "$here/gate-agent/modules-load.conf" "$t/usr/lib/modules-load.d/gate-agent.conf"
install -D -m 0644 "$root/firmware-config/udev/90-gate-agent.rules" "$t/lib/udev/rules.d/90-gate-agent.rules"
install -D -m 0644 "$root/firmware-config/gate-agent.example.toml" "$t/etc/gate-agent/gate-agent.toml"
for f in "$root"/firmware-config/boards/*.toml "$root"/firmware-config/scanners/*.toml; do
  install -D -m 0644 "$f" "$t/etc/gate-agent/$(basename "$(dirname "$f")")/$(basename "$f")"
done
install -D -m 0644 "$root/gate-agent/README.md" "$t/usr/share/doc/gate-agent/README.md"
install -D -m 0644 "$here/README.md" "$t/usr/share/doc/gate-agent/packaging.md"
"${STRIP:-strip}" --strip-unneeded "$t/usr/bin/gate-agent"
control "$t" gate-agent "Gate agent for NFT tickets: offline scanning and turnstile control" \
  "libc6, systemd (>= 247)" \
" Reads ticket QR codes from serial, USB keyboard-wedge scanners and V4L2
 cameras, decides offline from a local SQLite cache, journals every verdict
 before the turnstile opens, and syncs with the nft-gate sync server."
scripts "$t" gate-agent gate-agent.conf gate-agent-enrol.service
dpkg-deb --root-owner-group -Zxz --build "$t" "$out/gate-agent_${version}_${arch}.deb" >/dev/null
fi

# --- sync-server --------------------------------------------------------------
if want sync-server; then
t="$stage/sync-server"
install -D -m 0755 "$dir/sync-server" "$t/usr/bin/sync-server"
install -D -m 0644 "$here/sync-server/sync-server.service" "$t/lib/systemd/system/sync-server.service"
install -D -m 0644 "$here/sync-server/sysusers.conf" "$t/usr/lib/sysusers.d/sync-server.conf"
install -D -m 0644 "$root/sync-server/sync-server.example.toml" "$t/etc/sync-server/sync-server.toml"
install -D -m 0644 "$here/sync-server/nginx.conf" "$t/usr/share/doc/sync-server/examples/nginx.conf"
install -D -m 0644 "$root/sync-server/README.md" "$t/usr/share/doc/sync-server/README.md"
"${STRIP:-strip}" --strip-unneeded "$t/usr/bin/sync-server"
control "$t" sync-server "Sync server for NFT ticket gates" \
  "libc6, systemd (>= 247)" \
" Enrols gate boxes, keeps their ticket caches fresh, collects their scan
 journals, replays entries on Solana and serves the ticketing API. SQLite by
 default, PostgreSQL by configuration."
scripts "$t" sync-server sync-server.conf ""
dpkg-deb --root-owner-group -Zxz --build "$t" "$out/sync-server_${version}_${arch}.deb" >/dev/null
fi

ls -l "$out"/*_"${version}"_"${arch}".deb
"$here/verify-units.sh" "$out"
