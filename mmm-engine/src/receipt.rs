//! Receipts (SPEC §7): every decision is recorded as a JSON payload, canonicalised with
//! RFC 8785 (JCS), wrapped in a DSSE envelope, signed with Ed25519 and chained to the
//! previous receipt of the same engine instance by its SHA-256.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as BASE64};
use base64::engine::DecodePaddingMode;
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
///
/// Read as DSSE's `envelope.md` says: `keyid` may be absent and unknown fields are
/// ignored. Written with `keyid` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Identifies the key: the first 16 hex digits of the SHA-256 of the public key. Always
    /// set by [`ReceiptSigner`]; optional when reading, and never trusted (every signature
    /// is tried against the verifying key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    /// Base64 of the Ed25519 signature over the PAE: written in standard base64, read in
    /// standard or URL-safe base64, with or without padding.
    pub sig: String,
}

/// A DSSE envelope holding one receipt.
///
/// Unknown fields are ignored when reading (DSSE's `envelope.md`); they are not kept, so
/// they are not part of the hash the next receipt's `prev_sha256` is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the JCS bytes of the receipt payload: written in standard base64, read
    /// in standard or URL-safe base64, with or without padding.
    pub payload: String,
    /// The signatures: one when written; when reading, any one that verifies suffices.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// An envelope from its JSON line, read as the engine reads JSON text (a byte-order
    /// mark skipped, integers beyond 64 bits refused). The one reader of envelopes the
    /// bindings use.
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`] saying where and why.
    ///
    /// ```
    /// use mmm_engine::receipt::Envelope;
    /// let e = Envelope::parse(r#"{"payloadType": "x", "payload": "", "signatures": [], "extra": 1}"#)?;
    /// assert_eq!(e.payload_type, "x");
    /// assert!(Envelope::parse("{").is_err());
    /// # Ok::<(), mmm_engine::receipt::ReceiptError>(())
    /// ```
    pub fn parse(line: &str) -> Result<Envelope, ReceiptError> {
        let value =
            crate::number::parse_json(line).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        Envelope::from_json(value)
    }

    /// An envelope from a JSON value (unknown fields ignored).
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`] naming what is missing or of the wrong type.
    pub fn from_json(value: Value) -> Result<Envelope, ReceiptError> {
        serde_json::from_value(value)
            .map_err(|e| ReceiptError::Malformed(crate::clean_message(&e.to_string())))
    }
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

/// Standard base64 without caring for padding.
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe base64 without caring for padding.
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 as DSSE's `envelope.md` allows it: the standard or the URL-safe
/// alphabet, with or without padding (one alphabet per value, no whitespace).
///
/// ```
/// use mmm_engine::receipt::decode_base64;
/// assert_eq!(decode_base64("+/8="), Some(vec![0xfb, 0xff]));
/// assert_eq!(decode_base64("-_8"), Some(vec![0xfb, 0xff]));
/// assert_eq!(decode_base64("-/8="), None);
/// ```
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD_ANY_PADDING
        .decode(text)
        .or_else(|_| URL_SAFE_ANY_PADDING.decode(text))
        .ok()
}

