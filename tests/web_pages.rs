//! The web page over plain HTTP (no browser needed): paging through calls,
//! errors, the embedded files, signing in and the cookie's guarantees.
//! `web_browser.rs` drives the same page in Chromium.

use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use reservoice::domain::CallStatus;
use reservoice::sim::rig::{Rig, RigOptions};
use serde_json::json;

const TOKEN: &str = "pages-test-token-91d2";

async fn rig(token: Option<&str>) -> Rig {
    Rig::start(RigOptions {
        api_token: token.map(str::to_string),
        ..Default::default()
    })
    .await
    .expect("rig starts")
}

/// A client that shows redirects instead of following them.
fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn row_ids(html: &str) -> Vec<String> {
    html.split("id=\"row-")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

fn older_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\" href=\"")?;
    let rest = &html[at + "rel=\"next\" href=\"".len()..];
    rest.split('"').next().map(|s| s.replace("&amp;", "&"))
}

fn meta_csrf(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf-token\" content=\"")?;
    let rest = &html[at + "name=\"csrf-token\" content=\"".len()..];
    rest.split('"').next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_through_every_call_newest_first() {
    let rig = rig(None).await;
    let reservation = rig.reservation().expect("valid");
    let ids: Vec<String> = (0..60).map(|i| format!("CA{i:032x}")).collect();
    for id in &ids {
        rig.store()
            .insert(id, &reservation, "token", CallStatus::Completed)
            .await
            .expect("stored");
    }
    let http = reqwest::Client::new();
    let mut url = format!("{}/", rig.server_url);
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let html = http
            .get(&url)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        let rows = row_ids(&html);
        pages.push(rows.len());
        if pages.len() > 1 {
            assert!(html.contains("Newest calls"), "a way back to the newest");
        }
        seen.extend(rows);
        match older_link(&html) {
            Some(link) => url = format!("{}{link}", rig.server_url),
            None => break,
        }
    }
    assert_eq!(pages, vec![25, 25, 10]);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "each call once, newest first");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_links_and_unknown_calls_get_pages_that_say_so() {
    let rig = rig(None).await;
    let http = reqwest::Client::new();
    let broken = http
        .get(format!("{}/?before=not-a-cursor", rig.server_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert!(broken.text().await.expect("html").contains("damaged"));
    let unknown = http
        .get(format!("{}/calls/CA0000", rig.server_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown
        .text()
        .await
        .expect("html")
        .contains("no call with this id"));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_brings_its_own_script_and_style_under_a_strict_policy() {
    let rig = rig(None).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/calls/new", rig.server_url))
        .send()
        .await
        .expect("page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    // Every field of `reservoice call`, each with a label and a place for its message.
    for field in [
        "to",
        "restaurant",
        "party_size",
        "date",
        "time",
        "name",
        "flexibility",
        "callback",
        "notes",
        "timezone",
        "language",
    ] {
        assert!(
            html.contains(&format!("for=\"f-{field}\"")),
            "label for {field}"
        );
        assert!(
            html.contains(&format!("id=\"err-{field}\"")),
            "message slot for {field}"
        );
    }
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing loaded from elsewhere"
    );
    for (asset, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let at = html.find(&format!("/assets/{asset}?v=")).expect("linked");
        let href = html[at..].split('"').next().expect("href");
        let file = http
            .get(format!("{}{href}", rig.server_url))
            .send()
            .await
            .expect("asset");
        assert_eq!(file.status(), StatusCode::OK);
        let header = |name: &str| {
            file.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert!(header("content-type").starts_with(kind));
        assert!(header("cache-control").contains("immutable"));
    }
    let missing = http
        .get(format!("{}/assets/nothing.js", rig.server_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_gives_a_strict_cookie_and_keeps_the_token_out_of_urls() {
    let rig = rig(Some(TOKEN)).await;
    let base = &rig.server_url;
    let http = browser_like();
    let location = |r: &reqwest::Response| {
        r.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };

    // Pages send a browser without the cookie to the sign-in form, and back.
    let page = http
        .get(format!("{base}/calls/new"))
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/sign-in?next=%2Fcalls%2Fnew");
    let api = http
        .get(format!("{base}/api/calls"))
        .send()
        .await
        .expect("answer");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // A wrong token: refused, not echoed, no cookie.
    let wrong = http
        .post(format!("{base}/sign-in"))
        .form(&[("token", "wrong-guess-7731"), ("next", "/calls/new")])
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(!wrong
        .text()
        .await
        .expect("html")
        .contains("wrong-guess-7731"));

    // The right one: back to where the browser was going, with the cookie.
    let right = http
        .post(format!("{base}/sign-in"))
        .form(&[("token", TOKEN), ("next", "/calls/new")])
        .send()
        .await
        .expect("answer");
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/calls/new");
    let set_cookie = right
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http on loopback");
    assert!(!set_cookie.contains(TOKEN), "the cookie is not the token");
    let cookie = set_cookie
        .split(';')
        .next()
        .expect("name=value")
        .to_string();

    // Behind an https proxy the cookie is https-only.
    let proxied = http
        .post(format!("{base}/sign-in"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", TOKEN), ("next", "//elsewhere.example/")])
        .send()
        .await
        .expect("answer");
    assert_eq!(
        location(&proxied),
        "/",
        "only paths on this site follow a sign-in"
    );
    assert!(proxied
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("Secure")));

    // Signed in: pages and reads work; changes need the page's CSRF token.
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = meta_csrf(&page.text().await.expect("html")).expect("the page's CSRF token");
    let read = http
        .get(format!("{base}/api/calls"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(read.status(), StatusCode::OK);
    let change = |csrf: Option<&str>, origin: Option<&str>| {
        let mut r = http
            .post(format!("{base}/api/calls"))
            .header("cookie", &cookie)
            .json(&json!({"party_size": 0}));
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(
        change(None, None).await.expect("answer").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        change(Some("forged"), None).await.expect("answer").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        change(Some(&csrf), Some("https://elsewhere.example"))
            .await
            .expect("answer")
            .status(),
        StatusCode::FORBIDDEN
    );
    // Past the checks, the API itself judges the (bad) request.
    assert_eq!(
        change(Some(&csrf), None).await.expect("answer").status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The CLI's bearer token still works as before.
    let bearer = http
        .get(format!("{base}/api/calls"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(bearer.status(), StatusCode::OK);

    // Signing out takes the page's CSRF token, and forgets the cookie.
    let forged_out = http
        .post(format!("{base}/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("answer");
    assert_eq!(forged_out.status(), StatusCode::FORBIDDEN);
    let out = http
        .post(format!("{base}/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answer");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("Max-Age=0")));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_page_is_open_on_loopback_but_not_to_other_sites() {
    let rig = rig(None).await;
    let http = browser_like();
    let base = &rig.server_url;
    let page = http.get(format!("{base}/")).send().await.expect("answer");
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "open on loopback, as the API is"
    );
    let signin = http
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        signin.status(),
        StatusCode::SEE_OTHER,
        "nothing to sign in to"
    );
    let cross = http
        .post(format!("{base}/api/calls"))
        .header("sec-fetch-site", "cross-site")
        .json(&rig.request())
        .send()
        .await
        .expect("answer");
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let read = http
        .get(format!("{base}/api/calls"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("answer");
    assert_eq!(read.status(), StatusCode::FORBIDDEN);
    assert!(rig.phone.calls().is_empty(), "no call placed");
    // A page on another site that points its own name at this machine (DNS
    // rebinding) is same-origin to itself: the name it uses gives it away.
    for path in ["/", "/api/calls"] {
        let rebound = http
            .get(format!("{base}{path}"))
            .header("host", "rebound.example:8080")
            .send()
            .await
            .expect("answer");
        assert_eq!(rebound.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let own = http
        .get(format!("{base}/api/calls"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("answer");
    assert_eq!(own.status(), StatusCode::OK);
    rig.shutdown().await;
}
