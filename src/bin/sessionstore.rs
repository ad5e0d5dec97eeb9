//! `sessionstore`: inspect, purge and migrate the sessions of a store (docs/DESIGN.md §10).
//!
//! Exit codes: 0 done; 1 the store failed (unreachable, refused, cannot list its keys) or
//! some records of a migration could not be copied; 2 bad arguments or configuration; 3 no
//! such session (`show`, `delete`); 4 the cookie's signature does not match the secret
//! (`show`). Errors name the store and the cause; URLs are shown without their password and
//! secrets are never printed.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sessionstore::store::Store;
use sessionstore::{Config, CookieMode, Error, SessionId, SessionManager};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Keys listed per page.
const PAGE: usize = 1000;

#[derive(Parser)]
#[command(
    name = "sessionstore",
    version,
    about = "Inspect, purge and migrate the sessions of a sessionstore store",
    after_help = "Exit codes: 0 done; 1 store failure (or records a migration could not copy); \
                  2 bad arguments or configuration; 3 no such session; 4 bad signature."
)]
struct Cli {
    /// The store URL, as the library takes it (`redis://host:6379/0?prefix=app:`).
    #[arg(long, env = "SESSIONSTORE_URL", global = true, hide_env_values = true)]
    url: Option<String>,
    /// The secret the cookies are signed with; `show` then checks the signature.
    #[arg(
        long,
        env = "SESSIONSTORE_SECRET",
        global = true,
        hide_env_values = true
    )]
    secret: Option<String>,
    /// How the cookies are signed when a secret is given: `signed` or `flask`.
    #[arg(long, global = true, default_value = "signed")]
    cookie_mode: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Counts the live sessions.
    Count,
    /// Lists the live sessions' ids (hashes, when the store hashes ids), one per line.
    List {
        /// Stops after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Shows a session as JSON: its id, expiry and data.
    Show {
        /// A session id, a cookie value (`id.signature`) or `name=value`. Ids are base64url
        /// and may start with `-`: taken as given, never as an option.
        #[arg(allow_hyphen_values = true)]
        id_or_cookie: String,
    },
    /// Ends a session.
    Delete {
        /// The session id (taken as given when it starts with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Removes the expired records (on stores that keep them) and counts what is left.
    Purge,
    /// Copies every live session, with its remaining lifetime, to another store. Sessions
    /// already there are skipped (unless --overwrite), so an interrupted run is finished
    /// by running it again.
    Migrate {
        /// The source store URL.
        #[arg(long)]
        from: String,
        /// The destination store URL.
        #[arg(long)]
        to: String,
        /// Replaces the sessions already at the destination.
        #[arg(long)]
        overwrite: bool,
        /// Records copied at once.
        #[arg(long, default_value_t = 16)]
        jobs: usize,
    },
    /// Opens the store and makes one write, read and delete: for deploys.
    Check {
        /// The store URL (else --url or SESSIONSTORE_URL).
        url: Option<String>,
    },
}

/// Why the command failed, with its exit code.
enum Failure {
    /// The store failed.
    Store(String),
    /// Bad arguments or configuration.
    Usage(String),
    /// No such session.
    NotFound(String),
    /// The signature does not match.
    BadSignature(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Store(_) => 1,
            Failure::Usage(_) => 2,
            Failure::NotFound(_) => 3,
            Failure::BadSignature(_) => 4,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Store(m)
            | Failure::Usage(m)
            | Failure::NotFound(m)
            | Failure::BadSignature(m) => m,
        }
    }
}

type Outcome = std::result::Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sessionstore: {}", failure.message());
            ExitCode::from(failure.code())
        }
    }
}

