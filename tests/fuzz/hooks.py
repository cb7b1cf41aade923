"""Schemathesis hooks for scripts/fuzz.sh.

Each request comes from an address of its own (as in the end-to-end helpers), so the failed
authentications that the auth checks make on purpose never block the rest of the run.
"""

import itertools

import schemathesis

_addresses = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    n = next(_addresses)
    case.headers = {**(case.headers or {}), "cf-connecting-ip": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}
