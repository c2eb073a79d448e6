#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every test.
#
# Works on a fresh Debian/Ubuntu machine with Rust: it installs the system
# packages the tests need when they are missing (as root, or through sudo),
# and keeps build output outside the source tree so repeated runs are warm.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# --- toolchain -------------------------------------------------------------
# rust-toolchain.toml pins the compiler. Where rustup cannot download it (an
# offline machine) but the installed stable toolchain is that very version,
# register stable under the pinned name instead of failing.
pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q "^${pinned}"; then
  if ! rustup toolchain install "$pinned" --profile minimal -c rustfmt -c clippy; then
    stable_dir=$(dirname "$(dirname "$(rustup +stable which rustc)")")
    if "$stable_dir/bin/rustc" --version | grep -q "^rustc ${pinned} "; then
      ln -s "$stable_dir" "$(dirname "$stable_dir")/${pinned}-$(basename "$stable_dir" | sed 's/^stable-//')"
    else
      echo "Rust ${pinned} is needed (see rust-toolchain.toml) and could not be installed." >&2
      exit 1
    fi
  fi
fi

# --- system packages ---------------------------------------------------------
# command-or-file -> Debian package
need=()
want() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] || need+=("$2"); }
want pkg-config pkg-config
want cc build-essential
want socat socat                    # serial scanners as pseudo-terminals
want chromium chromium              # the gate's status page, screenshotted headless
want psql postgresql-client         # storage tests on PostgreSQL
if [ ${#need[@]} -gt 0 ]; then
  say "installing system packages: ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- PostgreSQL ----------------------------------------------------------------
# The server's tests run on SQLite and on PostgreSQL; each test makes its own
# throwaway database. Use TEST_POSTGRES_URL if set, else a server on
# 127.0.0.1:5432 that trusts user postgres, else start a private one.
pg_ok() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  default_pg="postgres://postgres@127.0.0.1:5432/postgres"
  if command -v psql >/dev/null && pg_ok "$default_pg"; then
    export TEST_POSTGRES_URL="$default_pg"
  else
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      say "installing PostgreSQL for the storage tests"
      sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql postgresql-client
    fi
    pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
    pgdir="${TMPDIR:-/tmp}/nft-gate-pg-$(id -u)"  # readable by the postgres user
    pgport=55432
    as_pg=()
    if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
    if ! pg_ok "postgres://postgres@127.0.0.1:${pgport}/postgres"; then
      say "starting a private PostgreSQL on 127.0.0.1:${pgport}"
      rm -rf "$pgdir"; mkdir -p "$pgdir"
      [ "$(id -u)" -eq 0 ] && chown postgres "$pgdir"
      "${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust >/dev/null
      "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
        -o "-p ${pgport} -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    fi
    export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${pgport}/postgres"
  fi
  # Throwaway databases of earlier runs.
  psql "$TEST_POSTGRES_URL" -Atqc "select datname from pg_database where datname like 'gate_test_%'" 2>/dev/null |
    while read -r db; do psql "$TEST_POSTGRES_URL" -qc "drop database if exists \"$db\"" >/dev/null 2>&1 || true; done
fi

# --- Redis -------------------------------------------------------------------
# Rate limits shared by several server instances are tested against a real
# Redis. Use TEST_REDIS_URL if set, else a Redis on 127.0.0.1:6379, else start
# a throwaway one (no persistence) on 127.0.0.1:56379.
redis_ok() { # HOST PORT
  ( exec 3<>"/dev/tcp/$1/$2" && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG ) 2>/dev/null
}
if [ -z "${TEST_REDIS_URL:-}" ]; then
  if redis_ok 127.0.0.1 6379; then
    export TEST_REDIS_URL="redis://127.0.0.1:6379"
  else
    if ! command -v redis-server >/dev/null; then
      say "installing Redis for the rate-limit tests"
      sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server
    fi
    if ! redis_ok 127.0.0.1 56379; then
      say "starting a throwaway Redis on 127.0.0.1:56379"
      redis-server --port 56379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
      for _ in $(seq 50); do redis_ok 127.0.0.1 56379 && break; sleep 0.1; done
    fi
    export TEST_REDIS_URL="redis://127.0.0.1:56379"
  fi
fi

# --- build output outside the clone -----------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "doc tests"
cargo test --workspace --locked --doc

# Last, so the test runner's summary closes the output.
say "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
