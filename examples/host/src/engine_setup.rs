//! How `serve` builds the engine: the core's settings from `--engine-settings` (read by
//! `EngineConfig::from_json`, the one settings type), the receipt signer from
//! `--signing-key-file` (the hex seed `mmm keygen` writes; default `<data-dir>/receipts.key`,
//! created on first start; none with `--unsigned`) continuing this replica's chain,
//! and whatever other ports a caller plugs in through the builder hook.
//!
//! Receipts: the engine signs each decision's receipt (it has no receipts port, so the
//! envelope comes back in the decision) and the decide route hands it to the
//! [`DecisionLog`](crate::receipts::DecisionLog), which stores it with group commit. The
//! chain id is the replica id (`--replica-id`, else an id created on first start in
//! `<data-dir>/replica-id`); on start the signer resumes after the chain's stored head, so
//! a restart continues the chain without a gap.

use std::path::Path;
use std::sync::Arc;

use mmm_engine::receipt::{signing_key_from_bytes, Envelope, ReceiptSigner, SigningKey};
use mmm_engine::Quoted;
use mmm_engine::{Engine, EngineBuilder, EngineConfig};

use crate::config::ServeArgs;
use crate::receipts::Chain;
use crate::store::Store;

/// The engine and the chain it signs.
pub struct Setup {
    /// The engine (its playbook set is loaded by `Live::reload`).
    pub engine: Engine,
    /// The receipt chain, when signing is on.
    pub chain: Option<Chain>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("chain", &self.chain.as_ref().map(|c| &c.id))
            .finish_non_exhaustive()
    }
}

