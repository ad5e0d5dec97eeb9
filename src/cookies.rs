//! The session cookie: reading the id out of a `Cookie:` header (checking its signature)
//! and formatting `Set-Cookie:` values. Knows nothing about stores.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::Cookie;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::id::SessionId;

/// Itsdangerous' salt for Flask-Session's signer.
const FLASK_SALT: &[u8] = b"flask-session";

/// How the id is carried in the cookie value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// The bare id (Flask-Session's default, `SESSION_USE_SIGNER = False`).
    Plain,
    /// `id.sig`, sig = base64url(HMAC-SHA256(secret, id)). The default when a secret is set.
    Signed,
    /// itsdangerous-compatible `id.sig` as Flask-Session writes with `SESSION_USE_SIGNER = True`.
    Flask,
}

impl CookieMode {
    /// Parses `plain`, `signed` or `flask`.
    pub fn from_name(name: &str) -> Option<CookieMode> {
        match name.to_ascii_lowercase().as_str() {
            "plain" => Some(CookieMode::Plain),
            "signed" => Some(CookieMode::Signed),
            "flask" => Some(CookieMode::Flask),
            _ => None,
        }
    }
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=None` (browsers then require `Secure`, which is added).
    None,
}

impl SameSite {
    /// Parses `Lax`, `Strict` or `None`, in any case.
    pub fn from_name(name: &str) -> Option<SameSite> {
        match name.to_ascii_lowercase().as_str() {
            "lax" => Some(SameSite::Lax),
            "strict" => Some(SameSite::Strict),
            "none" => Some(SameSite::None),
            _ => None,
        }
    }
}

/// A signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the secret's bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything about the session cookie: its name, attributes, and how its value is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Cookie name (default `session`).
    pub name: String,
    /// `Domain` attribute (default none: the exact host).
    pub domain: Option<String>,
    /// `Path` attribute (default `/`).
    pub path: String,
    /// `HttpOnly` (default on).
    pub http_only: bool,
    /// `Secure` (default off, so the demo works over plain HTTP; turn it on in production).
    pub secure: bool,
    /// `SameSite` (default `Lax`).
    pub same_site: Option<SameSite>,
    /// `Partitioned` (CHIPS; default off).
    pub partitioned: bool,
    /// How the value is signed.
    pub mode: CookieMode,
    /// Signing secrets: the first signs, every one verifies (rotation).
    pub secrets: Vec<Secret>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "session".into(),
            domain: None,
            path: "/".into(),
            http_only: true,
            secure: false,
            same_site: Some(SameSite::Lax),
            partitioned: false,
            mode: CookieMode::Plain,
            secrets: Vec::new(),
        }
    }
}

/// What the request's `Cookie:` header said about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieId {
    /// No session cookie at all.
    Absent,
    /// A session cookie whose value was refused (bad shape or bad signature).
    Invalid,
    /// A well-formed, correctly signed id.
    Valid(SessionId),
}

impl CookieConfig {
    /// Finds the session cookie in a `Cookie:` header and checks it.
    ///
    /// When several cookies carry the session's name, the first acceptable one wins.
    pub fn read(&self, header: Option<&str>) -> CookieId {
        let Some(header) = header else {
            return CookieId::Absent;
        };
        let mut found = CookieId::Absent;
        for cookie in Cookie::split_parse(header).flatten() {
            if cookie.name() != self.name {
                continue;
            }
            match self.verify(cookie.value()) {
                Some(id) => return CookieId::Valid(id),
                None => found = CookieId::Invalid,
            }
        }
        found
    }

    /// Checks one cookie value; `Some(id)` if it is well-formed and correctly signed.
    pub fn verify(&self, value: &str) -> Option<SessionId> {
        match self.mode {
            CookieMode::Plain => SessionId::parse(value),
            CookieMode::Signed | CookieMode::Flask => {
                let (id, signature) = value.rsplit_once('.')?;
                let id = SessionId::parse(id)?;
                let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
                self.secrets
                    .iter()
                    .any(|secret| self.signature_matches(secret, id.as_str(), &signature))
                    .then_some(id)
            }
        }
    }

    /// The cookie value for `id` in this mode, signed with the first secret.
    pub fn value(&self, id: &SessionId) -> String {
        match (self.mode, self.secrets.first()) {
            (CookieMode::Plain, _) | (_, None) => id.as_str().to_owned(),
            (_, Some(secret)) => {
                let tag = self.sign(secret, id.as_str());
                format!("{}.{}", id.as_str(), URL_SAFE_NO_PAD.encode(tag))
            }
        }
    }

    fn sign(&self, secret: &Secret, id: &str) -> Vec<u8> {
        match self.mode {
            CookieMode::Flask => flask_mac(secret, id).finalize().into_bytes().to_vec(),
            CookieMode::Signed | CookieMode::Plain => {
                sha256_mac(secret, id).finalize().into_bytes().to_vec()
            }
        }
    }

    /// Constant-time check through the `hmac` crate; never compares MACs with `==`.
    fn signature_matches(&self, secret: &Secret, id: &str, tag: &[u8]) -> bool {
        match self.mode {
            CookieMode::Flask => flask_mac(secret, id).verify_slice(tag).is_ok(),
            CookieMode::Signed | CookieMode::Plain => {
                sha256_mac(secret, id).verify_slice(tag).is_ok()
            }
        }
    }

    /// A `Set-Cookie:` value carrying `id`. `max_age` makes it a persistent cookie
    /// (`Max-Age` and the matching `Expires`); `None` makes it a browser-session cookie.
    pub fn set_cookie(&self, id: &SessionId, max_age: Option<std::time::Duration>) -> String {
        let mut cookie = self.base(self.value(id));
        if let Some(max_age) = max_age {
            let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            let max_age = Duration::seconds(seconds);
            cookie.set_max_age(max_age);
            cookie.set_expires(OffsetDateTime::now_utc() + max_age);
        }
        cookie.to_string()
    }

    /// A `Set-Cookie:` value that makes the browser drop the session cookie.
    pub fn removal_cookie(&self) -> String {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        cookie.to_string()
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::new(self.name.clone(), value);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_http_only(self.http_only);
        cookie.set_secure(self.secure || self.same_site == Some(SameSite::None));
        cookie.set_same_site(self.same_site.map(|s| match s {
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::None => cookie::SameSite::None,
        }));
        cookie.set_partitioned(self.partitioned);
        cookie
    }
}

fn sha256_mac(secret: &Secret, id: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac
}

/// itsdangerous' `Signer(secret, salt="flask-session", key_derivation="hmac")` over SHA-1.
fn flask_mac(secret: &Secret, id: &str) -> Hmac<Sha1> {
    let mut derive =
        Hmac::<Sha1>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    derive.update(FLASK_SALT);
    let key = derive.finalize().into_bytes();
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_ID: &str = "Q3Yx2n8kVq1n0sEJ8y0bH3mO0cU9kG2x1YpHqgE7TfA";

    fn config(mode: CookieMode, secrets: &[&str]) -> CookieConfig {
        CookieConfig {
            mode,
            secrets: secrets.iter().map(|s| Secret::new(s.as_bytes())).collect(),
            ..CookieConfig::default()
        }
    }

    #[test]
    fn flask_mode_matches_the_itsdangerous_vector() {
        let flask = config(CookieMode::Flask, &["dev-secret"]);
        let id = SessionId::parse(VECTOR_ID).unwrap();
        assert_eq!(
            flask.value(&id),
            "Q3Yx2n8kVq1n0sEJ8y0bH3mO0cU9kG2x1YpHqgE7TfA.o6_4zAMpYGkrgTvFCVh-xnGzkHY"
        );
        let header = format!("other=1; session={}", flask.value(&id));
        assert_eq!(flask.read(Some(&header)), CookieId::Valid(id));
    }

    #[test]
    fn signed_mode_round_trips_and_rotates() {
        let old = config(CookieMode::Signed, &["old-secret"]);
        let rotated = config(CookieMode::Signed, &["new-secret", "old-secret"]);
        let id = SessionId::generate();
        let old_value = old.value(&id);
        assert_eq!(rotated.verify(&old_value), Some(id.clone()));
        assert_ne!(rotated.value(&id), old_value, "the first secret signs");
        let dropped = config(CookieMode::Signed, &["new-secret"]);
        assert_eq!(dropped.verify(&old_value), None);
    }

    #[test]
    fn tampering_and_malformed_values_are_refused() {
        let signed = config(CookieMode::Signed, &["s3cret"]);
        let id = SessionId::generate();
        let good = signed.value(&id);
        let other = SessionId::generate();
        let (_, sig) = good.rsplit_once('.').unwrap();
        let swapped_id = format!("{}.{sig}", other.as_str());
        let mut flipped = good.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        let bad = [
            id.as_str().to_owned(),
            swapped_id,
            flipped,
            format!("{good}x"),
            format!("{}.", id.as_str()),
            format!(".{sig}"),
            "../../etc/passwd.abc".into(),
            String::new(),
            "a".repeat(5000),
        ];
        for value in &bad {
            assert_eq!(signed.verify(value), None, "{value:?}");
            let header = format!("session={value}");
            assert_eq!(signed.read(Some(&header)), CookieId::Invalid);
        }
        // A Flask signature is not a valid signed-mode signature for the same secret.
        let flask = config(CookieMode::Flask, &["s3cret"]);
        assert_eq!(signed.verify(&flask.value(&id)), None);
        assert_eq!(flask.verify(&good), None);
    }

    #[test]
    fn header_parsing_handles_absent_garbage_and_duplicates() {
        let plain = CookieConfig::default();
        let id = SessionId::generate();
        assert_eq!(plain.read(None), CookieId::Absent);
        assert_eq!(plain.read(Some("")), CookieId::Absent);
        assert_eq!(plain.read(Some(";;; =; x")), CookieId::Absent);
        assert_eq!(plain.read(Some("sessionx=abc")), CookieId::Absent);
        let header = format!("session=bogus; session={}", id.as_str());
        assert_eq!(plain.read(Some(&header)), CookieId::Valid(id));
    }

    #[test]
    fn set_cookie_carries_every_attribute() {
        let cfg = CookieConfig {
            name: "sid".into(),
            domain: Some("example.org".into()),
            path: "/app".into(),
            secure: true,
            same_site: Some(SameSite::Strict),
            partitioned: true,
            ..config(CookieMode::Signed, &["k"])
        };
        let id = SessionId::generate();
        let header = cfg.set_cookie(&id, Some(std::time::Duration::from_secs(172_800)));
        for part in [
            "sid=",
            "; HttpOnly",
            "; SameSite=Strict",
            "; Partitioned",
            "; Secure",
            "; Path=/app",
            "; Domain=example.org",
            "; Max-Age=172800",
            "; Expires=",
        ] {
            assert!(
                header.contains(part.trim_end_matches("17")),
                "{part} in {header}"
            );
        }
        let session_cookie = cfg.set_cookie(&id, None);
        assert!(!session_cookie.contains("Expires") && !session_cookie.contains("Max-Age"));
        let removal = cfg.removal_cookie();
        assert!(
            removal.starts_with("sid=;") && removal.contains("Max-Age=0"),
            "{removal}"
        );
        let none = CookieConfig {
            same_site: Some(SameSite::None),
            ..CookieConfig::default()
        };
        assert!(none.set_cookie(&id, None).contains("; Secure"));
    }
}
