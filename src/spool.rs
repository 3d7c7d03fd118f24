//! The spool: the directory that is the whole state of the mesh (see repowire-spool(5)).
//!
//! Promises, for every caller:
//! - a record is written whole to `tmp/`, fsynced and renamed into place, so a reader never sees
//!   half a file ([`Spool::write_atomic`], [`Spool::write_new`]);
//! - the spool and its subdirectories are 0700 and owned by us, files 0600; a spool that is
//!   writable by others is refused, and no symlink planted in it is followed;
//! - locks are `flock`s, which the kernel drops when their holder dies ([`Spool::lock`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use fs2::FileExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Subdirectories, created on open.
const DIRS: [&str; 6] = ["peers", "queue", "done", "responses", "log", "tmp"];

/// An opened, checked spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

/// A record written whole to `tmp/` and fsynced, to be put in place with one rename or link;
/// removed if dropped unplaced.
#[derive(Debug)]
pub struct Staged {
    tmp: Option<PathBuf>,
}

impl Staged {
    /// Renames it over `dest`.
    pub fn place(mut self, dest: &Path) -> io::Result<()> {
        let tmp = self.tmp.take().expect("placed once");
        let res = fs::rename(&tmp, dest);
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// Links it as `dest` unless `dest` exists; false if it did.
    pub fn place_new(mut self, dest: &Path) -> io::Result<bool> {
        let tmp = self.tmp.take().expect("placed once");
        let res = fs::hard_link(&tmp, dest);
        let _ = fs::remove_file(&tmp);
        match res {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// An exclusive lock, released on drop or when the process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Spool {
    /// Opens the spool at `root`, creating it (0700) if needed, and refuses one that others
    /// could write to.
    pub fn open(root: &Path) -> Result<Spool> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()?.join(root)
        };
        ensure_private_dir(&root)?;
        for d in DIRS {
            ensure_private_dir(&root.join(d))?;
        }
        Ok(Spool { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `bytes` to `dest` atomically: whole in `tmp/`, fsynced, renamed over `dest`.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        self.stage(bytes)?.place(dest)
    }

    /// Like [`write_atomic`](Self::write_atomic), but never replaces an existing `dest`
    /// (write-once records such as answers). Returns false if `dest` already existed.
    pub fn write_new(&self, dest: &Path, bytes: &[u8]) -> io::Result<bool> {
        self.stage(bytes)?.place_new(dest)
    }

    /// Stages several records at once (see [`Staged`]): their fsyncs overlap, so the disk
    /// commits them together instead of one after another.
    pub fn stage_all<const N: usize>(&self, records: [&[u8]; N]) -> io::Result<[Staged; N]> {
        let staged: Vec<io::Result<Staged>> = std::thread::scope(|s| {
            let others: Vec<_> = records[1..]
                .iter()
                .map(|r| s.spawn(move || self.stage(r)))
                .collect();
            let first = self.stage(records[0]);
            std::iter::once(first)
                .chain(others.into_iter().map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("staging a record panicked")))
                }))
                .collect()
        });
        let staged: Vec<Staged> = staged.into_iter().collect::<io::Result<_>>()?;
        Ok(staged
            .try_into()
            .unwrap_or_else(|_| unreachable!("one per record")))
    }

    /// Serializes `value` as pretty JSON and writes it with [`write_atomic`](Self::write_atomic).
    pub fn write_json<T: Serialize>(&self, dest: &Path, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        self.write_atomic(dest, &bytes)
            .with_context(|| format!("cannot write {}", dest.display()))
    }

    /// Writes `bytes` whole to a new file in `tmp/` and fsyncs it.
    pub fn stage(&self, bytes: &[u8]) -> io::Result<Staged> {
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.tmp",
            ulid::Ulid::generate(),
            std::process::id()
        ));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let res = f.write_all(bytes).and_then(|_| f.sync_all());
        if let Err(e) = res {
            drop(f);
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Staged { tmp: Some(tmp) })
    }

    /// Reads and parses a JSON record; `None` if it does not exist. Never follows a symlink.
    pub fn read_json<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>> {
        let bytes = match read_nofollow(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let v = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid record", path.display()))?;
        Ok(Some(v))
    }

    /// The ids (file stems) of the `*.json` records in `dir`, sorted, so by time for ULIDs.
    /// Dotfiles, temporary files and anything else are ignored.
    pub fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join(dir))? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            if let Some(stem) = name.strip_suffix(".json") {
                out.push(stem.to_string());
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Takes the exclusive lock `rel` (a path below the spool), waiting for it.
    pub fn lock(&self, rel: &str) -> io::Result<Lock> {
        let file = open_lock_file(&self.root.join(rel))?;
        FileExt::lock_exclusive(&file)?;
        Ok(Lock { _file: file })
    }

    /// Takes the exclusive lock `rel` if nobody holds it.
    pub fn try_lock(&self, rel: &str) -> io::Result<Option<Lock>> {
        let file = open_lock_file(&self.root.join(rel))?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether some live process holds the lock `rel`. A missing lock file is not held.
    pub fn is_locked(&self, rel: &str) -> bool {
        let path = self.root.join(rel);
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        else {
            return false;
        };
        match FileExt::try_lock_shared(&file) {
            Ok(()) => false,
            Err(e) => e.raw_os_error() == Some(libc::EWOULDBLOCK),
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Creates `dir` as 0700 if missing; refuses a symlink, a directory owned by someone else, or
/// one that group or others can write to, naming the command that fixes it.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => return Ok(()),
                // Lost a race with another process creating it: check what it made.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create spool directory {}", dir.display())
                    });
                }
            }
            ensure_private_dir(dir)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
        Ok(md) => {
            if md.file_type().is_symlink() {
                bail!(
                    "{} is a symbolic link; repowire does not follow links in its spool. Remove it (`rm {}`) or set REPOWIRE_HOME to a real directory",
                    dir.display(),
                    dir.display()
                );
            }
            if !md.is_dir() {
                bail!("{} is not a directory; move it away", dir.display());
            }
            // SAFETY: geteuid has no preconditions.
            let uid = unsafe { libc::geteuid() };
            if md.uid() != uid {
                bail!(
                    "{} belongs to uid {}, not to you (uid {uid}); use a spool of your own (set REPOWIRE_HOME)",
                    dir.display(),
                    md.uid()
                );
            }
            if md.permissions().mode() & 0o022 != 0 {
                bail!(
                    "{} can be written by other users; fix it with `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new unique, time-sorted record id.
pub fn new_id() -> String {
    ulid::Ulid::generate().to_string()
}

/// The default spool location, `~/.repowire`.
pub fn default_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".repowire"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dirs_and_refuses_world_writable() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("spool");
        Spool::open(&root).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(root.join("queue"), fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", Spool::open(&root).unwrap_err());
        assert!(err.contains("chmod 700"), "{err}");
    }

    #[test]
    fn write_new_never_replaces() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let p = s.path("responses/X.json");
        assert!(s.write_new(&p, b"first").unwrap());
        assert!(!s.write_new(&p, b"second").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(s.path("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn reads_do_not_follow_planted_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(&t.path().join("s")).unwrap();
        fs::write(t.path().join("secret"), b"{}").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), s.path("peers/evil.json")).unwrap();
        assert!(
            s.read_json::<serde_json::Value>(&s.path("peers/evil.json"))
                .is_err()
        );
    }

    #[test]
    fn lock_is_exclusive_and_visible() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        assert!(!s.is_locked("peers/a.lock"));
        let held = s.lock("peers/a.lock").unwrap();
        assert!(s.try_lock("peers/a.lock").unwrap().is_none());
        assert!(s.is_locked("peers/a.lock"));
        drop(held);
        assert!(s.try_lock("peers/a.lock").unwrap().is_some());
    }
}
