//! Authentication and tenancy (SPEC §13 "Auth"): bearer JWTs verified locally, the caller
//! they describe, and one extractor per permission ([`extract`]) so roles are checked in
//! one place, never in handlers.

pub mod extract;
pub mod keys;

use mmm_engine::Quoted;
use std::collections::BTreeSet;
use std::fmt;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::store::GLOBAL;
pub use keys::{KeySet, LocalKey};

/// The roles a token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in its tenant: publish, policy, audit, receipts, metrics.
    Admin,
    /// Playbook and experiment drafts.
    Author,
    /// Approves dual-channel multiplier actions.
    Approver,
    /// A backend calling decide and outcomes.
    Service,
    /// A developer: their own preferences.
    Developer,
}

impl Role {
    /// Every role, for help texts.
    pub const ALL: &'static [Role] = &[
        Role::Admin,
        Role::Author,
        Role::Approver,
        Role::Service,
        Role::Developer,
    ];

    /// The role's name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Author => "author",
            Role::Approver => "approver",
            Role::Service => "service",
            Role::Developer => "developer",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims the host reads; others are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// A tenant id, or `*` for the platform operator.
    pub tenant_id: String,
    /// The caller (an actor id, a service name).
    pub sub: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's tenant (`*` for the platform operator).
    pub tenant: String,
    /// The token's `sub`.
    pub sub: String,
    /// The token's roles.
    pub roles: BTreeSet<Role>,
}

impl Caller {
    /// Whether this is the platform operator (`tenant_id: "*"`), who may act on any tenant
    /// and is the only one that writes global documents.
    pub fn is_operator(&self) -> bool {
        self.tenant == GLOBAL
    }

    /// Whether the caller has any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }

    /// Whether the caller may see a document of `tenant` (its own, or a global one).
    pub fn can_see(&self, tenant: &str) -> bool {
        self.is_operator() || tenant == self.tenant || tenant == GLOBAL
    }

    /// Whether the caller may change a document of `tenant` (its own; global ones only as
    /// the operator).
    pub fn can_write(&self, tenant: &str) -> bool {
        self.is_operator() || tenant == self.tenant
    }

    /// Checks a tenant named in a path: another tenant's answers 403.
    ///
    /// # Errors
    /// [`AppError::Forbidden`].
    pub fn check_tenant_path(&self, tenant: &str) -> Result<(), AppError> {
        if self.is_operator() || self.tenant == tenant {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "the token is for tenant `{}`, not {}",
                self.tenant,
                Quoted(tenant)
            )))
        }
    }
}

