#!/usr/bin/env python3
"""Verify mmm receipts with an independent Ed25519 implementation (Python's `cryptography`).

Usage: verify_receipts.py PUBLIC_KEY_FILE RECEIPTS.jsonl [SIGNALS.jsonl]

Checks, for every line: the DSSE envelope, the Ed25519 signature over the DSSE
pre-authentication encoding, and the chain (same chain id, seq + 1, prev_sha256 = SHA-256 of
the previous envelope's RFC 8785 bytes). With SIGNALS.jsonl, also checks that no payload value
of any signal appears in any receipt. Exits 1 naming the first bad line.
"""
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PAYLOAD_TYPE = "application/vnd.mmm.receipt+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def envelope_jcs(env: dict) -> bytes:
    # The envelope holds only ASCII strings, for which sorted keys and no white space
    # are exactly RFC 8785.
    return json.dumps(env, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_values(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from payload_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from payload_values(v)
    elif isinstance(value, str) and len(value) >= 6:
        yield value


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(open(sys.argv[1]).read().strip()))
    secrets = set()
    if len(sys.argv) == 4:
        for line in open(sys.argv[3]):
            if line.strip():
                s = json.loads(line)
                s = s.get("signal", s)
                secrets.update(payload_values(s.get("payload", {})))
    previous = None
    count = 0
    for number, line in enumerate(open(sys.argv[2]), start=1):
        if not line.strip():
            continue
        def fail(why: str) -> int:
            print(f"{sys.argv[2]}:{number}: {why}")
            return 1
        env = json.loads(line)
        if env.get("payloadType") != PAYLOAD_TYPE:
            return fail("wrong payloadType")
        body = base64.b64decode(env["payload"])
        try:
            sig = base64.b64decode(env["signatures"][0]["sig"])
            key.verify(sig, pae(PAYLOAD_TYPE, body))
        except (InvalidSignature, KeyError, IndexError):
            return fail("signature does not verify")
        receipt = json.loads(body)
        chain = receipt["chain"]
        if previous is not None:
            pid, pseq, phash = previous
            if chain["id"] != pid:
                return fail("chain id changed")
            if chain["seq"] != pseq + 1:
                return fail(f"seq {chain['seq']} does not follow {pseq}")
            if chain["prev_sha256"] != phash:
                return fail("prev_sha256 does not match the previous envelope")
        text = body.decode()
        for secret in secrets:
            if secret in text:
                return fail(f"payload content found in the receipt: {secret!r}")
        if "payload" in receipt:
            return fail("the receipt carries a payload")
        previous = (chain["id"], chain["seq"], hashlib.sha256(envelope_jcs(env)).hexdigest())
        count += 1
    print(f"{count} receipts verified with Python cryptography: signatures, chain without gaps, no payload content")
    return 0


if __name__ == "__main__":
    sys.exit(main())
