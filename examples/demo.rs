//! The demo web app: a session shared by every request of one browser, stored in SQLite by
//! default so it needs no server.
//!
//! ```text
//! cargo run --example demo --features rouille -- --listen 127.0.0.1:8000
//! curl -c jar -b jar localhost:8000/visit
//! ```
//!
//! HTTP contract (the C server in ffi/examples implements the same one):
//! - `GET /whoami`: `{"user": <string or null>, "visits": <int>}`, changes nothing;
//! - `GET /visit`: increments `visits` (with `modify`, so concurrent visits all count);
//! - `POST /login` with form body `user=NAME`: new session id, sets `user`, binds the
//!   session to the user as its owner (unless the name is over 256 bytes or holds NUL);
//! - `POST /logout`: destroys the session, `{"user": null, "visits": 0}`;
//! - `GET /sessions`: the sessions of the logged-in user, `{"user": <string or null>,
//!   "sessions": [{"id_hint": <string>, "bound_at": <Unix s>, "expires_at": <Unix s>,
//!   "current": <bool>}]}`, oldest first (no user: an empty list);
//! - `POST /logout-all`: ends every other session of the user, `{"ended": <count>}`;
//! - `GET /metrics`: the manager's metrics in the Prometheus text format (no session).
//!
//! The demo alone also serves `GET /`, a small HTML page over the same endpoints.

use std::process::ExitCode;

use rouille::{Request, Response, router};
use serde_json::json;
use sessionstore::{Config, CookieMode, Session, SessionManager};

const USAGE: &str = "usage: demo [--listen ADDR] [--store URL] [--secret S] \
[--cookie-mode plain|signed|flask] [--cookie-name NAME] [--prefix P]";

struct Options {
    listen: String,
    store: String,
    secret: Option<String>,
    cookie_mode: Option<CookieMode>,
    cookie_name: Option<String>,
    prefix: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:8000".into(),
        store: "sqlite:demo-sessions.db".into(),
        secret: None,
        cookie_mode: None,
        cookie_name: None,
        prefix: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => options.listen = value,
            "--store" => options.store = value,
            "--secret" => options.secret = Some(value),
            "--cookie-mode" => {
                let mode = CookieMode::from_name(&value).ok_or_else(|| {
                    format!("--cookie-mode: expected plain, signed or flask, got {value:?}")
                })?;
                options.cookie_mode = Some(mode);
            }
            "--cookie-name" => options.cookie_name = Some(value),
            "--prefix" => options.prefix = Some(value),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn manager(options: &Options) -> sessionstore::Result<SessionManager> {
    let mut builder = Config::builder_from_url(&options.store)?;
    if let Some(secret) = &options.secret {
        builder = builder.secret(secret);
    }
    if let Some(mode) = options.cookie_mode {
        builder = builder.cookie_mode(mode);
    }
    if let Some(name) = &options.cookie_name {
        builder = builder.cookie_name(name);
    }
    if let Some(prefix) = &options.prefix {
        builder = builder.key_prefix(prefix);
    }
    SessionManager::new(builder.metrics(true).build()?)
}

fn whoami(session: &Session) -> sessionstore::Result<Response> {
    let user: Option<String> = session.get("user")?;
    let visits: i64 = session.get("visits")?.unwrap_or(0);
    Ok(Response::json(&json!({ "user": user, "visits": visits })))
}

/// `GET /sessions`: the user's sessions, the current one marked.
fn sessions(manager: &SessionManager, session: &Session) -> sessionstore::Result<Response> {
    let Some(owner) = session.owner() else {
        return Ok(Response::json(&json!({ "user": null, "sessions": [] })));
    };
    let current = manager.id_hint(session.id());
    let listed: Vec<_> = manager
        .sessions_of(owner)?
        .into_iter()
        .map(|info| {
            json!({
                "id_hint": info.id_hint,
                "bound_at": info.bound_at.unix_timestamp(),
                "expires_at": info.expires_at.unix_timestamp(),
                "current": info.id_hint == current,
            })
        })
        .collect();
    Ok(Response::json(
        &json!({ "user": owner, "sessions": listed }),
    ))
}

/// `POST /logout-all`: ends the user's other sessions.
fn logout_all(manager: &SessionManager, session: &Session) -> sessionstore::Result<Response> {
    let ended = match session.owner() {
        Some(owner) => manager.end_sessions_of(owner, Some(session.id()))?,
        None => 0,
    };
    Ok(Response::json(&json!({ "ended": ended })))
}

fn handle(manager: &SessionManager, request: &Request) -> sessionstore::Result<Response> {
    if request.method() == "GET" && request.url() == "/metrics" {
        let text = manager
            .stats()
            .map(|stats| stats.to_prometheus(manager.store().backend()))
            .unwrap_or_default();
        return Ok(Response::from_data("text/plain; version=0.0.4", text));
    }
    let mut session = sessionstore::rouille::load(manager, request)?;
    let response = router!(request,
        (GET) (/) => { Response::html(PAGE) },
        (GET) (/whoami) => { whoami(&session)? },
        (GET) (/sessions) => { sessions(manager, &session)? },
        (POST) (/logout-all) => { logout_all(manager, &session)? },
        (GET) (/visit) => {
            session.modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1)?;
            whoami(&session)?
        },
        (POST) (/login) => {
            let form = rouille::input::post::raw_urlencoded_post_input(request).unwrap_or_default();
            match form.into_iter().find(|(name, _)| name == "user") {
                Some((_, user)) if !user.is_empty() => {
                    session.regenerate();
                    // A name no owner can be (over 256 bytes, or with NUL) stays unbound.
                    if user.len() <= sessionstore::MAX_OWNER_LEN && !user.contains('\0') {
                        session.set_owner(&user)?;
                    }
                    session.insert("user", user)?;
                    whoami(&session)?
                }
                _ => Response::json(&json!({ "error": "form field user is required" }))
                    .with_status_code(400),
            }
        },
        (POST) (/logout) => {
            session.destroy();
            Response::json(&json!({ "user": null, "visits": 0 }))
        },
        _ => Response::empty_404()
    );
    sessionstore::rouille::save(manager, session, response)
}