/// Strict Ed25519 verification (`verify_strict`: canonical `S`, no small-order key or
/// `R`) of `signature` over `message`: the check every receipt signature goes through.
/// A signature that is not 64 bytes does not verify.
pub fn verify_signature(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    Signature::from_slice(signature).is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
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
                keyid: Some(self.key_id.clone()),
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
/// The envelope is read as DSSE's `envelope.md` says: `payload` and `sig` in standard or
/// URL-safe base64, with or without padding; `keyid` optional; any one signature that
/// verifies with `key` suffices.
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
    let bytes = decode_base64(&envelope.payload)
        .ok_or_else(|| ReceiptError::Malformed("payload is not base64".into()))?;
    let message = pae(PAYLOAD_TYPE, &bytes);
    if envelope.signatures.is_empty() {
        return Err(ReceiptError::BadSignature(
            "the envelope has no signature".into(),
        ));
    }
    // `keyid` is a hint DSSE lets verifiers ignore: every signature is tried, and a
    // signature that is not base64 simply does not verify.
    let verified = envelope
        .signatures
        .iter()
        .any(|s| decode_base64(&s.sig).is_some_and(|raw| verify_signature(key, &message, &raw)));
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

/// The most distinct chains a [`ChainVerifier`] keeps track of by default.
pub const MAX_CHAINS: usize = 100_000;

/// What a [`ChainVerifier`] keeps of one chain: its position, never its receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTip {
    /// The chain id.
    pub id: String,
    /// The `seq` of the first receipt seen.
    pub first_seq: u64,
    /// The `seq` of the last receipt seen.
    pub last_seq: u64,
    /// How many receipts of this chain were seen.
    pub receipts: u64,
    last_sha256: String,
}

/// Verifies receipts one at a time, in order, as they are read (a file of any size,
/// line by line): each envelope's signature ([`verify_receipt`]), then its place in its
/// chain (by `chain.id`): `seq` one more than the chain's previous receipt and
/// `prev_sha256` the SHA-256 of that receipt's JCS bytes. Several chains may be
/// interleaved (one per engine instance or replica). Memory is bounded: per chain it keeps
/// the id, the first and last `seq`, a count and the last hash; at most
/// [`MAX_CHAINS`] chains (see [`ChainVerifier::max_chains`]).
///
/// By default a chain may start anywhere (a tail verifies on its own, but its first
/// receipt with `seq` 1 must have no `prev_sha256`, and one with a higher `seq` must
/// have one); [`ChainVerifier::from_start`] requires every chain to begin at `seq` 1, so
/// a cut head is caught. A cut tail is only visible to a count kept elsewhere (`mmm
/// verify --expect-count`).
///
/// ```
/// use mmm_engine::receipt::{signing_key_from_bytes, ChainVerifier, ReceiptSigner};
/// let key = signing_key_from_bytes(&[7; 32]).unwrap();
/// let signer = ReceiptSigner::with_chain(key.clone(), "c-1".into());
/// let envelopes: Vec<_> = (0..3).map(|i| signer.sign(serde_json::json!({"n": i})).unwrap()).collect();
/// let public = key.verifying_key();
/// let mut verifier = ChainVerifier::new(&public).from_start(true);
/// for envelope in &envelopes {
///     verifier.verify(envelope).unwrap();
/// }
/// assert_eq!(verifier.receipts(), 3);
/// // Without its first receipt, the chain does not begin at seq 1.
/// let mut verifier = ChainVerifier::new(&public).from_start(true);
/// assert!(verifier.verify(&envelopes[1]).is_err());
/// ```
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    key: &'k VerifyingKey,
    from_start: bool,
    max_chains: usize,
    /// Chain ids in the order they first appeared, and their tips.
    order: Vec<String>,
    tips: std::collections::HashMap<String, ChainTip>,
    receipts: u64,
}

impl<'k> ChainVerifier<'k> {
    /// A verifier for receipts signed with `key`.
    pub fn new(key: &'k VerifyingKey) -> Self {
        ChainVerifier {
            key,
            from_start: false,
            max_chains: MAX_CHAINS,
            order: Vec::new(),
            tips: std::collections::HashMap::new(),
            receipts: 0,
        }
    }

    /// Whether every chain must begin at `seq` 1.
    #[must_use]
    pub fn from_start(mut self, yes: bool) -> Self {
        self.from_start = yes;
        self
    }

    /// The most distinct chains to keep track of ([`MAX_CHAINS`] by default); one more is
    /// refused, so memory stays bounded whatever the input.
    #[must_use]
    pub fn max_chains(mut self, n: usize) -> Self {
        self.max_chains = n;
        self
    }

