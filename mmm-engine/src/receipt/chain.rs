//! Verifying chains of receipts: each receipt signed, in order, linked to the previous
//! one by its hash; any number of chains at once, keeping only each chain's tip.

use serde_json::Value;

use super::{envelope_sha256, verify_receipt, Envelope, ReceiptError, VerifyingKey};

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
        let hash = envelope_sha256(envelope);
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