/// Whether `tenant` is a valid tenant id (SPEC §1: `[A-Za-z0-9._-]{1,64}`).
pub fn valid_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The algorithms the host verifies (SPEC §13).
pub const ALGORITHMS: &[Algorithm] = &[Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// How long a verified token is taken on trust without checking its signature again
/// (never past its `exp`).
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Most verified tokens remembered; when full, the memory is emptied.
pub const TOKEN_CACHE_MAX: usize = 10_000;

/// A verified token's caller, remembered by the token's text.
#[derive(Debug)]
struct Verified {
    caller: Caller,
    /// The token's `exp` (seconds since the epoch).
    exp: u64,
    /// Remembered until.
    until: std::time::Instant,
}

/// Verified tokens by their exact text: a service sends the same token with every
/// request, and checking its signature (Ed25519, ECDSA or RSA) each time costs more
/// than the rest of the request's auth. Bounded in size and age.
#[derive(Debug, Default)]
struct TokenCache {
    map: parking_lot::Mutex<std::collections::HashMap<Box<str>, Verified>>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    fn get(&self, token: &str) -> Option<Caller> {
        let mut map = self.map.lock();
        let fresh = map
            .get(token)
            .map(|v| std::time::Instant::now() < v.until && unix_now() < v.exp)?;
        if fresh {
            map.get(token).map(|v| v.caller.clone())
        } else {
            map.remove(token);
            None
        }
    }

    fn put(&self, token: &str, caller: &Caller, exp: u64) {
        let mut map = self.map.lock();
        if map.len() >= TOKEN_CACHE_MAX {
            map.clear();
        }
        map.insert(
            token.into(),
            Verified {
                caller: caller.clone(),
                exp,
                until: std::time::Instant::now() + TOKEN_CACHE_TTL,
            },
        );
    }
}

/// Verifies bearer tokens against a key set and the configured issuer and audience.
#[derive(Debug)]
pub struct Verifier {
    keys: KeySet,
    issuer: Option<String>,
    audience: Option<String>,
    verified: TokenCache,
}

impl Verifier {
    /// A verifier over `keys`; `issuer` and `audience`, when set, must match the token's.
    pub fn new(keys: KeySet, issuer: Option<String>, audience: Option<String>) -> Self {
        Verifier {
            keys,
            issuer,
            audience,
            verified: TokenCache::default(),
        }
    }

    /// Verifies `token` and returns its caller. A token verified within the last
    /// [`TOKEN_CACHE_TTL`] and not expired since is taken on trust (the same text, so the
    /// same signature, claims and key id); only valid tokens are remembered.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] saying what is wrong (never which key would have
    /// matched).
    pub async fn verify(&self, token: &str) -> Result<Caller, AppError> {
        if let Some(caller) = self.verified.get(token) {
            return Ok(caller);
        }
        let verified = self.verify_uncached(token).await?;
        self.verified.put(token, &verified.caller, verified.exp);
        Ok(verified.caller)
    }

    /// Verifies `token` every time (never from the memory of verified tokens) and
    /// returns its caller, its `exp` and all its claims: for sign-ins, which need the
    /// expiry and, for ID tokens, the `nonce`.
    ///
    /// # Errors
    /// As [`Verifier::verify`].
    pub async fn verify_token(&self, token: &str) -> Result<VerifiedToken, AppError> {
        self.verify_uncached(token).await
    }

    async fn verify_uncached(&self, token: &str) -> Result<VerifiedToken, AppError> {
        let unauthenticated = |m: String| AppError::Unauthenticated(m);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| unauthenticated(format!("the token cannot be read: {e}")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(unauthenticated(format!(
                "tokens signed with `{:?}` are not accepted (EdDSA, ES256 or RS256)",
                header.alg
            )));
        }
        let key = self
            .keys
            .find(header.kid.as_deref(), header.alg)
            .await
            .ok_or_else(|| {
                unauthenticated(match &header.kid {
                    Some(kid) => format!("no key {} for `{:?}` is known", Quoted(kid), header.alg),
                    None => format!("no key for `{:?}` is known", header.alg),
                })
            })?;
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| unauthenticated(describe(&e)))?;
        let all = data.claims;
        let claims: Claims = serde_json::from_value(all.clone())
            .map_err(|e| unauthenticated(format!("the token's claims are incomplete: {e}")))?;
        if claims.tenant_id != GLOBAL && !valid_tenant(&claims.tenant_id) {
            return Err(unauthenticated(
                "the token's `tenant_id` is not a tenant id".to_owned(),
            ));
        }
        if claims.sub.is_empty() || claims.sub.len() > 128 {
            return Err(unauthenticated(
                "the token's `sub` must be 1 to 128 characters".to_owned(),
            ));
        }
        let mut roles = BTreeSet::new();
        for name in &claims.roles {
            let role = Role::parse(name).ok_or_else(|| {
                unauthenticated(format!("the token names an unknown role {}", Quoted(name)))
            })?;
            roles.insert(role);
        }
        Ok(VerifiedToken {
            caller: Caller {
                tenant: claims.tenant_id,
                sub: claims.sub,
                roles,
            },
            exp: claims.exp,
            claims: all,
        })
    }
}

/// A token checked by [`Verifier::verify_token`].
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Its caller.
    pub caller: Caller,
    /// Its `exp` (seconds since the epoch).
    pub exp: u64,
    /// Every claim it carries.
    pub claims: serde_json::Value,
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::InvalidSignature => "the token's signature is invalid".to_owned(),
        ErrorKind::InvalidIssuer => "the token's issuer is not the one configured".to_owned(),
        ErrorKind::InvalidAudience => "the token's audience is not the one configured".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the token lacks the required claim `{claim}`")
        }
        _ => format!("the token is invalid: {e}"),
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            tenant: "acme".to_owned(),
            sub: "svc".to_owned(),
            roles: [Role::Service].into_iter().collect(),
        }
    }

    #[test]
    fn verified_tokens_are_remembered_until_they_expire_and_the_memory_is_bounded() {
        let cache = TokenCache::default();
        assert_eq!(cache.get("t1"), None);
        cache.put("t1", &caller(), unix_now() + 3600);
        assert_eq!(cache.get("t1"), Some(caller()));
        // Expired since it was verified: forgotten, so it is verified again (and refused).
        cache.put("t2", &caller(), unix_now().saturating_sub(1));
        assert_eq!(cache.get("t2"), None);
        assert!(!cache.map.lock().contains_key("t2"));
        for i in 0..TOKEN_CACHE_MAX + 5 {
            cache.put(&format!("x{i}"), &caller(), unix_now() + 3600);
        }
        assert!(cache.map.lock().len() <= TOKEN_CACHE_MAX);
    }
}
