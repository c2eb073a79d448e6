#!/usr/bin/env bash
# Schema-driven testing of the sync server's API with schemathesis.
#
#   scripts/api-schema.sh [SECONDS]      (default 600; CI runs it for 60)
#
# Starts a real sync server (SQLite, embedded chain) on a free loopback port,
# logs a wallet in and makes it an organizer with an event on chain
# (scripts/api-schema/setup.py), then lets schemathesis generate requests from
# /api/openapi.json for SECONDS: every operation, with the credentials its
# `security` names, examples, boundary cases, random data and stateful
# sequences. It fails on any 5xx and on any response the document does not
# describe (status, content type, headers, body schema).
# Needs python3 with venv; installs schemathesis into a cache folder.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
here=scripts/api-schema
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/target}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/schemathesis-venv"

if [ ! -x "$venv/bin/st" ]; then
  echo "==> installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
fi

cargo build --workspace --locked --bins -q
work=$(mktemp -d)
server_pid=""
stripe_pid=""
cleanup() {
  for pid in $server_pid $stripe_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
stripe_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$here/stripe_stand_in.py" "$stripe_port" &
stripe_pid=$!
admin=$(head -c 24 /dev/urandom | base64 | tr -d '+/=')
cat >"$work/sync-server.toml" <<TOML
listen = "127.0.0.1:$port"
database_url = "sqlite://$work/server.db"
server_key_file = "$work/server-key.json"
admin_token = "$admin"
[chain]
embedded_file = "$work/chain.sqlite"
authority_key_file = "$work/authority.json"
issuer_key_file = "$work/issuer.json"
[api]
jwt_secret = "$(head -c 48 /dev/urandom | base64)"
public_url = "$base"
# Generous budgets: the run tests the handlers, not the rate limiter.
[stripe]
# The stand-in above: card purchases and refunds run through the real client.
secret_key = "sk_test_schema"
webhook_secret = "whsec_schema"
api_base = "http://127.0.0.1:$stripe_port"
[api.rate_limits.mint]
requests = 100000
period_secs = 1
[api.rate_limits.validate]
requests = 100000
period_secs = 1
[api.rate_limits.nonce]
requests = 100000
period_secs = 1
TOML
"$CARGO_TARGET_DIR/debug/sync-server" --config "$work/sync-server.toml" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  curl -fs "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.2
done

setup=$("$venv/bin/python" "$here/setup.py" "$base" "$admin")
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1" <<<"$setup"; }
export ADMIN_TOKEN="$admin" ORGANIZER_TOKEN="$(json organizer_token)"
export SCHEMA_EVENT="$(json event)" SCHEMA_HOLDER="$(json holder)"
export SCHEMA_TICKET="$(json ticket)" SCHEMA_MINT_REQUEST="$(json mint_request)"
export PYTHONPATH="$here" SCHEMATHESIS_HOOKS=hooks

echo "==> schemathesis against $base for ${seconds}s (event $SCHEMA_EVENT)"
status=0
"$venv/bin/st" --config-file "$here/schemathesis.toml" run "$base/api/openapi.json" \
  --max-time "$seconds" --workers 2 --seed "${SCHEMA_SEED:-1}" \
  --report junit --report-dir "$CARGO_TARGET_DIR/test-artifacts/api-schema" || status=$?
if grep -E ' (ERROR|panicked)' "$work/server.log" | head -20; then
  echo "the server logged errors during the run (above)" >&2
  status=1
fi
exit $status
