//! Tests of signing, envelopes and chain verification.

use super::*;

#[test]
fn rfc_8032_test_vectors() {
    // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (seed, public, message, signature) in cases {
        let key = signing_key_from_bytes(seed.as_bytes()).unwrap();
        assert_eq!(hex::encode(key.verifying_key().as_bytes()), public);
        let msg = hex::decode(message).unwrap();
        let sig = key.sign(&msg);
        assert_eq!(hex::encode(sig.to_bytes()), signature);
        let vk = public_key_from_bytes(public.as_bytes()).unwrap();
        assert!(vk.verify_strict(&msg, &sig).is_ok());
    }
}

#[test]
fn dsse_pae_vector() {
    // The DSSE specification's example.
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
}

#[test]
fn jcs_sorts_keys_and_formats_numbers() {
    let v = json!({"b": 1, "a": [1.0, 1e21, "é"], "c": {"z": null, "y": true}});
    assert_eq!(
        String::from_utf8(canonical(&v).unwrap()).unwrap(),
        r#"{"a":[1,1e+21,"é"],"b":1,"c":{"y":true,"z":null}}"#
    );
}

fn signer() -> (ReceiptSigner, VerifyingKey) {
    let key = signing_key_from_bytes(&[7u8; 32]).unwrap();
    let vk = key.verifying_key();
    (ReceiptSigner::with_chain(key, "chain-1".into()), vk)
}

#[test]
fn a_chain_verifies_and_each_fault_is_named() {
    let (s, vk) = signer();
    let envs: Vec<Envelope> = (0..4)
        .map(|i| s.sign(json!({"receipt_id": format!("r{i}")})).unwrap())
        .collect();
    let payloads = verify_chain(&envs, &vk).unwrap();
    assert_eq!(
        payloads[0]["chain"],
        json!({"id": "chain-1", "seq": 1, "prev_sha256": null})
    );
    assert_eq!(payloads[3]["chain"]["seq"], 4);
    // A later slice verifies on its own.
    assert!(verify_chain(&envs[2..], &vk).is_ok());

    let mut missing = envs.clone();
    missing.remove(1);
    let f = verify_chain(&missing, &vk).unwrap_err();
    assert_eq!(f.index, 1);
    assert!(
        f.error.to_string().contains("missing or out of order"),
        "{}",
        f.error
    );

    let mut reordered = envs.clone();
    reordered.swap(1, 2);
    assert_eq!(verify_chain(&reordered, &vk).unwrap_err().index, 1);

    let mut tampered = envs.clone();
    let mut payload: Value =
        serde_json::from_slice(&BASE64.decode(&tampered[2].payload).unwrap()).unwrap();
    payload["receipt_id"] = json!("forged");
    tampered[2].payload = BASE64.encode(canonical(&payload).unwrap());
    let f = verify_chain(&tampered, &vk).unwrap_err();
    assert_eq!(f.index, 2);
    assert!(matches!(f.error, ReceiptError::BadSignature(_)));

    let other = signing_key_from_bytes(&[9u8; 32]).unwrap().verifying_key();
    assert!(matches!(
        verify_chain(&envs, &other).unwrap_err().error,
        ReceiptError::BadSignature(_)
    ));
}

#[test]
fn a_re_signed_but_altered_receipt_breaks_the_chain() {
    // Someone with the key re-signs an altered receipt: its own signature verifies,
    // but the next receipt's prev_sha256 no longer matches.
    let (s, vk) = signer();
    let envs: Vec<Envelope> = (0..3)
        .map(|i| s.sign(json!({"receipt_id": format!("r{i}")})).unwrap())
        .collect();
    let (s2, _) = signer();
    let mut forged = envs.clone();
    forged[1] = {
        let mut p: Value =
            serde_json::from_slice(&BASE64.decode(&envs[1].payload).unwrap()).unwrap();
        p["receipt_id"] = json!("forged");
        let bytes = canonical(&p).unwrap();
        let sig = s2.key.sign(&pae(PAYLOAD_TYPE, &bytes));
        Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: BASE64.encode(&bytes),
            signatures: vec![EnvelopeSignature {
                keyid: Some(s2.key_id.clone()),
                sig: BASE64.encode(sig.to_bytes()),
            }],
        }
    };
    let f = verify_chain(&forged, &vk).unwrap_err();
    assert_eq!(f.index, 2);
    assert!(matches!(f.error, ReceiptError::Chain(_)));
}

