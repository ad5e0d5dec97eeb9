//! One user's session across four stacks (docs/DESIGN.md §1, §6): the Flask app on
//! Flask-Session 0.8 (tests/flask_app.py), the C server on libmicrohttpd
//! (ffi/examples/server.c), the rouille demo (examples/demo.rs) and the Python package's
//! example Flask app (bindings/python/examples/app.py), all on one store with one secret, key
//! prefix, cookie name and lifetime, in `flask` cookie mode (Flask signs the id with
//! itsdangerous, SESSION_USE_SIGNER), each on a free loopback port, on Redis, PostgreSQL and
//! MongoDB.
//!
//! - One browser (one ureq cookie jar: cookies are not port-scoped) logs in on Flask, is
//!   seen on the C server, counts visits on rouille, C, Flask and the Python app in turn, each
//!   counted once, logs in again on the Python app, and logs out on the C server; the session
//!   is then gone on Flask, rouille and the Python app.
//! - Concurrent visits: 3 servers × 4 clients × 250 `GET /visit` sharing one cookie (one
//!   jar). Rouille and two C servers in the no-lost-update mode (`concurrency=cas`, the
//!   default) count all 3000, and so do rouille, C and the Python app (its `/visit` is plain
//!   Flask code, `session["visits"] = session.get("visits", 0) + 1`, which the package
//!   replays as an increment). With Flask-Session as the third server, or with the Rust and
//!   C servers in last-writer-wins mode (`concurrency=lww` in the store URL), visits can be
//!   lost: those runs assert only what holds whatever the interleaving (every request to the
//!   Rust, C and Python servers answered, the count at most 3000) and print the count, the
//!   visits lost and the request rate (run with `--no-capture` to see them; the README
//!   records a run).
//!
//! - The C++ server on cpp-httplib (ffi/examples/server.cpp) joins the rotation on Redis: one
//!   browser across Flask, C, C++ and rouille, and concurrent visits on rouille, C and C++
//!   in the no-lost-update mode, all counted.
//!
//! The test command builds the demo, the C and C++ servers and installs the Python package
//! first (tests/common/web.rs).

#![cfg(all(
    feature = "capi",
    feature = "rouille",
    feature = "redis",
    feature = "postgres",
    feature = "mongodb"
))]

use crate::common;

use std::time::Instant;

use common::flask::FlaskApp;
use common::web::{self, HttpServer, answer, browser};
use serde_json::{Value, json};
use sessionstore::store::Record;
use sessionstore::{Config, SessionManager};
use ureq::Agent;

/// What all three servers share besides the store.
const SECRET: &str = "one secret for three stacks";
const COOKIE: &str = "shared_session";
/// PERMANENT_SESSION_LIFETIME, in seconds.
const LIFETIME: &str = "3600";

/// Clients per server and requests per client of the concurrent runs.
const CLIENTS: usize = 4;
const REQUESTS: usize = 250;

/// One store as each stack names it: Flask-Session's settings and the store URL of the demo
/// and the C server, with a table or collection of this test's own (dropped at the end).
struct Store {
    name: &'static str,
    /// SESSION_TYPE and the connection settings.
    flask: Vec<(&'static str, String)>,
    /// The same store, for `--store`.
    url: String,
    drop_table: Option<Box<dyn FnOnce()>>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(drop_table) = self.drop_table.take() {
            drop_table();
        }
    }
}

