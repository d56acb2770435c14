//! `X-Twilio-Signature` computation and validation, so only Twilio can drive our webhooks and the Media Stream upgrade (docs section 6).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The query parameter Twilio adds to the URL of a JSON-bodied webhook.
const BODY_SHA256: &str = "bodySHA256";

/// The exact text Twilio signs: `url` followed by every parameter as
/// `name` + `value`, sorted by name (byte order, so upper case sorts first),
/// repeated names once per distinct value with values sorted. Exposed so
/// tests and logs of failed validations can show what was signed.
///
/// Exact duplicate pairs are counted once, as twilio-python does (vector
/// `twilio-python-test-repeated-keys`).
pub fn string_to_sign(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let len = url.len() + sorted.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>();
    let mut out = String::with_capacity(len);
    out.push_str(url);
    for (name, value) in sorted {
        out.push_str(name);
        out.push_str(value);
    }
    out
}

/// base64(HMAC-SHA1(auth_token, url + sorted params name+value)): the value
/// Twilio puts in `X-Twilio-Signature`. Params sorted by name (byte order);
/// repeated names: values sorted. Used by validation and by the simulator to
/// sign the requests it sends.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    sign(auth_token, &string_to_sign(url, params))
}

fn sign(auth_token: &str, text: &str) -> String {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Where the authority (host and optional port) of `url` starts and ends,
/// and the scheme, or `None` for a URL without `scheme://`.
fn authority(url: &str) -> Option<(&str, usize, usize)> {
    let scheme_end = url.find("://")?;
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    Some((&url[..scheme_end], start, end))
}

/// Byte offset of the `:` that introduces a port inside `authority`, if any
/// (skipping user info and IPv6 brackets).
fn port_colon(authority: &str) -> Option<usize> {
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let after_bracket = host_port.rfind(']').map_or(0, |i| i + 1);
    host_port[after_bracket..]
        .rfind(':')
        .map(|i| host_start + after_bracket + i)
}

/// The URLs a signature may have been computed over: as given, without its
/// port, and with the scheme's default port added. Twilio's back end is not
/// consistent about including the port when it signs (docs section 6.2).
fn candidate_urls(url: &str) -> Vec<String> {
    let mut candidates = vec![url.to_owned()];
    let Some((scheme, start, end)) = authority(url) else {
        return candidates;
    };
    match port_colon(&url[start..end]) {
        Some(colon) => {
            let mut without = String::with_capacity(url.len());
            without.push_str(&url[..start + colon]);
            without.push_str(&url[end..]);
            candidates.push(without);
        }
        None => {
            let default_port = match scheme.to_ascii_lowercase().as_str() {
                "https" | "wss" => Some("443"),
                "http" | "ws" => Some("80"),
                _ => None,
            };
            if let Some(port) = default_port {
                candidates.push(format!("{}:{port}{}", &url[..end], &url[end..]));
            }
        }
    }
    candidates
}

/// The value of the `bodySHA256` query parameter of `url`, if present.
fn body_sha256_param(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(name, _)| name == BODY_SHA256)
        .map(|(_, value)| value.into_owned())
}

