#!/usr/bin/env bash
# Checks the systemd units the packages in DEBDIR install:
# `systemd-analyze verify` (syntax, dependencies, executables) and
# `systemd-analyze security` (exposure score; fails above MAX_EXPOSURE,
# default 2.0 of 10). Works on the packages' own files, unpacked in a
# temporary folder, so nothing is installed on this machine.
#
#   packaging/verify-units.sh DEBDIR
set -euo pipefail
debs=${1:?usage: packaging/verify-units.sh DEBDIR}
max=${MAX_EXPOSURE:-2.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for deb in "$debs"/*.deb; do
  root="$tmp/$(basename "$deb" .deb)"
  dpkg-deb -x "$deb" "$root"
  for unit in "$root"/lib/systemd/system/*.service; do
    name=$(basename "$unit")
    # The unit as installed, pointing at the unpacked binary.
    sed "s|/usr/bin/|$root/usr/bin/|g" "$unit" > "$tmp/$name"
    if ! SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$tmp/$name"; then
      echo "FAIL verify $name" >&2; status=1
    fi
    score=$(systemd-analyze security --offline=true --no-pager "$tmp/$name" 2>/dev/null |
      sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ -z "$score" ] || awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
      echo "FAIL security $name: exposure ${score:-unknown} (max $max)" >&2; status=1
    else
      echo "ok   $name: verified, exposure $score"
    fi
    rm -f "$tmp/$name"
  done
done
exit $status