/// A name no other test uses, for tables, collections and key prefixes.
fn unique() -> String {
    common::unique_prefix()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

fn redis() -> Store {
    let url = std::env::var("SESSIONSTORE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    Store {
        name: "Redis",
        flask: vec![
            ("SESSION_TYPE", "redis".to_owned()),
            ("SESSION_REDIS", url.clone()),
        ],
        url,
        drop_table: None,
    }
}

fn postgres() -> Store {
    let server = std::env::var("SESSIONSTORE_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let table = format!("cross_{}", unique());
    let drop_table = {
        let (server, table) = (server.clone(), table.clone());
        move || {
            let dropped = ::postgres::Client::connect(&server, ::postgres::NoTls)
                .and_then(|mut client| client.batch_execute(&format!("DROP TABLE {table}")));
            if let Err(error) = dropped {
                eprintln!("cannot drop the test table {table}: {error}");
            }
        }
    };
    Store {
        name: "PostgreSQL",
        flask: vec![
            ("SESSION_TYPE", "sqlalchemy".to_owned()),
            (
                "SQLALCHEMY_DATABASE_URI",
                server.replacen("postgres://", "postgresql+psycopg2://", 1),
            ),
            ("SESSION_SQLALCHEMY_TABLE", table.clone()),
        ],
        url: with_params(&server, &format!("table={table}")),
        drop_table: Some(Box::new(drop_table)),
    }
}

fn mongodb() -> Store {
    let server = std::env::var("SESSIONSTORE_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?retryWrites=false".to_owned());
    let database = "sessionstore_cross_stack";
    let collection = format!("cross_{}", unique());
    let drop_table = {
        let (server, collection) = (server.clone(), collection.clone());
        move || {
            let dropped = ::mongodb::sync::Client::with_uri_str(&server).and_then(|client| {
                client
                    .database(database)
                    .collection::<::mongodb::bson::Document>(&collection)
                    .drop()
                    .run()
            });
            if let Err(error) = dropped {
                eprintln!("cannot drop the test collection {collection}: {error}");
            }
        }
    };
    Store {
        name: "MongoDB",
        flask: vec![
            ("SESSION_TYPE", "mongodb".to_owned()),
            ("SESSION_MONGODB", server.clone()),
            ("SESSION_MONGODB_DB", database.to_owned()),
            ("SESSION_MONGODB_COLLECT", collection.clone()),
        ],
        url: with_params(&server, &format!("db={database}&collection={collection}")),
        drop_table: Some(Box::new(drop_table)),
    }
}

/// How the Rust and C servers save (the store URL's `concurrency` parameter).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Compare-and-set, replaying this request's changes on conflict: no lost update.
    Cas,
    /// A plain overwrite, as Flask-Session writes.
    Lww,
}

/// A server of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stack {
    Rouille(Mode),
    C(Mode),
    Cpp(Mode),
    Flask,
    /// The Python package's example app, in the no-lost-update mode.
    Python,
}

impl Stack {
    fn label(self) -> String {
        match self {
            Stack::Rouille(mode) => format!("rouille ({mode:?})"),
            Stack::C(mode) => format!("C ({mode:?})"),
            Stack::Cpp(mode) => format!("C++ ({mode:?})"),
            Stack::Flask => "Flask".to_owned(),
            Stack::Python => "Python".to_owned(),
        }
    }
}

/// One store shared by the servers of a test: the same settings for every stack.
struct Shared {
    store: Store,
    prefix: String,
}

impl Shared {
    fn new(store: Store) -> Shared {
        Shared {
            store,
            prefix: format!("cross:{}:", unique()),
        }
    }