fn run(cli: &Cli) -> Outcome {
    match &cli.command {
        Command::Count => {
            let opened = Opened::new(cli, required_url(cli)?)?;
            println!("{}", opened.keys(None, Listing::Sessions)?.len());
            Ok(())
        }
        Command::List { limit } => {
            let opened = Opened::new(cli, required_url(cli)?)?;
            let mut out = std::io::stdout().lock();
            for key in opened.keys(*limit, Listing::Sessions)? {
                let id = key.strip_prefix(&opened.config.key_prefix).unwrap_or(&key);
                if writeln!(out, "{id}").is_err() {
                    break;
                }
            }
            Ok(())
        }
        Command::Show { id_or_cookie } => show(cli, id_or_cookie),
        Command::Delete { id } => {
            let opened = Opened::new(cli, required_url(cli)?)?;
            let id = SessionId::parse(id)
                .ok_or_else(|| Failure::Usage(format!("{id:?} is not a session id")))?;
            let key = opened.manager.store_key(&id);
            let store = opened.manager.store();
            if store.load(&key).map_err(|e| opened.failed(e))?.is_none() {
                return Err(Failure::NotFound(format!(
                    "no session {} in {}",
                    id.as_str(),
                    opened.shown
                )));
            }
            store.delete(&key).map_err(|e| opened.failed(e))?;
            println!("deleted {}", id.as_str());
            Ok(())
        }
        Command::Purge => {
            let opened = Opened::new(cli, required_url(cli)?)?;
            let purged = opened
                .manager
                .purge_expired()
                .map_err(|e| opened.failed(e))?;
            let live = opened.keys(None, Listing::Sessions)?.len();
            println!("purged {purged} expired records; {live} live sessions remain");
            Ok(())
        }
        Command::Migrate {
            from,
            to,
            overwrite,
            jobs,
        } => migrate(cli, from, to, *overwrite, (*jobs).max(1)),
        Command::Check { url } => {
            let url = match url {
                Some(url) => url.as_str(),
                None => required_url(cli)?,
            };
            check(cli, url)
        }
    }
}

fn required_url(cli: &Cli) -> std::result::Result<&str, Failure> {
    cli.url.as_deref().ok_or_else(|| {
        Failure::Usage("no store URL: give --url or set SESSIONSTORE_URL".to_owned())
    })
}

/// A store opened from its URL, with its configuration.
struct Opened {
    config: Config,
    manager: SessionManager,
    /// The URL without its password, for messages.
    shown: String,
}

impl Opened {
    fn new(cli: &Cli, url: &str) -> std::result::Result<Opened, Failure> {
        let shown = redacted(url);
        let mut builder =
            Config::builder_from_url(url).map_err(|e| Failure::Usage(format!("{shown}: {e}")))?;
        if let Some(secret) = &cli.secret {
            let mode = CookieMode::from_name(&cli.cookie_mode)
                .filter(|mode| *mode != CookieMode::Plain)
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "--cookie-mode {:?}: expected signed or flask",
                        cli.cookie_mode
                    ))
                })?;
            builder = builder.secret(secret).cookie_mode(mode);
        }
        let config = builder
            .build()
            .map_err(|e| Failure::Usage(format!("{shown}: {e}")))?;
        let manager = SessionManager::new(config.clone())
            .map_err(|e| Failure::Store(format!("cannot open {shown}: {e}")))?;
        Ok(Opened {
            config,
            manager,
            shown,
        })
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.manager.store()
    }

    /// The store failure `error`, naming the store.
    fn failed(&self, error: Error) -> Failure {
        Failure::Store(format!("{}: {error}", self.shown))
    }

    /// The live keys under the prefix, each once, at most `limit`; with [`Listing::Sessions`]
    /// without the owners' index records.
    fn keys(
        &self,
        limit: Option<usize>,
        listing: Listing,
    ) -> std::result::Result<Vec<String>, Failure> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        self.each_page(|page| {
            for key in page {
                if limit.is_some_and(|limit| keys.len() >= limit) {
                    return false;
                }
                if listing == Listing::Sessions && self.manager.is_owner_index_key(&key) {
                    continue;
                }
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
            limit.is_none_or(|limit| keys.len() < limit)
        })?;
        Ok(keys)
    }

    /// Calls `f` with each page of keys until it returns false or the listing ends.
    fn each_page(
        &self,
        mut f: impl FnMut(Vec<String>) -> bool,
    ) -> std::result::Result<(), Failure> {
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store()
                .list_keys(&self.config.key_prefix, cursor.as_deref(), PAGE)
                .map_err(|e| self.failed(e))?;
            if !f(page.keys) {
                return Ok(());
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// `url` with its password, if any, replaced by `***`.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsable store URL>".to_owned(),
    }
}

