//! Token verification: keys, claims, issuer and audience, JWKS files.

use mmm_host::auth::keys::parse_jwks;
use mmm_host::auth::{KeySet, LocalKey, Role, Verifier};

use crate::common::claims;

fn verifier(issuer: Option<&str>, audience: Option<&str>) -> (LocalKey, Verifier) {
    let key = LocalKey::from_seed([3; 32]);
    let v = Verifier::new(
        KeySet::fixed(vec![key.verification_key()]),
        issuer.map(str::to_owned),
        audience.map(str::to_owned),
    );
    (key, v)
}

#[tokio::test]
async fn a_minted_token_names_its_caller() {
    let (key, v) = verifier(None, None);
    let token = key
        .mint(&claims("acme", &["author", "approver"], "alice", 60))
        .unwrap();
    let caller = v.verify(&token).await.unwrap();
    assert_eq!(
        (caller.tenant.as_str(), caller.sub.as_str()),
        ("acme", "alice")
    );
    assert!(caller.roles.contains(&Role::Author) && caller.roles.contains(&Role::Approver));
    assert!(!caller.is_operator());
}

#[tokio::test]
async fn bad_tokens_are_refused_with_a_reason() {
    let (key, v) = verifier(Some("https://idp"), Some("mmm"));
    let refuse = |token: String| {
        let v = &v;
        async move { v.verify(&token).await.unwrap_err().to_string() }
    };
    let mut c = claims("acme", &["admin"], "a", 60);
    // Neither `iss` nor `aud`: one of them is named (which one first is not defined).
    let missing = refuse(key.mint(&c).unwrap()).await;
    assert!(
        missing.contains("required claim `iss`") || missing.contains("required claim `aud`"),
        "{missing}"
    );
    c.aud = Some("mmm".into());
    assert!(refuse(key.mint(&c).unwrap())
        .await
        .contains("required claim `iss`"));
    c.iss = Some("https://other".into());
    c.aud = Some("mmm".into());
    assert!(refuse(key.mint(&c).unwrap()).await.contains("issuer"));
    c.iss = Some("https://idp".into());
    c.aud = Some("else".into());
    assert!(refuse(key.mint(&c).unwrap()).await.contains("audience"));
    c.aud = Some("mmm".into());
    assert!(v.verify(&key.mint(&c).unwrap()).await.is_ok());
    let mut expired = c.clone();
    expired.exp = 1;
    assert!(refuse(key.mint(&expired).unwrap())
        .await
        .contains("expired"));
    let mut role = c.clone();
    role.roles = vec!["root".into()];
    assert!(refuse(key.mint(&role).unwrap()).await.contains("`root`"));
    let mut tenant = c.clone();
    tenant.tenant_id = "no spaces allowed".into();
    assert!(refuse(key.mint(&tenant).unwrap())
        .await
        .contains("tenant_id"));
    let other = LocalKey::from_seed([4; 32]);
    assert!(refuse(other.mint(&c).unwrap()).await.contains("no key"));
    // A token signed with HS256 is refused before any key is looked at.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(b"guess").unwrap(),
    )
    .unwrap();
    assert!(refuse(hs).await.contains("not accepted"));
}

#[test]
fn jwks_files_keep_the_accepted_keys_and_refuse_broken_ones() {
    let jwks = r#"{"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw", "e": "AQAB"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"}
    ]}"#;
    let keys = parse_jwks(jwks).unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
    assert_eq!(
        kids,
        ["ed", "ec", "rsa"],
        "HMAC and malformed keys are skipped"
    );
    assert!(parse_jwks(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
        .unwrap_err()
        .contains("no EdDSA"));
    assert!(parse_jwks("[]").unwrap_err().contains("not a JWKS"));
}

#[test]
fn the_local_key_is_created_once_readable_by_its_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("mmm-data");
    let first = LocalKey::load_or_create(&dir).unwrap();
    let second = LocalKey::load_or_create(&dir).unwrap();
    assert_eq!(first.verification_key().kid, second.verification_key().kid);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(mmm_host::auth::keys::LOCAL_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700, "the data directory is the owner's");
    }
}

