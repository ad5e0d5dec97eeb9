//! [rouille](https://docs.rs/rouille) integration: load the session from a request, add the
//! `Set-Cookie` and `Vary` headers to the response.
//!
//! ```no_run
//! use sessionstore::{SessionManager, rouille::with_session};
//!
//! let manager = SessionManager::open("sqlite:sessions.db").unwrap();
//! rouille::start_server("127.0.0.1:8000", move |request| {
//!     with_session(&manager, request, |session| {
//!         let visits = session.modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1);
//!         rouille::Response::text(format!("{visits:?}"))
//!     })
//!     .unwrap_or_else(|e| rouille::Response::text(e.to_string()).with_status_code(503))
//! });
//! ```

use rouille::{Request, Response};

use crate::error::Result;
use crate::manager::{SaveOutcome, SessionManager};
use crate::session::Session;

/// Loads the session named by the request's `Cookie` header.
pub fn load(manager: &SessionManager, request: &Request) -> Result<Session> {
    manager.load(request.header("Cookie"))
}

/// Saves the session and adds the headers the save asks for to `response`.
pub fn save(manager: &SessionManager, session: Session, response: Response) -> Result<Response> {
    Ok(apply(&manager.save(session)?, response))
}

/// Adds `Set-Cookie` and `Vary: Cookie` as `outcome` says.
pub fn apply(outcome: &SaveOutcome, mut response: Response) -> Response {
    if let Some(cookie) = &outcome.set_cookie {
        response = response.with_additional_header("Set-Cookie", cookie.clone());
    }
    if outcome.vary_cookie {
        response = response.with_additional_header("Vary", "Cookie");
    }
    response
}

/// Loads the session, runs `handler` with it, saves it and returns the handler's response
/// with the session headers. Store failures are returned as errors for the caller to map to
/// a status code.
pub fn with_session<F>(manager: &SessionManager, request: &Request, handler: F) -> Result<Response>
where
    F: FnOnce(&mut Session) -> Response,
{
    let mut session = load(manager, request)?;
    let response = handler(&mut session);
    save(manager, session, response)
}
