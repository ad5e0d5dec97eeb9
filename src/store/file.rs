//! Filesystem store: one file per session in a directory.
//!
//! # Format
//!
//! A session lives in the file named after its store key (`session:<id>` with the default
//! prefix). Only keys of 1 to 200 characters from `[A-Za-z0-9_.:-]` that do not start with `.`
//! are accepted; every operation refuses any other key with [`Error::Store`], so a key can
//! never name a path outside the directory. A file holds a 16-byte header, then the value:
//!
//! | bytes    | content                                                              |
//! |----------|----------------------------------------------------------------------|
//! | `0..4`   | magic `SSF1`                                                         |
//! | `4..12`  | expiry: whole seconds since the Unix epoch, signed big-endian        |
//! | `12..16` | expiry: nanoseconds within that second, unsigned big-endian          |
//! | `16..`   | the session value, as the manager encoded it                         |
//!
//! Names starting with `.` belong to the store itself: the lock file `.lock` and temporary
//! files `.tmp.<pid>.<counter>`. Files whose names are not valid keys are ignored.
//!
//! A file whose header cannot be read is treated as missing by reads and as expired by the
//! cleanups (purge and threshold). A readable header with an undecodable value is returned as
//! it is: the value is the manager's business.
//!
//! # Writes and locking
//!
//! Every write goes to a temporary file in the same directory, gets the configured mode and
//! is renamed over the target, so a reader sees the old file or the new one, never half of
//! one; [`Store::load`] therefore takes no lock. Every other operation reads, compares and
//! writes while holding an exclusive lock on `.lock` (a process-local mutex for the threads,
//! [`File::lock`] for other processes and other stores on the same directory), which makes
//! them atomic against each other across threads and processes.
//!
//! # Threshold
//!
//! Like Flask-Session's `SESSION_FILE_THRESHOLD`, [`FileOptions::threshold`] caps the number of
//! session files, but a live session is never evicted to make room (docs/DESIGN.md §4): when
//! the directory holds `threshold` files, writing a *new* session file ([`Store::create`], or
//! [`Store::set`] of a key without a file) first deletes the expired and unreadable files, and
//! if that frees nothing the write fails with [`Error::Store`] ("the store is full"). Writes to
//! an existing file (compare-and-set, touch, `set` of an existing key) always go through.
//!
//! The store counts its files in memory instead of listing the directory at each write: it
//! counts at open, adds its own new files and subtracts its own deletions. Only when the count
//! reaches the threshold does it list the directory, purge the expired files and count again,
//! and then at most once per [`RECOUNT_INTERVAL`] unless a file it knows of has expired since.
//! Stores in other processes on the same directory keep counts of their own, so a store sees
//! their new and deleted files at its next recount: until then the directory may hold more
//! files than the threshold (what the others wrote since), or a store may refuse a new session
//! for up to [`RECOUNT_INTERVAL`] after another process made room.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::shared::{expiry_after, shown_key};
use super::{CasOutcome, Record, Store};
use crate::error::{Error, Result};
use crate::parse::QueryParams;

const BACKEND: &str = "filesystem";
const MAGIC: [u8; 4] = *b"SSF1";
const HEADER_LEN: usize = 16;
const MAX_KEY_LEN: usize = 200;
const LOCK_FILE: &str = ".lock";
/// How often a full store may list its directory again to find room for a new session (unless
/// a file it knows of has expired, which makes it look at once).
pub const RECOUNT_INTERVAL: Duration = Duration::from_secs(1);
/// Temporary file names already taken (by a crashed process with the same pid) are skipped;
/// this bounds how many are tried.
const TEMP_ATTEMPTS: u32 = 100;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Options of the filesystem store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    /// The directory holding the session files, created (mode 0700) if missing.
    pub dir: PathBuf,
    /// The most session files kept (at least 1). Expired files are deleted to make room; a
    /// new session that still does not fit is refused, live ones are never evicted.
    pub threshold: usize,
    /// The permission bits of the session files (at most `0o777`).
    pub mode: u32,
}

