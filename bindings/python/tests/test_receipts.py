"""Receipts: golden envelopes and live ones verified with Python's `cryptography`."""

import base64
import hashlib
import json
import threading
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import mmm_engine
from conftest import VECTORS, signal

TYPE = "application/vnd.mmm.receipt+json"


def pae(body: bytes) -> bytes:
    t = TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def independent_verify(envelope: dict, public_hex: str) -> dict:
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    body = base64.b64decode(envelope["payload"])
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae(body))
    return json.loads(body)


def envelope_hash(envelope: dict) -> str:
    return hashlib.sha256(json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_golden_envelopes_verify_in_both_implementations():
    golden = json.loads((VECTORS / "receipts" / "golden.json").read_text(encoding="utf-8"))
    public = golden["public_key_hex"]
    envelopes = [json.loads(r["envelope_json"]) for r in golden["receipts"]]
    previous = None
    for r, env in zip(golden["receipts"], envelopes):
        payload = independent_verify(env, public)
        assert mmm_engine.verify_receipt(r["envelope_json"], public) == payload
        assert {k: v for k, v in payload.items() if k != "chain"} == r["payload"] | {}
        if previous:
            assert payload["chain"]["prev_sha256"] == envelope_hash(previous)
        previous = env
    assert [p["chain"]["seq"] for p in mmm_engine.verify_chain(envelopes, bytes.fromhex(public))] == [1, 2, 3]


def test_a_tampered_receipt_is_refused_with_its_index():
    golden = json.loads((VECTORS / "receipts" / "golden.json").read_text(encoding="utf-8"))
    envelopes = [json.loads(r["envelope_json"]) for r in golden["receipts"]]
    body = json.loads(base64.b64decode(envelopes[1]["payload"]))
    body["tenant_id"] = "evil"
    envelopes[1]["payload"] = base64.b64encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode()).decode()
    with pytest.raises(mmm_engine.ReceiptError) as caught:
        mmm_engine.verify_chain(envelopes, golden["public_key_hex"])
    assert caught.value.index == 1
    assert caught.value.code == "RECEIPT_INVALID"
    with pytest.raises(InvalidSignature):
        independent_verify(envelopes[1], golden["public_key_hex"])
    with pytest.raises(mmm_engine.ReceiptError):
        mmm_engine.verify_receipt(envelopes[1], golden["public_key_hex"])


def test_envelopes_are_read_as_dsse_says():
    """URL-safe or standard base64 with or without padding, keyid optional, unknown fields
    ignored, any one valid signature among several (SPEC §7)."""
    golden = json.loads((VECTORS / "receipts" / "golden.json").read_text(encoding="utf-8"))
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(golden["seed_hex"]))
    public = golden["public_key_hex"]
    # Signed here, independently of the engine; its base64 holds `+` and `/`.
    payload = {"chain": {"id": "c", "prev_sha256": None, "seq": 1}, "receipt_id": "~~~???>>>"}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    standard = base64.b64encode(body).decode()
    assert "+" in standard and "/" in standard
    good = key.sign(pae(body))
    wrong = Ed25519PrivateKey.generate().sign(pae(body))
    envelope = {
        "payloadType": TYPE,
        "payload": base64.urlsafe_b64encode(body).decode().rstrip("="),
        "signatures": [
            {"keyid": "21fe31dfa154a261", "sig": base64.b64encode(wrong).decode()},
            {"sig": base64.urlsafe_b64encode(good).decode().rstrip("="), "cert": "unknown field"},
        ],
        "annotations": {"unknown": True},
    }
    assert mmm_engine.verify_receipt(envelope, public) == payload
    assert mmm_engine.verify_receipt(json.dumps(envelope), public) == payload
    assert mmm_engine.verify_chain([envelope], public) == [payload]
    # Only the first (wrong) signature left: refused.
    envelope["signatures"] = envelope["signatures"][:1]
    with pytest.raises(mmm_engine.ReceiptError, match="bad signature"):
        mmm_engine.verify_receipt(envelope, public)
    # Standard base64 with the padding removed reads too.
    envelope["payload"] = standard.rstrip("=")
    envelope["signatures"] = [{"sig": base64.b64encode(good).decode()}]
    assert mmm_engine.verify_receipt(envelope, public) == payload


class Sink:
    def __init__(self, up=True):
        self.up = up
        self.received = []
        self.lock = threading.Lock()

    def emit(self, envelope):
        if not self.up:
            raise ConnectionError("ERIS is down")
        with self.lock:
            self.received.append(envelope)


def test_decisions_are_signed_chained_and_free_of_payload(three):
    seed, public = mmm_engine.generate_key()
    sink = Sink()
    engine = mmm_engine.Engine.from_yaml(three, signing_key=bytes.fromhex(seed), receipts=sink)
    assert engine.receipt_public_key == public
    for i in range(5):
        d = engine.decide(signal(payload={"lines": 420 + i, "secret_note": "hunter2-value"}), now=f"2026-11-22T10:0{i}:00Z")
        assert d["receipt"]["status"] == "emitted"
    previous = None
    for env in sink.received:
        payload = independent_verify(env, public)
        assert "hunter2-value" not in json.dumps(payload)
        if previous is not None:
            assert payload["chain"]["seq"] == previous[0] + 1
            assert payload["chain"]["prev_sha256"] == previous[1]
        previous = (payload["chain"]["seq"], envelope_hash(env))
    mmm_engine.verify_chain(sink.received, public)


def test_a_raising_receipts_port_queues_without_waiting_and_the_worker_delivers(three):
    seed, public = mmm_engine.generate_key()
    sink = Sink(up=False)
    engine = mmm_engine.Engine.from_yaml(three, signing_key=seed, receipts=sink)
    started = time.perf_counter()
    d = engine.decide(signal(payload={"lines": 500}), now="2026-11-22T10:00:00Z")
    elapsed = time.perf_counter() - started
    # The port stays down until after the decision: a decision that waited for it would
    # hang, which the bound (far above the milliseconds a decision takes) catches.
    assert elapsed < 5, elapsed
    assert d["receipt"]["status"] == "queued"
    assert "receipts_queued" in d["degraded"]
    assert len(d["actions"]) == 3
    sink.up = True
    deadline = time.time() + 5
    # A receipt the worker is handing to the port still counts as waiting, so an empty
    # outbox means the port has it.
    while engine.outbox_len and time.time() < deadline:
        time.sleep(0.05)
    assert engine.outbox_len == 0
    ids = [independent_verify(e, public)["receipt_id"] for e in sink.received]
    assert ids == [d["receipt"]["receipt_id"]]


def test_keys_as_bytes_or_hex_and_bad_keys():
    seed, public = mmm_engine.generate_key()
    mmm_engine.Engine.from_yaml("", signing_key=bytes.fromhex(seed))
    mmm_engine.Engine.from_yaml("", signing_key=seed)
    with pytest.raises(mmm_engine.ReceiptError):
        mmm_engine.Engine.from_yaml("", signing_key=b"short")
    with pytest.raises(TypeError):
        mmm_engine.Engine.from_yaml("", signing_key=42)
