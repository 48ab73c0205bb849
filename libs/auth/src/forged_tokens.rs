//! The forged-token corpus: every way an attacker tried to make a token the
//! services would accept without tenancy's signing key. Each must be refused
//! by [`TokenVerifier::verify`]; a genuine token is checked alongside, so the
//! corpus cannot pass by refusing everything.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::testing::FixedKeys;
use crate::tokens::{AUDIENCE, ISSUER};
use crate::{
    Principal, PublicKey, Role, Subject, TokenSigner, TokenVerifier, generate_signing_key,
};

fn b64(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

fn b64_json(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

/// Valid claims for a user principal, as tenancy would sign them.
fn claims() -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("user:{}", Uuid::now_v7()),
        "iat": now,
        "exp": now + 300,
        "ws": Uuid::now_v7().to_string(),
        "org": Uuid::now_v7().to_string(),
        "role": "editor",
        "akid": Uuid::now_v7().to_string(),
        "akv": 1,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn ed_key(secret: [u8; 32]) -> EncodingKey {
    let der = SigningKey::from_bytes(&secret).to_pkcs8_der().unwrap();
    EncodingKey::from_ed_der(der.as_bytes())
}

fn sign_ed(kid: Option<&str>, claims: &Value, secret: [u8; 32]) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &ed_key(secret)).unwrap()
}

fn sign_hmac(alg: Algorithm, kid: &str, claims: &Value, key: &[u8]) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
}

/// A token with any header and claims and an arbitrary signature segment.
fn raw(header: &Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64_json(header), b64_json(claims))
}

