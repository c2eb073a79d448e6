#!/usr/bin/env bash
# Boots the gate appliance image in QEMU against a real sync server and checks
# the box end to end: first-boot enrolment from the boot partition, cache
# pull, readiness under systemd, scans through a serial scanner, the journal
# reaching the server and the chain, the agent killed and restarted, the
# power cut mid-scanning, a camera plugged in (vivid) and shown the QR codes
# the holders' phones get from the server, an A/B update with RAUC (a good
# bundle committed after its boot, a bad one abandoned for the slot that
# worked); then prints the figures (package and image sizes, boot-to-ready,
# the agent's memory after 1,000 scans, the camera's time from a code in view
# to its verdict, the update's times). The box boots as a PC would: UEFI
# firmware (OVMF), GRUB from the boot partition, the root slot it picks.
#
#   packaging/vm-test.sh
#
# Environment: PROFILE (cargo profile of packaging/build.sh, default release),
# CARGO_TARGET_DIR (default ~/.cache/nft-gate/target), VM_ACCEL (kvm or tcg;
# default kvm when it works, else tcg), KEEP=1 keeps the work folder,
# DEBDIR=DIR uses packages already built there (skips packaging/build.sh).
# Exits 0 only when every check held. Installs the Debian packages it needs
# when they are missing (as root, or through sudo; building the image needs
# root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
vmctl=$here/image/vmctl.py

