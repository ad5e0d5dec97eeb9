//! The session cookie: reading the id out of a `Cookie:` header (checking its signature)
//! and formatting `Set-Cookie:` values. Knows nothing about stores.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::Cookie;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::SessionId;

/// Itsdangerous' salt for Flask-Session's signer.
const FLASK_SALT: &[u8] = b"flask-session";

/// The longest cookie lifetime browsers keep (RFC 6265bis caps `Max-Age` and `Expires` at
/// 400 days); also the longest idle or absolute lifetime a manager accepts.
pub const MAX_COOKIE_AGE: std::time::Duration = std::time::Duration::from_secs(400 * 24 * 3600);

/// The longest `Path` accepted (RFC 6265bis: browsers ignore attribute values over 1024 bytes).
const MAX_PATH_LEN: usize = 1024;

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
///
/// It keeps the HMAC states keyed with it (both modes'), which each request clones instead
/// of keying HMAC afresh: keying costs as much as signing an id.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    /// HMAC-SHA256 keyed with the secret (signed mode).
    signed: Hmac<Sha256>,
    /// HMAC-SHA1 keyed with the key itsdangerous derives from the secret (flask mode).
    flask: Hmac<Sha1>,
}

impl Secret {
    /// Wraps the secret's bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        let bytes = bytes.into();
        let signed = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC takes keys of any length");
        // itsdangerous' `Signer(secret, salt="flask-session", key_derivation="hmac")`.
        let mut derive =
            Hmac::<Sha1>::new_from_slice(&bytes).expect("HMAC takes keys of any length");
        derive.update(FLASK_SALT);
        let flask = Hmac::<Sha1>::new_from_slice(&derive.finalize().into_bytes())
            .expect("HMAC takes keys of any length");
        Secret {
            bytes,
            signed,
            flask,
        }
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Secret {}

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
    /// Checks the settings together, so that every `Set-Cookie:` this configuration formats
    /// is what it means (docs/DESIGN.md §3):
    ///
    /// - the name is a cookie token (visible ASCII, no separators);
    /// - `Path` starts with `/` and holds only visible ASCII other than `;` (no spaces, no
    ///   control characters: `Path=/; Domain=evil.example` cannot smuggle an attribute),
    ///   at most 1024 bytes;
    /// - `Domain` is a host name: dot-separated labels of letters, digits and `-`
    ///   (international names in their `xn--` form), one leading dot allowed;
    /// - a name starting with `__Secure-` needs `Secure`; one starting with `__Host-` needs
    ///   `Secure`, no `Domain` and `Path=/` (browsers drop such cookies otherwise; the prefixes
    ///   are matched in any case, as browsers do); `Partitioned` needs `Secure` too
    ///   (`SameSite=None` turns `Secure` on by itself);
    /// - `signed` and `flask` modes have at least one secret, and no secret is empty.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        let is_token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !is_token {
            return Err(Error::config(
                "cookie_name",
                format!("{name:?} is not a cookie name"),
            ));
        }
        let path = &self.path;
        if !path.starts_with('/')
            || path.len() > MAX_PATH_LEN
            || !path.bytes().all(|b| b.is_ascii_graphic() && b != b';')
        {
            return Err(Error::config(
                "cookie_path",
                format!(
                    "{path:?} must start with '/' and hold at most {MAX_PATH_LEN} visible ASCII \
                     characters other than ';'"
                ),
            ));
        }
        if let Some(domain) = &self.domain
            && !is_host_name(domain)
        {
            return Err(Error::config(
                "cookie_domain",
                format!(
                    "{domain:?} is not a host name (labels of letters, digits and '-', \
                     in ASCII: xn-- form for international names)"
                ),
            ));
        }
        let secure = self.secure || self.same_site == Some(SameSite::None);
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("__secure-") && !secure {
            return Err(Error::config(
                "cookie_name",
                "a __Secure- cookie needs the Secure attribute",
            ));
        }
        if lower.starts_with("__host-") && (!secure || self.domain.is_some() || path != "/") {
            return Err(Error::config(
                "cookie_name",
                "a __Host- cookie needs the Secure attribute, no Domain and Path=/",
            ));
        }
        if self.partitioned && !secure {
            return Err(Error::config(
                "cookie_partitioned",
                "a Partitioned cookie needs the Secure attribute",
            ));
        }
        if self.mode != CookieMode::Plain && self.secrets.is_empty() {
            return Err(Error::config(
                "secret",
                "signed and flask cookie modes need at least one secret",
            ));
        }
        if self.secrets.iter().any(|secret| secret.bytes.is_empty()) {
            return Err(Error::config("secret", "a secret must not be empty"));
        }
        Ok(())
    }

    /// Finds the session cookie in a `Cookie:` header and checks it.
    ///
    /// When several cookies carry the session's name, the first acceptable one wins.
    pub fn read(&self, header: Option<&str>) -> CookieId {
        self.read_current(header).0
    }

    /// [`read`](CookieConfig::read), and the cookie's value when it is the one
    /// [`value`](CookieConfig::value) writes for the id (signed with the first secret, or a
    /// plain id): a save renewing the cookie writes it again instead of signing anew.
    pub(crate) fn read_current(&self, header: Option<&str>) -> (CookieId, Option<String>) {
        let Some(header) = header else {
            return (CookieId::Absent, None);
        };
        let mut found = CookieId::Absent;
        for cookie in Cookie::split_parse(header).flatten() {
            if cookie.name() != self.name {
                continue;
            }
            match self.check(cookie.value()) {
                Some((id, current)) => {
                    let value = current.then(|| cookie.value().to_owned());
                    return (CookieId::Valid(id), value);
                }
                None => found = CookieId::Invalid,
            }
        }
        (found, None)
    }

    /// Checks one cookie value; `Some(id)` if it is well-formed and correctly signed.
    pub fn verify(&self, value: &str) -> Option<SessionId> {
        self.check(value).map(|(id, _)| id)
    }

    /// [`verify`](CookieConfig::verify), and whether the value is the one this
    /// configuration writes for the id: a plain id, or signed with the first secret (the
    /// base64url decoder takes only canonical text, so the same tag has the same text).
    fn check(&self, value: &str) -> Option<(SessionId, bool)> {
        match self.mode {
            CookieMode::Plain => SessionId::parse(value).map(|id| (id, true)),
            CookieMode::Signed | CookieMode::Flask => {
                let (id, signature) = value.rsplit_once('.')?;
                let id = SessionId::parse(id)?;
                // Room for the longest tag (SHA-256's 32 bytes) and the decoder's estimate.
                let mut tag = [0u8; 48];
                let len = URL_SAFE_NO_PAD.decode_slice(signature, &mut tag).ok()?;
                let signer = self
                    .secrets
                    .iter()
                    .position(|secret| self.signature_matches(secret, id.as_str(), &tag[..len]))?;
                Some((id, signer == 0))
            }
        }
    }

    /// The cookie value for `id` in this mode, signed with the first secret.
    pub fn value(&self, id: &SessionId) -> String {
        let mut value = String::with_capacity(VALUE_CAPACITY);
        self.write_value(&mut value, id);
        value
    }

    /// Appends the cookie value for `id` to `out`.
    fn write_value(&self, out: &mut String, id: &SessionId) {
        out.push_str(id.as_str());
        let Some(secret) = self.secrets.first() else {
            return;
        };
        match self.mode {
            CookieMode::Plain => {}
            CookieMode::Flask => {
                out.push('.');
                let tag = flask_mac(secret, id.as_str()).finalize().into_bytes();
                URL_SAFE_NO_PAD.encode_string(tag, out);
            }
            CookieMode::Signed => {
                out.push('.');
                let tag = sha256_mac(secret, id.as_str()).finalize().into_bytes();
                URL_SAFE_NO_PAD.encode_string(tag, out);
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
    ///
    /// Written straight into one string, attributes in the order (and with the `Expires`
    /// format) of the `cookie` crate's `Set-Cookie` formatting, which the removal cookie
    /// uses.
    pub fn set_cookie(&self, id: &SessionId, max_age: Option<std::time::Duration>) -> String {
        self.set_cookie_with(|header| self.write_value(header, id), max_age)
    }

    /// [`set_cookie`](CookieConfig::set_cookie) with the cookie value already known (what
    /// [`read_current`](CookieConfig::read_current) returned for the id).
    pub(crate) fn set_cookie_value(
        &self,
        value: &str,
        max_age: Option<std::time::Duration>,
    ) -> String {
        self.set_cookie_with(|header| header.push_str(value), max_age)
    }

    fn set_cookie_with(
        &self,
        write_value: impl FnOnce(&mut String),
        max_age: Option<std::time::Duration>,
    ) -> String {
        let mut header = String::with_capacity(self.name.len() + VALUE_CAPACITY + 160);
        header.push_str(&self.name);
        header.push('=');
        write_value(&mut header);
        if self.http_only {
            header.push_str("; HttpOnly");
        }
        match self.same_site {
            Some(SameSite::Lax) => header.push_str("; SameSite=Lax"),
            Some(SameSite::Strict) => header.push_str("; SameSite=Strict"),
            Some(SameSite::None) => header.push_str("; SameSite=None"),
            None => {}
        }
        if self.partitioned {
            header.push_str("; Partitioned");
        }
        if self.secure || self.partitioned || self.same_site == Some(SameSite::None) {
            header.push_str("; Secure");
        }
        header.push_str("; Path=");
        header.push_str(&self.path);
        if let Some(domain) = &self.domain {
            header.push_str("; Domain=");
            // As the cookie crate does: a leading dot is dropped.
            header.push_str(domain.strip_prefix('.').unwrap_or(domain));
        }
        if let Some(max_age) = max_age {
            // Browsers cap a cookie's lifetime at 400 days anyway; the cap keeps the
            // arithmetic in range.
            let seconds = max_age.min(MAX_COOKIE_AGE).as_secs();
            let _ = write!(header, "; Max-Age={seconds}");
            let expires = OffsetDateTime::now_utc().unix_timestamp() + seconds as i64;
            push_expires(&mut header, expires);
        }
        header
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

/// Room for a signed cookie value: the id, a dot and a base64url SHA-256 tag.
const VALUE_CAPACITY: usize = crate::id::ID_LEN + 1 + 43;

thread_local! {
    /// The last `Expires` date this thread wrote, and its Unix second: a server writes the
    /// same date for every response of a second.
    static LAST_DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Appends `; Expires=` and the Unix second `at` as a cookie date (`Wed, 02 Dec 2026
/// 05:00:00 GMT`, the `cookie` crate's format), formatted once per second and thread;
/// nothing for a second outside the calendar.
fn push_expires(out: &mut String, at: i64) {
    LAST_DATE.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != at {
            let Ok(date) = OffsetDateTime::from_unix_timestamp(at) else {
                return;
            };
            let mut text = String::with_capacity(29);
            let _ = write!(
                text,
                "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
                &date.weekday().to_string()[..3],
                date.day(),
                &date.month().to_string()[..3],
                date.year(),
                date.hour(),
                date.minute(),
                date.second()
            );
            *last = (at, text);
        }
        out.push_str("; Expires=");
        out.push_str(&last.1);
    });
}

/// Whether `domain` is a host name for the `Domain` attribute: labels of 1 to 63 letters,
/// digits and `-`, at most 253 characters, after one optional leading dot.
fn is_host_name(domain: &str) -> bool {
    let host = domain.strip_prefix('.').unwrap_or(domain);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn sha256_mac(secret: &Secret, id: &str) -> Hmac<Sha256> {
    let mut mac = secret.signed.clone();
    mac.update(id.as_bytes());
    mac
}

/// itsdangerous' `Signer(secret, salt="flask-session", key_derivation="hmac")` over SHA-1.
fn flask_mac(secret: &Secret, id: &str) -> Hmac<Sha1> {
    let mut mac = secret.flask.clone();
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
    fn read_current_returns_the_value_only_when_the_first_secret_signed_it() {
        let id = SessionId::generate();
        for mode in [CookieMode::Signed, CookieMode::Flask] {
            let old = config(mode, &["old-secret"]);
            let rotated = config(mode, &["new-secret", "old-secret"]);
            let current = rotated.value(&id);
            let header = format!("session={current}");
            assert_eq!(
                rotated.read_current(Some(&header)),
                (CookieId::Valid(id.clone()), Some(current.clone()))
            );
            assert_eq!(
                rotated.set_cookie_value(&current, None),
                rotated.set_cookie(&id, None)
            );
            let header = format!("session={}", old.value(&id));
            assert_eq!(
                rotated.read_current(Some(&header)),
                (CookieId::Valid(id.clone()), None),
                "signed with an older secret: the save signs anew"
            );
        }
        let plain = CookieConfig::default();
        let header = format!("session={}", id.as_str());
        assert_eq!(
            plain.read_current(Some(&header)),
            (CookieId::Valid(id.clone()), Some(id.as_str().to_owned()))
        );
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
    fn validate_refuses_attributes_that_would_smuggle_or_be_dropped() {
        let valid = CookieConfig {
            domain: Some("example.org".into()),
            path: "/app".into(),
            ..config(CookieMode::Signed, &["k"])
        };
        assert_eq!(valid.validate(), Ok(()));
        assert_eq!(CookieConfig::default().validate(), Ok(()));
        let dotted = CookieConfig {
            domain: Some(".sub-1.example.org".into()),
            ..CookieConfig::default()
        };
        assert_eq!(dotted.validate(), Ok(()));
        let refused = |config: CookieConfig, setting: &str| {
            let error = config.validate().unwrap_err();
            assert!(
                matches!(&error, Error::Config { key, .. } if key == setting),
                "{setting}: {error}"
            );
        };
        for path in [
            "/; Domain=evil.example",
            "/a b",
            "/a\tb",
            "/a\r\nSet-Cookie: x=1",
            "/caf\u{e9}",
            "app",
            "",
            &format!("/{}", "a".repeat(MAX_PATH_LEN)),
        ] {
            refused(
                CookieConfig {
                    path: path.into(),
                    ..valid.clone()
                },
                "cookie_path",
            );
        }
        for domain in [
            "example.org; Secure",
            "evil.example\n",
            "exa mple.org",
            "",
            ".",
            "example..org",
            "example.org.",
            "caf\u{e9}.example",
            "example.org/path",
            &format!("{}.org", "a".repeat(64)),
        ] {
            refused(
                CookieConfig {
                    domain: Some(domain.into()),
                    ..valid.clone()
                },
                "cookie_domain",
            );
        }
        for name in ["", "a b", "a;b", "s\u{e9}", "a=b"] {
            refused(
                CookieConfig {
                    name: name.into(),
                    ..valid.clone()
                },
                "cookie_name",
            );
        }
        refused(config(CookieMode::Signed, &[]), "secret");
        refused(config(CookieMode::Flask, &[]), "secret");
        refused(config(CookieMode::Signed, &["k", ""]), "secret");
        refused(config(CookieMode::Plain, &[""]), "secret");
    }

    #[test]
    fn validate_checks_the_name_prefixes_and_partitioned_against_secure() {
        let secure = |name: &str| CookieConfig {
            name: name.into(),
            secure: true,
            ..CookieConfig::default()
        };
        for name in ["__Secure-sid", "__Host-sid", "__host-sid", "__SECURE-sid"] {
            assert_eq!(secure(name).validate(), Ok(()), "{name}");
            let error = CookieConfig {
                secure: false,
                ..secure(name)
            }
            .validate()
            .unwrap_err();
            assert!(matches!(&error, Error::Config { key, .. } if key == "cookie_name"));
        }
        // SameSite=None turns Secure on, so it satisfies the prefixes.
        let same_site_none = CookieConfig {
            same_site: Some(SameSite::None),
            ..CookieConfig {
                secure: false,
                ..secure("__Host-sid")
            }
        };
        assert_eq!(same_site_none.validate(), Ok(()));
        let secure_with_domain = CookieConfig {
            domain: Some("example.org".into()),
            ..secure("__Secure-sid")
        };
        assert_eq!(secure_with_domain.validate(), Ok(()));
        for host in [
            CookieConfig {
                domain: Some("example.org".into()),
                ..secure("__Host-sid")
            },
            CookieConfig {
                path: "/app".into(),
                ..secure("__Host-sid")
            },
        ] {
            assert!(host.validate().is_err(), "{host:?}");
        }
        let partitioned = CookieConfig {
            partitioned: true,
            ..CookieConfig::default()
        };
        assert!(partitioned.validate().is_err());
        assert_eq!(
            CookieConfig {
                secure: true,
                ..partitioned
            }
            .validate(),
            Ok(())
        );
    }

    /// What the `cookie` crate writes for the same settings (the format `set_cookie`
    /// follows), for a cookie expiring at the Unix second `expires`.
    fn crate_set_cookie(cfg: &CookieConfig, id: &SessionId, max_age: Option<i64>) -> String {
        let mut cookie = cfg.base(cfg.value(id));
        if let Some(seconds) = max_age {
            cookie.set_max_age(time::Duration::seconds(seconds));
            let now = OffsetDateTime::now_utc().unix_timestamp();
            cookie.set_expires(OffsetDateTime::from_unix_timestamp(now + seconds).unwrap());
        }
        cookie.to_string()
    }

    #[test]
    fn set_cookie_writes_what_the_cookie_crate_writes() {
        let id = SessionId::generate();
        let settings = [
            CookieConfig::default(),
            config(CookieMode::Signed, &["k"]),
            config(CookieMode::Flask, &["k"]),
            CookieConfig {
                name: "__Host-sid".into(),
                secure: true,
                same_site: Some(SameSite::Strict),
                partitioned: true,
                http_only: false,
                ..config(CookieMode::Signed, &["k"])
            },
            CookieConfig {
                domain: Some(".example.org".into()),
                path: "/app".into(),
                same_site: Some(SameSite::None),
                ..CookieConfig::default()
            },
            CookieConfig {
                domain: Some("example.org".into()),
                same_site: None,
                partitioned: true,
                ..CookieConfig::default()
            },
        ];
        for cfg in &settings {
            for max_age in [None, Some(1), Some(3600), Some(34_560_000)] {
                let duration = max_age.map(|s: i64| std::time::Duration::from_secs(s as u64));
                // Both read the clock: a second boundary between them is retried.
                let matched = (0..3)
                    .any(|_| cfg.set_cookie(&id, duration) == crate_set_cookie(cfg, &id, max_age));
                assert!(
                    matched,
                    "{} != {}",
                    cfg.set_cookie(&id, duration),
                    crate_set_cookie(cfg, &id, max_age)
                );
            }
        }
    }

    #[test]
    fn set_cookie_caps_the_lifetime_at_400_days() {
        let id = SessionId::generate();
        let header = CookieConfig::default().set_cookie(&id, Some(std::time::Duration::MAX));
        assert!(header.contains("; Max-Age=34560000"), "{header}");
        assert!(header.contains("; Expires="), "{header}");
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
