#!/usr/bin/env bash
# Network-fault campaign: the real sync server and four real gate agents in
# Linux network namespaces, each gate on its own link to the server, during
# a scripted event of SCANS scans over SECONDS seconds (one hour of doors
# compressed into SECONDS) while every link suffers loss, delay and jitter,
# reordering, duplication, partitions and link flaps. Then the network heals
# and the run checks that every journaled scan reached the server exactly
# once, every admission is on chain exactly once, no gate was restarted, and
# prints the gates' verdict latency with and without faults.
#
#   scripts/net-faults.sh [SCANS] [SECONDS]     (default 6000 600: the long run)
#
# Links are veth pairs impaired with `tc netem` where the kernel has sch_netem;
# otherwise TUN pairs joined by the driver, which applies the same impairments
# in userspace (it says which). Needs root (namespaces, links). Exit status:
# 0 all checks passed, 1 a check failed, 2 the run could not be carried out,
# 77 skipped (not root, or no network namespaces here).
# NET_FAULTS_KEEP=1 keeps the run's directory (databases, logs) even on success.
set -euo pipefail
cd "$(dirname "$0")/.."

scans="${1:-6000}"
seconds="${2:-600}"

skip() { echo "SKIP: net-faults: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces, links and tc (run as root)"
if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
  echo "==> installing iproute2 (ip, tc)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null; }; then
    skip "ip and tc (iproute2) are missing and could not be installed"
  fi
fi
probe="nfprobe$$"
ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces here (ip netns add failed)"
netem=yes
tc -n "$probe" qdisc add dev lo root netem delay 1ms 2>/dev/null || netem=no
ip netns del "$probe"
if [ "$netem" = no ] && [ ! -c /dev/net/tun ]; then
  skip "the kernel has neither sch_netem (tc netem) nor /dev/net/tun for the userspace wire"
fi

# NET_FAULTS_BIN_DIR: where gate-agent, sync-server and net-faults are built
# already (scripts/test.sh passes the ones its test step built); else build.
if [ -n "${NET_FAULTS_BIN_DIR:-}" ]; then
  bin="$NET_FAULTS_BIN_DIR"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/target}"
  echo "==> building gate-agent, sync-server and the campaign driver"
  cargo build --locked -q -p gate-agent -p sync-server -p end-to-end --bin gate-agent --bin sync-server --bin net-faults
  bin="$CARGO_TARGET_DIR/debug"
fi
for b in gate-agent sync-server net-faults; do
  [ -x "$bin/$b" ] || { echo "net-faults: $bin/$b is missing" >&2; exit 2; }
done

prefix="nf$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/net-faults.XXXXXX")
namespaces=("$prefix-ctl" "$prefix-srv" "$prefix-g1" "$prefix-g2" "$prefix-g3" "$prefix-g4")
status=0
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  for ns in "${namespaces[@]}"; do
    # Whatever this run left running in its namespaces.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ "$status" -eq 0 ] && [ "${NET_FAULTS_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "net-faults: databases and logs kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM
for ns in "${namespaces[@]}"; do ip netns add "$ns"; done

echo "==> net-faults: $scans scans over $seconds s"
ip netns exec "$prefix-ctl" "$bin/net-faults" \
  --prefix "$prefix" --scans "$scans" --seconds "$seconds" \
  --gate-agent "$bin/gate-agent" --sync-server "$bin/sync-server" \
  --dir "$work" || status=$?
exit "$status"