impl FileOptions {
    /// Options for `dir` with threshold 500 (Flask-Session's `SESSION_FILE_THRESHOLD`
    /// default) and mode 0600.
    pub fn new(dir: impl Into<PathBuf>) -> FileOptions {
        FileOptions {
            dir: dir.into(),
            threshold: 500,
            mode: 0o600,
        }
    }

    /// Parses `file:///abs/dir?threshold=500&mode=0600` (mode in octal), taking the
    /// `threshold` and `mode` parameters and leaving the others.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<FileOptions> {
        if let Some(host) = url
            .host_str()
            .filter(|host| !host.is_empty() && *host != "localhost")
        {
            return Err(Error::config(
                "store URL",
                format!("file URL with host {host:?}: only local directories are supported"),
            ));
        }
        let dir = url
            .to_file_path()
            .map_err(|()| Error::config("store URL", "the file URL is not a local directory"))?;
        let mut options = FileOptions::new(dir);
        if let Some(threshold) = params.take_parsed("threshold")? {
            options.threshold = threshold;
        }
        if let Some(mode) = params.take("mode") {
            options.mode = parse_mode(&mode)?;
        }
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
        if self.threshold == 0 {
            return Err(Error::config("threshold", "must be at least 1"));
        }
        if self.mode > 0o777 {
            return Err(Error::config(
                "mode",
                format!("{:#o} is not a file mode (at most 0o777)", self.mode),
            ));
        }
        Ok(())
    }
}

/// An octal mode, with or without a leading `0o`.
pub(crate) fn parse_mode(text: &str) -> Result<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if octal && mode <= 0o777 => Ok(mode),
        _ => Err(Error::config(
            "mode",
            format!("{text:?} is not an octal file mode between 0 and 0777"),
        )),
    }
}

/// Sessions as files in one directory; see the [module documentation](self) for the format
/// and the locking.
///
/// ```
/// use sessionstore::store::{Store, file::{FileOptions, FileStore}};
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::open(&FileOptions::new(dir.path().join("sessions"))).unwrap();
/// assert!(store.create("session:k", b"\x80", std::time::Duration::from_secs(60)).unwrap());
/// assert_eq!(&store.load("session:k").unwrap().unwrap().data[..], b"\x80");
/// ```
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    threshold: usize,
    mode: u32,
    /// The lock file and the file count. The mutex excludes this process's threads, which
    /// `flock` does not (they share the open file description).
    state: Mutex<DirState>,
}

/// What the directory lock guards in this process.
#[derive(Debug)]
struct DirState {
    /// `.lock`, open for the life of the store.
    lock_file: File,
    /// The session files in the directory, expired ones included, as last counted and kept
    /// up to date with this store's own writes and deletions.
    files: usize,
    /// The soonest expiry among the files at the last count, lowered by this store's writes;
    /// `None` when unknown. Until then a recount cannot find an expired file of this store's.
    first_expiry: Option<OffsetDateTime>,
    /// When the files were last counted.
    counted_at: Instant,
}

/// Holds the directory lock; releases it when dropped.
struct DirLock<'a> {
    state: MutexGuard<'a, DirState>,
    dir: &'a Path,
}

impl Drop for DirLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.state.lock_file.unlock() {
            log::error!(
                "filesystem store: cannot unlock {}: {e}",
                self.dir.join(LOCK_FILE).display()
            );
        }
    }
}

impl FileStore {
    /// Opens the store, creating the directory (mode 0700) and its lock file if missing.
    pub fn open(options: &FileOptions) -> Result<FileStore> {
        options.validate()?;
        let dir = &options.dir;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| path_error("create directory", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(options.mode | 0o600)
            .open(&lock_path)
            .map_err(|e| path_error("open", &lock_path, e))?;
        let files = session_files(dir)?.len();
        Ok(FileStore {
            dir: dir.clone(),
            threshold: options.threshold,
            mode: options.mode,
            state: Mutex::new(DirState {
                lock_file,
                files,
                first_expiry: None,
                counted_at: Instant::now(),
            }),
        })
    }

    /// Takes the directory lock.
    fn lock(&self) -> Result<DirLock<'_>> {
        // A panic of another thread while holding the mutex cannot leave the state
        // half-updated in a way that matters: the count is approximate anyway and corrected
        // at the next recount.
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        File::lock(&state.lock_file)
            .map_err(|e| path_error("lock", &self.dir.join(LOCK_FILE), e))?;
        Ok(DirLock {
            state,
            dir: &self.dir,
        })
    }

