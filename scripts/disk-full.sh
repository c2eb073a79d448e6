#!/usr/bin/env bash
# The disk-full campaign, longer than CI runs it: the gate agent's store on a
# small loop-mounted ext4 file system, filled while scans arrive and freed
# again, ROUNDS times (default 50), against a real sync server
# (gate-agent/tests/disk_full.rs; docs/reliability.md has the figures).
#
#   scripts/disk-full.sh [ROUNDS] [SEED]
#
# Needs root (mount) and loop devices; fails rather than skipping without
# them. Each round leaves a random few kilobytes free after filling (none in
# the first), so the write that fails differs from round to round; SEED
# repeats a run.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-50}
export DISK_FULL_ROUNDS=$rounds
export DISK_FULL_REQUIRED=1
[ $# -ge 2 ] && export DISK_FULL_SEED=$2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/target}"

if [ "$(id -u)" -ne 0 ]; then
  echo "the disk-full campaign mounts a file system: run it as root" >&2
  exit 2
fi
start=$(date +%s)
cargo test -p gate-agent --locked --test disk_full -- --nocapture
echo "disk-full: $rounds rounds in $(( $(date +%s) - start )) s (build included)"
