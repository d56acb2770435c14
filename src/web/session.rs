//! Signing in to the page: a session cookie instead of a bearer header.
//!
//! A browser cannot put `Authorization: Bearer …` on a page load, an
//! `EventSource` or an `<audio src>`, so when `RESERVOICE_API_TOKEN` is set the
//! page asks for the token once (a form posted in the body, never a URL) and
//! answers with a cookie that proves it was typed:
//!
//! * the cookie holds a random nonce, an expiry and an HMAC-SHA256 of both
//!   keyed with the token — never the token itself; changing the token signs
//!   every browser out; nothing is kept in server memory, so any instance
//!   behind a load balancer accepts it;
//! * `HttpOnly` (scripts cannot read it) and `SameSite=Strict` (other sites'
//!   pages cannot make the browser send it);
//! * requests that change something and arrive with the cookie must also
//!   carry the CSRF token (`X-CSRF-Token`), an HMAC of the session's nonce that
//!   only our own pages know, and must not come from another site
//!   (`Sec-Fetch-Site`, `Origin`).

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::crypto::constant_time_eq;

/// The cookie's name.
pub const COOKIE_NAME: &str = "reservoice_session";
/// The request header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Why a server without a token refuses a request not addressed to loopback.
pub const LOOPBACK_ONLY: &str = "this server has no API token, so it answers only requests addressed to 127.0.0.1 or localhost (set RESERVOICE_API_TOKEN to reach it through a proxy or tunnel)";
/// How long a sign-in lasts.
pub const LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// A signed-in browser, as proven by its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    nonce: String,
    expires: i64,
}

fn mac(token: &SecretString, purpose: &str, parts: &[&str]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(token.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(purpose.as_bytes());
    for p in parts {
        m.update(b"|");
        m.update(p.as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

impl Session {
    /// A new sign-in, valid for [`LIFETIME`] from `now`, and its cookie value.
    pub fn start(token: &SecretString, now: DateTime<Utc>) -> (Session, String) {
        let mut nonce = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut nonce);
        let session = Session {
            nonce: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce),
            expires: (now + LIFETIME).timestamp(),
        };
        let value = session.cookie_value(token);
        (session, value)
    }

    fn cookie_value(&self, token: &SecretString) -> String {
        let expires = self.expires.to_string();
        let sig = mac(token, "session", &[&self.nonce, &expires]);
        format!("{}.{}.{}", self.nonce, expires, sig)
    }

    /// The session a cookie value proves, if it was made with `token` and has
    /// not expired.
    pub fn verify(token: &SecretString, value: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut parts = value.splitn(3, '.');
        let (nonce, expires, sig) = (parts.next()?, parts.next()?, parts.next()?);
        let expected = mac(token, "session", &[nonce, expires]);
        if !constant_time_eq(sig, &expected) {
            return None;
        }
        let expires: i64 = expires.parse().ok()?;
        (expires > now.timestamp()).then(|| Session {
            nonce: nonce.to_string(),
            expires,
        })
    }

    /// The session proven by the request's `Cookie` header, if any.
    pub fn from_headers(
        token: &SecretString,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Option<Session> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|c| c.name() == COOKIE_NAME)
            .find_map(|c| Session::verify(token, c.value(), now))
    }

    /// The CSRF token of this session: our pages embed it and send it back
    /// in [`CSRF_HEADER`] on every request that changes something.
    pub fn csrf_token(&self, token: &SecretString) -> String {
        mac(token, "csrf", &[&self.nonce])
    }

    /// Whether `given` is this session's CSRF token.
    pub fn csrf_matches(&self, token: &SecretString, given: &str) -> bool {
        constant_time_eq(given, &self.csrf_token(token))
    }
}

/// The `Set-Cookie` value that signs a browser in. `secure`: the page was
/// reached over https (a tunnel or proxy in front), so the cookie must never
/// travel over plain http.
pub fn sign_in_cookie(value: String, secure: bool) -> String {
    cookie::Cookie::build((COOKIE_NAME, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(LIFETIME.num_seconds()))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that signs a browser out.
pub fn sign_out_cookie() -> String {
    cookie::Cookie::build((COOKIE_NAME, ""))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The request came over https to a proxy in front of us (tunnels and load
/// balancers say so in `X-Forwarded-Proto`).
pub fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Whether a browser says this request was made by another site's page:
/// `Sec-Fetch-Site` (every current browser sends it) other than
/// `same-origin`/`none`, or an `Origin` whose host is not the one addressed.
/// Requests from programs (the CLI) carry neither and pass.
pub fn from_another_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// Whether the request names this machine's loopback as its host
/// (`127.0.0.1`, `[::1]`, `localhost`, any port). Without a token the API and
/// the page answer only such requests: a page on another site that points its
/// own name at 127.0.0.1 (DNS rebinding), or a tunnel in front of the server,
/// gets nothing from a server that has no token.
pub fn addressed_to_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn a_cookie_proves_the_token_without_holding_it() {
        let t = token("correct horse battery staple");
        let now = Utc::now();
        let (session, value) = Session::start(&t, now);
        assert!(!value.contains("horse"));
        assert_eq!(Session::verify(&t, &value, now), Some(session.clone()));
        // Another token, a changed expiry, an old cookie: refused.
        assert_eq!(Session::verify(&token("other"), &value, now), None);
        let mut parts: Vec<&str> = value.split('.').collect();
        let later = (now + LIFETIME * 10).timestamp().to_string();
        parts[1] = &later;
        assert_eq!(Session::verify(&t, &parts.join("."), now), None);
        assert_eq!(
            Session::verify(&t, &value, now + LIFETIME + chrono::Duration::seconds(1)),
            None
        );
        assert_eq!(Session::verify(&t, "garbage", now), None);
        // The CSRF token belongs to this session only.
        let (other, _) = Session::start(&t, now);
        let csrf = session.csrf_token(&t);
        assert!(session.csrf_matches(&t, &csrf));
        assert!(!other.csrf_matches(&t, &csrf));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_flagged() {
        let t = token("tok");
        let now = Utc::now();
        let (session, value) = Session::start(&t, now);
        let mut headers = HeaderMap::new();
        let cookie_header = format!("theme=dark; {COOKIE_NAME}={value}; x=1");
        headers.insert(COOKIE, HeaderValue::from_str(&cookie_header).unwrap());
        assert_eq!(Session::from_headers(&t, &headers, now), Some(session));
        let set = sign_in_cookie(value, false);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(set.contains("Path=/") && !set.contains("Secure"), "{set}");
        assert!(sign_in_cookie("v".into(), true).contains("Secure"));
        assert!(sign_out_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn only_loopback_names_count_as_loopback() {
        let with_host = |h: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(HOST, HeaderValue::from_static(h));
            m
        };
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "[::1]:8080",
            "127.1.2.3",
        ] {
            assert!(addressed_to_loopback(&with_host(ok)), "{ok}");
        }
        for no in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "[2001:db8::1]:80",
            "localhost.evil.example",
        ] {
            assert!(!addressed_to_loopback(&with_host(no)), "{no}");
        }
        assert!(!addressed_to_loopback(&HeaderMap::new()));
    }

    #[test]
    fn requests_from_other_sites_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!from_another_site(&h), "a program, no browser headers");
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(!from_another_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!from_another_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(from_another_site(&h));
        h.remove("sec-fetch-site");
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(from_another_site(&h));
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(from_another_site(&h));
    }
}
