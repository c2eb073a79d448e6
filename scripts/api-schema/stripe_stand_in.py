"""A stand-in for Stripe's API during the schema run (Stripe's servers are
out of reach here): creates payment intents and refunds the way Stripe
answers them, so card purchases go through the server's real Stripe client.

    python3 stripe_stand_in.py PORT
"""

import itertools
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ids = itertools.count(1)


class StandIn(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        n = next(ids)
        if self.path == "/v1/payment_intents":
            metadata = {k[9:-1]: v[0] for k, v in form.items() if k.startswith("metadata[")}
            self._answer(
                200,
                {
                    "id": f"pi_schema{n}",
                    "amount": int(form.get("amount", ["0"])[0]),
                    "currency": form.get("currency", ["usd"])[0],
                    "status": "requires_payment_method",
                    "client_secret": f"pi_schema{n}_secret_x",
                    "metadata": metadata,
                },
            )
        elif self.path == "/v1/refunds":
            self._answer(200, {"id": f"re_schema{n}", "amount": 0, "status": "succeeded"})
        elif self.path.startswith("/v1/payment_intents/") and self.path.endswith("/cancel"):
            intent = self.path.split("/")[3]
            self._answer(200, {"id": intent, "amount": 0, "currency": "usd", "status": "canceled"})
        else:
            self._answer(404, {"error": {"type": "invalid_request_error", "message": "no such route"}})

    def log_message(self, *_):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), StandIn).serve_forever()
