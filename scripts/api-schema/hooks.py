"""Schemathesis hooks: half the generated requests name the event, ticket,
wallet and mint request that setup.py created, so the handlers behind the
404 get exercised too."""

import os
import random

import schemathesis

EVENT = int(os.environ["SCHEMA_EVENT"])
WALLET = os.environ["SCHEMA_HOLDER"]
TICKET = int(os.environ["SCHEMA_TICKET"])
MINT_REQUEST = os.environ["SCHEMA_MINT_REQUEST"]


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters and random.random() < 0.5:
        if "event" in path_parameters:
            path_parameters["event"] = EVENT
        if "wallet" in path_parameters:
            path_parameters["wallet"] = WALLET
        if "ticket" in path_parameters:
            path_parameters["ticket"] = TICKET
        if "request" in path_parameters:
            path_parameters["request"] = MINT_REQUEST
    return path_parameters