fn show(cli: &Cli, id_or_cookie: &str) -> Outcome {
    let opened = Opened::new(cli, required_url(cli)?)?;
    let cookie_name = &opened.config.cookie.name;
    let value = match id_or_cookie.split_once('=') {
        Some((_, value)) => value,
        None => id_or_cookie,
    };
    let id = if cli.secret.is_some() {
        opened.config.cookie.verify(value).ok_or_else(|| {
            Failure::BadSignature(format!(
                "{value:?} is not a session cookie signed with the given secret"
            ))
        })?
    } else {
        let bare = match value.rsplit_once('.') {
            Some((id, _)) => {
                eprintln!("sessionstore: signature not checked (no secret given)");
                id
            }
            None => value,
        };
        SessionId::parse(bare)
            .ok_or_else(|| Failure::Usage(format!("{bare:?} is not a session id")))?
    };
    let key = opened.manager.store_key(&id);
    let record = opened
        .store()
        .load(&key)
        .map_err(|e| opened.failed(e))?
        .ok_or_else(|| {
            Failure::NotFound(format!("no session {} in {}", id.as_str(), opened.shown))
        })?;
    // Loaded through the manager (its cookie checks, hashing, decryption and decoding) with
    // a cookie it accepts: the value given, or the id in the plain mode.
    let session = opened
        .manager
        .load(Some(&format!(
            "{cookie_name}={}",
            opened.config.cookie.value(&id)
        )))
        .map_err(|e| opened.failed(e))?;
    if session.is_new() {
        return Err(Failure::NotFound(format!(
            "session {} in {} is expired or cannot be decoded",
            id.as_str(),
            opened.shown
        )));
    }
    let data: serde_json::Map<String, serde_json::Value> = session
        .keys()
        .filter_map(|name| {
            let value = session.get_value(name)?;
            Some((name.to_owned(), serde_json::to_value(value).ok()?))
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    let shown = serde_json::json!({
        "id": id.as_str(),
        "key": key,
        "expires_at": record.expires_at.format(&Rfc3339).unwrap_or_default(),
        "ttl_seconds": (record.expires_at - now).whole_seconds().max(0),
        "size": record.data.len(),
        "data": data,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    );
    Ok(())
}

fn check(cli: &Cli, url: &str) -> Outcome {
    let started = Instant::now();
    let opened = Opened::new(cli, url)?;
    let opened_in = started.elapsed();
    let store = opened.store();
    let key = format!(
        "{}sessionstore-check-{}",
        opened.config.key_prefix,
        SessionId::generate().as_str()
    );
    let round_trip = Instant::now();
    let probe = b"sessionstore check";
    let written = store
        .create(&key, probe, Duration::from_secs(60))
        .map_err(|e| opened.failed(e))?;
    let read = store.load(&key).map_err(|e| opened.failed(e))?;
    store.delete(&key).map_err(|e| opened.failed(e))?;
    if !written || read.is_none_or(|record| record.data[..] != probe[..]) {
        return Err(Failure::Store(format!(
            "{}: the probe record did not read back as written",
            opened.shown
        )));
    }
    println!(
        "ok: {} store at {}: opened in {:.1} ms, write+read+delete in {:.1} ms",
        store.backend(),
        opened.shown,
        opened_in.as_secs_f64() * 1e3,
        round_trip.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// What a migration did, counted by its workers.
#[derive(Default)]
struct Tally {
    copied: AtomicU64,
    existing: AtomicU64,
    gone: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    fn done(&self) -> u64 {
        [&self.copied, &self.existing, &self.gone, &self.failed]
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    fn summary(&self) -> String {
        format!(
            "{} copied, {} already there, {} expired meanwhile, {} failed",
            self.copied.load(Ordering::Relaxed),
            self.existing.load(Ordering::Relaxed),
            self.gone.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

/// Progress on a terminal (a bar) or elsewhere (a line per page, on stderr).
enum Progress {
    Bar(ProgressBar),
    Lines(u64),
}

impl Progress {
    fn new(total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} sessions, {per_sec}, {eta} left {msg}",
            ) {
                bar.set_style(style);
            }
            Progress::Bar(bar)
        } else {
            Progress::Lines(total)
        }
    }

    fn show(&self, tally: &Tally) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(tally.done());
                bar.set_message(format!("({})", tally.summary()));
            }
            Progress::Lines(total) => {
                eprintln!("progress: {}/{total} ({})", tally.done(), tally.summary());
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Which keys [`Opened::keys`] lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Sessions only (`count`, `list`).
    Sessions,
    /// Sessions and the owners' index records (`migrate` copies both).
    Everything,
}

fn migrate(cli: &Cli, from: &str, to: &str, overwrite: bool, jobs: usize) -> Outcome {
    let source = Opened::new(cli, from)?;
    let destination = Opened::new(cli, to)?;
    let started = Instant::now();
    let total = source.keys(None, Listing::Everything)?.len() as u64;
    let tally = Tally::default();
    let progress = Progress::new(total);
    let (from_prefix, to_prefix) = (&source.config.key_prefix, &destination.config.key_prefix);
    if from_prefix != to_prefix {
        eprintln!(
            "warning: the key prefix changes: the owners' index records are copied as they are \
             and still name the source's keys, so sessions_of and end_sessions_of at the \
             destination miss the copied sessions until each is bound again"
        );
    }
    // Copies `keys`: reads each, then writes the live ones in one batch.
    let copy = |keys: &[String]| -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            let live = source.store().load(key)?.and_then(|record| {
                let left = Duration::try_from(record.expires_at - now).ok()?;
                Some((record.data, left.max(Duration::from_millis(1))))
            });
            match live {
                Some((data, ttl)) => {
                    let unprefixed = key.strip_prefix(from_prefix.as_str()).unwrap_or(key);
                    records.push((format!("{to_prefix}{unprefixed}"), data, ttl));
                }
                None => {
                    tally.gone.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let store = destination.store();
        if overwrite {
            for (key, data, ttl) in &records {
                store.set(key, data, *ttl)?;
                tally.copied.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        let batch: Vec<(&str, &[u8], Duration)> = records
            .iter()
            .map(|(key, data, ttl)| (key.as_str(), &data[..], *ttl))
            .collect();
        for stored in store.create_many(&batch)? {
            let counter = if stored {
                &tally.copied
            } else {
                &tally.existing
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    };
    let mut first_error: Option<String> = None;
    source.each_page(|page| {
        let chunk = page.len().div_ceil(jobs).max(1);
        let errors: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = page
                .chunks(chunk)
                .map(|keys| {
                    let copy = &copy;
                    let tally = &tally;
                    scope.spawn(move || {
                        copy(keys).map_err(|error| {
                            // The batch is retried whole by the next run.
                            tally.failed.fetch_add(keys.len() as u64, Ordering::Relaxed);
                            error.to_string()
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|worker| worker.join().ok()?.err())
                .collect()
        });
        if first_error.is_none() {
            first_error = errors.into_iter().next();
        }
        progress.show(&tally);
        true
    })?;
    progress.finish();
    println!(
        "migrated {} -> {}: {total} listed, {} in {:.1} s",
        source.shown,
        destination.shown,
        tally.summary(),
        started.elapsed().as_secs_f64()
    );
    match first_error {
        Some(error) => Err(Failure::Store(format!(
            "{} records not copied, the first because: {error}; run again to retry them",
            tally.failed.load(Ordering::Relaxed)
        ))),
        None => Ok(()),
    }
}
