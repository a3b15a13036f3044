//! Verification keys: a JWKS from a file or a URL (cached; refetched when a token names an
//! unknown `kid`, at most once per interval), or the host's own Ed25519 key, created in
//! its data directory on first start and used by `mmm-host token`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use sha2::Digest;
use tokio::sync::{Mutex, RwLock};

use super::Claims;

/// One verification key.
#[derive(Clone)]
pub struct Key {
    /// Its `kid`, when the set names one.
    pub kid: Option<String>,
    /// The one algorithm it verifies.
    pub alg: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Where keys come from.
#[derive(Debug)]
enum Source {
    /// Fixed keys (a JWKS file, or the local key).
    Fixed,
    /// A JWKS URL, refetched on an unknown `kid`.
    Remote {
        url: String,
        client: reqwest::Client,
        min_interval: Duration,
        last_fetch: Mutex<Option<Instant>>,
    },
}

/// The keys tokens are verified with.
#[derive(Debug)]
pub struct KeySet {
    keys: RwLock<Vec<Key>>,
    source: Source,
}

/// Reading keys failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl KeySet {
    /// Fixed keys.
    pub fn fixed(keys: Vec<Key>) -> Self {
        KeySet {
            keys: RwLock::new(keys),
            source: Source::Fixed,
        }
    }

    /// The keys of a JWKS file.
    ///
    /// # Errors
    /// [`KeyError`] naming the file and what is wrong with it.
    pub fn from_jwks_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
        let keys = parse_jwks(&text).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
        Ok(KeySet::fixed(keys))
    }

    /// The keys at a JWKS URL, fetched now and again when a token names an unknown `kid`
    /// (at most once per `min_interval`).
    ///
    /// # Errors
    /// [`KeyError`] when the first fetch fails.
    pub async fn from_jwks_url(url: &str, min_interval: Duration) -> Result<Self, KeyError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| KeyError(format!("cannot build an HTTP client: {e}")))?;
        let keys = fetch(&client, url).await?;
        Ok(KeySet {
            keys: RwLock::new(keys),
            source: Source::Remote {
                url: url.to_owned(),
                client,
                min_interval,
                last_fetch: Mutex::new(Some(Instant::now())),
            },
        })
    }

    /// The key for a token's `kid` and algorithm. A token without `kid` matches the only
    /// key of its algorithm. An unknown `kid` refetches a remote set (rate-limited).
    pub async fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        if let Some(key) = pick(&self.keys.read().await, kid, alg) {
            return Some(key);
        }
        let Source::Remote {
            url,
            client,
            min_interval,
            last_fetch,
        } = &self.source
        else {
            return None;
        };
        {
            let mut last = last_fetch.lock().await;
            if last.is_some_and(|t| t.elapsed() < *min_interval) {
                return None;
            }
            *last = Some(Instant::now());
            match fetch(client, url).await {
                Ok(keys) => *self.keys.write().await = keys,
                Err(e) => tracing::warn!(error = %e, "refetching the JWKS failed"),
            }
        }
        pick(&self.keys.read().await, kid, alg)
    }
}

fn pick(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid) && k.alg == alg)
            .map(|k| k.key.clone()),
        None => {
            let mut of_alg = keys.iter().filter(|k| k.alg == alg);
            match (of_alg.next(), of_alg.next()) {
                (Some(only), None) => Some(only.key.clone()),
                _ => None,
            }
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<Key>, KeyError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| KeyError(format!("fetching the JWKS from `{url}`: {e}")))?;
    if !response.status().is_success() {
        return Err(KeyError(format!(
            "fetching the JWKS from `{url}`: status {}",
            response.status()
        )));
    }
    let text = response
        .text()
        .await
        .map_err(|e| KeyError(format!("reading the JWKS from `{url}`: {e}")))?;
    parse_jwks(&text).map_err(|e| KeyError(format!("the JWKS at `{url}`: {e}")))
}

