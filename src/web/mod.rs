//! The web page of `serve`: every call, one call live, a form to place one.
//!
//! Server-rendered HTML ([`maud`], checked at compile time, escaped by
//! default) with one small hand-written script (`assets/web/app.js`) and one
//! stylesheet, both embedded in the binary: nothing to fetch from elsewhere
//! and nothing but `cargo build` to build. The page works through the same
//! JSON API as the CLI where that keeps one code path: the form posts to
//! `POST /api/calls` (so a bad field shows the API's own 422 message), a call
//! is followed live through `GET /api/calls/{id}/events` (SSE), recordings
//! play from `GET /api/calls/{id}/recording`. What is rendered (the list, the
//! outcome card, the timeline) is rendered here only: the script re-reads the
//! page and swaps the parts that changed.
//!
//! - [`session`]: signing in with `RESERVOICE_API_TOKEN` (cookie, CSRF).
//! - [`pages`]: the HTML.
//! - [`assets`]: the embedded script and stylesheet.

pub mod assets;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::Utc;
use serde::Deserialize;

use crate::crypto::constant_time_eq;
use crate::domain::ReservationRequest;
use crate::server::AppState;
use crate::store::PageCursor;
use session::Session;

/// Calls per page of the list.
pub const PAGE_SIZE: u32 = 25;

/// What the page offers beyond the product itself.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Set when the telephone network is simulated (`demo --web`).
    pub demo: Option<DemoForm>,
}

/// The form in a simulated world: the simulated restaurants to pick from
/// (each behaves differently) and a reservation that suits their recorded hosts.
#[derive(Debug, Clone)]
pub struct DemoForm {
    /// The restaurants, as offered in the form.
    pub restaurants: Vec<DemoRestaurant>,
    /// The form's starting values.
    pub example: ReservationRequest,
}

/// One simulated restaurant in the form.
#[derive(Debug, Clone)]
pub struct DemoRestaurant {
    /// Its number (the value the form sends as `to`).
    pub number: String,
    /// How it behaves, in a few words.
    pub label: String,
}

/// What every page handler gets.
#[derive(Clone)]
struct Web {
    app: AppState,
    options: Arc<WebOptions>,
}

/// Who is looking: set by [`require_sign_in`] for every page.
#[derive(Clone, Debug, Default)]
pub struct Visitor {
    /// The CSRF token our script must send with changes (signed-in browsers).
    pub csrf: Option<String>,
    /// Signed in with the token (so a sign-out button makes sense).
    pub signed_in: bool,
}

/// The page's routes; merged into the server's router by
/// [`crate::server::router`].
pub fn routes(app: AppState, options: WebOptions) -> Router {
    let web = Web {
        app,
        options: Arc::new(options),
    };
    let pages = Router::new()
        .route("/", get(calls_page))
        .route("/calls/new", get(new_call_page))
        .route("/calls/{id}", get(call_page))
        .route("/sign-out", post(sign_out))
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            require_sign_in,
        ));
    Router::new()
        .merge(pages)
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::map_response(page_headers))
        .with_state(web)
}

/// Headers every page carries: nothing but our own files may run or load
/// (`Content-Security-Policy`), no framing, no sniffing, no referrer leaving the site.
async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// With a token set, pages need a signed-in browser: others go to the
/// sign-in form (which brings them back here).
async fn require_sign_in(State(web): State<Web>, mut request: Request, next: Next) -> Response {
    let visitor = match &web.app.settings.api_token {
        None if !session::addressed_to_loopback(request.headers()) => {
            return (StatusCode::FORBIDDEN, session::LOOPBACK_ONLY).into_response();
        }
        None => Visitor::default(),
        Some(token) => match Session::from_headers(token, request.headers(), Utc::now()) {
            Some(s) => Visitor {
                csrf: Some(s.csrf_token(token)),
                signed_in: true,
            },
            None => {
                let next_path = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let to = format!(
                    "/sign-in?{}",
                    serde_urlencoded::to_string([("next", next_path)]).unwrap_or_default()
                );
                return Redirect::to(&to).into_response();
            }
        },
    };
    request.extensions_mut().insert(visitor);
    next.run(request).await
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn trouble(web: &Web, visitor: &Visitor, status: StatusCode, what: &str) -> Response {
    html(status, pages::trouble(&web.layout(visitor), status, what))
}

impl Web {
    fn layout<'a>(&'a self, visitor: &'a Visitor) -> pages::Layout<'a> {
        pages::Layout {
            visitor,
            demo: self.options.demo.is_some(),
            token_required: self.app.settings.api_token.is_some(),
        }
    }
}

/// Query of the list.
#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Show the calls older than this cursor (a link from the page before).
    before: Option<String>,
}