    /// The Flask-Session settings of the Flask app, which `Config::from_flask` takes too.
    fn flask_settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = self.store.flask.clone();
        settings.extend([
            ("SECRET_KEY", SECRET.to_owned()),
            ("SESSION_USE_SIGNER", "True".to_owned()),
            ("SESSION_KEY_PREFIX", self.prefix.clone()),
            ("SESSION_COOKIE_NAME", COOKIE.to_owned()),
            ("PERMANENT_SESSION_LIFETIME", LIFETIME.to_owned()),
            ("SESSION_REFRESH_EACH_REQUEST", "False".to_owned()),
        ]);
        settings
    }

    /// The same settings as the demo's and the C server's flags.
    fn server_args(&self, mode: Mode) -> Vec<String> {
        let concurrency = match mode {
            Mode::Cas => "cas",
            Mode::Lww => "lww",
        };
        let store = with_params(
            &self.store.url,
            &format!("lifetime={LIFETIME}&refresh=false&concurrency={concurrency}"),
        );
        [
            "--store",
            &store,
            "--secret",
            SECRET,
            "--cookie-mode",
            "flask",
            "--cookie-name",
            COOKIE,
            "--prefix",
            &self.prefix,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// A manager from the Flask settings, to look at the store directly.
    fn manager(&self) -> SessionManager {
        let config = Config::from_flask(self.flask_settings()).expect("the Flask settings");
        SessionManager::new(config).expect("the store opens")
    }

    fn start(&self, stack: Stack) -> Running {
        match stack {
            Stack::Rouille(mode) => Running::Server(web::demo(&self.server_args(mode))),
            Stack::C(mode) => Running::Server(web::c_server(&self.server_args(mode))),
            Stack::Cpp(mode) => Running::Server(web::cpp_server(&self.server_args(mode))),
            Stack::Flask => Running::Flask(FlaskApp::start(&self.flask_settings())),
            Stack::Python => Running::Server(web::python_app(&self.server_args(Mode::Cas))),
        }
    }

    /// The stored record of the session a cookie value (`id.signature`) names.
    fn record(&self, manager: &SessionManager, cookie: &str) -> Option<Record> {
        let id = cookie.split('.').next().expect("an id");
        manager
            .store()
            .load(&format!("{}{id}", self.prefix))
            .expect("the store answers")
    }
}

/// A server of a test, stopped when dropped.
enum Running {
    Server(HttpServer),
    Flask(FlaskApp),
}

impl Running {
    fn url(&self, path: &str) -> String {
        match self {
            Running::Server(server) => server.url(path),
            Running::Flask(app) => app.url(path),
        }
    }
}

fn get(browser: &Agent, server: &Running, path: &str) -> Value {
    let url = server.url(path);
    answer(browser.get(&url).call(), &url)
}

fn post(browser: &Agent, server: &Running, path: &str, form: &[(&str, &str)]) -> Value {
    let url = server.url(path);
    answer(browser.post(&url).send_form(form.iter().copied()), &url)
}

/// `GET path` with this cookie value only (no jar), as an old tab would send it.
fn get_with(server: &Running, path: &str, cookie: &str) -> Value {
    let url = server.url(path);
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(&url)
        .header("Cookie", &format!("{COOKIE}={cookie}"))
        .call();
    answer(response, &url)
}

/// The session cookie's value in the browser's jar, if it holds one.
fn cookie(browser: &Agent) -> Option<String> {
    web::cookie_value(browser, COOKIE)
}

fn one_session_across_flask_c_rouille_and_python(store: Store) {
    let shared = Shared::new(store);
    let manager = shared.manager();
    let flask = shared.start(Stack::Flask);
    let c = shared.start(Stack::C(Mode::Cas));
    let rouille = shared.start(Stack::Rouille(Mode::Cas));
    let python = shared.start(Stack::Python);
    let browser = browser();
    let nobody = json!({"user": null, "visits": 0});

    // An anonymous visit on rouille, then the login on Flask: Flask-Session's regenerate
    // gives the session a new id, deletes the old record and keeps the data.
    assert_eq!(
        get(&browser, &rouille, "/visit"),
        json!({"user": null, "visits": 1})
    );
    let anonymous = cookie(&browser).expect("rouille set the session cookie");
    assert_eq!(
        post(&browser, &flask, "/login", &[("user", "ann")]),
        json!({"user": "ann", "visits": 1})
    );
    let logged_in = cookie(&browser).expect("Flask set the session cookie");
    assert_ne!(
        logged_in.split('.').next(),
        anonymous.split('.').next(),
        "a new id on login"
    );
    assert!(shared.record(&manager, &anonymous).is_none());
    assert_eq!(get_with(&c, "/whoami", &anonymous), nobody);

    // The C server, rouille and the Python app see Flask's login; /whoami writes nothing on
    // any of them.
    let stored = shared
        .record(&manager, &logged_in)
        .expect("Flask stored the session");
    assert_eq!(
        get(&browser, &c, "/whoami"),
        json!({"user": "ann", "visits": 1})
    );
    assert_eq!(
        get(&browser, &rouille, "/whoami"),
        json!({"user": "ann", "visits": 1})
    );
    assert_eq!(
        get(&browser, &flask, "/whoami"),
        json!({"user": "ann", "visits": 1})
    );
    assert_eq!(
        get(&browser, &python, "/whoami"),
        json!({"user": "ann", "visits": 1})
    );
    let after = shared.record(&manager, &logged_in).expect("still stored");
    assert_eq!(
        (after.data, after.expires_at),
        (stored.data, stored.expires_at),
        "/whoami rewrote the record"
    );

    // Visits on rouille, C, Flask and Python in turn, each counted once, seen by all four.
    let all = [&rouille, &c, &flask, &python];
    for (n, server) in (2..).zip(all.iter().chain(&all)) {
        assert_eq!(
            get(&browser, server, "/visit"),
            json!({"user": "ann", "visits": n})
        );
    }
    for server in all {
        assert_eq!(
            get(&browser, server, "/whoami"),
            json!({"user": "ann", "visits": 9})
        );
    }
    assert_eq!(cookie(&browser).as_deref(), Some(logged_in.as_str()));

    // A login on the Python app: a new id again, the old record deleted, the data kept.
    assert_eq!(
        post(&browser, &python, "/login", &[("user", "bob")]),
        json!({"user": "bob", "visits": 9})
    );
    let logged_in_again = cookie(&browser).expect("the Python app set the session cookie");
    assert_ne!(
        logged_in_again.split('.').next(),
        logged_in.split('.').next(),
        "a new id on login"
    );
    assert!(shared.record(&manager, &logged_in).is_none());
    assert_eq!(get_with(&flask, "/whoami", &logged_in), nobody);
    for server in all {
        assert_eq!(
            get(&browser, server, "/whoami"),
            json!({"user": "bob", "visits": 9})
        );
    }
    let logged_in = logged_in_again;

    // A logout on the C server ends the session everywhere.
    assert_eq!(post(&browser, &c, "/logout", &[]), nobody);
    assert_eq!(cookie(&browser), None, "the C server removed the cookie");
    assert!(shared.record(&manager, &logged_in).is_none());
    assert_eq!(get_with(&flask, "/whoami", &logged_in), nobody);
    assert_eq!(get_with(&rouille, "/whoami", &logged_in), nobody);
    assert_eq!(get_with(&python, "/whoami", &logged_in), nobody);
    for server in [&flask, &rouille, &python] {
        assert_eq!(get(&browser, server, "/whoami"), nobody);
    }
}

/// What one server's clients saw in a concurrent run.
struct Served {
    stack: Stack,
    ok: usize,
    failed: usize,
    first_failure: Option<String>,
}

/// The figures of a concurrent run.
struct Figures {
    served: Vec<Served>,
    visits: i64,
    seconds: f64,
}

impl Figures {
    fn total(&self) -> i64 {
        (self.served.len() * CLIENTS * REQUESTS) as i64
    }

    fn print(&self, store: &str) {
        let servers: Vec<String> = self.served.iter().map(|s| s.stack.label()).collect();
        let lost = self.total() - self.visits;
        println!(
            "cross-stack concurrent visits on {store}, {}: {} visits counted of {} \
             ({lost} lost, {:.1}%), {:.0} requests/s ({:.1} s)",
            servers.join(" + "),
            self.visits,
            self.total(),
            100.0 * lost as f64 / self.total() as f64,
            self.total() as f64 / self.seconds,
            self.seconds,
        );
        for served in &self.served {
            println!(
                "    {}: {} answered 200, {} failed{}",
                served.stack.label(),
                served.ok,
                served.failed,
                served
                    .first_failure
                    .as_deref()
                    .map(|f| format!(" (first: {f})"))
                    .unwrap_or_default()
            );
        }
    }
}

/// Logs in on the first server, then CLIENTS threads per server send REQUESTS `GET /visit`
/// each, all with the browser's one cookie; the count is read back on the first server.
fn concurrent_visits(store: Store, stacks: &[Stack]) -> Figures {
    let shared = Shared::new(store);
    let servers: Vec<Running> = stacks.iter().map(|&stack| shared.start(stack)).collect();
    let browser = browser();
    assert_eq!(
        post(&browser, &servers[0], "/login", &[("user", "load")]),
        json!({"user": "load", "visits": 0})
    );
    let started = Instant::now();
    let served: Vec<Served> = std::thread::scope(|scope| {
        let runs: Vec<_> = stacks
            .iter()
            .zip(&servers)
            .map(|(&stack, server)| {
                let url = server.url("/visit");
                let clients: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let (browser, url) = (browser.clone(), url.clone());
                        scope.spawn(move || visit(&browser, &url))
                    })
                    .collect();
                (stack, clients)
            })
            .collect();
        runs.into_iter()
            .map(|(stack, clients)| {
                let mut served = Served {
                    stack,
                    ok: 0,
                    failed: 0,
                    first_failure: None,
                };
                for client in clients {
                    let (ok, failures) = client.join().expect("a client thread");
                    served.ok += ok;
                    served.failed += failures.len();
                    if served.first_failure.is_none() {
                        served.first_failure = failures.into_iter().next();
                    }
                }
                served
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let visits = get(&browser, &servers[0], "/whoami")["visits"]
        .as_i64()
        .expect("an integer count");
    for server in &servers[1..] {
        assert_eq!(
            get(&browser, server, "/whoami")["visits"],
            visits,
            "every server reads the same count"
        );
    }
    post(&browser, &servers[0], "/logout", &[]);
    Figures {
        served,
        visits,
        seconds,
    }
}

/// One client: REQUESTS visits; the number answered 200 and what failed.
fn visit(browser: &Agent, url: &str) -> (usize, Vec<String>) {
    let mut ok = 0;
    let mut failures = Vec::new();
    for _ in 0..REQUESTS {
        match browser.get(url).call() {
            Ok(mut response) if response.status() == 200 => {
                response.body_mut().read_to_string().expect("a body");
                ok += 1;
            }
            Ok(mut response) => failures.push(format!(
                "{} {}",
                response.status(),
                response.body_mut().read_to_string().unwrap_or_default()
            )),
            Err(error) => failures.push(error.to_string()),
        }
    }
    (ok, failures)
}

/// A concurrent run on `stacks`, its figures printed. Whatever the mode, every request to
/// the Rust and C servers is answered, and no run counts more visits than were made.
fn measured(store: Store, stacks: &[Stack]) -> Figures {
    let name = store.name;
    let figures = concurrent_visits(store, stacks);
    figures.print(name);
    for served in figures.served.iter().filter(|s| s.stack != Stack::Flask) {
        assert_eq!(
            served.failed,
            0,
            "{}: {:?}",
            served.stack.label(),
            served.first_failure
        );
    }
    assert!(
        (1..=figures.total()).contains(&figures.visits),
        "{} visits",
        figures.visits
    );
    figures
}

/// Rouille and two C servers in no-lost-update mode: every visit counts.
fn concurrent_rust_and_c_lose_no_visit(store: Store) {
    use Stack::*;
    let figures = measured(store, &[Rouille(Mode::Cas), C(Mode::Cas), C(Mode::Cas)]);
    assert_eq!(figures.visits, figures.total());
}

/// Rouille, C and the Python app, all in no-lost-update mode: every visit counts.
fn concurrent_rust_c_and_python_lose_no_visit(store: Store) {
    use Stack::*;
    let figures = measured(store, &[Rouille(Mode::Cas), C(Mode::Cas), Python]);
    assert_eq!(figures.visits, figures.total());
}

/// Rouille and C in no-lost-update mode with Flask-Session beside them: Flask's
/// read-modify-write overwrites concurrent increments (its own and the others'), so the
/// count is measured, not expected.
fn concurrent_with_flask_is_measured(store: Store) {
    use Stack::*;
    measured(store, &[Rouille(Mode::Cas), C(Mode::Cas), Flask]);
}

/// Rouille and two C servers in last-writer-wins mode, Flask-Session's way of saving.
fn concurrent_last_writer_wins_is_measured(store: Store) {
    use Stack::*;
    measured(store, &[Rouille(Mode::Lww), C(Mode::Lww), C(Mode::Lww)]);
}

/// Rouille and C in last-writer-wins mode with Flask: nobody compares before writing.
fn concurrent_last_writer_wins_with_flask_is_measured(store: Store) {
    use Stack::*;
    measured(store, &[Rouille(Mode::Lww), C(Mode::Lww), Flask]);
}

/// docs/DESIGN.md §9 across stacks: "ann" logs in on rouille, on the Python app and on the C
/// server (three devices); the first device also visits the unchanged Flask-Session app, which
/// reads and rewrites the session with its owner key and keeps the binding. Logging out
/// everywhere from the C server then logs the two other devices out of rouille and Flask.
fn end_all_from_c_logs_out_of_rouille_and_flask(store: Store) {
    let shared = Shared::new(store);
    let flask = shared.start(Stack::Flask);
    let c = shared.start(Stack::C(Mode::Cas));
    let rouille = shared.start(Stack::Rouille(Mode::Cas));
    let python = shared.start(Stack::Python);
    let nobody = json!({"user": null, "visits": 0});
    let (laptop, phone, desktop) = (browser(), browser(), browser());
    post(&laptop, &rouille, "/login", &[("user", "ann")]);
    post(&phone, &python, "/login", &[("user", "ann")]);
    post(&desktop, &c, "/login", &[("user", "ann")]);
    assert_eq!(
        get(&laptop, &flask, "/visit"),
        json!({"user": "ann", "visits": 1}),
        "Flask-Session reads and writes the bound session"
    );
    let listed = get(&desktop, &c, "/sessions");
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(post(&desktop, &c, "/logout-all", &[]), json!({"ended": 2}));
    for device in [&laptop, &phone] {
        assert_eq!(get(device, &rouille, "/whoami"), nobody);
        assert_eq!(get(device, &flask, "/whoami"), nobody);
    }
    assert_eq!(get(&desktop, &flask, "/whoami")["user"], "ann");
    assert_eq!(get(&desktop, &rouille, "/whoami")["user"], "ann");
}

macro_rules! cross_stack_suite {
    ($store:ident) => {
        mod $store {
            #[test]
            fn end_all_from_c_logs_out_of_rouille_and_flask() {
                super::end_all_from_c_logs_out_of_rouille_and_flask(super::$store());
            }

            #[test]
            fn one_session_across_flask_c_rouille_and_python() {
                super::one_session_across_flask_c_rouille_and_python(super::$store());
            }

            #[test]
            fn concurrent_rust_and_c_lose_no_visit() {
                super::concurrent_rust_and_c_lose_no_visit(super::$store());
            }

            #[test]
            fn concurrent_rust_c_and_python_lose_no_visit() {
                super::concurrent_rust_c_and_python_lose_no_visit(super::$store());
            }

            #[test]
            fn concurrent_with_flask_is_measured() {
                super::concurrent_with_flask_is_measured(super::$store());
            }

            #[test]
            fn concurrent_last_writer_wins_is_measured() {
                super::concurrent_last_writer_wins_is_measured(super::$store());
            }

            #[test]
            fn concurrent_last_writer_wins_with_flask_is_measured() {
                super::concurrent_last_writer_wins_with_flask_is_measured(super::$store());
            }
        }
    };
}

cross_stack_suite!(redis);
cross_stack_suite!(postgres);
cross_stack_suite!(mongodb);

/// One browser on Redis across Flask, the C server, the C++ server and rouille: a login on
/// Flask, visits in turn on all four (each counted once), a logout on the C++ server that
/// ends the session everywhere.
#[test]
fn redis_one_session_across_flask_c_cpp_and_rouille() {
    let shared = Shared::new(redis());
    let manager = shared.manager();
    let flask = shared.start(Stack::Flask);
    let c = shared.start(Stack::C(Mode::Cas));
    let cpp = shared.start(Stack::Cpp(Mode::Cas));
    let rouille = shared.start(Stack::Rouille(Mode::Cas));
    let browser = browser();
    let nobody = json!({"user": null, "visits": 0});

    assert_eq!(
        get(&browser, &cpp, "/visit"),
        json!({"user": null, "visits": 1})
    );
    assert_eq!(
        post(&browser, &flask, "/login", &[("user", "ann")]),
        json!({"user": "ann", "visits": 1})
    );
    let logged_in = cookie(&browser).expect("Flask set the session cookie");
    for (n, server) in (2..).zip([&rouille, &c, &cpp, &flask, &cpp, &rouille, &c, &flask]) {
        assert_eq!(
            get(&browser, server, "/visit"),
            json!({"user": "ann", "visits": n})
        );
    }
    for server in [&flask, &c, &cpp, &rouille] {
        assert_eq!(
            get(&browser, server, "/whoami"),
            json!({"user": "ann", "visits": 9})
        );
    }
    assert_eq!(cookie(&browser).as_deref(), Some(logged_in.as_str()));

    assert_eq!(post(&browser, &cpp, "/logout", &[]), nobody);
    assert_eq!(cookie(&browser), None, "the C++ server removed the cookie");
    assert!(shared.record(&manager, &logged_in).is_none());
    for server in [&flask, &c, &rouille] {
        assert_eq!(get_with(server, "/whoami", &logged_in), nobody);
    }
}

/// Rouille, the C server and the C++ server in no-lost-update mode on Redis: every visit
/// counts.
#[test]
fn redis_concurrent_rust_c_and_cpp_lose_no_visit() {
    use Stack::*;
    let figures = measured(redis(), &[Rouille(Mode::Cas), C(Mode::Cas), Cpp(Mode::Cas)]);
    assert_eq!(figures.visits, figures.total());
}
