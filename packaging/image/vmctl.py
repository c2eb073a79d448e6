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
  wallets N [KEYDIR]       N fresh Solana wallet addresses (ed25519, openssl);
                           with KEYDIR, each key kept there as ADDRESS.pem
  holder-qr API EVENT TICKET KEY OUT
                           log in at the sync server API as the wallet of KEY
                           (a signed nonce) and save the ticket's QR code PNG,
                           as its holder's phone gets it, to OUT
  frames W H OUT PNG...    camera frames of W x H pixels, 8-bit grey (V4L2
                           GREY), to OUT: a blank one, then each PNG centred
                           on it as a phone screen held up to the camera
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
import zlib

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
    keydir = args[1] if len(args) > 1 else None
    for _ in range(int(args[0])):
        key = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"],
                             check=True, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=key,
                             check=True, capture_output=True).stdout
        address = b58(der[-32:])
        if keydir:
            with open(os.path.join(keydir, address + ".pem"), "wb") as f:
                f.write(key)
        print(address)


def request(method, url, body=None, token=None, deadline=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("content-type", "application/json")
    timeout = max(1, deadline - time.monotonic()) if deadline else TIMEOUT
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        fail(f"{method} {url}: HTTP {e.code}: {e.read().decode(errors='replace')}")


def cmd_holder_qr(args, deadline):
    api, event, ticket, keyfile, out = args[0].rstrip("/"), args[1], args[2], args[3], args[4]
    wallet = os.path.basename(keyfile)[:-len(".pem")]
    nonce = json.loads(request("POST", f"{api}/api/auth/nonce", {"wallet": wallet}, deadline=deadline))
    # Ed25519 signs the whole message at once: openssl 3.0 reads it from a
    # file (it needs the size), not from a pipe.
    message = out + ".message"
    with open(message, "wb") as f:
        f.write(nonce["message"].encode())
    signature = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", keyfile,
                                "-in", message], check=True, capture_output=True).stdout
    os.remove(message)
    session = json.loads(request("POST", f"{api}/api/auth/verify",
                                 {"wallet": wallet, "signature": b58(signature)}, deadline=deadline))
    png = request("GET", f"{api}/api/tickets/{event}/{ticket}/qr?format=png",
                  token=session["token"], deadline=deadline)
    with open(out, "wb") as f:
        f.write(png)


def read_png(path):
    """The pixels of an 8-bit, non-interlaced PNG as rows of grey values."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path}: not a PNG")
    pos, idat, header, palette = 8, b"", None, b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, interlace = header[8], header[9], header[12]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None or interlace or depth > 8 or (depth < 8 and colour not in (0, 3)):
        fail(f"{path}: only grey, palette or 8-bit RGB(A) PNGs without interlacing are read")
    # Grey of the palette's colours, or of the grey levels.
    levels = [(palette[3 * i] + palette[3 * i + 1] + palette[3 * i + 2]) // 3
              for i in range(len(palette) // 3)] if colour == 3 else \
        [v * 255 // ((1 << depth) - 1) for v in range(1 << depth)]
    raw, bpp = zlib.decompress(idat), channels
    if depth < 8:
        # 1, 2 or 4 bits a pixel: unfiltered a byte at a time, unpacked after.
        stride, bpp = (width * depth + 7) // 8, 1
    else:
        stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if colour in (0, 3):
            bits = "".join(f"{b:08b}" for b in line)
            rows.append(bytes(levels[int(bits[x * depth:(x + 1) * depth], 2)]
                              for x in range(width)))
        else:
            rows.append(bytes(line[i] if channels < 3 else (line[i] + line[i + 1] + line[i + 2]) // 3
                              for i in range(0, stride, channels)))
        prev = line
    return rows


def cmd_frames(args, deadline):
    width, height, out = int(args[0]), int(args[1]), args[2]
    # A phone screen held up to the camera: white is not quite white, black
    # not quite black, and the code fills about two thirds of the height.
    light, dark = 235, 20
    blank = bytes([light]) * (width * height)
    with open(out, "wb") as f:
        f.write(blank)
        for path in args[3:]:
            rows = read_png(path)
            side = int(height * 0.66)
            scale = side / max(len(rows), len(rows[0]))
            w, h = int(len(rows[0]) * scale), int(len(rows) * scale)
            x0, y0 = (width - w) // 2, (height - h) // 2
            frame = bytearray(blank)
            for y in range(h):
                src = rows[int(y / scale)]
                line = bytes(dark + (light - dark) * src[int(x / scale)] // 255 for x in range(w))
                frame[(y0 + y) * width + x0:(y0 + y) * width + x0 + w] = line
            f.write(frame)


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
        "wallets": cmd_wallets, "json": cmd_json, "holder-qr": cmd_holder_qr,
        "frames": cmd_frames,
    }
    if argv[0] not in commands:
        fail(f"unknown command {argv[0]}")
    commands[argv[0]](argv[1:], deadline)


if __name__ == "__main__":
    main()