/// Reads a JWKS, keeping the EdDSA (Ed25519), ES256 (P-256) and RS256 keys; keys of other
/// kinds are skipped with a warning.
///
/// # Errors
/// A message when the text is not a JWKS or holds no usable key.
pub fn parse_jwks(text: &str) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        match key_from_jwk(jwk) {
            Ok(key) => keys.push(key),
            Err(why) => {
                tracing::warn!(key = i, kid = ?jwk.common.key_id, "skipping JWKS key: {why}")
            }
        }
    }
    if keys.is_empty() {
        return Err("it holds no EdDSA, ES256 or RS256 key".to_owned());
    }
    Ok(keys)
}

fn key_from_jwk(jwk: &Jwk) -> Result<Key, String> {
    let declared = jwk.common.key_algorithm;
    let alg = match (&jwk.algorithm, declared) {
        (AlgorithmParameters::OctetKeyPair(p), None | Some(KeyAlgorithm::EdDSA)) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err("only the Ed25519 curve is supported for OKP keys".to_owned());
            }
            // Checked here: a short key would otherwise fail deep inside verification.
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.x.trim_end_matches('='))
                .map_err(|_| "`x` is not base64url".to_owned())?;
            if x.len() != 32 {
                return Err("`x` of an Ed25519 key must be 32 bytes".to_owned());
            }
            Algorithm::EdDSA
        }
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256)) => {
            if p.curve != EllipticCurve::P256 {
                return Err("only P-256 (ES256) is supported for EC keys".to_owned());
            }
            Algorithm::ES256
        }
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (_, Some(other)) => return Err(format!("algorithm `{other:?}` is not accepted")),
        _ => return Err("unsupported key type".to_owned()),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// The host's own Ed25519 key, used when no JWKS is configured and by `mmm-host token`.
pub struct LocalKey {
    signing: SigningKey,
    kid: String,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The key file's name in the data directory.
pub const LOCAL_KEY_FILE: &str = "jwt-ed25519.pem";

impl LocalKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let digest = sha2::Sha256::digest(signing.verifying_key().as_bytes());
        let kid = hex::encode(digest.get(..8).unwrap_or_default());
        LocalKey { signing, kid }
    }

    /// Reads the key in `data_dir`, creating it (PKCS#8 PEM, mode 0600) when missing.
    ///
    /// # Errors
    /// [`KeyError`] when the file cannot be read, parsed or written.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path: PathBuf = data_dir.join(LOCAL_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                    KeyError(format!("{}: not an Ed25519 key: {e}", path.display()))
                })?;
                Ok(LocalKey::from_seed(signing.to_bytes()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                private_dir(data_dir)
                    .map_err(|e| KeyError(format!("{}: {e}", data_dir.display())))?;
                let (seed_hex, _) = mmm_engine::receipt::generate_key();
                let seed: [u8; 32] = hex::decode(seed_hex)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| KeyError("generating a key failed".to_owned()))?;
                let key = LocalKey::from_seed(seed);
                let pem = key
                    .signing
                    .to_pkcs8_pem(Default::default())
                    .map_err(|e| KeyError(format!("encoding the key: {e}")))?;
                write_private(&path, pem.as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(KeyError(format!("{}: {e}", path.display()))),
        }
    }

    /// The verification key for tokens it signs.
    pub fn verification_key(&self) -> Key {
        Key {
            kid: Some(self.kid.clone()),
            alg: Algorithm::EdDSA,
            key: DecodingKey::from_ed_der(self.signing.verifying_key().as_bytes()),
        }
    }

    /// Signs a token with these claims.
    ///
    /// # Errors
    /// [`KeyError`] when signing fails.
    pub fn mint(&self, claims: &Claims) -> Result<String, KeyError> {
        let der = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| KeyError(format!("encoding the key: {e}")))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
            .map_err(|e| KeyError(format!("signing the token: {e}")))
    }
}

/// Creates `dir` when missing, readable by its owner only (it holds the database and the
/// token key); an existing directory is left as it is.
///
/// # Errors
/// The I/O error.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a secret file readable by its owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError(format!("{}: {e}", path.display())))
}