    /// Verifies the next envelope and returns its payload.
    ///
    /// # Errors
    /// [`ReceiptError`] saying what is wrong with this envelope; the verifier's state is
    /// unchanged by a receipt that does not verify.
    pub fn verify(&mut self, envelope: &Envelope) -> Result<Value, ReceiptError> {
        let payload = verify_receipt(envelope, self.key)?;
        let chain = payload.get("chain").unwrap_or(&Value::Null);
        let id = chain
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ReceiptError::Malformed("no chain.id".into()))?;
        let seq = chain
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|seq| *seq >= 1)
            .ok_or_else(|| ReceiptError::Malformed("no chain.seq of 1 or more".into()))?;
        let prev = match chain.get("prev_sha256") {
            None | Some(Value::Null) => None,
            Some(Value::String(hash)) => Some(hash.as_str()),
            Some(_) => {
                return Err(ReceiptError::Malformed(
                    "chain.prev_sha256 is neither a hash nor null".into(),
                ))
            }
        };
        if seq == 1 && prev.is_some() {
            return Err(ReceiptError::Chain(
                "the first receipt of a chain has a prev_sha256".into(),
            ));
        }
        if seq > 1 && prev.is_none() {
            return Err(ReceiptError::Chain(format!("seq {seq} has no prev_sha256")));
        }
        let hash = sha256_hex(&canonical(envelope)?);
        if let Some(tip) = self.tips.get_mut(id) {
            if seq != tip.last_seq.saturating_add(1) {
                return Err(ReceiptError::Chain(format!(
                    "seq {seq} does not follow {}: a receipt is missing or out of order",
                    tip.last_seq
                )));
            }
            if prev != Some(tip.last_sha256.as_str()) {
                return Err(ReceiptError::Chain(
                    "prev_sha256 is not the hash of the previous receipt: a receipt was changed, removed or reordered".into(),
                ));
            }
            tip.last_seq = seq;
            tip.last_sha256 = hash;
            tip.receipts += 1;
        } else {
            if self.from_start && seq != 1 {
                return Err(ReceiptError::Chain(format!(
                    "chain {} begins at seq {seq}, not 1: its first receipts are missing",
                    crate::error::Quoted(id)
                )));
            }
            if self.tips.len() >= self.max_chains {
                return Err(ReceiptError::Chain(format!(
                    "more than {} chains; refusing to track chain {}",
                    self.max_chains,
                    crate::error::Quoted(id)
                )));
            }
            self.order.push(id.to_owned());
            self.tips.insert(
                id.to_owned(),
                ChainTip {
                    id: id.to_owned(),
                    first_seq: seq,
                    last_seq: seq,
                    receipts: 1,
                    last_sha256: hash,
                },
            );
        }
        self.receipts += 1;
        Ok(payload)
    }

    /// How many receipts verified so far.
    pub fn receipts(&self) -> u64 {
        self.receipts
    }

    /// The chains seen so far, in the order they first appeared.
    pub fn chains(&self) -> impl Iterator<Item = &ChainTip> {
        self.order.iter().filter_map(|id| self.tips.get(id))
    }
}

/// One receipt that does not verify in a chain: its index and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFault {
    /// 0-based position in the list.
    pub index: usize,
    /// What is wrong.
    pub error: ReceiptError,
}

/// Verifies a list of envelopes in order with a [`ChainVerifier`]: each one's signature,
/// then its place in its chain (`seq` increasing by one, `prev_sha256` the hash of the
/// chain's previous envelope). A chain may start anywhere in the list (a tail verifies on
/// its own).
///
/// # Errors
/// The first [`ChainFault`].
pub fn verify_chain(envelopes: &[Envelope], key: &VerifyingKey) -> Result<Vec<Value>, ChainFault> {
    let mut verifier = ChainVerifier::new(key);
    envelopes
        .iter()
        .enumerate()
        .map(|(index, envelope)| {
            verifier
                .verify(envelope)
                .map_err(|error| ChainFault { index, error })
        })
        .collect()
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
                let mut v =
                    serde_json::to_value(s.sign(json!({"receipt_id": i})).unwrap()).unwrap();
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
}