/// The engine's settings: the file's JSON object over the defaults, or the defaults.
///
/// # Errors
/// The file cannot be read or is not JSON, or a setting breaks its rule (named).
pub fn engine_config(path: Option<&Path>) -> Result<EngineConfig, String> {
    let Some(path) = path else {
        return Ok(EngineConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    EngineConfig::from_json(&value).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a signing key file as `mmm keygen` writes it (64 hex digits; whitespace and a
/// byte-order mark around them are ignored).
///
/// # Errors
/// The file cannot be read, or does not hold a key.
pub fn signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = text.trim_start_matches('\u{FEFF}').trim();
    signing_key_from_bytes(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The receipt key kept in the data directory: `<data-dir>/receipts.key`, created (an
/// Ed25519 seed in hex, as `mmm keygen` writes it, readable by the owner only) on first
/// start, so that the embedded default signs every decision's receipt.
///
/// # Errors
/// The directory or the file cannot be created.
pub fn default_signing_key(data_dir: &Path) -> Result<std::path::PathBuf, String> {
    let path = data_dir.join(RECEIPT_KEY_FILE);
    if path.exists() {
        return Ok(path);
    }
    crate::auth::keys::private_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let (seed_hex, _) = mmm_engine::receipt::generate_key();
    crate::auth::keys::write_private(&path, format!("{seed_hex}\n").as_bytes()).map_err(|e| e.0)?;
    tracing::info!(path = %path.display(), "created a receipt signing key");
    Ok(path)
}

/// The file name of the receipt key [`default_signing_key`] keeps.
pub const RECEIPT_KEY_FILE: &str = "receipts.key";

/// Whether `id` may name a replica (and its chain): `[A-Za-z0-9._-]{1,64}`.
pub fn valid_replica_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// This replica's id: the flag's, else the one kept in `<data-dir>/replica-id` (created
/// on first start).
///
/// # Errors
/// An invalid id, or the file cannot be read or written.
pub fn replica_id(flag: Option<&str>, data_dir: &Path) -> Result<String, String> {
    if let Some(id) = flag {
        return if valid_replica_id(id) {
            Ok(id.to_owned())
        } else {
            Err(format!(
                "--replica-id {} must be 1 to 64 of A-Z, a-z, 0-9, `.`, `_`, `-`",
                Quoted(id)
            ))
        };
    }
    let path = data_dir.join("replica-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if valid_replica_id(id) {
                Ok(id.to_owned())
            } else {
                Err(format!("{}: not a replica id", path.display()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::now_v7().to_string();
            std::fs::write(&path, format!("{id}\n"))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A signer continuing the chain `chain_id` after its stored head (or starting it).
///
/// # Errors
/// The store cannot be read, or the stored head was signed with another key or is not a
/// receipt of that chain.
pub async fn open_chain(
    store: &dyn Store,
    key: SigningKey,
    chain_id: &str,
) -> Result<(ReceiptSigner, Chain), String> {
    let public_key = key.verifying_key();
    let head = store
        .chain_head(chain_id)
        .await
        .map_err(|e| format!("reading the receipt chain `{chain_id}`: {e}"))?;
    let Some(head) = head else {
        let signer = ReceiptSigner::with_chain(key, chain_id.to_owned());
        return Ok((
            signer,
            Chain {
                id: chain_id.to_owned(),
                next_seq: 1,
                public_key,
            },
        ));
    };
    let envelope: Envelope = serde_json::from_str(&head.envelope).map_err(|e| {
        format!("the stored head of receipt chain `{chain_id}` is not an envelope: {e}")
    })?;
    let signer = ReceiptSigner::resume(key, &envelope).map_err(|e| {
        format!(
            "the receipt chain `{chain_id}` cannot be continued with this signing key ({e}); \
             keep the key the chain was signed with, or start a new chain with another --replica-id"
        )
    })?;
    if signer.chain_id() != chain_id || crate::receipts::envelope_seq(&envelope) != Some(head.seq) {
        return Err(format!(
            "the stored head of receipt chain `{chain_id}` (seq {}) names another chain or position",
            head.seq
        ));
    }
    Ok((
        signer,
        Chain {
            id: chain_id.to_owned(),
            next_seq: head.seq + 1,
            public_key,
        },
    ))
}

/// Builds the engine `serve` runs: settings, the host's audit sink, the receipt signer
/// on this replica's chain, then `extras` (other ports: fatigue, IAM, policy…).
///
/// # Errors
/// A message naming the flag, file or setting at fault.
pub async fn build(
    args: &ServeArgs,
    store: &Arc<dyn Store>,
    extras: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> Result<Setup, String> {
    let config = engine_config(args.engine_settings.as_deref())?;
    let mut builder = Engine::builder()
        .config(config)
        .audit(Arc::new(crate::live::LogAudit));
    let mut chain = None;
    let key_file = match (&args.signing_key_file, args.unsigned) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => Some(default_signing_key(&args.data_dir)?),
    };
    if let Some(path) = &key_file {
        let key = signing_key(path)?;
        let id = replica_id(args.replica_id.as_deref(), &args.data_dir)?;
        let (signer, c) = open_chain(&**store, key, &id).await?;
        tracing::info!(chain = %c.id, next_seq = c.next_seq, "signing receipts");
        builder = builder.receipt_signer(signer);
        chain = Some(c);
    }
    Ok(Setup {
        engine: extras(builder).build(),
        chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_receipt_key_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let path = default_signing_key(&data).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(signing_key(&path).is_ok(), "{first}");
        assert_eq!(default_signing_key(&data).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn replica_ids_are_checked_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert!(replica_id(Some("a b"), dir.path()).is_err());
        // The refused value is named as the core quotes user values: escaped, and cut.
        let e =
            replica_id(Some(&format!("a\u{1b}[31m{}", "x".repeat(200))), dir.path()).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "--replica-id `a\\u{{1b}}[31m{}…` (206 characters)",
                "x".repeat(58)
            )),
            "{e}"
        );
        assert_eq!(replica_id(Some("pod-0"), dir.path()).unwrap(), "pod-0");
        let first = replica_id(None, dir.path()).unwrap();
        assert_eq!(replica_id(None, dir.path()).unwrap(), first);
        std::fs::write(dir.path().join("replica-id"), "../x").unwrap();
        assert!(replica_id(None, dir.path()).is_err());
    }

    #[test]
    fn settings_files_are_read_by_the_core_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.json");
        std::fs::write(&path, r#"{"ide_deadline_ms": 40}"#).unwrap();
        assert!(engine_config(Some(&path)).is_ok());
        std::fs::write(&path, r#"{"ide_deadlin_ms": 40}"#).unwrap();
        let e = engine_config(Some(&path)).unwrap_err();
        assert!(e.contains("ide_deadlin_ms"), "{e}");
        std::fs::write(&path, "{").unwrap();
        assert!(engine_config(Some(&path)).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn key_files_are_read_as_mmm_keygen_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (seed, public) = mmm_engine::receipt::generate_key();
        std::fs::write(&path, format!("\u{FEFF}{seed}\n")).unwrap();
        let key = signing_key(&path).unwrap();
        assert_eq!(hex::encode(key.verifying_key().as_bytes()), public);
        std::fs::write(&path, "not a key").unwrap();
        assert!(signing_key(&path).unwrap_err().contains("signing key"));
    }
}
