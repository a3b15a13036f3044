//! Receipts (SPEC §7): every decision is recorded as a JSON payload, canonicalised with
//! RFC 8785 (JCS), wrapped in a DSSE envelope, signed with Ed25519 and chained to the
//! previous receipt of the same engine instance by its SHA-256.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The DSSE payload type of receipts.
pub const PAYLOAD_TYPE: &str = "application/vnd.mmm.receipt+json";

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Identifies the key: the first 16 hex digits of the SHA-256 of the public key.
    pub keyid: String,
    /// Base64 of the Ed25519 signature over the PAE.
    pub sig: String,
}

/// A DSSE envelope holding one receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the JCS bytes of the receipt payload.
    pub payload: String,
    /// The signatures (one).
    pub signatures: Vec<EnvelopeSignature>,
}

/// Why a receipt or a chain of receipts does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The envelope is not a DSSE envelope of a receipt.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// No signature verifies with the public key.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The payload is not in canonical (JCS) form, so it was not produced by a signer
    /// of receipts.
    #[error("payload is not canonical JSON")]
    NotCanonical,
    /// A key is malformed.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The chain is broken at this point.
    #[error("chain broken: {0}")]
    Chain(String),
}

impl ReceiptError {
    /// The serialisable form of this error.
    pub fn info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo {
            code: crate::codes::RECEIPT_INVALID.to_owned(),
            message: self.to_string(),
            rule: None,
            field: None,
            file: None,
            line: None,
            column: None,
            playbook: None,
        }
    }
}

/// DSSE's pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// RFC 8785 canonical JSON bytes.
///
/// # Errors
/// [`ReceiptError::Malformed`] when the value cannot be canonicalised.
pub fn canonical(value: &impl Serialize) -> Result<Vec<u8>, ReceiptError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| ReceiptError::Malformed(e.to_string()))
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn decode_key<const N: usize>(text: &str, what: &str) -> Result<[u8; N], ReceiptError> {
    let bytes = hex::decode(text.trim())
        .map_err(|_| ReceiptError::InvalidKey(format!("{what} is not hex")))?;
    bytes.try_into().map_err(|_| {
        ReceiptError::InvalidKey(format!("{what} must be {N} bytes ({} hex digits)", N * 2))
    })
}

/// Parses a public key: 32 bytes, or 64 hex digits.
///
/// # Errors
/// [`ReceiptError::InvalidKey`].
pub fn public_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey, ReceiptError> {
    let arr: [u8; 32] = match bytes.len() {
        32 => bytes
            .try_into()
            .map_err(|_| ReceiptError::InvalidKey("public key must be 32 bytes".into()))?,
        _ => decode_key::<32>(std::str::from_utf8(bytes).unwrap_or(""), "public key")?,
    };
    VerifyingKey::from_bytes(&arr).map_err(|e| ReceiptError::InvalidKey(format!("public key: {e}")))
}

/// Parses a signing key seed: 32 bytes, or 64 hex digits.
///
/// # Errors
/// [`ReceiptError::InvalidKey`].
pub fn signing_key_from_bytes(bytes: &[u8]) -> Result<SigningKey, ReceiptError> {
    let arr: [u8; 32] = match bytes.len() {
        32 => bytes
            .try_into()
            .map_err(|_| ReceiptError::InvalidKey("signing key must be 32 bytes".into()))?,
        _ => decode_key::<32>(std::str::from_utf8(bytes).unwrap_or(""), "signing key")?,
    };
    Ok(SigningKey::from_bytes(&arr))
}

/// The key id of a public key.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes()).chars().take(16).collect()
}

/// A fresh random signing key: (hex seed, hex public key).
pub fn generate_key() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut seed);
    let key = SigningKey::from_bytes(&seed);
    (
        hex::encode(seed),
        hex::encode(key.verifying_key().as_bytes()),
    )
}

