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
    let mut header = [0; PAE_HEADER_ROOM];
    match write_pae_header(payload_type, payload.len(), &mut header) {
        Some(len) => out.extend_from_slice(header.get(..len).unwrap_or_default()),
        // A payload type too long for the room: DSSE allows it, only receipts never use it.
        None => out.extend_from_slice(
            format!(
                "DSSEv1 {} {payload_type} {} ",
                payload_type.len(),
                payload.len()
            )
            .as_bytes(),
        ),
    }
    out.extend_from_slice(payload);
    out
}

/// Writes the PAE's part before the body, `"DSSEv1" SP len(type) SP type SP len(body) SP`,
/// and returns its length (`None` when it does not fit in `out`).
fn write_pae_header(payload_type: &str, body_len: usize, out: &mut [u8]) -> Option<usize> {
    use std::io::Write as _;
    let mut digits = itoa::Buffer::new();
    let mut cursor = std::io::Cursor::new(out);
    cursor.write_all(b"DSSEv1 ").ok()?;
    cursor
        .write_all(digits.format(payload_type.len()).as_bytes())
        .ok()?;
    cursor.write_all(b" ").ok()?;
    cursor.write_all(payload_type.as_bytes()).ok()?;
    cursor.write_all(b" ").ok()?;
    cursor.write_all(digits.format(body_len).as_bytes()).ok()?;
    cursor.write_all(b" ").ok()?;
    usize::try_from(cursor.position()).ok()
}

/// Room for the PAE header of a payload type of up to 64 bytes (7 + 2 + 1 + 64 + 1 + 20 + 1),
/// [`PAYLOAD_TYPE`]'s included: the signer leaves this much room at the front of its
/// buffer, so that the payload is written once and signed where it lies.
const PAE_HEADER_ROOM: usize = 96;

thread_local! {
    /// The buffer receipts are written into, kept by each thread from one receipt to the
    /// next (a receipt is a few kilobytes, written on every signed decision).
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer, emptied (an empty new one in a nested call,
/// or while the thread is torn down), and keeps the buffer for the next call.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    buf.clear();
    let result = f(&mut buf);
    // A rare huge receipt should not pin its memory to the thread.
    if buf.capacity() <= 1 << 20 {
        let _ = SCRATCH.try_with(|cell| cell.set(buf));
    }
    result
}

/// RFC 8785 canonical JSON bytes.
///
/// # Errors
/// [`ReceiptError::Malformed`] when the value cannot be canonicalised.
pub fn canonical(value: &impl Serialize) -> Result<Vec<u8>, ReceiptError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| ReceiptError::Malformed(e.to_string()))
}

/// [`canonical`] of a JSON value, written straight from the value (see `jcs.rs`): the
/// same bytes at a fraction of the cost.
///
/// # Errors
/// As [`canonical`].
pub(crate) fn canonical_value(value: &Value) -> Result<Vec<u8>, ReceiptError> {
    jcs::to_vec(value)
}

/// The hex SHA-256 of the canonical bytes of `{"context": context, "signal": signal}`
/// (a receipt's `inputs_sha256`), written without building that object.
///
/// # Errors
/// As [`canonical`].
#[cfg(test)]
pub(crate) fn inputs_sha256(
    signal: &Value,
    context: &serde_json::Map<String, Value>,
) -> Result<String, ReceiptError> {
    inputs_hash(context, |out| jcs::write_value(signal, out))
}

/// [`inputs_sha256`] with the signal as the engine holds it: the signal's JSON form
/// ([`Signal::to_json`](crate::Signal::to_json)) written from its fields, without building it.
///
/// # Errors
/// As [`canonical`].
pub(crate) fn signal_inputs_sha256(
    signal: &crate::Signal,
    context: &serde_json::Map<String, Value>,
) -> Result<String, ReceiptError> {
    inputs_hash(context, |out| jcs::write_signal(signal, out))
}