    /// The path of `key`'s file, if `key` is acceptable.
    fn path(&self, key: &str) -> Result<PathBuf> {
        if is_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(Error::store(
                BACKEND,
                format!(
                    "refusing key {}: keys must be 1 to {MAX_KEY_LEN} characters of \
                     [A-Za-z0-9_.:-] not starting with '.'",
                    shown_key(key)
                ),
            ))
        }
    }

    /// The live record in `path`: `None` if the file is missing, expired or has no readable
    /// header.
    fn read_live(&self, key: &str, path: &Path) -> Result<Option<Record>> {
        let mut bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(key_error("read", key, e)),
        };
        let Some(expires_at) = parse_header(&bytes) else {
            log::warn!(
                "filesystem store: session file {} has no readable header, treating it as missing",
                shown_key(key)
            );
            return Ok(None);
        };
        if expires_at <= OffsetDateTime::now_utc() {
            return Ok(None);
        }
        bytes.drain(..HEADER_LEN);
        Ok(Some(Record::new(bytes, expires_at)))
    }

    /// Atomically replaces `path` with a file holding `data` and `expires_at`.
    fn write(&self, key: &str, path: &Path, data: &[u8], expires_at: OffsetDateTime) -> Result<()> {
        let (temp, file) = self.create_temp().map_err(|e| key_error("write", key, e))?;
        let written = write_contents(file, self.mode, data, expires_at)
            .and_then(|()| fs::rename(&temp, path));
        written.map_err(|e| {
            if let Err(cleanup) = fs::remove_file(&temp) {
                log::warn!(
                    "filesystem store: cannot remove temporary file {}: {cleanup}",
                    temp.display()
                );
            }
            key_error("write", key, e)
        })
    }

    /// Creates a new temporary file in the directory.
    fn create_temp(&self) -> io::Result<(PathBuf, File)> {
        let mut attempts = 0;
        loop {
            let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = self
                .dir
                .join(format!(".tmp.{}.{counter}", std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.mode)
                .open(&temp)
            {
                Ok(file) => return Ok((temp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < TEMP_ATTEMPTS => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes `name`'s file; `false` if it was already gone.
    fn remove(&self, name: &str) -> Result<bool> {
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(key_error("delete", name, e)),
        }
    }

    /// Whether `key` has a file, live or not.
    fn has_file(&self, key: &str, path: &Path) -> Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(key_error("read", key, e)),
        }
    }

    /// Makes sure one more session file fits under the threshold. When the count says the
    /// directory is full, purges the expired files and counts again if a known file has
    /// expired or the last count is older than [`RECOUNT_INTERVAL`]; still full is an error.
    /// Call with the directory lock held.
    fn make_room(&self, state: &mut DirState) -> Result<()> {
        if state.files < self.threshold {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        if state.first_expiry.is_none_or(|at| at <= now)
            || state.counted_at.elapsed() >= RECOUNT_INTERVAL
        {
            self.purge_and_count(state)?;
        }
        if state.files < self.threshold {
            return Ok(());
        }
        Err(Error::store(
            BACKEND,
            format!(
                "the store is full: {} session files, threshold {}; new sessions are refused \
                 until some expire or end (live sessions are never evicted; raise threshold \
                 or SESSION_FILE_THRESHOLD to keep more)",
                state.files, self.threshold
            ),
        ))
    }

    /// Deletes the expired and unreadable session files, counts the others and notes the
    /// soonest expiry among them; returns how many files it deleted. Call with the directory
    /// lock held.
    fn purge_and_count(&self, state: &mut DirState) -> Result<u64> {
        let now = OffsetDateTime::now_utc();
        let mut purged = 0;
        let mut live = 0;
        let mut first_expiry = None;
        for name in session_files(&self.dir)? {
            match read_expiry(&self.dir.join(&name)) {
                Ok(Some(at)) if at > now => {
                    live += 1;
                    first_expiry =
                        Some(first_expiry.map_or(at, |first: OffsetDateTime| first.min(at)));
                }
                Ok(_) => {
                    if self.remove(&name)? {
                        purged += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(key_error("read", &name, e)),
            }
        }
        state.files = live;
        state.first_expiry = first_expiry;
        state.counted_at = Instant::now();
        Ok(purged)
    }

    /// Writes `key`'s file, first making room if it is a new one.
    fn write_counted(
        &self,
        state: &mut DirState,
        key: &str,
        path: &Path,
        data: &[u8],
        ttl: Duration,
    ) -> Result<()> {
        let expires_at = expiry_after(BACKEND, ttl)?;
        let is_new = !self.has_file(key, path)?;
        if is_new {
            self.make_room(state)?;
        }
        self.write(key, path, data, expires_at)?;
        if is_new {
            state.files += 1;
        }
        state.first_expiry = state.first_expiry.map(|first| first.min(expires_at));
        Ok(())
    }

    /// Deletes `key`'s file and counts it out; `false` if it was already gone.
    fn remove_counted(&self, state: &mut DirState, key: &str) -> Result<bool> {
        let removed = self.remove(key)?;
        if removed {
            state.files = state.files.saturating_sub(1);
        }
        Ok(removed)
    }
}

impl Store for FileStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        let path = self.path(key)?;
        self.read_live(key, &path)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let path = self.path(key)?;
        let mut lock = self.lock()?;
        if self.read_live(key, &path)?.is_some() {
            return Ok(false);
        }
        self.write_counted(&mut lock.state, key, &path, data, ttl)?;
        Ok(true)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let expires_at = expiry_after(BACKEND, ttl)?;
        let path = self.path(key)?;
        let _lock = self.lock()?;
        match self.read_live(key, &path)? {
            Some(current) if current.data == expected.data => {
                self.write(key, &path, data, expires_at)?;
                Ok(CasOutcome::Stored)
            }
            current => Ok(CasOutcome::Conflict(current)),
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let path = self.path(key)?;
        let mut lock = self.lock()?;
        match self.read_live(key, &path)? {
            Some(current) if current.data == expected.data => {
                self.remove_counted(&mut lock.state, key)?;
                Ok(CasOutcome::Stored)
            }
            current => Ok(CasOutcome::Conflict(current)),
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let path = self.path(key)?;
        let mut lock = self.lock()?;
        self.write_counted(&mut lock.state, key, &path, data, ttl)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.path(key)?;
        let mut lock = self.lock()?;
        self.remove_counted(&mut lock.state, key)?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expires_at = expiry_after(BACKEND, ttl)?;
        let path = self.path(key)?;
        let _lock = self.lock()?;
        match self.read_live(key, &path)? {
            Some(record) => {
                self.write(key, &path, &record.data, expires_at)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        let mut lock = self.lock()?;
        self.purge_and_count(&mut lock.state)
    }

    /// Lists the directory (no lock: a listing is no write) and reads the header of each
    /// file of the page, leaving out the expired and unreadable ones.
    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let now = OffsetDateTime::now_utc();
        let mut names: Vec<String> = session_files(&self.dir)?
            .into_iter()
            .filter(|name| name.starts_with(prefix) && cursor.is_none_or(|after| **name > *after))
            .collect();
        names.sort_unstable();
        let live = names
            .into_iter()
            .filter(|name| matches!(read_expiry(&self.dir.join(name)), Ok(Some(at)) if at > now));
        Ok(super::shared::key_page(live, limit))
    }
}

/// The names of the session files in `dir`.
fn session_files(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).map_err(|e| path_error("list", dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| path_error("list", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_key(&name) {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| path_error("list", dir, e))?;
        if file_type.is_file() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Whether `name` is an acceptable key (and so a session file name).
fn is_key(name: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn key_error(action: &str, key: &str, e: io::Error) -> Error {
    Error::store_caused_by(
        BACKEND,
        format!("cannot {action} session file {}", shown_key(key)),
        e,
    )
}

fn path_error(action: &str, path: &Path, e: io::Error) -> Error {
    Error::store_caused_by(BACKEND, format!("cannot {action} {}", path.display()), e)
}

fn encode_header(expires_at: OffsetDateTime) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4..12].copy_from_slice(&expires_at.unix_timestamp().to_be_bytes());
    header[12..].copy_from_slice(&expires_at.nanosecond().to_be_bytes());
    header
}

/// The expiry in a file's first bytes, if they are a valid header.
fn parse_header(bytes: &[u8]) -> Option<OffsetDateTime> {
    let (magic, rest) = bytes.split_first_chunk::<4>()?;
    let (seconds, rest) = rest.split_first_chunk::<8>()?;
    let (nanos, _) = rest.split_first_chunk::<4>()?;
    let nanos = u32::from_be_bytes(*nanos);
    if *magic != MAGIC || nanos >= 1_000_000_000 {
        return None;
    }
    let unix_nanos = i128::from(i64::from_be_bytes(*seconds)) * 1_000_000_000 + i128::from(nanos);
    OffsetDateTime::from_unix_timestamp_nanos(unix_nanos).ok()
}

/// The expiry in the header of the file at `path` (`None` if the header is unreadable).
fn read_expiry(path: &Path) -> io::Result<Option<OffsetDateTime>> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    File::open(path)?
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)?;
    Ok(parse_header(&header))
}

/// Fills a new temporary file, giving it exactly `mode` (the umask may have narrowed it).
fn write_contents(
    mut file: File,
    mode: u32,
    data: &[u8],
    expires_at: OffsetDateTime,
) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(&encode_header(expires_at))?;
    file.write_all(data)
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;
    use crate::store::test_support::contract::{
        InTempDir, Purge, concurrent_increments_lose_nothing, store_contract_tests,
    };
    use crate::store::test_support::store_urls::{options_and_rest, options_from, rejected_key};

    const MINUTE: Duration = Duration::from_secs(60);
    const SHORT: Duration = Duration::from_millis(50);

    fn open(dir: &Path) -> FileStore {
        FileStore::open(&FileOptions::new(dir.join("sessions"))).unwrap()
    }

    fn expire() {
        thread::sleep(SHORT * 2);
    }

    fn file_count(store: &FileStore) -> usize {
        session_files(&store.dir).unwrap().len()
    }

    store_contract_tests! {
        mod contract;
        open: InTempDir::open(open),
        short_ttl: SHORT,
        precision: Duration::ZERO,
        purge: Purge::Counts,
    }

    /// Deleting removes the session's file; a purge leaves the lock and files that are not
    /// sessions.
    #[test]
    fn delete_and_purge_remove_only_session_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create("session:a", b"data", MINUTE).unwrap();
        store.create("session:old", b"x", SHORT).unwrap();
        fs::write(store.dir.join("not a key"), b"ignored").unwrap();
        store.delete("session:a").unwrap();
        expire();
        assert_eq!(store.purge_expired().unwrap(), 1);
        assert_eq!(file_count(&store), 0);
        assert!(store.dir.join("not a key").exists());
        assert!(store.dir.join(LOCK_FILE).exists());
    }

    /// A second store on the same directory stands in for another process.
    #[test]
    fn stores_on_one_directory_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (open(dir.path()), open(dir.path()));
        concurrent_increments_lose_nothing(&[&first, &second]);
    }

    #[test]
    fn refuses_unsafe_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let long = "k".repeat(300);
        for key in [
            "../x",
            "a/b",
            ".hidden",
            "",
            "..",
            "a\0b",
            "sp ace",
            long.as_str(),
        ] {
            let results = [
                store.load(key).map(|_| ()),
                store.create(key, b"x", MINUTE).map(|_| ()),
                store.set(key, b"x", MINUTE),
                store.delete(key),
                store.touch(key, MINUTE).map(|_| ()),
                store
                    .compare_and_set(
                        key,
                        &Record::new(vec![], OffsetDateTime::now_utc()),
                        b"x",
                        MINUTE,
                    )
                    .map(|_| ()),
            ];
            for result in results {
                match result {
                    Err(Error::Store { backend, message }) => {
                        assert_eq!(backend, "filesystem");
                        assert!(message.starts_with("refusing key"), "{message}");
                        assert!(
                            !message.contains(&long[..17]),
                            "key shown in full: {message}"
                        );
                    }
                    other => panic!("key {key:?} accepted: {other:?}"),
                }
            }
        }
        assert!(!dir.path().join("x").exists());
        assert_eq!(file_count(&store), 0);
        let longest = "k".repeat(MAX_KEY_LEN);
        assert!(store.create(&longest, b"x", MINUTE).unwrap());
    }

    #[test]
    fn files_get_the_configured_mode() {
        let dir = tempfile::tempdir().unwrap();
        let options = FileOptions {
            mode: 0o640,
            ..FileOptions::new(dir.path().join("sessions"))
        };
        let store = FileStore::open(&options).unwrap();
        let mode = || {
            fs::metadata(options.dir.join("session:a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        store.create("session:a", b"x", MINUTE).unwrap();
        assert_eq!(mode(), 0o640);
        assert!(store.touch("session:a", MINUTE).unwrap());
        assert_eq!(mode(), 0o640);
        let dir_mode = fs::metadata(&options.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    fn assert_full(result: Result<impl std::fmt::Debug>) {
        match result {
            Err(Error::Store { backend, message }) => {
                assert_eq!(backend, BACKEND);
                assert!(message.contains("threshold 3"), "{message}");
            }
            other => panic!("expected the store-full error, got {other:?}"),
        }
    }

    /// A full directory loses its expired files to a new session, never its live ones; when
    /// nothing has expired, new sessions are refused and existing ones still update.
    #[test]
    fn threshold_removes_only_expired_files() {
        let dir = tempfile::tempdir().unwrap();
        let options = FileOptions {
            threshold: 3,
            ..FileOptions::new(dir.path().join("sessions"))
        };
        let store = FileStore::open(&options).unwrap();
        store.create("session:1", b"x", SHORT).unwrap();
        store.create("session:2", b"x", MINUTE).unwrap();
        store.create("session:3", b"x", MINUTE * 2).unwrap();
        expire();
        store.create("session:4", b"x", MINUTE * 3).unwrap();
        assert!(!options.dir.join("session:1").exists(), "expired file kept");
        assert_eq!(file_count(&store), 3);

        assert_full(store.create("session:5", b"x", MINUTE * 4));
        assert_full(store.set("session:5", b"x", MINUTE * 4));
        assert_eq!(file_count(&store), 3);
        store.set("session:2", b"y", MINUTE).unwrap();
        assert!(store.touch("session:3", MINUTE).unwrap());
        let record = store.load("session:4").unwrap().unwrap();
        let outcome = store.compare_and_set("session:4", &record, b"z", MINUTE);
        assert_eq!(outcome.unwrap(), CasOutcome::Stored);
        for key in ["session:2", "session:3", "session:4"] {
            assert!(store.load(key).unwrap().is_some(), "{key} removed");
        }

        store.delete("session:2").unwrap();
        assert!(store.create("session:5", b"x", MINUTE).unwrap());
        assert_eq!(file_count(&store), 3);
    }

    /// Another store on the directory (another process) makes room: this one sees it at its
    /// next recount, within `RECOUNT_INTERVAL`.
    #[test]
    fn full_store_sees_room_made_by_another_store() {
        let dir = tempfile::tempdir().unwrap();
        let options = FileOptions {
            threshold: 3,
            ..FileOptions::new(dir.path().join("sessions"))
        };
        let (store, other) = (
            FileStore::open(&options).unwrap(),
            FileStore::open(&options).unwrap(),
        );
        for key in ["session:1", "session:2", "session:3"] {
            store.create(key, b"x", MINUTE).unwrap();
        }
        assert_full(store.create("session:4", b"x", MINUTE));
        other.delete("session:1").unwrap();
        thread::sleep(RECOUNT_INTERVAL);
        assert!(store.create("session:4", b"x", MINUTE).unwrap());
        assert_full(store.create("session:5", b"x", MINUTE));
    }

    #[test]
    fn huge_lifetime_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        assert!(store.create("session:a", b"x", Duration::MAX).is_err());
        assert_eq!(file_count(&store), 0);
    }

    #[test]
    fn corrupt_header_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fs::write(store.dir.join("session:bad"), b"garbage without header").unwrap();
        fs::write(store.dir.join("session:short"), b"SSF1").unwrap();
        assert_eq!(store.load("session:bad").unwrap(), None);
        assert_eq!(store.load("session:short").unwrap(), None);
        assert!(!store.touch("session:bad", MINUTE).unwrap());
        assert_eq!(store.purge_expired().unwrap(), 2);
        fs::write(store.dir.join("session:bad"), b"garbage without header").unwrap();
        assert!(store.create("session:bad", b"fresh", MINUTE).unwrap());
        assert_eq!(
            &store.load("session:bad").unwrap().unwrap().data[..],
            b"fresh"
        );
    }

    #[test]
    fn undecodable_value_behind_a_valid_header_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let expires_at = OffsetDateTime::now_utc() + MINUTE;
        let mut contents = encode_header(expires_at).to_vec();
        contents.extend_from_slice(b"\xc1 not msgpack");
        fs::write(store.dir.join("session:v"), contents).unwrap();
        let record = store.load("session:v").unwrap().unwrap();
        assert_eq!(&record.data[..], b"\xc1 not msgpack");
        assert_eq!(record.expires_at, expires_at);
    }

    #[test]
    fn from_url_reads_dir_threshold_and_mode() {
        let (options, mut params) = options_and_rest(
            "file:///var/lib/app/sessions?threshold=7&mode=0640&other=1",
            FileOptions::from_url,
        );
        assert_eq!(
            options,
            FileOptions {
                dir: PathBuf::from("/var/lib/app/sessions"),
                threshold: 7,
                mode: 0o640,
            }
        );
        assert_eq!(params.take("other").as_deref(), Some("1"));
        params.finish().unwrap();

        let url = url::Url::parse("file://localhost/tmp/s").unwrap();
        let options = FileOptions::from_url(&url, &mut QueryParams::default()).unwrap();
        assert_eq!(options, FileOptions::new("/tmp/s"));

        let (options, _) = options_and_rest("file:///tmp/s?mode=0o644", FileOptions::from_url);
        assert_eq!(options.mode, 0o644);
    }

    #[test]
    fn from_url_rejects_bad_values() {
        let options_from = |text: &str| options_from(text, FileOptions::from_url);
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("file://example.com/tmp/s"), "store URL");
        assert_eq!(key_of("file:///tmp/s?mode=1777"), "mode");
        assert_eq!(key_of("file:///tmp/s?mode=0800"), "mode");
        assert_eq!(key_of("file:///tmp/s?mode=rw"), "mode");
        assert_eq!(key_of("file:///tmp/s?mode=%2B600"), "mode");
        assert_eq!(key_of("file:///tmp/s?threshold=0"), "threshold");
        assert_eq!(key_of("file:///tmp/s?threshold=-1"), "threshold");
    }

    #[test]
    fn header_round_trips() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(parse_header(&encode_header(at)), Some(at));
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000_000).unwrap();
        assert_eq!(
            parse_header(&encode_header(before_epoch)),
            Some(before_epoch)
        );
    }
}