/// Signs receipts and keeps this engine instance's hash chain.
pub struct ReceiptSigner {
    key: SigningKey,
    key_id: String,
    chain_id: String,
    state: Mutex<ChainState>,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("key_id", &self.key_id)
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

struct ChainState {
    seq: u64,
    prev_sha256: Option<String>,
}

impl ReceiptSigner {
    /// A signer with a new chain (a UUIDv7 chain id, starting at seq 1).
    pub fn new(key: SigningKey) -> ReceiptSigner {
        ReceiptSigner::with_chain(key, crate::ids::new_id())
    }

    /// A signer continuing (or starting) the chain `chain_id`.
    pub fn with_chain(key: SigningKey, chain_id: String) -> ReceiptSigner {
        ReceiptSigner {
            key_id: key_id(&key.verifying_key()),
            key,
            chain_id,
            state: Mutex::new(ChainState {
                seq: 0,
                prev_sha256: None,
            }),
        }
    }

    /// A signer continuing an existing chain after the envelope `last` (verified with this
    /// key), so that receipts written by several runs form one chain.
    ///
    /// # Errors
    /// [`ReceiptError`] when `last` does not verify or carries no chain link.
    pub fn resume(key: SigningKey, last: &Envelope) -> Result<ReceiptSigner, ReceiptError> {
        let payload = verify_receipt(last, &key.verifying_key())?;
        let chain = payload.get("chain").unwrap_or(&Value::Null);
        let id = chain
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ReceiptError::Malformed("no chain.id".into()))?;
        let seq = chain
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| ReceiptError::Malformed("no chain.seq".into()))?;
        let signer = ReceiptSigner::with_chain(key, id.to_owned());
        {
            let mut state = signer.state.lock();
            state.seq = seq;
            state.prev_sha256 = Some(sha256_hex(&canonical(last)?));
        }
        Ok(signer)
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Adds the chain link to `payload` (an object without `chain`), signs it and
    /// returns the envelope. Links are assigned in signing order.
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`] when the payload cannot be canonicalised.
    pub fn sign(&self, mut payload: Value) -> Result<Envelope, ReceiptError> {
        let mut state = self.state.lock();
        let seq = state.seq + 1;
        if let Some(obj) = payload.as_object_mut() {
            obj.insert(
                "chain".into(),
                json!({"id": self.chain_id, "seq": seq, "prev_sha256": state.prev_sha256}),
            );
        }
        let bytes = canonical(&payload)?;
        let signature = self.key.sign(&pae(PAYLOAD_TYPE, &bytes));
        let envelope = Envelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: BASE64.encode(&bytes),
            signatures: vec![EnvelopeSignature {
                keyid: self.key_id.clone(),
                sig: BASE64.encode(signature.to_bytes()),
            }],
        };
        state.prev_sha256 = Some(sha256_hex(&canonical(&envelope)?));
        state.seq = seq;
        Ok(envelope)
    }
}

/// Verifies one envelope with strict Ed25519 verification and returns its payload.
///
/// # Errors
/// [`ReceiptError`] saying what is wrong.
///
/// ```
/// use mmm_engine::receipt::{generate_key, signing_key_from_bytes, public_key_from_bytes, verify_receipt, ReceiptSigner};
/// let (seed, public) = generate_key();
/// let signer = ReceiptSigner::new(signing_key_from_bytes(seed.as_bytes()).unwrap());
/// let envelope = signer.sign(serde_json::json!({"receipt_id": "r-1"})).unwrap();
/// let payload = verify_receipt(&envelope, &public_key_from_bytes(public.as_bytes()).unwrap()).unwrap();
/// assert_eq!(payload["chain"]["seq"], 1);
/// ```
pub fn verify_receipt(envelope: &Envelope, key: &VerifyingKey) -> Result<Value, ReceiptError> {
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(ReceiptError::Malformed(format!(
            "payloadType is {}, expected `{PAYLOAD_TYPE}`",
            crate::error::Quoted(&envelope.payload_type)
        )));
    }
    let bytes = BASE64
        .decode(&envelope.payload)
        .map_err(|_| ReceiptError::Malformed("payload is not base64".into()))?;
    let message = pae(PAYLOAD_TYPE, &bytes);
    if envelope.signatures.is_empty() {
        return Err(ReceiptError::BadSignature(
            "the envelope has no signature".into(),
        ));
    }
    let verified = envelope.signatures.iter().any(|s| {
        BASE64
            .decode(&s.sig)
            .ok()
            .and_then(|raw| Signature::from_slice(&raw).ok())
            .is_some_and(|sig| key.verify_strict(&message, &sig).is_ok())
    });
    if !verified {
        return Err(ReceiptError::BadSignature(
            "no signature verifies with this public key (tampered, or signed by another key)"
                .into(),
        ));
    }
    let payload: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ReceiptError::Malformed(format!("payload is not JSON: {e}")))?;
    if canonical(&payload)? != bytes {
        return Err(ReceiptError::NotCanonical);
    }
    Ok(payload)
}