/// `GET /`: the calls, newest first, a page at a time.
async fn calls_page(
    State(web): State<Web>,
    Extension(visitor): Extension<Visitor>,
    Query(q): Query<ListQuery>,
) -> Response {
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(text) => match PageCursor::decode(text) {
            Some(c) => Some(c),
            None => {
                return trouble(
                    &web,
                    &visitor,
                    StatusCode::BAD_REQUEST,
                    "This link to older calls is damaged.",
                )
            }
        },
    };
    match web.app.store.list_page(PAGE_SIZE, before.as_ref()).await {
        Ok(page) => html(
            StatusCode::OK,
            pages::calls(&web.layout(&visitor), &page, before.is_some()),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list calls for the page");
            trouble(
                &web,
                &visitor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The call store could not be read.",
            )
        }
    }
}

/// `GET /calls/{id}`: one call, followed live by the script while it runs.
async fn call_page(
    State(web): State<Web>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    match web.app.store.get(&id).await {
        Ok(Some(record)) => {
            let recorded = crate::audio::recording::recording_path(&web.app.settings.data_dir, &id)
                .is_some_and(|p| p.is_file());
            html(
                StatusCode::OK,
                pages::call(&web.layout(&visitor), &record, recorded),
            )
        }
        Ok(None) => trouble(
            &web,
            &visitor,
            StatusCode::NOT_FOUND,
            "There is no call with this id.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a call for the page");
            trouble(
                &web,
                &visitor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The call store could not be read.",
            )
        }
    }
}

/// `GET /calls/new`: the form.
async fn new_call_page(State(web): State<Web>, Extension(visitor): Extension<Visitor>) -> Response {
    let settings = &web.app.settings;
    html(
        StatusCode::OK,
        pages::new_call(
            &web.layout(&visitor),
            web.options.demo.as_ref(),
            settings.timezone.name(),
            settings.language,
            settings.max_party_size,
        ),
    )
}

/// Query of the sign-in form.
#[derive(Debug, Deserialize)]
struct SignInQuery {
    next: Option<String>,
}

/// The sign-in form as posted (the token travels in the body only).
#[derive(Deserialize)]
struct SignInForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this site may follow a sign-in (never `//elsewhere`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// `GET /sign-in`.
async fn sign_in_page(State(web): State<Web>, Query(q): Query<SignInQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if web.app.settings.api_token.is_none() {
        return Redirect::to(&next).into_response();
    }
    let visitor = Visitor::default();
    html(
        StatusCode::OK,
        pages::sign_in(&web.layout(&visitor), &next, None),
    )
}

/// `POST /sign-in`: the right token gets the session cookie.
async fn sign_in(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(Some(&form.next));
    let Some(token) = &web.app.settings.api_token else {
        return Redirect::to(&next).into_response();
    };
    let visitor = Visitor::default();
    if session::from_another_site(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            pages::sign_in(
                &web.layout(&visitor),
                &next,
                Some("Sign in from this page itself."),
            ),
        );
    }
    use secrecy::ExposeSecret;
    if !constant_time_eq(form.token.trim(), token.expose_secret()) {
        tracing::warn!("a sign-in to the page with a wrong token");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(
                &web.layout(&visitor),
                &next,
                Some("That is not the server's API token."),
            ),
        );
    }
    let (_, value) = Session::start(token, Utc::now());
    let cookie = session::sign_in_cookie(value, session::behind_https(&headers));
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The sign-out form as posted.
#[derive(Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`: forget the cookie (only our own page may ask).
async fn sign_out(
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let genuine = visitor
        .csrf
        .as_deref()
        .is_some_and(|c| constant_time_eq(c, &form.csrf));
    if !genuine || session::from_another_site(&headers) {
        return (StatusCode::FORBIDDEN, "sign out from the page itself").into_response();
    }
    let mut response = Redirect::to("/sign-in").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::sign_out_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_follow_a_sign_in() {
        assert_eq!(safe_next(Some("/calls/CA1")), "/calls/CA1");
        assert_eq!(safe_next(Some("//evil.example/x")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
