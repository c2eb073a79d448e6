#!/usr/bin/env python3
"""Drives a gate image in QEMU for packaging/vm-test.sh: the root shell on the
first serial port, the scanner on the second, the agent's status page and the
sync server's admin API. Standard library only.

Subcommands (each bounded by --timeout):
  console SOCK CMD         run CMD in the guest's root shell; print its output,
                           exit with its status
  wait-login SOCK          wait for the autologin shell
  send SOCK FILE [N] [MS]  send FILE's lines (codes) CRLF-terminated, N lines
                           in all (cycling), one every MS milliseconds
  watch URL OUT            follow the status page's /events; append each new
                           verdict (one JSON line) to OUT until killed
  wait-status URL EXPR     poll URL/api/status until the Python expression EXPR
                           (over `s`, the status JSON) holds
  http METHOD URL [BODY]   HTTP request (ADMIN_TOKEN as bearer); print the
                           body; exit 1 unless the status is 2xx
  wallets N                N fresh Solana wallet addresses (ed25519, openssl)
  json EXPR                evaluate EXPR over `j`, the JSON on stdin; print
                           strings bare, other values as JSON
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = 60.0


def fail(msg):
    print(f"vmctl: {msg}", file=sys.stderr)
    sys.exit(1)


def connect_unix(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError as e:
            if time.monotonic() > deadline:
                fail(f"cannot connect to {path}: {e}")
            time.sleep(0.2)


class Console:
    """The guest's root shell on a serial line (echo and kernel messages
    included): commands are framed by markers the shell prints."""

    def __init__(self, path, deadline):
        self.sock = connect_unix(path, deadline)
        self.buf = b""

    def read_until(self, pattern, deadline, quiet=False):
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                if quiet:
                    return None
                tail = self.buf[-600:].decode(errors="replace")
                fail(f"timed out waiting for {pattern!r} on the console; last output:\n{tail}")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                fail("the console closed")
            self.buf += data

    def login(self, deadline):
        # A newline makes a waiting shell print its prompt again.
        prompt = rb"root@[\w-]+:[^\r\n]*# "
        while time.monotonic() < deadline:
            self.sock.sendall(b"\r")
            if self.read_until(prompt, min(deadline, time.monotonic() + 5), quiet=True):
                self.buf = b""
                return
        self.read_until(prompt, deadline)

    def run(self, cmd, deadline):
        tag = f"{os.getpid()}{int(time.monotonic() * 1000) % 100000}"
        # Quiet terminal: no echo, no kernel messages, no pager or colours.
        line = (f"stty -echo 2>/dev/null; dmesg -n 1 2>/dev/null; export SYSTEMD_PAGER= SYSTEMD_COLORS=0; "
                f"echo B{tag}B; {{ {cmd} ; }} 2>&1; echo E{tag}E$?\r")
        self.buf = b""
        self.sock.sendall(line.encode())
        start = self.read_until(rf"B{tag}B\r?\n".encode(), deadline)
        end = self.read_until(rf"E{tag}E(\d+)".encode(), deadline)
        out = self.buf[start.end():end.start()].decode(errors="replace").replace("\r\n", "\n")
        return out, int(end.group(1))


def cmd_console(args, deadline):
    con = Console(args[0], deadline)
    con.login(deadline)
    out, status = con.run(args[1], deadline)
    sys.stdout.write(out)
    sys.exit(status)


def cmd_wait_login(args, deadline):
    Console(args[0], deadline).login(deadline)


def cmd_send(args, deadline):
    lines = [l.strip() for l in open(args[1]) if l.strip()]
    total = int(args[2]) if len(args) > 2 else len(lines)
    pause = int(args[3]) / 1000 if len(args) > 3 else 0.0
    sock = connect_unix(args[0], deadline)
    for i in range(total):
        if time.monotonic() > deadline:
            fail(f"sent {i} of {total} codes before the timeout")
        sock.sendall(lines[i % len(lines)].encode() + b"\r\n")
        if pause:
            time.sleep(pause)
    sock.close()


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def cmd_watch(args, deadline):
    url, out = args[0].rstrip("/") + "/events", args[1]
    seen = set()
    with open(out, "a") as f:
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    for raw in r:
                        line = raw.decode(errors="replace").strip()
                        if not line.startswith("data:"):
                            continue
                        last = json.loads(line[5:]).get("last")
                        if last and last["scan_id"] not in seen:
                            seen.add(last["scan_id"])
                            f.write(json.dumps(last) + "\n")
                            f.flush()
            except (OSError, ValueError):
                time.sleep(0.3)


def cmd_wait_status(args, deadline):
    url, expr = args[0].rstrip("/") + "/api/status", args[1]
    last = None
    while time.monotonic() < deadline:
        try:
            s = get_json(url)
            last = s
            if eval(expr, {"s": s}):
                print(json.dumps(s))
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    fail(f"status never had {expr}; last: {json.dumps(last)}")


def cmd_http(args, deadline):
    method, url = args[0], args[1]
    body = args[2].encode() if len(args) > 2 else None
    req = urllib.request.Request(url, data=body, method=method)
    token = os.environ.get("ADMIN_TOKEN")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=max(1, deadline - time.monotonic())) as r:
            sys.stdout.write(r.read().decode())
    except urllib.error.HTTPError as e:
        sys.stdout.write(e.read().decode(errors="replace"))
        print(f"\nvmctl: {method} {url}: HTTP {e.code}", file=sys.stderr)
        sys.exit(1)


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def cmd_wallets(args, deadline):
    for _ in range(int(args[0])):
        key = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"],
                             check=True, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=key,
                             check=True, capture_output=True).stdout
        print(b58(der[-32:]))


def cmd_json(args, deadline):
    value = eval(args[0], {"json": json, "j": json.load(sys.stdin)})
    print(value if isinstance(value, str) else json.dumps(value))


def main():
    argv = sys.argv[1:]
    timeout = TIMEOUT
    if len(argv) >= 2 and argv[0] == "--timeout":
        timeout, argv = float(argv[1]), argv[2:]
    if not argv:
        print(__doc__)
        sys.exit(2)
    deadline = time.monotonic() + timeout
    commands = {
        "console": cmd_console, "wait-login": cmd_wait_login, "send": cmd_send,
        "watch": cmd_watch, "wait-status": cmd_wait_status, "http": cmd_http,
        "wallets": cmd_wallets, "json": cmd_json,
    }
    if argv[0] not in commands:
        fail(f"unknown command {argv[0]}")
    commands[argv[0]](argv[1:], deadline)


if __name__ == "__main__":
    main()