#[test]
fn non_canonical_payloads_are_refused() {
    let (s, vk) = signer();
    let bytes = br#"{"b":1, "a":2}"#;
    let sig = s.key.sign(&pae(PAYLOAD_TYPE, bytes));
    let env = Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: BASE64.encode(bytes),
        signatures: vec![EnvelopeSignature {
            keyid: Some("k".into()),
            sig: BASE64.encode(sig.to_bytes()),
        }],
    };
    assert_eq!(verify_receipt(&env, &vk), Err(ReceiptError::NotCanonical));
}

/// A signed envelope whose payload's standard base64 holds `+` and `/`, as JSON.
fn signed_json() -> (Value, VerifyingKey) {
    let (s, vk) = signer();
    let env = s.sign(json!({"receipt_id": "~~~???>>>"})).unwrap();
    assert!(env.payload.contains('+') && env.payload.contains('/'));
    (serde_json::to_value(env).unwrap(), vk)
}

fn read(value: &Value) -> Envelope {
    serde_json::from_value(value.clone()).unwrap()
}

fn url_safe(text: &str, pad: bool) -> String {
    let t = text.replace('+', "-").replace('/', "_");
    if pad {
        t
    } else {
        t.trim_end_matches('=').to_owned()
    }
}

#[test]
fn receipts_are_written_in_standard_base64_with_a_keyid() {
    let (env, vk) = signed_json();
    let sig = &env["signatures"][0];
    assert_eq!(sig["keyid"], json!(key_id(&vk)));
    assert!(BASE64.decode(env["payload"].as_str().unwrap()).is_ok());
    assert!(BASE64.decode(sig["sig"].as_str().unwrap()).is_ok());
    assert_eq!(
        env.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["payloadType", "payload", "signatures"]
    );
}

