//! The page's script and stylesheet, embedded in the binary at build time.
//!
//! Links carry a fingerprint of the file (`/assets/app.js?v=…`), so browsers
//! may keep a file forever and still get a new one after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Its name under `/assets/`.
    pub name: &'static str,
    content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// The script: live updates, the form, local times.
pub const SCRIPT: Asset = Asset {
    name: "app.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../../assets/web/app.js"),
};

/// The stylesheet.
pub const STYLE: Asset = Asset {
    name: "app.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("../../assets/web/app.css"),
};

const ALL: [&Asset; 2] = [&SCRIPT, &STYLE];

impl Asset {
    /// `/assets/NAME?v=FINGERPRINT`.
    pub fn href(&self) -> String {
        static PRINTS: OnceLock<Vec<String>> = OnceLock::new();
        let prints = PRINTS.get_or_init(|| {
            ALL.iter()
                .map(|a| {
                    let digest = Sha256::digest(a.body.as_bytes());
                    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
                })
                .collect()
        });
        let ix = ALL.iter().position(|a| a.name == self.name).unwrap_or(0);
        format!("/assets/{}?v={}", self.name, prints[ix])
    }
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match ALL.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_own_script_and_style_stay_small() {
        let total: usize = ALL.iter().map(|a| a.body.len()).sum();
        assert!(total < 100 * 1024, "{total} bytes of JS and CSS");
        assert!(SCRIPT.href().starts_with("/assets/app.js?v="));
        assert_ne!(SCRIPT.href(), STYLE.href());
    }
}