/// A JWKS URL is fetched at start and again when a token names an unknown `kid` — at most
/// once per interval, so a stream of bad tokens cannot hammer the identity provider.
#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let first = LocalKey::from_seed([5; 32]);
    let rotated = LocalKey::from_seed([6; 32]);
    let jwk = |key: &LocalKey| {
        let k = key.verification_key();
        let jwk =
            jsonwebtoken::jwk::Jwk::from_decoding_key(&k.key, Some(jsonwebtoken::Algorithm::EdDSA))
                .unwrap();
        let mut v = serde_json::to_value(jwk).unwrap();
        v["kid"] = k.kid.unwrap().into();
        v
    };
    let served = Arc::new(parking_lot_free::Slot::new(
        serde_json::json!({"keys": [jwk(&first)]}),
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let app = {
        let served = Arc::clone(&served);
        let fetches = Arc::clone(&fetches);
        axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let served = Arc::clone(&served);
                let fetches = Arc::clone(&fetches);
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(served.get())
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let keys = KeySet::from_jwks_url(&url, std::time::Duration::from_millis(0))
        .await
        .unwrap();
    let v = Verifier::new(keys, None, None);
    assert!(v
        .verify(&first.mint(&claims("acme", &["admin"], "a", 60)).unwrap())
        .await
        .is_ok());
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The provider rotates its key: the new kid is unknown, so the set is fetched again.
    served.set(serde_json::json!({"keys": [jwk(&first), jwk(&rotated)]}));
    assert!(v
        .verify(&rotated.mint(&claims("acme", &["admin"], "a", 60)).unwrap())
        .await
        .is_ok());
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // With an interval, unknown kids refetch once and then not again until it passes.
    let keys = KeySet::from_jwks_url(&url, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let v = Verifier::new(keys, None, None);
    let before = fetches.load(Ordering::SeqCst);
    let stranger = LocalKey::from_seed([8; 32]);
    for _ in 0..5 {
        assert!(v
            .verify(&stranger.mint(&claims("acme", &["admin"], "a", 60)).unwrap())
            .await
            .is_err());
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        before,
        "no refetch within the interval"
    );
}

/// A value shared between the test and its loopback server.
mod parking_lot_free {
    pub struct Slot(std::sync::Mutex<serde_json::Value>);

    impl Slot {
        pub fn new(v: serde_json::Value) -> Self {
            Slot(std::sync::Mutex::new(v))
        }
        pub fn get(&self) -> serde_json::Value {
            self.0.lock().unwrap().clone()
        }
        pub fn set(&self, v: serde_json::Value) {
            *self.0.lock().unwrap() = v;
        }
    }
}

/// Tokens an identity provider signs with ES256 or RS256 verify like the host's own
/// EdDSA tokens (test keys from `tests/keys/`, made with `openssl genpkey`).
#[tokio::test]
async fn es256_and_rs256_tokens_verify() {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let cases = [
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&read("es256.pem")).unwrap(),
            DecodingKey::from_ec_pem(&read("es256.pub.pem")).unwrap(),
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&read("rs256.pem")).unwrap(),
            DecodingKey::from_rsa_pem(&read("rs256.pub.pem")).unwrap(),
        ),
    ];
    for (alg, signing, verifying) in cases {
        let v = Verifier::new(
            KeySet::fixed(vec![mmm_host::auth::keys::Key {
                kid: Some("idp-1".into()),
                alg,
                key: verifying,
            }]),
            None,
            None,
        );
        let mut header = Header::new(alg);
        header.kid = Some("idp-1".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims("acme", &["service"], "ci-bot", 60),
            &signing,
        )
        .unwrap();
        let caller = v
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(caller.sub, "ci-bot");
        // The same key under another algorithm is refused.
        let mut wrong = Header::new(alg);
        wrong.kid = Some("idp-2".into());
        let token = jsonwebtoken::encode(
            &wrong,
            &claims("acme", &["service"], "ci-bot", 60),
            &signing,
        )
        .unwrap();
        assert!(v.verify(&token).await.is_err(), "{alg:?}: unknown kid");
    }
}
