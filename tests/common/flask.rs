//! The Flask app of the interop and cross-stack tests (`tests/flask_app.py`, Flask-Session
//! 0.8), run with the test virtualenv's Python on a free loopback port and configured with
//! Flask-Session's own setting names, the same list `Config::from_flask` takes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::web::HttpServer;

/// The test virtualenv's Python: `$VENV/bin/python`, else `target/venv/bin/python` (made by
/// `python_env` in scripts/lib.sh, which scripts/services.sh runs).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: the Flask tests need the test virtualenv with \
         tests/python-requirements.txt; run scripts/services.sh (or scripts/test.sh)",
        python.display()
    );
    python
}

/// The Flask app, stopped when dropped.
pub struct FlaskApp {
    server: HttpServer,
}

/// What the Flask app answered.
pub struct Reply {
    /// The JSON body.
    pub body: Value,
    /// The `Set-Cookie` header, if any.
    pub set_cookie: Option<String>,
}

impl FlaskApp {
    /// Starts the app with these Flask-Session settings (`SESSION_TYPE`, `SECRET_KEY`,
    /// `SESSION_REDIS`, ...: see tests/flask_app.py) as its environment.
    pub fn start<K: AsRef<str>, V: AsRef<str>>(settings: &[(K, V)]) -> FlaskApp {
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flask_app.py");
        let env: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        FlaskApp {
            server: HttpServer::start("the Flask app", &python(), &[app], &env),
        }
    }

    /// The URL of `path` on the app.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// GET `path`, sending `cookie` (`name=value`) if given.
    pub fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = ureq::get(&self.url(path));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        reply(path, request.call())
    }

    /// POST `body` as JSON to `path`, sending `cookie` (`name=value`) if given.
    pub fn post_json(&self, path: &str, cookie: Option<&str>, body: &Value) -> Reply {
        let mut request = ureq::post(&self.url(path)).header("Content-Type", "application/json");
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        reply(path, request.send(body.to_string()))
    }
}

fn reply(path: &str, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    // ureq's default agent turns a status other than 2xx into an error.
    let mut response = response.unwrap_or_else(|e| panic!("the Flask app, {path}: {e}"));
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|value| value.to_str().expect("an ASCII header").to_owned());
    let text = response.body_mut().read_to_string().expect("a body");
    Reply {
        body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {text:?}: {e}")),
        set_cookie,
    }
}

/// The `name=value` pair of a `Set-Cookie` header, as a browser sends it back.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("name=value").to_owned()
}

/// Whether a `Set-Cookie` header makes a persistent cookie (`Expires` or `Max-Age`).
pub fn persistent(set_cookie: &str) -> bool {
    let lower = set_cookie.to_ascii_lowercase();
    lower.contains("expires=") || lower.contains("max-age=")
}
