//! Cryptographic helpers every layer shares, with no dependency on the rest
//! of the crate: comparing secrets in constant time, and installing the
//! process-wide TLS provider.

use subtle::ConstantTimeEq;

/// Compare two secrets without leaking their common prefix through timing
/// (the length is not secret).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Install the process-wide TLS crypto provider (ring) once; both reqwest and
/// tokio-tungstenite use rustls. Later calls do nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }
}