T0=$(date +%s)
step_no=0
step() { step_no=$((step_no + 1)); printf '\n==> [%4ds] %d. %s\n' "$(( $(date +%s) - T0 ))" "$step_no" "$*"; }
say() { printf '    %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
die() {
  printf '\nFAIL: %s\n' "$*" >&2
  # What the guest printed last explains most failures: show it.
  local log="${work:-/nonexistent}/console-${boots:-0}.log"
  if [ -s "$log" ]; then
    printf '\nthe guest console, last lines (%s):\n' "$(basename "$log")" >&2
    tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -av '^[[:space:]]*$' | tail -n 60 | sed 's/^/    console: /' >&2
  fi
  exit 1
}
since() { echo $(( $(date +%s) - $1 )); }

# --- system packages -------------------------------------------------------------
need=()
want() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] || need+=("$2"); }
want mmdebstrap mmdebstrap
want qemu-system-x86_64 qemu-system-x86
want mcopy mtools
want mkfs.vfat dosfstools
want mke2fs e2fsprogs
want sfdisk fdisk
want socat socat
want python3 python3
want openssl openssl
want /usr/share/OVMF/OVMF_CODE_4M.fd ovmf
want rauc rauc
want mksquashfs squashfs-tools
if [ ${#need[@]} -gt 0 ]; then
  step "installing system packages: ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
[ "$(id -u)" -eq 0 ] || die "run as root: building the image needs it (chroot, file owners)"

work=$(mktemp -d "${TMPDIR:-/tmp}/gate-vm-test.XXXXXX")
qemu_pid="" server_pid="" watch_pid="" send_pid=""
cleanup() {
  for p in $send_pid $watch_pid $qemu_pid $server_pid; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in $send_pid $watch_pid $qemu_pid $server_pid; do kill -9 "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages and image ------------------------------------------------------------
profile=${PROFILE:-release}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate/target}"
if [ -n "${DEBDIR:-}" ]; then
  step "packages from $DEBDIR"
  debs=$DEBDIR
else
  step "packages: packaging/build.sh (PROFILE=$profile)"
  t=$(date +%s)
  debs=$work/debs
  PROFILE=$profile "$root/packaging/build.sh" "$debs" | sed 's/^/    /'
  say "built in $(since "$t") s"
fi
agent_deb=$(ls "$debs"/gate-agent_*_amd64.deb | sort -V | tail -n1)
server_deb=$(ls "$debs"/sync-server_*_amd64.deb 2>/dev/null | sort -V | tail -n1 || true)
server_bin=$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")/sync-server
[ -x "$server_bin" ] || die "no sync-server binary at $server_bin"

step "image: packaging/image/build-image.sh --profile vm amd64"
t=$(date +%s)
img=$work/gate.img
"$here/image/build-image.sh" --profile vm amd64 "$debs" "$img" 2>&1 | grep -v '^I: \|^Get:\|^Reading\|^Preparing\|^Unpacking\|^Setting up\|^Selecting' | sed 's/^/    /'
image_secs=$(since "$t")
# Sizes as built (the test writes the image later: slot B, the store).
image_bytes=$(stat -c %s "$img") image_kib=$(du -k "$img" | cut -f1)
image_zst=""
command -v zstd >/dev/null && image_zst=$(zstd -q -3 -T0 -c "$img" | wc -c)
say "image built in $image_secs s"
# Partition offsets from the image's own table.
part_field() { sfdisk -J "$img" | python3 -c "import json,sys; print(json.load(sys.stdin)['partitiontable']['partitions'][$1-1]['$2'])"; }
boot_off=$(( $(part_field 1 start) * 512 ))
bootfs="$img@@$boot_off"
# Two update bundles of the same recipe, signed with the image's (development)
# key: a good one, and one whose agent configuration is broken (the agent
# never gets ready on it). A "USB stick" carries them to the box.
step "update bundles: a good one, and one whose agent cannot start"
slot_mib=$(( $(part_field 2 size) / 2048 ))
mkdir -p "$work/stick"
t=$(date +%s)
"$here/image/build-image.sh" --profile vm --release vm-test-update --root-size "$slot_mib" --bundle "$work/stick/gate-update.raucb" amd64 "$debs" - 2>&1 | grep '^\[build-image' | sed 's/^/    /'
printf '#!/bin/sh\nprintf "this is not [TOML\\n" > "$1/etc/gate-agent/gate-agent.toml"\n' > "$work/break-agent.sh"
"$here/image/build-image.sh" --profile vm --release vm-test-broken --root-size "$slot_mib" --customize "$work/break-agent.sh" \
  --bundle "$work/stick/gate-update-broken.raucb" amd64 "$debs" - 2>&1 | grep '^\[build-image' | sed 's/^/    /'
bundle_secs=$(since "$t")
bundle_bytes=$(stat -c %s "$work/stick/gate-update.raucb")
mke2fs -q -t ext4 -L gate-update -d "$work/stick" "$work/stick.img" "$(( $(du -sk "$work/stick" | cut -f1) + 65536 ))k"
ok "two bundles in $bundle_secs s ($bundle_bytes bytes each), on a stick image"

# --- sync server ---------------------------------------------------------------------
step "sync server: $server_bin on 127.0.0.1 (SQLite, embedded chain)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
status_port=$(free_port)
export ADMIN_TOKEN=vm-test-admin-token-$(openssl rand -hex 8)
srv=$work/server
mkdir -p "$srv"
cat > "$srv/sync-server.toml" <<TOML
listen = "127.0.0.1:$port"
database_url = "sqlite://$srv/sync.db"
server_key_file = "$srv/server-key.json"
admin_token = "$ADMIN_TOKEN"
[chain]
rpc_url = "embedded"
embedded_file = "$srv/chain.sqlite"
authority_key_file = "$srv/chain-authority.json"
issuer_key_file = "$srv/issuer-key.json"
[replay]
idle_ms = 200
[api]
jwt_secret = "$(openssl rand -hex 32)"
TOML
(cd "$srv" && exec "$server_bin" --config "$srv/sync-server.toml" serve > "$srv/server.log" 2>&1) &
server_pid=$!
api=http://127.0.0.1:$port
t=$(date +%s)
until python3 "$vmctl" --timeout 2 http GET "$api/health" >/dev/null 2>&1; do
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$srv/server.log"; die "the sync server exited"; }
  [ "$(since "$t")" -lt 120 ] || die "the sync server did not answer /health within 120 s"
  sleep 0.5
done
ok "listening on $api after $(since "$t") s"
adm() { python3 "$vmctl" --timeout "${TIMEOUT:-60}" http "$@"; }
jq_() { python3 "$vmctl" json "$1"; }

step "event on chain, gate, enrolment token, tickets"
now=$(date +%s)
event=$now
adm POST "$api/api/admin/events" "{\"event_id\": $event, \"name\": \"VM test\", \"venue\": \"QEMU\",
  \"starts_at\": $((now + 600)), \"ends_at\": $((now + 6 * 3600)), \"doors_open_at\": $((now - 600)),
  \"doors_close_at\": $((now + 6 * 3600)), \"capacity\": 1000,
  \"tiers\": [{\"name\": \"general\", \"price_lamports\": 0, \"supply\": 1000}],
  \"reentry\": \"forbidden\", \"transferable\": true}" > "$work/event.json"
ok "event $event at $(jq_ 'j["address"]' < "$work/event.json")"
adm PUT "$api/api/admin/events/$event/gates" '{"number": 1, "name": "vm-1", "direction": "entry"}' >/dev/null
token=$(adm POST "$api/api/admin/events/$event/enrol-tokens" '{"gate": "vm-1"}' | jq_ 'j["token"]')
ok "gate 1 vm-1, one-time token ${token:0:6}..."
# 40 tickets for the serial scanner, 3 more only ever shown to the camera.
tickets=40 cam_tickets=3
mkdir -p "$work/keys"
python3 "$vmctl" wallets $((tickets + cam_tickets)) "$work/keys" > "$work/wallets"
recipients=$(python3 -c 'import json,sys; print(json.dumps({"recipients":[{"wallet":w.strip()} for w in open(sys.argv[1]) if w.strip()]}))' "$work/wallets")
t=$(date +%s)
TIMEOUT=600 adm POST "$api/api/admin/events/$event/tickets" "$recipients" > "$work/minted.json"
jq_ '"\n".join(t["code"] for t in j["tickets"][:'$tickets'])' < "$work/minted.json" > "$work/codes"
jq_ '"\n".join("%s %s" % (t["ticket_id"], t["owner"]) for t in j["tickets"]['$tickets':])' < "$work/minted.json" > "$work/cam-tickets"
[ "$(wc -l < "$work/codes")" -eq $tickets ] && [ "$(wc -l < "$work/cam-tickets")" -eq $cam_tickets ] ||
  die "minted $(jq_ 'len(j["tickets"])' < "$work/minted.json") tickets, wanted $((tickets + cam_tickets))"
ok "$((tickets + cam_tickets)) ticket NFTs minted in $(since "$t") s"
# What the camera will be shown: each camera ticket's QR code as its holder
# gets it (logged in with the wallet's key), on 1280x720 grey frames (the
# camera's format, checked when it is opened), on a disk of their own.
t=$(date +%s)
pngs=()
while read -r id owner; do
  python3 "$vmctl" holder-qr "$api" "$event" "$id" "$work/keys/$owner.pem" "$work/qr-$id.png"
  pngs+=("$work/qr-$id.png")
done < "$work/cam-tickets"
cam_w=1280 cam_h=720
python3 "$vmctl" frames $cam_w $cam_h "$work/scene.raw" "${pngs[@]}"
ok "tickets $(cut -d' ' -f1 "$work/cam-tickets" | tr '\n' ' ')are for the camera: their holders' QR PNGs fetched and framed in $(since "$t") s"
# codes N..M (0-based, inclusive) into a file
codes() { sed -n "$(($1 + 1)),$(($2 + 1))p" "$work/codes" > "$3"; }

step "boot partition: gate-enrol.toml (server through the VM's forward)"
printf 'server = "http://10.0.2.100:8080"\ntoken = "%s"\n' "$token" | mcopy -i "$bootfs" - ::gate-enrol.toml
# A time server for systemd-timesyncd, the way a technician gives one.
printf 'ntp.venue.test\r\n' | mcopy -i "$bootfs" - ::gate-ntp.conf
mdir -b -i "$bootfs" :: | sed 's/^/    /'
mdir -/ -b -i "$bootfs" ::EFI | sed 's/^/    /'
say "UEFI boot: OVMF finds GRUB at EFI/BOOT/BOOTX64.EFI; GRUB picks the root slot from EFI/gate/grubenv"
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/ovmf-vars.fd"

# --- the VM ---------------------------------------------------------------------------
accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
  if [ -w /dev/kvm ] && grep -qE 'vmx|svm' /proc/cpuinfo; then accel=kvm; else accel=tcg; fi
fi
boots=0
start_vm() {
  boots=$((boots + 1))
  local acc=(-accel tcg -cpu max)
  [ "$accel" = kvm ] && acc=(-enable-kvm -cpu host)
  rm -f "$work/con.sock" "$work/scan.sock"
  # UEFI firmware with its own variable store (kept across boots like a
  # board's NVRAM). User networking, restricted: the guest reaches only the
  # sync server (10.0.2.100:8080, one socat per connection) and the host
  # reaches only the status page. The camera's frames are a read-only disk,
  # the update stick another. A reboot of the guest stays in this QEMU.
  qemu-system-x86_64 "${acc[@]}" -machine q35 -m 512 -smp 2 -display none \
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" \
    -drive "if=pflash,format=raw,unit=1,file=$work/ovmf-vars.fd" \
    -drive "file=$img,format=raw,if=none,id=gate,cache=writeback" -device virtio-blk-pci,drive=gate,bootindex=0 \
    -nic "user,restrict=on,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$status_port-:8088,guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:$port" \
    -chardev "socket,id=con,path=$work/con.sock,server=on,wait=off,logfile=$work/console-$boots.log" -serial chardev:con \
    -chardev "socket,id=scan,path=$work/scan.sock,server=on,wait=off" -serial chardev:scan \
    -drive "file=$work/scene.raw,format=raw,if=none,id=scene,readonly=on" -device virtio-blk-pci,drive=scene,serial=camera-scene \
    -drive "file=$work/stick.img,format=raw,if=none,id=stick,readonly=on" -device virtio-blk-pci,drive=stick,serial=update-stick \
    -monitor none > "$work/qemu-$boots.log" 2>&1 &
  qemu_pid=$!
  boot_started=$(date +%s)
}
console() { python3 "$vmctl" --timeout "${TIMEOUT:-60}" console "$work/con.sock" "$1"; }
# A reboot from the guest's shell, a second later (the shell answers first).
reboot_guest() {
  console 'systemd-run --quiet --on-active=1 systemctl reboot' >/dev/null || die "the guest did not take the reboot command"
  reboot_at=$(date +%s)
}
status_url=http://127.0.0.1:$status_port
wait_status() { python3 "$vmctl" --timeout "$1" wait-status "$status_url" "$2"; }
ready='s["online"] and s["setup_error"] is None and s["cache_generated_at"] is not None and s["journal_error"] is None'
# the admitted scans in a verdict log (JSON lines): "scan_id ticket" lines, sorted
admitted() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    v = json.loads(l)
    if v["opens"]: print(v["scan_id"], v["ticket_id"])' "$1" | sort -u; }
# the admissions in the agent's journal, "scan_id ticket" lines, sorted
agent_admitted() {
  TIMEOUT=120 console "runuser -u gate-agent -- gate-agent --config /etc/gate-agent/gate-agent.toml journal export --format jsonl" > "$work/journal.jsonl"
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    l = l.strip()
    if l.startswith("{"):
        v = json.loads(l)
        if v.get("opened"): print(v["scan_id"], v["ticket_id"])' "$work/journal.jsonl" | sort -u
}
# the admissions the server holds for the event, "scan_id ticket" lines, sorted
server_admitted() { adm GET "$api/api/admin/events/$event/replay?scans=true" | jq_ '"\n".join(s["scan_id"] + " " + str(s["ticket_id"]) for s in j["scans"])' | sed '/^$/d' | sort -u; }
replay() { adm GET "$api/api/admin/events/$event/replay"; }
# waits until every admission the agent made is confirmed on chain
wait_confirmed() {
  local want=$1 t; t=$(date +%s)
  while :; do
    r=$(replay)
    c=$(jq_ 'j["confirmed"]' <<<"$r")
    [ "$c" -ge "$want" ] && [ "$(jq_ 'j["waiting"] + j["submitted"]' <<<"$r")" -eq 0 ] && break
    [ "$(since "$t")" -lt "$2" ] || die "replay after $2 s: $r (wanted $want confirmed)"
    sleep 1
  done
  ok "replay: $r"
}
watch_start() { python3 "$vmctl" --timeout 3600 watch "$status_url" "$1" & watch_pid=$!; }
watch_stop() { kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; watch_pid=""; }

step "first boot ($accel): enrolment, cache, ready"
start_vm
# A KVM that hangs (nested virtualization without VMX) never prints the
# kernel's banner or a login; one whose CPU model the host refuses ends
# QEMU at once (an MSR it cannot set).
if [ "$accel" = kvm ]; then
  t=$(date +%s)
  until grep -aq 'BdsDxe\|gate image\|Linux version\|systemd\|login:\|root@' "$work/console-1.log" 2>/dev/null ||
    ! kill -0 "$qemu_pid" 2>/dev/null || grep -qs '^State:.*Z' "/proc/$qemu_pid/status" ||
    [ "$(since "$t")" -ge 20 ]; do sleep 0.5; done
  if ! grep -aq 'BdsDxe\|gate image\|Linux version\|systemd\|login:\|root@' "$work/console-1.log" 2>/dev/null; then
    say "KVM boot shows no output after $(since "$t") s ($(tail -n1 "$work/qemu-1.log" 2>/dev/null)): using TCG (software emulation) instead"
    kill -9 "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true
    accel=tcg boots=0
    start_vm
  fi
fi
TIMEOUT=300 python3 "$vmctl" --timeout 300 wait-login "$work/con.sock" || die "no login on the serial console"
ok "serial console: root shell after $(since "$boot_started") s"
wait_status 300 "$ready" > "$work/status.json" || { console "journalctl -b --no-pager -u gate-agent-enrol -u gate-agent | tail -40" || true; die "the agent never got ready"; }
boot_to_ready=$(since "$boot_started")
ok "status page: online, cache loaded, no setup error, $boot_to_ready s after power-on"
[ "$(console 'systemctl is-active gate-agent')" = active ] || die "gate-agent is not active"
ok "systemctl is-active gate-agent: active"
console "journalctl -b --no-pager -o cat -u gate-agent-enrol | tail -5" | sed 's/^/    guest: /'
console "test ! -e /boot/firmware/gate-enrol.toml" || die "gate-enrol.toml is still on the boot partition after enrolment"
ok "gate-enrol.toml deleted from the boot partition after the enrolment"
gates=$(adm GET "$api/api/admin/events/$event/gates")
[ "$(jq_ '[g for g in j if g["gate"] == 1][0]["online"]' <<<"$gates")" = true ] || die "the server does not list gate 1 online: $gates"
ok "the server lists gate 1 online: $gates"
if devices=$(adm GET "$api/api/admin/events/$event/devices" 2>/dev/null); then
  [ "$(jq_ 'len([d for d in j if d["gate"] == 1 and d["online"] and not d.get("revoked_at")])' <<<"$devices")" = 1 ] ||
    die "the server does not list the box as gate 1's device, online: $devices"
  ok "the server lists the box: $(jq_ '[{k: d.get(k) for k in ("device_id", "gate", "agent_version", "hostname", "online")} for d in j]' <<<"$devices")"
else
  say "this server has no GET /api/admin/events/{e}/devices: the gates listing above stands for it"
fi
console "systemctl --failed --no-legend" | sed 's/^/    failed unit: /'
[ -z "$(console 'systemctl --failed --no-legend')" ] || die "failed units in the guest"
ok "no failed units"
say "root: $(console 'findmnt -no SOURCE,OPTIONS /')"
say "data: $(console 'findmnt -no SOURCE,OPTIONS /var/lib/gate-agent')"
console 'findmnt -no OPTIONS / | grep -q "^ro,"' || die "the root file system is not read-only"
console 'findmnt -no OPTIONS /var/lib/gate-agent | grep -q "data=journal"' || die "the data partition is not data=journal"
ok "root read-only, data partition data=journal"

console 'grep -qx "NTP=ntp.venue.test" /run/systemd/timesyncd.conf.d/60-boot-partition.conf' ||
  die "gate-ntp.conf did not reach systemd-timesyncd"
[ "$(console 'systemctl is-active systemd-timesyncd')" = active ] || die "systemd-timesyncd is not active"
ok "systemd-timesyncd active with NTP=ntp.venue.test from the boot partition's gate-ntp.conf"
# The hardware watchdog (q35's iTCO here) is fed by systemd.
wd=$(console 'systemctl show -p RuntimeWatchdogUSec --value; journalctl -b -o cat _PID=1 | grep -m1 -i "hardware watchdog"')
[ "$(head -n1 <<<"$wd")" = 30s ] && grep -qi "hardware watchdog" <<<"$wd" || die "systemd does not feed a hardware watchdog: $wd"
ok "systemd feeds the hardware watchdog every 30 s at most: $(tail -n1 <<<"$wd")"

step "scans through the serial scanner (CRLF): 10 admissions, 3 re-entries refused"
watch_start "$work/verdicts-1.jsonl"
sleep 1
codes 0 9 "$work/c1"; codes 0 2 "$work/c2"
python3 "$vmctl" --timeout 60 send "$work/scan.sock" "$work/c1" 10 300
python3 "$vmctl" --timeout 60 send "$work/scan.sock" "$work/c2" 3 300
wait_status 60 's["counts"]["admitted"] >= 10 and s["counts"]["rejected"] >= 3' > "$work/status.json" || die "verdicts missing"
sleep 1; watch_stop
python3 -c 'import json,sys
for l in open(sys.argv[1]):
    v = json.loads(l); print("    verdict: ticket %-3s %-16s %s" % (v["ticket_id"], v["outcome"], v["text"]))' "$work/verdicts-1.jsonl"
[ "$(admitted "$work/verdicts-1.jsonl" | wc -l)" -eq 10 ] || die "expected 10 admissions"
[ "$(grep -c '"outcome": "already_inside"' "$work/verdicts-1.jsonl")" -eq 3 ] || die "expected 3 already_inside refusals"
ok "10 admitted, 3 refused as already inside"

step "the journal reaches the server and the entries are confirmed on chain"
wait_status 60 's["counts"]["unsent"] == 0' >/dev/null || die "the journal was not uploaded"
wait_confirmed 10 180
server_admitted > "$work/server-1"
admitted "$work/verdicts-1.jsonl" > "$work/seen-1"
comm -23 "$work/seen-1" "$work/server-1" > "$work/missing"
[ ! -s "$work/missing" ] || die "admissions missing at the server: $(cat "$work/missing")"
ok "the server holds all 10 admissions the gate showed"

step "agent killed (SIGKILL) while scanning: systemd restarts it, no entry lost"
pid1=$(console 'systemctl show -p MainPID --value gate-agent')
watch_start "$work/verdicts-2.jsonl"
sleep 1
codes 10 19 "$work/c3"
python3 "$vmctl" --timeout 120 send "$work/scan.sock" "$work/c3" 10 400 & send_pid=$!
sleep 1.5
console "kill -9 $pid1" >/dev/null
say "killed gate-agent (pid $pid1) mid-scanning"
wait "$send_pid"; send_pid=""
t=$(date +%s)
until pid2=$(console 'systemctl show -p MainPID --value gate-agent') && [ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ] &&
  [ "$(console 'systemctl is-active gate-agent')" = active ]; do
  [ "$(since "$t")" -lt 60 ] || die "gate-agent did not come back within 60 s"
  sleep 1
done
restarts=$(console 'systemctl show -p NRestarts --value gate-agent')
ok "systemd restarted it: pid $pid1 -> $pid2, NRestarts=$restarts"
# Codes sent while no agent held the port are lost on the wire, not in a
# journal: send those tickets again.
wait_status 60 "$ready" >/dev/null || die "not ready after the restart"
python3 "$vmctl" --timeout 60 send "$work/scan.sock" "$work/c3" 10 300
sleep 2; watch_stop
admitted "$work/verdicts-2.jsonl" > "$work/seen-2"
agent_admitted > "$work/agent-2"
comm -23 "$work/seen-2" "$work/agent-2" > "$work/missing"
[ ! -s "$work/missing" ] || die "admissions the gate showed but its journal lacks: $(cat "$work/missing")"
[ "$(cut -d' ' -f2 "$work/agent-2" | sort -u | wc -l)" -eq 20 ] || die "expected 20 admitted tickets in the journal, found $(wc -l < "$work/agent-2")"
ok "the journal holds every admission shown ($(wc -l < "$work/seen-2") in this round), 20 tickets admitted in all, each once"

step "power cut (kill -9 qemu) mid-scanning, boot again"
watch_start "$work/verdicts-3.jsonl"
sleep 1
codes 20 39 "$work/c4"
python3 "$vmctl" --timeout 120 send "$work/scan.sock" "$work/c4" 20 250 & send_pid=$!
sleep 3
kill -9 "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true
kill "$send_pid" 2>/dev/null || true; wait "$send_pid" 2>/dev/null || true; send_pid=""
sleep 0.5; watch_stop
admitted "$work/verdicts-3.jsonl" > "$work/seen-3"
say "power cut after $(wc -l < "$work/seen-3") admissions shown in this round"
[ -s "$work/seen-3" ] || die "no admission was shown before the cut (too early)"
start_vm
python3 "$vmctl" --timeout 300 wait-login "$work/con.sock" || die "no login after the power cut"
wait_status 300 "$ready" >/dev/null || die "not ready after the power cut"
boot2_to_ready=$(since "$boot_started")
ok "ready again $boot2_to_ready s after power-on"
agent_admitted > "$work/agent-3"
cat "$work/seen-1" "$work/seen-2" "$work/seen-3" | sort -u > "$work/seen-all"
comm -23 "$work/seen-all" "$work/agent-3" > "$work/missing"
[ ! -s "$work/missing" ] || die "admissions lost by the power cut: $(cat "$work/missing")"
ok "the agent's journal holds all $(wc -l < "$work/seen-all") admissions the host saw"
# The rest of the round's tickets, so the chain sees all of them.
python3 "$vmctl" --timeout 60 send "$work/scan.sock" "$work/c4" 20 250
wait_status 60 's["counts"]["admitted"] >= 40 and s["counts"]["unsent"] == 0' >/dev/null || die "not all 40 tickets admitted and uploaded"
wait_confirmed 40 300
server_admitted > "$work/server-3"
comm -23 "$work/seen-all" "$work/server-3" > "$work/missing"
[ ! -s "$work/missing" ] || die "admissions the server lacks: $(cat "$work/missing")"
agent_admitted > "$work/agent-4"
cmp -s "$work/agent-4" "$work/server-3" || die "agent and server disagree on the admissions: $(diff "$work/agent-4" "$work/server-3" | head)"
ok "server and agent hold the same $(wc -l < "$work/server-3") admissions, one per ticket, all confirmed on chain"

step "1,000 scans (the 40 tickets again: refused re-entries), then the agent's memory"
rss_before=$(console 'grep VmRSS /proc/$(systemctl show -p MainPID --value gate-agent)/status' | awk '{print $2, $3}')
before=$(wait_status 10 'True' | jq_ 'j["counts"]["admitted"] + j["counts"]["rejected"]')
t=$(date +%s)
# 50 scans a second: far beyond a turnstile, and gentle enough for an
# emulated UART on a busy machine.
python3 "$vmctl" --timeout 600 send "$work/scan.sock" "$work/codes" 1000 20
wait_status 600 "s['counts']['admitted'] + s['counts']['rejected'] >= $before + 1000" >/dev/null || die "not every scan got a verdict"
scan_secs=$(since "$t")
ok "1,000 verdicts in $scan_secs s"
rss=$(console 'grep VmRSS /proc/$(systemctl show -p MainPID --value gate-agent)/status' | awk '{print $2, $3}')
ok "gate-agent VmRSS after 1,000 scans: $rss (before them: $rss_before)"

step "camera: vivid plugged in, shown the QR codes of $cam_tickets tickets no other scanner saw"
cam_state() { wait_status 10 'True' | jq_ 'j["inputs"].get("vm-camera", "")'; }
state=$(cam_state)
say "before: vm-camera: $state"
[[ "$state" == "frame error"* ]] || die "the status page does not report the missing camera: $state"
ok "the status page reports the camera missing (the agent tries it every second)"
console 'modprobe vivid && v4l2-ctl -d /dev/video0 -c loop_video=1' || die "vivid did not load"
t=$(date +%s)
until state=$(cam_state) && [[ "$state" == "reading camera 0 ("* ]]; do
  [ "$(since "$t")" -lt 30 ] || die "the agent did not take the camera up within 30 s: $state"
  sleep 0.5
done
[ "$state" = "reading camera 0 (${cam_w}x$cam_h GREY)" ] ||
  die "the camera was opened as $state, the frames on the scene disk are ${cam_w}x$cam_h GREY"
ok "vm-camera: $state, $(since "$t") s after modprobe vivid"
console "v4l2-ctl -d /dev/video0 --get-fmt-video | grep -E 'Width|Pixel Format'" | sed 's/^/    guest: /'
# The scene on vivid's output (looped to its capture node byte for byte, no
# on-screen text): blank, then each ticket in view for 2 s with 0.5 s of
# blank between, then the first one again (well past the 3 s repeat window:
# a second scan). Each showing is timed, not counted in frames: under TCG
# the output runs below its 60 frames a second.
frame_bytes=$((cam_w * cam_h))
scene=$(cat <<SCENE
disk=/dev/disk/by-id/virtio-camera-scene
for i in \$(seq 0 $cam_tickets); do dd if=\$disk of=/tmp/frame-\$i.raw bs=$frame_bytes skip=\$i count=1 status=none; done
v4l2-ctl -d /dev/video0 -c osd_text_mode=2
v4l2-ctl -d /dev/video1 --set-fmt-video-out=width=$cam_w,height=$cam_h,pixelformat=GREY
show() { echo "\$1 \$(date +%s%3N)" >> /tmp/scene.log; timeout \$2 v4l2-ctl -d /dev/video1 --stream-out-mmap=4 --stream-from=/tmp/frame-\$1.raw --stream-loop >/dev/null; }
show 0 0.5
for i in \$(seq 1 $cam_tickets) 1; do show \$i 2; show 0 0.5; done
echo done >> /tmp/scene.log
SCENE
)
before_cam=$(wait_status 10 'True' | jq_ '"%d %d %s" % (j["counts"]["admitted"], j["counts"]["rejected"], (j["last"] or {}).get("scan_id"))')
# The event stream starts with the last verdict before the scene: not the camera's.
watch_start "$work/verdicts-all.jsonl"
sleep 1
console "echo $(base64 -w0 <<<"$scene") | base64 -d > /tmp/scene.sh && rm -f /tmp/scene.log && systemd-run --quiet --unit=vm-camera-scene sh /tmp/scene.sh" ||
  die "the scene did not start"
t=$(date +%s)
read -r admitted_before rejected_before last_before <<<"$before_cam"
wait_status 60 "s['counts']['admitted'] >= $admitted_before + $cam_tickets and s['counts']['rejected'] >= $rejected_before + 1" >/dev/null ||
  { console 'journalctl -b --no-pager -o cat -u vm-camera-scene -u gate-agent | tail -20' | sed 's/^/    guest: /'; die "the camera's verdicts are missing"; }
cam_secs=$(since "$t")
sleep 1; watch_stop
grep -v "\"scan_id\": \"$last_before\"" "$work/verdicts-all.jsonl" > "$work/verdicts-cam.jsonl" || true
python3 -c 'import json,sys
for l in open(sys.argv[1]):
    v = json.loads(l); print("    verdict: %-9s ticket %-3s %-16s %s" % (v["source"], v["ticket_id"], v["outcome"], v["text"]))' "$work/verdicts-cam.jsonl"
python3 -c 'import json,sys
v = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(sorted(str(x["ticket_id"]) for x in v if x["source"] == "vm-camera" and x["opens"])))
print(" ".join(str(x["ticket_id"]) for x in v if x["source"] == "vm-camera" and x["outcome"] == "already_inside"))
print(len([x for x in v if x["source"] != "vm-camera"]))' "$work/verdicts-cam.jsonl" > "$work/cam-summary"
cam_ids=$(cut -d' ' -f1 "$work/cam-tickets" | sort | tr '\n' ' ' | sed 's/ $//')
first_cam=$(head -n1 "$work/cam-tickets" | cut -d' ' -f1)
[ "$(sed -n 1p "$work/cam-summary")" = "$cam_ids" ] ||
  die "the camera admitted tickets '$(sed -n 1p "$work/cam-summary")', wanted '$cam_ids'"
[ "$(sed -n 2p "$work/cam-summary")" = "$first_cam" ] ||
  die "ticket $first_cam shown again was not refused as already inside: '$(sed -n 2p "$work/cam-summary")'"
[ "$(sed -n 3p "$work/cam-summary")" = 0 ] || die "verdicts from another input during the camera's scene"
ok "the camera admitted tickets $cam_ids once each and refused ticket $first_cam shown again (already inside)"
# From the start of a ticket's showing (v4l2-ctl started on vivid's output)
# to its verdict.
console 'cat /tmp/scene.log' > "$work/scene.log"
cam_latency=$(python3 -c 'import json,sys
shown = [l.split() for l in open(sys.argv[2])]
shown = [(int(x[0]), int(x[1])) for x in shown if len(x) == 2 and x[0] != "0"]
out = []
for v in (json.loads(l) for l in open(sys.argv[1])):
    if v["source"] != "vm-camera":
        continue
    # the last showing that began before the verdict
    start = max(ms for f, ms in shown if ms <= v["at_ms"])
    out.append(str(v["at_ms"] - start))
print(" ".join(out))' "$work/verdicts-cam.jsonl" "$work/scene.log")
ok "in view to verdict (ms, each showing): $cam_latency"
metrics=$(adm GET "$status_url/metrics")
cam_frames=$(awk '$1 == "gate_camera_frames_total" {print $2}' <<<"$metrics")
cam_dropped=$(awk '$1 == "gate_camera_frames_dropped_total" {print $2}' <<<"$metrics")
ok "camera frames since it was opened: ${cam_frames:-?} decoded, ${cam_dropped:-0} dropped as stale while the decoder was busy"
wait_status 60 's["counts"]["unsent"] == 0' >/dev/null || die "the camera's scans were not uploaded"
wait_confirmed $((tickets + cam_tickets)) 180
server_admitted > "$work/server-cam"
admitted "$work/verdicts-cam.jsonl" > "$work/seen-cam"
comm -23 "$work/seen-cam" "$work/server-cam" > "$work/missing"
[ ! -s "$work/missing" ] || die "camera admissions missing at the server: $(cat "$work/missing")"
ok "the server holds the camera's $cam_tickets admissions, confirmed on chain with the other 40"

step "A/B update with RAUC: a bundle into slot B, a reboot, slot B committed once the agent is ready"
grubenv() { console 'grub-editenv /boot/firmware/EFI/gate/grubenv list' | tr '\n' ' ' | sed 's/ $//'; }
# GRUB says which slot it boots on the console; the boots so far, and a wait
# for the next ones.
slot_boots() { grep -ao 'gate image: root slot [AB]' "$work/console-$boots.log" | awk '{print $NF}' | tr -d '\n'; }
wait_boots() { # WANT-SUFFIX SECONDS COUNT: until COUNT slots were booted, the last ones WANT-SUFFIX
  local t; t=$(date +%s)
  until [[ "$(slot_boots)" == *"$1" ]] && [ "$(slot_boots | wc -c)" -ge "$3" ]; do
    [ "$(since "$t")" -lt "$2" ] || die "boots seen: '$(slot_boots)', wanted ...$1 within $2 s"
    sleep 1
  done
  say "GRUB booted slot ${1: -1} $(since "$reboot_at") s after the test asked the guest to reboot"
}
say "slots booted in this power-on so far: $(slot_boots)"
console 'grep -o "rauc.slot=[AB]" /proc/cmdline' | grep -qx 'rauc.slot=A' || die "the box did not boot slot A"
t=$(date +%s)
# gate-boot-verdict ran to its end and committed the slot
verdict_done() { [ "$(console 'systemctl show -p ActiveState --value gate-boot-verdict; systemctl show -p Result --value gate-boot-verdict' | tr '\n' ' ')" = "inactive success " ]; }
until verdict_done; do
  [ "$(since "$t")" -lt 90 ] || die "slot A was not committed: $(console 'journalctl -b -o cat -u gate-boot-verdict | tail -5')"
  sleep 2
done
env=$(grubenv)
[[ " $env " == *" A_OK=1 "* && " $env " == *" A_TRY=0 "* && " $env " == *" B_OK=0 "* ]] || die "grubenv after the first boots: $env"
ok "slot A booted and committed by gate-boot-verdict: $env"
# The stick, mounted where a technician's shell would (gone at each reboot).
mount_stick() { console 'mkdir -p /run/stick && mount -o ro /dev/disk/by-id/virtio-update-stick /run/stick' || die "the update stick did not mount"; }
mount_stick
console 'rauc info /run/stick/gate-update.raucb 2>/dev/null | grep -E "Compatible|Version|Verified"; true' | sed 's/^/    guest: /'
t=$(date +%s)
TIMEOUT=900 console 'rauc install /run/stick/gate-update.raucb' > "$work/rauc-install.log" 2>&1 ||
  { sed 's/^/    guest: /' "$work/rauc-install.log" | tail -20; die "rauc install failed"; }
install_secs=$(since "$t")
tail -n 3 "$work/rauc-install.log" | sed 's/^/    guest: /'
env=$(grubenv)
[[ " $env " == *' ORDER=B A '* && " $env " == *" B_OK=1 "* && " $env " == *" B_TRY=0 "* ]] || die "grubenv after the install: $env"
ok "installed into slot B in $install_secs s; next boot: $env"
n=$(slot_boots | wc -c)
reboot_guest
t=$reboot_at
wait_boots B 420 $((n + 1))
python3 "$vmctl" --timeout 300 wait-login "$work/con.sock" || die "no login on slot B"
wait_status 300 "$ready" >/dev/null || die "the agent on slot B never got ready"
update_to_ready=$(since "$t")
[ "$(console 'grep -o "rauc.slot=[AB]" /proc/cmdline')" = rauc.slot=B ] || die "GRUB did not boot slot B"
say "root: $(console 'findmnt -no SOURCE,OPTIONS /'); $(console 'cat /etc/gate-image-release')"
console 'findmnt -no SOURCE / | grep -qx /dev/vda3' || die "the root is not partition 3 (slot B)"
console 'grep -q "^gate-image vm-test-update " /etc/gate-image-release' || die "slot B does not hold the update"
ok "rebooted into slot B (the update) and ready $update_to_ready s after the reboot"
agent_admitted > "$work/agent-b"
server_admitted > "$work/server-b"
cmp -s "$work/agent-b" "$work/server-b" || die "after the update the journal differs from the server: $(diff "$work/agent-b" "$work/server-b" | head)"
ok "the journal on the data partition came through the update: $(wc -l < "$work/agent-b") admissions, as on the server"
t=$(date +%s)
until env=$(grubenv) && [[ " $env " == *" B_OK=1 "* && " $env " == *" B_TRY=0 "* ]] &&
  verdict_done; do
  [ "$(since "$t")" -lt 120 ] || die "slot B was not committed: $env"
  sleep 2
done
console 'rauc status --detailed 2>/dev/null | grep -E "Booted from|Activated|boot status"; true' | sed 's/^/    guest: /'
ok "slot B committed (rauc status mark-good) once the agent was ready: $env"
before_b=$(wait_status 10 'True' | jq_ 'j["counts"]["rejected"]')
codes 0 0 "$work/c-b"
python3 "$vmctl" --timeout 60 send "$work/scan.sock" "$work/c-b" 1 300
wait_status 30 "s['counts']['rejected'] >= $before_b + 1" >/dev/null || die "no verdict for a scan on slot B"
ok "a scan on slot B: refused as already inside, as the journal says"

step "a bad update: its agent never gets ready, the box goes back to the slot that worked"
mount_stick
t=$(date +%s)
TIMEOUT=900 console 'rauc install /run/stick/gate-update-broken.raucb' > "$work/rauc-install-2.log" 2>&1 ||
  { sed 's/^/    guest: /' "$work/rauc-install-2.log" | tail -20; die "rauc install of the broken bundle failed"; }
env=$(grubenv)
[[ " $env " == *' ORDER=A B '* && " $env " == *" A_OK=1 "* && " $env " == *" A_TRY=0 "* ]] || die "grubenv after the second install: $env"
ok "the broken update installed into slot A in $(since "$t") s; next boot: $env"
n=$(slot_boots | wc -c)
reboot_guest
t=$reboot_at
wait_boots A 420 $((n + 1))
say "booting slot A (the broken update): the agent cannot read its configuration"
wait_boots AB 600 $((n + 2))
python3 "$vmctl" --timeout 300 wait-login "$work/con.sock" || die "no login after the fallback"
wait_status 300 "$ready" >/dev/null || die "the agent was not ready after the fallback"
fallback_secs=$(since "$t")
tr -d '\r' < "$work/console-$boots.log" | { grep -a 'gate-boot-verdict: slot A' || true; } | sed 's/^/    guest (slot A): /'
tr -d '\r' < "$work/console-$boots.log" | grep -aq 'gate-boot-verdict: marking slot A bad' || die "the bad slot was not marked bad by gate-boot-verdict"
[ "$(console 'grep -o "rauc.slot=[AB]" /proc/cmdline')" = rauc.slot=B ] || die "the box is not back on slot B"
env=$(grubenv)
[[ " $env " == *" A_OK=0 "* && " $env " == *" B_OK=1 "* ]] || die "grubenv after the fallback: $env"
console 'grep -q "^gate-image vm-test-update " /etc/gate-image-release' || die "slot B no longer holds the good update"
agent_admitted > "$work/agent-fb"
cmp -s "$work/agent-fb" "$work/server-b" || die "after the fallback the journal differs: $(diff "$work/agent-fb" "$work/server-b" | head)"
ok "back on slot B and ready $fallback_secs s after the reboot into the bad slot; slot A marked bad ($env); journal intact"

step "clean shutdown; the boot partition afterwards"
console 'systemctl poweroff' >/dev/null 2>&1 || true
t=$(date +%s)
while kill -0 "$qemu_pid" 2>/dev/null; do
  [ "$(since "$t")" -lt 120 ] || die "the VM did not power off within 120 s"
  sleep 1
done
qemu_pid=""
if mdir -b -i "$bootfs" :: | grep -qi 'gate-enrol.toml'; then die "gate-enrol.toml is still on the boot partition"; fi
ok "gate-enrol.toml is gone from the boot partition: $(mdir -b -i "$bootfs" :: | tr '\n' ' ')"
dd if="$img" of="$work/boot.fat" bs=512 skip=$((boot_off / 512)) count="$(part_field 1 size)" status=none
fsck.vfat -n "$work/boot.fat" > "$work/fsck.log" 2>&1 || { cat "$work/fsck.log"; die "the boot partition's FAT is not clean"; }
ok "the boot partition's FAT is clean (fsck.vfat -n)"

step "figures"
say "gate-agent package: $(stat -c %s "$agent_deb") bytes ($(basename "$agent_deb"))"
[ -n "$server_deb" ] && say "sync-server package: $(stat -c %s "$server_deb") bytes ($(basename "$server_deb"))"
say "image as built: $image_bytes bytes ($((image_bytes / 1048576)) MiB partitioned), $image_kib KiB allocated (sparse); built in $image_secs s"
[ -z "$image_zst" ] || say "image compressed for distribution (zstd -3): $image_zst bytes"
say "boot to ready ($accel): first boot with enrolment $boot_to_ready s, after the power cut $boot2_to_ready s"
say "1,000 serial scans: $scan_secs s; gate-agent VmRSS afterwards: $rss (before: $rss_before)"
say "camera ($accel, vivid 1280x720 GREY at 60 frames a second): $cam_tickets admissions and a refusal in $cam_secs s; in view to verdict $cam_latency ms"
say "A/B update: bundle $bundle_bytes bytes (two built in $bundle_secs s); rauc install $install_secs s; reboot to ready on the new slot $update_to_ready s; a bad update back on the good slot and ready $fallback_secs s after its reboot"
say "total: $(since "$T0") s"
printf '\nPASS: every check held\n'
