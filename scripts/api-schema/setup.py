"""Prepares a running sync server for schema-driven testing.

Logs a fresh wallet in over the nonce login (signing with its own ed25519
key, as a browser wallet would), makes it an organizer with the admin token,
creates an event on the embedded chain and mints it a ticket, then prints the
credentials and ids the schemathesis hooks use, as JSON on stdout.
"""

import json
import sys
import time
import urllib.error
import urllib.request

import base58
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def call(base, method, path, body=None, token=None, expect=(200, 201, 202), with_headers=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, text, headers = resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as err:
        status, text, headers = err.code, err.read().decode(), err.headers
    if status not in expect:
        sys.exit(f"setup: {method} {path} answered {status}: {text}")
    body = json.loads(text) if text else None
    return (body, headers) if with_headers else body


def login(base, key=None):
    key = key or Ed25519PrivateKey.generate()
    wallet = base58.b58encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    nonce = call(base, "POST", "/api/auth/nonce", {"wallet": wallet})
    signature = base58.b58encode(key.sign(nonce["message"].encode())).decode()
    session = call(base, "POST", "/api/auth/verify", {"wallet": wallet, "signature": signature})
    return wallet, session["token"]


def main():
    base, admin = sys.argv[1], sys.argv[2]
    holder, holder_token = login(base)
    organizer, organizer_token = organizer_login(base, admin)
    now = int(time.time())
    event = call(
        base,
        "POST",
        "/api/events",
        {
            "name": "Schema run",
            "venue": "Hall",
            "starts_at": now + 86400,
            "ends_at": now + 2 * 86400,
            "capacity": 100,
            "tiers": [{"name": "General", "price_lamports": 1000, "supply": 100, "card_price": 500}],
        },
        token=organizer_token,
    )
    ticket, headers = call(
        base,
        "POST",
        "/api/tickets/mint",
        {"event_id": event["event_id"], "wallet": holder},
        token=organizer_token,
        expect=(201,),
        with_headers=True,
    )
    print(
        json.dumps(
            {
                "admin": admin,
                "organizer": organizer,
                "organizer_token": organizer_token,
                "holder": holder,
                "holder_token": holder_token,
                "event": event["event_id"],
                "ticket": ticket["ticket_id"],
                "mint_request": headers["Mint-Request-Id"],
            }
        )
    )


def organizer_login(base, admin):
    """A wallet given the organizer role by the admin, then logged in."""
    key = Ed25519PrivateKey.generate()
    wallet = base58.b58encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    call(base, "PUT", f"/api/admin/wallets/{wallet}/role", {"role": "organizer"}, token=admin)
    return login(base, key)


if __name__ == "__main__":
    main()