/// The hex SHA-256 of `{"context":<context>,"signal":<what write_signal writes>}`.
fn inputs_hash(
    context: &serde_json::Map<String, Value>,
    write_signal: impl FnOnce(&mut Vec<u8>) -> Result<(), ReceiptError>,
) -> Result<String, ReceiptError> {
    with_scratch(|bytes| {
        // "context" sorts before "signal".
        bytes.extend_from_slice(b"{\"context\":");
        jcs::write_object(context, bytes)?;
        bytes.extend_from_slice(b",\"signal\":");
        write_signal(bytes)?;
        bytes.push(b'}');
        Ok(sha256_hex(bytes))
    })
}

/// The hex SHA-256 of an envelope's canonical bytes: what the next receipt's
/// `prev_sha256` holds.
pub(crate) fn envelope_sha256(envelope: &Envelope) -> String {
    let mut bytes = Vec::with_capacity(envelope.payload.len() + 200);
    jcs::write_envelope(envelope, &mut bytes);
    sha256_hex(&bytes)
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

/// `key` as an AWS-LC key pair, when AWS-LC takes it and derives the same public key.
fn fast_key(key: &SigningKey) -> Option<aws_lc_rs::signature::Ed25519KeyPair> {
    use aws_lc_rs::signature::KeyPair as _;
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(key.as_bytes()).ok()?;
    (pair.public_key().as_ref() == key.verifying_key().as_bytes()).then_some(pair)
}

/// Signs receipts and keeps this engine instance's hash chain.
pub struct ReceiptSigner {
    key: SigningKey,
    /// The same key in AWS-LC, which signs: a third faster than ed25519-dalek, with the same
    /// (deterministic) signatures. `None` only if AWS-LC refused the key or derived another
    /// public key from it, and then ed25519-dalek signs.
    fast: Option<aws_lc_rs::signature::Ed25519KeyPair>,
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
        ReceiptSigner::with_chain(key, crate::ids::new_id().into())
    }

    /// A signer continuing (or starting) the chain `chain_id`.
    pub fn with_chain(key: SigningKey, chain_id: String) -> ReceiptSigner {
        ReceiptSigner {
            key_id: key_id(&key.verifying_key()),
            fast: fast_key(&key),
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
            state.prev_sha256 = Some(envelope_sha256(last));
        }
        Ok(signer)
    }

    /// The Ed25519 signature of `message`.
    fn signature(&self, message: &[u8]) -> [u8; 64] {
        self.fast
            .as_ref()
            .and_then(|k| <[u8; 64]>::try_from(k.sign(message).as_ref()).ok())
            .unwrap_or_else(|| self.key.sign(message).to_bytes())
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
        let bytes = canonical_value(&payload)?;
        let (envelope, hash) = self.envelope(&bytes);
        state.prev_sha256 = Some(hash);
        state.seq = seq;
        Ok(envelope)
    }

    /// As [`ReceiptSigner::sign`], for a payload given as its canonical members without
    /// `chain`: `before_chain` holds those whose keys sort before `chain`, `after_chain`
    /// the others, each a comma-separated run of `"key":value` in JCS order (either may be
    /// empty). The receipt stage writes receipts this way, with no intermediate value; the
    /// bytes signed are those [`ReceiptSigner::sign`] would sign for the same payload.
    pub(crate) fn sign_members(&self, before_chain: &[u8], after_chain: &[u8]) -> Envelope {
        with_scratch(|buf| {
            // The payload goes after room for the PAE header, which needs its length: it
            // is written once, and signed where it lies, the header written just before it.
            buf.reserve(PAE_HEADER_ROOM + before_chain.len() + after_chain.len() + 160);
            buf.resize(PAE_HEADER_ROOM, 0);
            buf.push(b'{');
            if !before_chain.is_empty() {
                buf.extend_from_slice(before_chain);
                buf.push(b',');
            }
            let mut state = self.state.lock();
            let seq = state.seq + 1;
            // The link's members in JCS order: id, prev_sha256, seq.
            buf.extend_from_slice(b"\"chain\":{\"id\":");
            jcs::write_str(&self.chain_id, buf);
            buf.extend_from_slice(b",\"prev_sha256\":");
            match &state.prev_sha256 {
                Some(hash) => jcs::write_str(hash, buf),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"seq\":");
            jcs::write_u64(seq, buf);
            buf.push(b'}');
            if !after_chain.is_empty() {
                buf.push(b',');
                buf.extend_from_slice(after_chain);
            }
            buf.push(b'}');
            let (envelope, hash) = self.envelope_in_place(buf);
            state.prev_sha256 = Some(hash);
            state.seq = seq;
            envelope
        })
    }

    /// The signed envelope of canonical payload bytes, and its hash (see
    /// [`ReceiptSigner::envelope_of`]).
    fn envelope(&self, bytes: &[u8]) -> (Envelope, String) {
        let signature = self.signature(&pae(PAYLOAD_TYPE, bytes));
        self.envelope_of(bytes, &signature)
    }

    /// As [`ReceiptSigner::envelope`], for the payload that follows [`PAE_HEADER_ROOM`]
    /// bytes of room in `buf`: the PAE header is written at the end of the room, just
    /// before the payload, and the PAE signed where it lies.
    fn envelope_in_place(&self, buf: &mut [u8]) -> (Envelope, String) {
        let Some((room, payload)) = buf.split_at_mut_checked(PAE_HEADER_ROOM) else {
            // No room at all: the caller's mistake, and the whole buffer is the payload.
            return self.envelope(buf);
        };
        let mut header = [0; PAE_HEADER_ROOM];
        let placed = write_pae_header(PAYLOAD_TYPE, payload.len(), &mut header)
            .and_then(|len| Some((header.get(..len)?, room.len().checked_sub(len)?)))
            .and_then(|(header, start)| {
                room.get_mut(start..)?.copy_from_slice(header);
                Some(start)
            });
        match placed {
            Some(start) => {
                let signature = self.signature(buf.get(start..).unwrap_or_default());
                self.envelope_of(buf.get(PAE_HEADER_ROOM..).unwrap_or_default(), &signature)
            }
            // Not reached: PAYLOAD_TYPE's header fits the room. Signing a copy is right anyway.
            None => self.envelope(payload),
        }
    }

    /// The envelope of `payload` with its signature, and the hex SHA-256 of the envelope's
    /// canonical bytes (what [`envelope_sha256`] computes), hashed from its parts rather
    /// than written out: base64, the hex key id and [`PAYLOAD_TYPE`] hold nothing JSON
    /// escapes, so each string's canonical form is the string in quotes.
    fn envelope_of(&self, payload: &[u8], signature: &[u8; 64]) -> (Envelope, String) {
        let payload = BASE64.encode(payload);
        let sig = BASE64.encode(signature);
        let mut hasher = Sha256::new();
        hasher.update(b"{\"payload\":\"");
        hasher.update(payload.as_bytes());
        hasher.update(b"\",\"payloadType\":\"");
        hasher.update(PAYLOAD_TYPE.as_bytes());
        hasher.update(b"\",\"signatures\":[{\"keyid\":\"");
        hasher.update(self.key_id.as_bytes());
        hasher.update(b"\",\"sig\":\"");
        hasher.update(sig.as_bytes());
        hasher.update(b"\"}]}");
        let envelope = Envelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload,
            signatures: vec![EnvelopeSignature {
                keyid: Some(self.key_id.clone()),
                sig,
            }],
        };
        (envelope, hex::encode(hasher.finalize()))
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
    if canonical_value(&payload)? != bytes {
        return Err(ReceiptError::NotCanonical);
    }
    Ok(payload)
}

mod chain;
pub(crate) mod jcs;
#[cfg(test)]
mod tests;

pub use chain::{verify_chain, ChainFault, ChainTip, ChainVerifier, MAX_CHAINS};
