//! The filesystem store's baseline: `std::fs` with the store's file format and locking.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Raw, RawCas, RawRecord, fail};

const MODE: u32 = 0o600;

/// `std::fs`: one file per key holding a 16-byte expiry header and the value, replaced
/// through a temporary file and a rename, writes under a mutex and an `flock` on a lock
/// file, and a directory count before each create (the store's file threshold).
pub struct FileRaw {
    dir: PathBuf,
    lock: Mutex<File>,
    temp: AtomicU64,
}

impl FileRaw {
    pub fn open(dir: &Path) -> FileRaw {
        fs::create_dir_all(dir).unwrap_or_else(|e| fail("filesystem", "mkdir", e));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(".lock"))
            .unwrap_or_else(|e| fail("filesystem", "open lock", e));
        FileRaw {
            dir: dir.to_owned(),
            lock: Mutex::new(lock),
            temp: AtomicU64::new(0),
        }
    }

    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let mut bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => fail("filesystem", "read", e),
        };
        let seconds = i64::from_be_bytes(bytes[4..12].try_into().unwrap());
        if seconds <= OffsetDateTime::now_utc().unix_timestamp() {
            return None;
        }
        bytes.drain(..16);
        Some(bytes)
    }

    fn write(&self, path: &Path, data: &[u8], ttl: Duration) {
        let temp = self.dir.join(format!(
            ".tmp.{}.{}",
            std::process::id(),
            self.temp.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&temp)
            .unwrap_or_else(|e| fail("filesystem", "create", e));
        let at = OffsetDateTime::now_utc() + ttl;
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(b"SSF1");
        header[4..12].copy_from_slice(&at.unix_timestamp().to_be_bytes());
        header[12..].copy_from_slice(&at.nanosecond().to_be_bytes());
        file.set_permissions(Permissions::from_mode(MODE))
            .and_then(|()| file.write_all(&header))
            .and_then(|()| file.write_all(data))
            .and_then(|()| fs::rename(&temp, path))
            .unwrap_or_else(|e| fail("filesystem", "write", e));
    }

    fn locked<T>(&self, f: impl FnOnce() -> T) -> T {
        let file = self.lock.lock().unwrap();
        file.lock()
            .unwrap_or_else(|e| fail("filesystem", "lock", e));
        let result = f();
        file.unlock()
            .unwrap_or_else(|e| fail("filesystem", "unlock", e));
        result
    }
}

impl Raw for FileRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        self.read(&self.dir.join(key)).map(RawRecord::new)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        let path = self.dir.join(key);
        self.locked(|| {
            if self.read(&path).is_some() {
                return false;
            }
            let files = fs::read_dir(&self.dir)
                .unwrap_or_else(|e| fail("filesystem", "list", e))
                .count();
            std::hint::black_box(files);
            self.write(&path, data, ttl);
            true
        })
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let path = self.dir.join(key);
        self.locked(|| match self.read(&path) {
            Some(current) if current == expected.data => {
                self.write(&path, data, ttl);
                RawCas::Stored
            }
            current => RawCas::Conflict(current.map(RawRecord::new)),
        })
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        let path = self.dir.join(key);
        self.locked(|| match self.read(&path) {
            Some(current) if current == expected.data => {
                fs::remove_file(&path).unwrap_or_else(|e| fail("filesystem", "delete", e));
                RawCas::Stored
            }
            current => RawCas::Conflict(current.map(RawRecord::new)),
        })
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        let path = self.dir.join(key);
        self.locked(|| {
            let files = fs::read_dir(&self.dir)
                .unwrap_or_else(|e| fail("filesystem", "list", e))
                .count();
            std::hint::black_box(files);
            self.write(&path, data, ttl);
        })
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        let path = self.dir.join(key);
        self.locked(|| match self.read(&path) {
            Some(current) => {
                self.write(&path, &current, ttl);
                true
            }
            None => false,
        })
    }
}
