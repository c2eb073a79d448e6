#!/usr/bin/env python3
"""Read rate of `gate-agent decode` against zxing-cpp on a folder tree of QR
images, each `NAME.png` beside a `NAME.txt` holding the expected text.

Run by scripts/qr-photos.sh, which fetches the photos, builds the agent and
installs zxing-cpp; run it alone with --help.

Every image is decoded by its own `gate-agent decode IMAGE` process with a
timeout, so a panic, a crash or a hang costs that image only and is reported.
zxing-cpp runs in this process with its default reader options (which already
try harder: rotations, inverted codes, downscaling), restricted to QR codes,
with its text mode Plain (the payload's characters as they are, control
characters included, as `gate-agent decode` prints them; its default mode
shows them as <SOH> and such). Both get the image as 8-bit grayscale.

`gate-agent decode` prints one payload per line, so a payload with line breaks
comes back as several lines. The comparison is therefore made on lines for
both decoders alike: line endings (CR LF, CR, LF) made one, trailing line
breaks dropped, and an image counts as read when the expected text's lines
appear, in order and together, among the decoder's output lines. Any other
output is counted as a misread.
"""

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def lines(text: str) -> list:
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")


def expected_text(image: Path) -> str:
    return image.with_suffix(".txt").read_bytes().decode("utf-8", errors="replace")


def run_ours(agent: str, image: Path, timeout: float) -> dict:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [agent, "decode", str(image)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "codes": [], "secs": timeout}
    secs = time.monotonic() - started
    stderr = done.stderr.decode("utf-8", errors="replace")
    codes = done.stdout.decode("utf-8", errors="replace").splitlines()
    if done.returncode < 0:
        status = f"crash ({signal.Signals(-done.returncode).name})"
    elif "panicked" in stderr:
        status = "panic"
    elif done.returncode != 0:
        status = f"error (exit {done.returncode}): {stderr.strip()[:200]}"
    else:
        status = "ok"
    return {"status": status, "codes": codes, "secs": secs}


def run_zxing(image: Path) -> dict:
    import zxingcpp
    from PIL import Image

    started = time.monotonic()
    try:
        with Image.open(image) as im:
            gray = im.convert("L")
        results = zxingcpp.read_barcodes(
            gray, formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain
        )
        codes = [r.text for r in results]
        status = "ok"
    except Exception as e:  # a reader error is a result too, not the end of the run
        codes, status = [], f"error: {e}"
    return {"status": status, "codes": codes, "secs": time.monotonic() - started}


def matches(codes: list, expected: str) -> bool:
    got = [line for code in codes for line in lines(code)]
    want = lines(expected)
    return any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", required=True, help="gate-agent binary")
    p.add_argument("--photos", required=True, type=Path, help="folder holding the set's folders")
    p.add_argument("--folders", nargs="+", required=True, help="folders of --photos to run")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per image for ours")
    p.add_argument("--json", type=Path, help="write every image's outcome here")
    p.add_argument("--profile", default="?", help="cargo profile the agent was built with")
    args = p.parse_args()

    from importlib.metadata import version

    zxing_version = version("zxing-cpp")
    rows = []
    for folder in args.folders:
        images = sorted(
            f
            for f in (args.photos / folder).iterdir()
            if f.suffix.lower() in IMAGE_SUFFIXES and f.with_suffix(".txt").exists()
        )
        for image in images:
            want = expected_text(image)
            ours = run_ours(args.agent, image, args.timeout)
            theirs = run_zxing(image)
            row = {
                "folder": folder,
                "image": image.name,
                "expected": want,
                "ours": ours,
                "zxing": theirs,
                "ours_ok": ours["status"] == "ok" and matches(ours["codes"], want),
                "zxing_ok": theirs["status"] == "ok" and matches(theirs["codes"], want),
            }
            # A payload that is not the expected text: a misread, worse than none.
            row["ours_wrong"] = bool(ours["codes"]) and not row["ours_ok"]
            row["zxing_wrong"] = bool(theirs["codes"]) and not row["zxing_ok"]
            rows.append(row)
            mark = lambda ok: "read" if ok else "-"  # noqa: E731
            print(
                f"  {folder}/{image.name}: ours {mark(row['ours_ok'])}"
                f" ({ours['status']}, {ours['secs']:.2f} s), zxing-cpp {mark(row['zxing_ok'])}",
                file=sys.stderr,
            )

    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))

    def count(rs, key):
        return sum(1 for r in rs if r[key])

    print()
    print(
        f"zxing-cpp {zxing_version} (default reader options, QR only, text mode Plain);"
        f" gate-agent: {args.agent} ({args.profile} profile), {args.timeout:g} s timeout per image"
    )
    print()
    print("| folder | images | ours | zxing-cpp | only ours | only zxing-cpp | ours wrong | zxing-cpp wrong |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for folder in args.folders + ["all"]:
        rs = rows if folder == "all" else [r for r in rows if r["folder"] == folder]
        only_ours = sum(1 for r in rs if r["ours_ok"] and not r["zxing_ok"])
        only_zx = sum(1 for r in rs if r["zxing_ok"] and not r["ours_ok"])
        name = "**all**" if folder == "all" else folder
        print(
            f"| {name} | {len(rs)} | {count(rs, 'ours_ok')} | {count(rs, 'zxing_ok')}"
            f" | {only_ours} | {only_zx} | {count(rs, 'ours_wrong')} | {count(rs, 'zxing_wrong')} |"
        )

    failures = [r for r in rows if r["ours"]["status"] != "ok"]
    secs = sorted(r["ours"]["secs"] for r in rows if r["ours"]["status"] == "ok")
    print()
    if secs:
        print(
            f"ours, per image (process start, load and decode): median {secs[len(secs) // 2] * 1000:.0f} ms,"
            f" max {secs[-1] * 1000:.0f} ms"
        )
    print(f"ours: {len(failures)} panic(s)/timeout(s)/crash(es)/error(s)")
    for r in failures:
        print(f"  {r['folder']}/{r['image']}: {r['ours']['status']}")
    for label, key, other in (("only zxing-cpp", "zxing_ok", "ours_ok"), ("only ours", "ours_ok", "zxing_ok")):
        names = [f"{r['folder']}/{r['image']}" for r in rows if r[key] and not r[other]]
        print(f"read by {label}: {' '.join(names) if names else 'none'}")
    wrong = [f"{r['folder']}/{r['image']}" for r in rows if r["ours_wrong"]]
    print(f"misread by ours: {' '.join(wrong) if wrong else 'none'}")

    ours_total, zx_total = count(rows, "ours_ok"), count(rows, "zxing_ok")
    verdict = "met" if ours_total >= zx_total and not failures else "NOT met"
    print(f"\nread correctly: ours {ours_total}, zxing-cpp {zx_total} of {len(rows)}: goal {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