/// One receipt that does not verify in a chain: its index and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFault {
    /// 0-based position in the list.
    pub index: usize,
    /// What is wrong.
    pub error: ReceiptError,
}

/// Verifies a list of envelopes in order: each one's signature, then that they form one
/// chain (same chain id, `seq` increasing by one, `prev_sha256` the hash of the previous
/// envelope). The first envelope may start anywhere in its chain.
///
/// # Errors
/// The first [`ChainFault`].
pub fn verify_chain(envelopes: &[Envelope], key: &VerifyingKey) -> Result<Vec<Value>, ChainFault> {
    let mut payloads: Vec<Value> = Vec::with_capacity(envelopes.len());
    let mut previous: Option<(String, u64, String)> = None;
    for (index, envelope) in envelopes.iter().enumerate() {
        let fault = |error| ChainFault { index, error };
        let payload = verify_receipt(envelope, key).map_err(fault)?;
        let chain = payload.get("chain").unwrap_or(&Value::Null);
        let id = chain
            .get("id")
            .unwrap_or(&Value::Null)
            .as_str()
            .ok_or_else(|| fault(ReceiptError::Malformed("no chain.id".into())))?
            .to_owned();
        let seq = chain
            .get("seq")
            .unwrap_or(&Value::Null)
            .as_u64()
            .ok_or_else(|| fault(ReceiptError::Malformed("no chain.seq".into())))?;
        let prev = chain.get("prev_sha256").and_then(Value::as_str);
        if let Some((prev_id, prev_seq, prev_hash)) = &previous {
            if *prev_id != id {
                return Err(fault(ReceiptError::Chain(format!(
                    "chain id {} differs from {}",
                    crate::error::Quoted(&id),
                    crate::error::Quoted(prev_id)
                ))));
            }
            if seq != prev_seq + 1 {
                return Err(fault(ReceiptError::Chain(format!(
                    "seq {seq} does not follow {prev_seq}: a receipt is missing or out of order"
                ))));
            }
            if prev != Some(prev_hash.as_str()) {
                return Err(fault(ReceiptError::Chain(
                    "prev_sha256 is not the hash of the previous receipt: a receipt was changed, removed or reordered".into(),
                )));
            }
        } else if seq == 1 && prev.is_some() {
            return Err(fault(ReceiptError::Chain(
                "the first receipt of a chain has a prev_sha256".into(),
            )));
        }
        let hash = sha256_hex(&canonical(envelope).map_err(fault)?);
        previous = Some((id, seq, hash));
        payloads.push(payload);
    }
    Ok(payloads)
}

#[cfg(test)]
mod tests {
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
                    keyid: s2.key_id.clone(),
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
                keyid: "k".into(),
                sig: BASE64.encode(sig.to_bytes()),
            }],
        };
        assert_eq!(verify_receipt(&env, &vk), Err(ReceiptError::NotCanonical));
    }
}
