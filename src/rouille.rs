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

/// Loads the session named by the request's `Cookie` headers: all of them, joined with
/// `"; "`, since an HTTP/2 proxy may split one header into several.
pub fn load(manager: &SessionManager, request: &Request) -> Result<Session> {
    manager.load(cookie_header(request).as_deref())
}

/// Every `Cookie` header of `request` joined into one, or `None` if there is none.
fn cookie_header(request: &Request) -> Option<String> {
    let values: Vec<&str> = request
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Cookie"))
        .map(|(_, value)| value)
        .collect();
    (!values.is_empty()).then(|| values.join("; "))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, store::StoreConfig};

    fn request(cookies: &[String]) -> Request {
        let headers = cookies
            .iter()
            .map(|value| ("Cookie".to_owned(), value.clone()))
            .collect();
        Request::fake_http("GET", "/", headers, Vec::new())
    }

    #[test]
    fn every_cookie_header_is_read() {
        let manager = SessionManager::new(
            Config::builder(StoreConfig::Memory)
                .secret("k")
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut session = manager.load(None).unwrap();
        session.insert("user", "ann").unwrap();
        let set_cookie = manager.save(session).unwrap().set_cookie.unwrap();
        let pair = set_cookie.split(';').next().unwrap().to_owned();
        // HTTP/2 proxies send each cookie as a header of its own.
        let split = request(&["theme=dark".into(), "lang=en; a=b".into(), pair]);
        let session = load(&manager, &split).unwrap();
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("ann")
        );
        assert!(load(&manager, &request(&[])).unwrap().is_new());
    }
}