fn sha256_hex(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks an `X-Twilio-Signature` in constant time over the candidate URLs
/// {url as given, url with its port removed, url with the scheme's default
/// port added (443 for https/wss, 80 for http/ws)}. `url` must be the URL
/// Twilio requested as configured by us (e.g. the `wss://` `<Stream url>`
/// for the WebSocket upgrade), never one rebuilt from request headers.
///
/// Form-encoded requests: pass every received form parameter (decoded) and
/// `body: None`. JSON-bodied requests (docs section 6.3): pass the raw body
/// as `Some`; it is valid only if the URL carries `bodySHA256` equal to the
/// body's lower-case hex SHA-256 and the signature covers the URL alone
/// (`params` are ignored then). A body without `bodySHA256` in the URL, or a
/// `bodySHA256` URL without the body, is refused because the body would go
/// unauthenticated. An empty or missing signature is refused.
pub fn validate(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    body: Option<&[u8]>,
    signature: &str,
) -> bool {
    if signature.is_empty() {
        return false;
    }
    let declared_hash = body_sha256_param(url);
    let params: &[(String, String)] = match (body, declared_hash) {
        (None, None) => params,
        (Some(body), Some(declared)) => {
            let actual = sha256_hex(body);
            if !bool::from(actual.as_bytes().ct_eq(declared.as_bytes())) {
                return false;
            }
            &[]
        }
        (Some(_), None) | (None, Some(_)) => return false,
    };
    let expected = signature.as_bytes();
    let mut valid = subtle::Choice::from(0u8);
    for candidate in candidate_urls(url) {
        valid |= compute(auth_token, &candidate, params)
            .as_bytes()
            .ct_eq(expected);
    }
    bool::from(valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).expect("fixture readable")
    }

    #[derive(Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
        validation_checks: Vec<Check>,
    }

    #[derive(Deserialize)]
    struct Vector {
        id: String,
        auth_token: String,
        url: String,
        params: Vec<(String, String)>,
        body: Option<String>,
        body_sha256_hex: Option<String>,
        string_to_sign: String,
        expected_signature: String,
    }

    /// `params` is the form pairs, or the raw JSON body as a string.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum CheckParams {
        Form(Vec<(String, String)>),
        Body(String),
    }

    #[derive(Deserialize)]
    struct Check {
        id: String,
        auth_token: String,
        url: String,
        params: CheckParams,
        signature: String,
        expected_valid: bool,
    }

    #[derive(Deserialize)]
    struct Callback {
        url: String,
        form: Vec<(String, String)>,
        headers: std::collections::HashMap<String, String>,
        #[serde(rename = "_auth_token_used_for_signature")]
        auth_token: String,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(&fixture("signature_vectors.json")).expect("vectors parse")
    }

    #[test]
    fn every_vector_string_and_signature_match() {
        let vectors = vectors();
        assert!(vectors.vectors.len() >= 15);
        for v in &vectors.vectors {
            assert_eq!(
                string_to_sign(&v.url, &v.params),
                v.string_to_sign,
                "{}",
                v.id
            );
            assert_eq!(
                compute(&v.auth_token, &v.url, &v.params),
                v.expected_signature,
                "{}",
                v.id
            );
            assert_eq!(
                v.expected_signature.len(),
                28,
                "{}: base64 of 20 bytes",
                v.id
            );
            // Every vector also validates as a request.
            let body = v.body.as_deref().map(str::as_bytes);
            assert!(
                validate(
                    &v.auth_token,
                    &v.url,
                    &v.params,
                    body,
                    &v.expected_signature
                ),
                "{} does not validate",
                v.id
            );
            if let (Some(body), Some(hex)) = (&v.body, &v.body_sha256_hex) {
                assert_eq!(&sha256_hex(body.as_bytes()), hex, "{}", v.id);
            }
        }
    }

    #[test]
    fn every_validation_check_gives_expected_result() {
        let vectors = vectors();
        assert!(vectors.validation_checks.len() >= 11);
        for c in &vectors.validation_checks {
            let valid = match &c.params {
                CheckParams::Form(params) => {
                    validate(&c.auth_token, &c.url, params, None, &c.signature)
                }
                CheckParams::Body(body) => validate(
                    &c.auth_token,
                    &c.url,
                    &[],
                    Some(body.as_bytes()),
                    &c.signature,
                ),
            };
            assert_eq!(valid, c.expected_valid, "{}", c.id);
        }
    }

    #[test]
    fn docs_json_body_example_hash() {
        assert_eq!(
            sha256_hex(br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#),
            "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9"
        );
    }

    #[test]
    fn json_body_requires_hash_in_url_and_url_hash_requires_body() {
        let v = vectors()
            .vectors
            .into_iter()
            .find(|v| v.id == "json-body-sha256")
            .expect("vector");
        let body = v.body.expect("body");
        // The bodySHA256 URL without the body: refused.
        assert!(!validate(
            &v.auth_token,
            &v.url,
            &[],
            None,
            &v.expected_signature
        ));
        // A body against a URL without bodySHA256: refused.
        let plain = "https://reservoice.example.com/hook";
        let sig = compute(&v.auth_token, plain, &[]);
        assert!(!validate(
            &v.auth_token,
            plain,
            &[],
            Some(body.as_bytes()),
            &sig
        ));
    }

    #[test]
    fn port_candidates() {
        assert_eq!(
            candidate_urls("https://h.example/p?q=1"),
            vec!["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            candidate_urls("wss://h.example"),
            vec!["wss://h.example", "wss://h.example:443"]
        );
        assert_eq!(
            candidate_urls("ws://h.example/s"),
            vec!["ws://h.example/s", "ws://h.example:80/s"]
        );
        assert_eq!(
            candidate_urls("http://u:pw@h.example:8080/p"),
            vec!["http://u:pw@h.example:8080/p", "http://u:pw@h.example/p"]
        );
        assert_eq!(
            candidate_urls("https://[::1]:8443/p"),
            vec!["https://[::1]:8443/p", "https://[::1]/p"]
        );
        assert_eq!(
            candidate_urls("https://[::1]/p"),
            vec!["https://[::1]/p", "https://[::1]:443/p"]
        );
        assert_eq!(candidate_urls("not a url"), vec!["not a url"]);
    }

    #[test]
    fn ws_upgrade_validates_with_or_without_port() {
        let token = "12345678901234567890123456789012";
        let sig = "YrVkHBLTW0mFfgTJ5hpNA+ZxJSw=";
        assert!(validate(
            token,
            "wss://reservoice.example.com/media-stream",
            &[],
            None,
            sig
        ));
        assert!(validate(
            token,
            "wss://reservoice.example.com:443/media-stream",
            &[],
            None,
            sig
        ));
        // Signed with the port, checked against the configured URL without.
        assert!(validate(
            token,
            "wss://reservoice.example.com/media-stream",
            &[],
            None,
            "IMjSFZx8llr8aJQ+SAOl0hgo6nM="
        ));
    }

    #[test]
    fn every_callback_fixture_validates_and_tampering_fails() {
        let names = [
            "callback_amd.json",
            "callback_status_answered.json",
            "callback_status_completed.json",
            "callback_status_no_answer.json",
            "callback_status_ringing.json",
            "callback_stream_status.json",
        ];
        for name in names {
            let cb: Callback =
                serde_json::from_str(&fixture(&format!("http/{name}"))).expect("callback parses");
            let sig = &cb.headers["X-Twilio-Signature"];
            assert!(
                validate(&cb.auth_token, &cb.url, &cb.form, None, sig),
                "{name} does not validate"
            );
            for i in 0..cb.form.len() {
                let mut tampered = cb.form.clone();
                tampered[i].1.push('x');
                assert!(
                    !validate(&cb.auth_token, &cb.url, &tampered, None, sig),
                    "{name}: changed {} still validates",
                    cb.form[i].0
                );
                let mut dropped = cb.form.clone();
                dropped.remove(i);
                assert!(
                    !validate(&cb.auth_token, &cb.url, &dropped, None, sig),
                    "{name}: dropping {} still validates",
                    cb.form[i].0
                );
            }
            let mut extra = cb.form.clone();
            extra.push(("FromCity".into(), "PARIS".into()));
            assert!(
                !validate(&cb.auth_token, &cb.url, &extra, None, sig),
                "{name}"
            );
            assert!(
                !validate(&cb.auth_token, &cb.url, &cb.form, None, ""),
                "{name}"
            );
            assert!(
                !validate(
                    &cb.auth_token,
                    &cb.url,
                    &cb.form,
                    None,
                    &sig[..sig.len() - 1]
                ),
                "{name}"
            );
            assert!(
                !validate(
                    "00000000000000000000000000000000",
                    &cb.url,
                    &cb.form,
                    None,
                    sig
                ),
                "{name}"
            );
        }
    }
}