/// The page at `GET /`: who you are, your visits, your devices, over the JSON endpoints.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>sessionstore demo</title></head>
<body>
<h1>sessionstore demo</h1>
<p id="who">...</p>
<form id="login"><input id="user" name="user" placeholder="user name">
<button id="login-button">log in</button></form>
<h2>Your devices</h2>
<ul id="devices"></ul>
<button id="logout">log out</button>
<button id="logout-all">log out everywhere</button>
<script>
async function post(path, body) {
  await fetch(path, {method: "POST", body: body || new URLSearchParams()});
  await show();
}
async function show() {
  const me = await (await fetch("/visit")).json();
  document.getElementById("who").textContent = me.user
    ? `You are ${me.user}; visits: ${me.visits}` : `Not logged in; visits: ${me.visits}`;
  const list = await (await fetch("/sessions")).json();
  const devices = document.getElementById("devices");
  devices.replaceChildren(...list.sessions.map(s => {
    const item = document.createElement("li");
    item.className = s.current ? "device current" : "device";
    item.textContent = `${s.id_hint} since ${new Date(s.bound_at * 1000).toISOString()}`
      + (s.current ? " (this device)" : "");
    return item;
  }));
  document.body.dataset.ready = "yes";
}
document.getElementById("login").onsubmit = e => {
  e.preventDefault();
  post("/login", new URLSearchParams({user: document.getElementById("user").value}));
};
document.getElementById("logout").onclick = () => post("/logout");
document.getElementById("logout-all").onclick = () => post("/logout-all");
show();
</script>
</body></html>
"#;

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let manager = match manager(&options) {
        Ok(manager) => manager,
        Err(error) => {
            eprintln!("demo: {error}");
            return ExitCode::from(2);
        }
    };
    let server = rouille::Server::new(&options.listen, move |request| {
        handle(&manager, request).unwrap_or_else(|error| {
            eprintln!("demo: {error}");
            Response::json(&json!({ "error": error.to_string() })).with_status_code(503)
        })
    });
    match server {
        Ok(server) => {
            println!("demo listening on http://{}", server.server_addr());
            server.pool_size(8).run();
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("demo: cannot listen on {}: {error}", options.listen);
            ExitCode::from(1)
        }
    }
}