#[test]
fn a_url_safe_payload_and_signature_verify_with_or_without_padding() {
    let (env, vk) = signed_json();
    for pad in [true, false] {
        let mut e = env.clone();
        e["payload"] = json!(url_safe(env["payload"].as_str().unwrap(), pad));
        e["signatures"][0]["sig"] =
            json!(url_safe(env["signatures"][0]["sig"].as_str().unwrap(), pad));
        assert!(e["payload"].as_str().unwrap().contains('-'));
        let payload = verify_receipt(&read(&e), &vk).unwrap();
        assert_eq!(payload["receipt_id"], "~~~???>>>");
    }
    // Standard alphabet without padding.
    let mut e = env.clone();
    e["signatures"][0]["sig"] = json!(env["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .trim_end_matches('='));
    assert!(verify_receipt(&read(&e), &vk).is_ok());
    // One value mixing both alphabets is neither.
    let mut e = env.clone();
    e["payload"] = json!(env["payload"].as_str().unwrap().replacen('+', "-", 1));
    assert!(e["payload"].as_str().unwrap().contains('/'));
    assert_eq!(
        verify_receipt(&read(&e), &vk),
        Err(ReceiptError::Malformed("payload is not base64".into()))
    );
}

#[test]
fn keyid_is_optional_and_unknown_fields_are_ignored() {
    let (env, vk) = signed_json();
    let mut e = env.clone();
    e["signatures"][0].as_object_mut().unwrap().remove("keyid");
    e["signatures"][0]["cert"] = json!("-----BEGIN CERTIFICATE-----");
    e["annotation"] = json!({"by": "archiver"});
    let parsed: Envelope = serde_json::from_str(&e.to_string()).unwrap();
    assert_eq!(parsed.signatures[0].keyid, None);
    assert!(verify_receipt(&parsed, &vk).is_ok());
    // What was not read is not written back.
    assert_eq!(
        serde_json::to_value(&parsed).unwrap()["signatures"][0],
        json!({"sig": env["signatures"][0]["sig"]})
    );
}

#[test]
fn any_one_valid_signature_among_several_suffices() {
    let (env, vk) = signed_json();
    let good = env["signatures"][0].clone();
    let other = signing_key_from_bytes(&[9u8; 32]).unwrap();
    let payload = BASE64.decode(env["payload"].as_str().unwrap()).unwrap();
    let wrong = other.sign(&pae(PAYLOAD_TYPE, &payload));
    let mut e = env.clone();
    // The first one claims our key id but was made with another key; the second is
    // not even base64; only the third verifies.
    e["signatures"] = json!([
        {"keyid": key_id(&vk), "sig": BASE64.encode(wrong.to_bytes())},
        {"sig": "%%%"},
        good
    ]);
    assert!(verify_receipt(&read(&e), &vk).is_ok());
    e["signatures"] = json!([e["signatures"][0], e["signatures"][1]]);
    assert!(matches!(
        verify_receipt(&read(&e), &vk),
        Err(ReceiptError::BadSignature(_))
    ));
}

#[test]
fn a_chain_still_verifies_when_the_envelopes_carry_unknown_fields() {
    let (s, vk) = signer();
    let envs: Vec<Envelope> = (0..3)
        .map(|i| {
            let mut v = serde_json::to_value(s.sign(json!({"receipt_id": i})).unwrap()).unwrap();
            v["x-archived"] = json!(true);
            read(&v)
        })
        .collect();
    assert_eq!(verify_chain(&envs, &vk).unwrap().len(), 3);
}

/// Signs `payload` as it is (chain link included) with `s`'s key.
fn sign_raw(s: &ReceiptSigner, payload: &Value) -> Envelope {
    let bytes = canonical(payload).unwrap();
    Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: BASE64.encode(&bytes),
        signatures: vec![EnvelopeSignature {
            keyid: None,
            sig: BASE64.encode(s.key.sign(&pae(PAYLOAD_TYPE, &bytes)).to_bytes()),
        }],
    }
}

#[test]
fn interleaved_chains_verify_each_on_its_own() {
    let key = signing_key_from_bytes(&[7u8; 32]).unwrap();
    let vk = key.verifying_key();
    let a = ReceiptSigner::with_chain(key.clone(), "a".into());
    let b = ReceiptSigner::with_chain(key, "b".into());
    let mut envs = Vec::new();
    for i in 0..3 {
        envs.push(a.sign(json!({"n": i})).unwrap());
        envs.push(b.sign(json!({"n": i})).unwrap());
    }
    let mut v = ChainVerifier::new(&vk).from_start(true);
    for e in &envs {
        v.verify(e).unwrap();
    }
    let tips: Vec<(&str, u64, u64, u64)> = v
        .chains()
        .map(|t| (t.id.as_str(), t.first_seq, t.last_seq, t.receipts))
        .collect();
    assert_eq!(tips, [("a", 1, 3, 3), ("b", 1, 3, 3)]);
    assert_eq!(v.receipts(), 6);
    // A receipt of `b` removed is still caught although `a` goes on between.
    let mut cut = envs.clone();
    cut.remove(3);
    assert_eq!(verify_chain(&cut, &vk).unwrap_err().index, 4);
}

#[test]
fn from_start_catches_a_cut_head_of_any_chain() {
    let key = signing_key_from_bytes(&[7u8; 32]).unwrap();
    let vk = key.verifying_key();
    let a = ReceiptSigner::with_chain(key.clone(), "a".into());
    let b = ReceiptSigner::with_chain(key, "b".into());
    let a1 = a.sign(json!({})).unwrap();
    let _b1 = b.sign(json!({})).unwrap();
    let b2 = b.sign(json!({})).unwrap();
    let mut v = ChainVerifier::new(&vk);
    assert!(
        v.verify(&a1).is_ok() && v.verify(&b2).is_ok(),
        "a tail on its own"
    );
    let mut v = ChainVerifier::new(&vk).from_start(true);
    v.verify(&a1).unwrap();
    assert_eq!(
        v.verify(&b2),
        Err(ReceiptError::Chain(
            "chain `b` begins at seq 2, not 1: its first receipts are missing".into()
        ))
    );
    assert_eq!(v.receipts(), 1, "a refused receipt is not counted");
}

#[test]
fn the_number_of_chains_kept_is_bounded() {
    let (s, vk) = signer();
    let mut v = ChainVerifier::new(&vk).max_chains(2);
    for id in ["x", "y"] {
        v.verify(&sign_raw(
            &s,
            &json!({"chain": {"id": id, "seq": 1, "prev_sha256": null}}),
        ))
        .unwrap();
    }
    let third = sign_raw(
        &s,
        &json!({"chain": {"id": "z", "seq": 1, "prev_sha256": null}}),
    );
    assert_eq!(
        v.verify(&third),
        Err(ReceiptError::Chain(
            "more than 2 chains; refusing to track chain `z`".into()
        ))
    );
}

#[test]
fn chain_links_that_no_signer_writes_are_refused() {
    let (s, vk) = signer();
    let cases = [
        (
            json!({"id": "c", "seq": 2, "prev_sha256": null}),
            "chain broken: seq 2 has no prev_sha256",
        ),
        (
            json!({"id": "c", "seq": 0, "prev_sha256": null}),
            "malformed envelope: no chain.seq of 1 or more",
        ),
        (
            json!({"id": "c", "seq": 3, "prev_sha256": 5}),
            "malformed envelope: chain.prev_sha256 is neither a hash nor null",
        ),
    ];
    for (chain, message) in cases {
        let env = sign_raw(&s, &json!({"chain": chain}));
        let err = ChainVerifier::new(&vk).verify(&env).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn pae_is_dsse_s_encoding() {
    // DSSE protocol.md's example.
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    // A payload type too long for the signer's room is still encoded.
    let long = "t".repeat(200);
    assert_eq!(
        pae(&long, b"x"),
        format!("DSSEv1 200 {long} 1 x").into_bytes()
    );
}

#[test]
fn receipts_signed_in_place_verify_and_chain_across_header_lengths() {
    // Payload lengths around the points where the PAE header's length field gains a
    // digit, so the header's place before the payload moves.
    let key = signing_key_from_bytes(&[9; 32]).unwrap();
    let signer = ReceiptSigner::with_chain(key.clone(), "c-9".into());
    let public = key.verifying_key();
    let mut verifier = ChainVerifier::new(&public).from_start(true);
    for n in [
        0_usize, 1, 10, 50, 98, 99, 100, 101, 900, 1000, 9_000, 10_000, 100_000,
    ] {
        let before = format!("\"a\":\"{}\"", "x".repeat(n));
        let envelope = signer.sign_members(before.as_bytes(), b"\"z\":1");
        let bytes = decode_base64(&envelope.payload).unwrap();
        // The signature is that of the PAE built on its own.
        let expected = key.sign(&pae(PAYLOAD_TYPE, &bytes));
        assert_eq!(
            decode_base64(&envelope.signatures[0].sig).unwrap(),
            expected.to_bytes()
        );
        // The hash the signer chained is that of the envelope's canonical bytes.
        let chained = signer.state.lock().prev_sha256.clone();
        assert_eq!(chained, Some(envelope_sha256(&envelope)));
        assert_eq!(chained, Some(sha256_hex(&canonical(&envelope).unwrap())));
        verifier.verify(&envelope).unwrap();
    }
}

#[test]
fn the_scratch_buffer_serves_nested_calls() {
    let outer = with_scratch(|a| {
        a.extend_from_slice(b"outer");
        let inner = with_scratch(|b| {
            assert!(b.is_empty(), "a nested call gets its own buffer");
            b.extend_from_slice(b"inner");
            b.clone()
        });
        assert_eq!(a.as_slice(), b"outer");
        inner
    });
    assert_eq!(outer, b"inner");
    with_scratch(|a| assert!(a.is_empty(), "the kept buffer comes back empty"));
}

fn external_rfc_8032() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/external/ed25519/rfc8032_7_1.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 5);
    cases
}

#[test]
fn the_signer_reproduces_rfc_8032_with_aws_lc_and_with_dalek() {
    let hex_of = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    for case in external_rfc_8032() {
        let key = signing_key_from_bytes(&hex_of(&case["seed"])).unwrap();
        let mut signer = ReceiptSigner::with_chain(key, "chain".into());
        assert!(signer.fast.is_some(), "AWS-LC takes every seed");
        let msg = hex_of(&case["msg"]);
        let expected = hex_of(&case["sig"]);
        assert_eq!(
            signer.signature(&msg).to_vec(),
            expected,
            "{}",
            case["name"]
        );
        signer.fast = None;
        assert_eq!(
            signer.signature(&msg).to_vec(),
            expected,
            "{}",
            case["name"]
        );
    }
}

#[test]
fn aws_lc_and_dalek_sign_alike_for_any_key_and_length() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8032);
    for len in (0..300).chain([1_023, 3_300, 4_096, 65_537]) {
        let seed: [u8; 32] = rng.random();
        let msg: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let key = SigningKey::from_bytes(&seed);
        let dalek = key.sign(&msg).to_bytes();
        let signer = ReceiptSigner::with_chain(key, "chain".into());
        assert!(signer.fast.is_some());
        assert_eq!(signer.signature(&msg), dalek, "length {len}");
    }
}