#[tokio::test]
async fn every_forged_token_is_refused() {
    let key = generate_signing_key();
    let impostor = generate_signing_key();
    let verifier = TokenVerifier::new(Arc::new(FixedKeys(vec![PublicKey {
        kid: key.kid.clone(),
        public: key.public,
    }])));
    let kid = key.kid.as_str();

    // The control: tenancy's own token verifies.
    let principal = Principal {
        subject: Subject::User(Uuid::now_v7()),
        workspace_id: Some(Uuid::now_v7()),
        organization_id: Some(Uuid::now_v7()),
        role: Some(Role::Editor),
        api_key_id: Some(Uuid::now_v7()),
        api_key_version: Some(1),
    };
    let signer = TokenSigner::new(key.kid.clone(), key.secret).unwrap();
    let (genuine, _) = signer.sign(&principal, Duration::from_secs(60)).unwrap();
    assert_eq!(verifier.verify(&genuine).await.unwrap(), principal);
    let genuine_claims = claims();
    let good = sign_ed(Some(kid), &genuine_claims, key.secret);
    assert!(
        verifier.verify(&good).await.is_ok(),
        "the corpus's own base"
    );
    let good_parts: Vec<&str> = good.split('.').collect();
    let good_signature = good_parts[2].to_owned();

    let mut forged: Vec<(String, String)> = Vec::new();
    let mut add = |label: &str, token: String| forged.push((label.to_owned(), token));

    // 1. `alg: none` in every casing, with no signature, the real one, junk.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        add(&format!("alg {alg}, empty"), raw(&header, &claims(), ""));
        add(
            &format!("alg {alg}, real signature"),
            raw(&header, &genuine_claims, &good_signature),
        );
        add(&format!("alg {alg}, junk"), raw(&header, &claims(), "AAAA"));
    }
    // 2. HMAC with what a verifier knows: the public key in every encoding,
    //    the key id, nothing.
    let public_forms: Vec<(&str, Vec<u8>)> = vec![
        ("raw public key", key.public.to_vec()),
        ("base64url public key", b64(&key.public).into_bytes()),
        (
            "base64 public key",
            STANDARD.encode(key.public).into_bytes(),
        ),
        (
            "hex public key",
            key.public
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
                .into_bytes(),
        ),
        ("kid", kid.as_bytes().to_vec()),
        ("empty key", Vec::new()),
    ];
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for (what, secret) in &public_forms {
            add(
                &format!("{alg:?} with {what}"),
                sign_hmac(alg, kid, &claims(), secret),
            );
        }
    }
    // 3. Other algorithms named over a real EdDSA signature.
    for alg in [
        "RS256", "ES256", "PS256", "HS256", "EdDSA ", "eddsa", "Ed25519", "",
    ] {
        add(
            &format!("alg {alg:?} over a real signature"),
            raw(
                &json!({"alg": alg, "typ": "JWT", "kid": kid}),
                &genuine_claims,
                &good_signature,
            ),
        );
    }
    // 4. Signed with another key: the real kid, unknown kids, odd kids, no
    //    kid, and a key offered in the header itself.
    let long_kid = "k".repeat(10_000);
    let unknown = Uuid::now_v7().to_string();
    let kids: Vec<(&str, Option<&str>)> = vec![
        ("real kid", Some(kid)),
        ("impostor's kid", Some(impostor.kid.as_str())),
        ("unknown kid", Some(unknown.as_str())),
        ("empty kid", Some("")),
        ("path kid", Some("../../../../etc/passwd")),
        ("sql kid", Some("' OR '1'='1")),
        ("long kid", Some(long_kid.as_str())),
        ("nul kid", Some("\u{0}")),
        ("no kid", None),
    ];
    for (what, header_kid) in &kids {
        add(
            &format!("another key, {what}"),
            sign_ed(*header_kid, &claims(), impostor.secret),
        );
    }
    let upper_kid = kid.to_uppercase();
    add(
        "real key, kid in upper case",
        sign_ed(Some(&upper_kid), &claims(), key.secret),
    );
    add(
        "real key, kid with a space",
        sign_ed(Some(&format!("{kid} ")), &claims(), key.secret),
    );
    add("real key, no kid", sign_ed(None, &claims(), key.secret));
    for header_key in ["jwk", "jku", "x5u", "x5c"] {
        let mut header = json!({"alg": "EdDSA", "typ": "JWT", "kid": impostor.kid});
        header[header_key] = match header_key {
            "jwk" => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&impostor.public)}),
            "x5c" => json!([STANDARD.encode(impostor.public)]),
            _ => json!("http://127.0.0.1:1/keys.json"),
        };
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims()));
        let signature = {
            use ed25519_dalek::Signer;
            SigningKey::from_bytes(&impostor.secret).sign(signing_input.as_bytes())
        };
        add(
            &format!("own key offered in {header_key}"),
            format!("{signing_input}.{}", b64(&signature.to_bytes())),
        );
    }
    // 5. The real key, but claims that must not pass.
    let now = chrono::Utc::now().timestamp();
    let bad_claims: Vec<(&str, Value)> = vec![
        (
            "expired an hour ago",
            with(claims(), "exp", json!(now - 3600)),
        ),
        (
            "expired a minute ago",
            with(claims(), "exp", json!(now - 60)),
        ),
        ("no exp", without(claims(), "exp")),
        ("exp as text", with(claims(), "exp", json!("9999999999"))),
        ("exp null", with(claims(), "exp", Value::Null)),
        (
            "other issuer",
            with(claims(), "iss", json!("tyboo-tenancy-evil")),
        ),
        ("no issuer", without(claims(), "iss")),
        (
            "issuer in capitals",
            with(claims(), "iss", json!("TYBOO-TENANCY")),
        ),
        ("other audience", with(claims(), "aud", json!("other"))),
        ("no audience", without(claims(), "aud")),
        (
            "audience list without us",
            with(claims(), "aud", json!(["a", "b"])),
        ),
        ("no subject", without(claims(), "sub")),
        ("subject garbage", with(claims(), "sub", json!("root"))),
        (
            "subject user without id",
            with(claims(), "sub", json!("user:")),
        ),
        (
            "subject user with bad id",
            with(claims(), "sub", json!("user:42")),
        ),
        (
            "subject of unknown kind",
            with(claims(), "sub", json!(format!("admin:{}", Uuid::now_v7()))),
        ),
        ("subject number", with(claims(), "sub", json!(42))),
        ("role superuser", with(claims(), "role", json!("superuser"))),
        ("role in capitals", with(claims(), "role", json!("OWNER "))),
        ("role number", with(claims(), "role", json!(4))),
        ("workspace not a uuid", with(claims(), "ws", json!("*"))),
        (
            "workspace list",
            with(claims(), "ws", json!([Uuid::now_v7().to_string()])),
        ),
        (
            "organization not a uuid",
            with(claims(), "org", json!("all")),
        ),
        ("api key id not a uuid", with(claims(), "akid", json!("x"))),
        ("api key version text", with(claims(), "akv", json!("one"))),
        ("claims an array", json!([1, 2, 3])),
        ("claims a string", json!("admin")),
    ];
    for (what, bad) in &bad_claims {
        add(
            &format!("real key, {what}"),
            sign_ed(Some(kid), bad, key.secret),
        );
    }
    // 6. A genuine token, tampered with after signing.
    for (what, key_name, value) in [
        ("role raised", "role", json!("owner")),
        ("workspace swapped", "ws", json!(Uuid::now_v7().to_string())),
        (
            "subject swapped",
            "sub",
            json!(format!("user:{}", Uuid::now_v7())),
        ),
        ("expiry extended", "exp", json!(now + 86_400)),
        ("service subject", "sub", json!("service:executor")),
    ] {
        add(
            &format!("tampered: {what}"),
            format!(
                "{}.{}.{}",
                good_parts[0],
                b64_json(&with(genuine_claims.clone(), key_name, value)),
                good_signature
            ),
        );
    }
    let flipped = {
        let mut bytes = URL_SAFE_NO_PAD.decode(&good_signature).unwrap();
        bytes[0] ^= 1;
        b64(&bytes)
    };
    let structural = vec![
        (
            "signature one bit off",
            format!("{}.{}.{flipped}", good_parts[0], good_parts[1]),
        ),
        ("signature cut by one", good[..good.len() - 1].to_owned()),
        (
            "signature halved",
            good[..good.len() - good_signature.len() / 2].to_owned(),
        ),
        (
            "signature empty",
            format!("{}.{}.", good_parts[0], good_parts[1]),
        ),
        ("signature of another token", {
            let other = sign_ed(Some(kid), &claims(), key.secret);
            format!(
                "{}.{}.{}",
                good_parts[0],
                good_parts[1],
                other.split('.').nth(2).unwrap()
            )
        }),
        (
            "two segments",
            format!("{}.{}", good_parts[0], good_parts[1]),
        ),
        ("four segments", format!("{good}.{good_signature}")),
        (
            "header and payload swapped",
            format!("{}.{}.{}", good_parts[1], good_parts[0], good_signature),
        ),
        (
            "padded segments",
            format!("{}=.{}=.{}=", good_parts[0], good_parts[1], good_signature),
        ),
        (
            "standard base64 signature",
            format!(
                "{}.{}.{}",
                good_parts[0],
                good_parts[1],
                STANDARD.encode(URL_SAFE_NO_PAD.decode(&good_signature).unwrap())
            ),
        ),
        (
            "space inside",
            format!("{} .{}.{}", good_parts[0], good_parts[1], good_signature),
        ),
        ("leading Bearer", format!("Bearer {good}")),
        ("three dots", "...".to_owned()),
        ("empty", String::new()),
        ("not base64", "!!!.@@@.###".to_owned()),
        (
            "header not JSON",
            format!("{}.{}.{}", b64(b"alg=EdDSA"), good_parts[1], good_signature),
        ),
        (
            "payload not JSON",
            format!("{}.{}.{}", good_parts[0], b64(b"sub=admin"), good_signature),
        ),
        (
            "an API key",
            "tyb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        ("a megabyte", "a".repeat(1 << 20)),
        ("unicode", "токен.токен.токен".to_owned()),
    ];
    for (what, token) in structural {
        add(what, token);
    }

    assert!(forged.len() >= 93, "{} forged tokens", forged.len());
    let mut accepted = Vec::new();
    for (label, token) in &forged {
        if let Ok(principal) = verifier.verify(token).await {
            accepted.push(format!("{label}: {principal:?}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "forged tokens accepted:\n{}",
        accepted.join("\n")
    );
    // After all of that the genuine token still verifies: nothing forged
    // poisoned the key cache.
    assert!(verifier.verify(&genuine).await.is_ok());
}
