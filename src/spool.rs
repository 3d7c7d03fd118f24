//! The spool: the directory that is the whole state of the mesh (see repowire-spool(5)).
//!
//! Promises, for every caller:
//! - a record is written whole to `tmp/`, fsynced and renamed into place, so a reader never sees
//!   half a file ([`Spool::write_atomic`], [`Spool::write_new`]);
//! - the spool and its subdirectories are 0700 and owned by us, files 0600; a spool, or a file
//!   in it, that is writable by others or owned by someone else is refused with the command that
//!   fixes it, and no symlink (or FIFO) planted in it is followed or read;
//! - a write that fails (a full disk) leaves nothing behind and says what to do;
//! - a record that cannot be used (not a regular file, not yours, writable by others, too big,
//!   not a valid record) is moved aside into `corrupt/` with a note of why, and read as
//!   missing: one bad file never stops the work around it, and nothing of it is lost
//!   ([`Spool::read_json`]);
//! - locks are `flock`s, which the kernel drops when their holder dies ([`Spool::lock`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fs2::FileExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Subdirectories, created on open.
const DIRS: [&str; 7] = [
    "peers",
    "queue",
    "done",
    "responses",
    "log",
    "tmp",
    "corrupt",
];

/// The largest record read: a message holds at most 32 KiB of text, an answer at most 1 MiB.
pub const MAX_RECORD: u64 = 4 * 1024 * 1024;

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
            return Err(explain_full(e));
        }
        Ok(Staged { tmp: Some(tmp) })
    }

    /// Reads and parses a JSON record; `None` if it does not exist. Never follows a symlink.
    /// A record that cannot be used (see [`open_private`], [`MAX_RECORD`], or not a record of
    /// this type) is moved aside ([`Spool::quarantine`]) and read as missing.
    pub fn read_json<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>> {
        let bytes = match read_nofollow(path, MAX_RECORD) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if unusable(&e) => {
                self.quarantine(path, &e.to_string());
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                self.quarantine(path, &format!("not a valid record: {e}"));
                Ok(None)
            }
        }
    }

    /// Moves `path`, a file of the spool that cannot be used for `why`, into `corrupt/`, with
    /// a note beside it (`NAME.why`: when, where it was, why), and says so on stderr. Nothing
    /// of it is lost, and `repowire status` lists it until it is removed. Another process
    /// that moved it first wins.
    pub fn quarantine(&self, path: &Path, why: &str) {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let name = format!("{}.{}", rel.to_string_lossy().replace('/', "_"), new_id());
        let dest = self.root.join("corrupt").join(&name);
        match fs::rename(path, &dest) {
            Ok(()) => {
                let note = format!(
                    "{}\t{}\t{}\n",
                    crate::time::format_utc(crate::time::now_ms()),
                    rel.display(),
                    why.replace(['\n', '\t'], " ")
                );
                let _ =
                    self.write_new(&dest.with_file_name(format!("{name}.why")), note.as_bytes());
                eprintln!(
                    "repowire: {} cannot be used ({why}); moved it to {}",
                    path.display(),
                    dest.display()
                );
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "repowire: {} cannot be used ({why}), nor moved aside: {e}",
                path.display()
            ),
        }
    }

    /// Checks lock `rel` (creating it if missing) without taking it: a lock that is not a
    /// lock file (a directory, FIFO, symlink, someone else's) is an error naming it and the
    /// fix, at once, rather than when something waits for it.
    pub fn check_lock(&self, rel: &str) -> io::Result<()> {
        open_lock_file(&self.root.join(rel)).map(drop)
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
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
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
    open_private(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )
}

/// The file at `path` (see [`open_private`]), if it holds at most `limit` bytes.
pub fn read_nofollow(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = open_private(path, OpenOptions::new().read(true))?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(unusable_error(format!(
            "{} is over {limit} bytes, more than any file of repowire's holds",
            path.display()
        )));
    }
    Ok(buf)
}

/// Opens an existing file of the spool with `opts`, refusing a symlink, anything but a regular
/// file (a FIFO would block the reader), and a file someone else owns or could write: each
/// with an error that names the file and the command that fixes it, and that [`unusable`]
/// tells apart.
pub fn open_private(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    let f = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| explain_open(e, path))?;
    check_private_file(&f, path)?;
    Ok(f)
}

/// Whether `e`, from [`open_private`] or [`read_nofollow`], says the file itself cannot be
/// used (rather than that reading failed).
pub fn unusable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
}

fn unusable_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// `open` of something that is no file of ours: a symlink (`O_NOFOLLOW` fails with ELOOP), a
/// directory, or a file we may not read. Say so, and what to do.
fn explain_open(e: io::Error, path: &Path) -> io::Error {
    let p = path.display();
    match e.raw_os_error() {
        Some(libc::ELOOP) => unusable_error(format!(
            "{p} is a symbolic link; repowire does not follow links in its spool. Remove it: `rm {p}`"
        )),
        Some(libc::EISDIR) => unusable_error(format!(
            "{p} is a directory, not a file of repowire's; remove it: `rm -r {p}`"
        )),
        Some(libc::EACCES) => unusable_error(format!(
            "{p} cannot be read or written by you; fix it with `chmod 600 {p}`"
        )),
        _ => e,
    }
}

fn check_private_file(f: &File, path: &Path) -> io::Result<()> {
    let md = f.metadata()?;
    let refuse = |msg: String| Err(unusable_error(msg));
    if md.is_dir() {
        return refuse(format!(
            "{} is a directory, not a file of repowire's; remove it: `rm -r {}`",
            path.display(),
            path.display()
        ));
    }
    if !md.is_file() {
        return refuse(format!(
            "{} is not a regular file; remove it: `rm {}`",
            path.display(),
            path.display()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if md.uid() != uid {
        return refuse(format!(
            "{} belongs to uid {}, not to you (uid {uid}); remove it (`rm {}`) or take it back (`chown {uid} {}`)",
            path.display(),
            md.uid(),
            path.display(),
            path.display()
        ));
    }
    if md.mode() & 0o022 != 0 {
        return refuse(format!(
            "{} can be written by other users; fix it with `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// A full filesystem gets a message that says what to do about it.
pub fn explain_full(e: io::Error) -> io::Error {
    if e.kind() != io::ErrorKind::StorageFull && e.raw_os_error() != Some(libc::EDQUOT) {
        return e;
    }
    io::Error::new(
        e.kind(),
        format!(
            "{e}: the spool's filesystem is full; free some space (`repowire gc` prunes finished messages) and try again"
        ),
    )
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
                    "{} belongs to uid {}, not to you (uid {uid}); if it is yours, take it back with `sudo chown -R {uid} {}`, else use a spool of your own (set REPOWIRE_HOME)",
                    dir.display(),
                    md.uid(),
                    dir.display()
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

    /// What was moved into `corrupt/`: each file's bytes (a link's target), and its note.
    fn moved_aside(s: &Spool) -> Vec<(Vec<u8>, String)> {
        let mut out = Vec::new();
        for e in fs::read_dir(s.path("corrupt")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "why") {
                continue;
            }
            let md = fs::symlink_metadata(&p).unwrap();
            let bytes = if md.file_type().is_symlink() {
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                fs::read(&p).unwrap()
            };
            let why = fs::read_to_string(format!("{}.why", p.display())).unwrap();
            out.push((bytes, why));
        }
        out
    }

    #[test]
    fn reads_do_not_follow_planted_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(&t.path().join("s")).unwrap();
        let secret = t.path().join("secret");
        fs::write(&secret, b"{}").unwrap();
        std::os::unix::fs::symlink(&secret, s.path("peers/evil.json")).unwrap();
        let read = s.read_json::<serde_json::Value>(&s.path("peers/evil.json"));
        assert_eq!(read.unwrap(), None);
        assert!(!s.path("peers/evil.json").exists());
        let moved = moved_aside(&s);
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].0, secret.as_os_str().as_encoded_bytes());
        assert!(moved[0].1.contains("peers/evil.json\t"), "{}", moved[0].1);
        assert!(moved[0].1.contains("symbolic link"), "{}", moved[0].1);
        assert_eq!(fs::read(&secret).unwrap(), b"{}");
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

    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(any::<String>(), inner, 1..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None,
                                            ..ProptestConfig::default() })]

        /// Whatever bytes a record holds, reading it never panics; bytes that are not JSON
        /// are never taken for a record, but moved aside whole, with a note.
        #[test]
        fn any_bytes_in_a_record_read_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let t = tempfile::tempdir().unwrap();
            let s = Spool::open(t.path()).unwrap();
            let p = s.path("queue/X.json");
            fs::write(&p, &bytes).unwrap();
            let as_message = s.read_json::<crate::message::Message>(&p).unwrap();
            let as_peer = s.read_json::<crate::peer::Peer>(&p).unwrap();
            let as_value = s.read_json::<serde_json::Value>(&p).unwrap();
            if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                prop_assert!(as_value.is_none() && as_message.is_none() && as_peer.is_none());
                let moved = moved_aside(&s);
                prop_assert_eq!(moved.len(), 1);
                prop_assert_eq!(&moved[0].0, &bytes);
                prop_assert!(moved[0].1.contains("not a valid record"), "{}", moved[0].1);
            }
        }

        /// A record written is read back as it was; any shorter prefix of it (what a reader
        /// would see if writes were not atomic) is refused, never taken for a record.
        #[test]
        fn records_round_trip_and_no_prefix_passes(v in json_value(), cut in any::<prop::sample::Index>()) {
            let t = tempfile::tempdir().unwrap();
            let s = Spool::open(t.path()).unwrap();
            let p = s.path("peers/x.json");
            s.write_json(&p, &v).unwrap();
            prop_assert_eq!(s.read_json::<serde_json::Value>(&p).unwrap(), Some(v.clone()));
            let bytes = fs::read(&p).unwrap();
            let whole = bytes.trim_ascii_end().len();
            // Scalars (`12` of `123`) and structures alike: only a container can be judged
            // incomplete; a scalar's prefix is another scalar.
            if v.is_object() || v.is_array() {
                let n = cut.index(whole);
                fs::write(&p, &bytes[..n]).unwrap();
                prop_assert_eq!(s.read_json::<serde_json::Value>(&p).unwrap(), None, "{:?}", &bytes[..n]);
                prop_assert_eq!(&moved_aside(&s)[0].0, &bytes[..n]);
            }
            prop_assert_eq!(fs::read_dir(s.path("tmp")).unwrap().count(), 0);
        }

        /// Messages with any text (control characters, any Unicode) survive the spool intact.
        #[test]
        fn messages_with_any_text_round_trip(text in any::<String>(), from in "[a-z]{1,8}") {
            let t = tempfile::tempdir().unwrap();
            let s = Spool::open(t.path()).unwrap();
            let m = crate::message::Message {
                id: new_id(), kind: crate::message::Kind::Ask, from, to: "b".into(),
                text: text.clone(), created_ms: crate::time::now_ms(), deadline_ms: None, asker_pid: None,
                state: crate::message::State::Queued, delivered_ms: None, finished_ms: None,
                error: None,
                    chain: Vec::new(),
                    fork: false,
            };
            let p = s.path(&format!("queue/{}.json", m.id));
            s.write_json(&p, &m).unwrap();
            let back: crate::message::Message = s.read_json(&p).unwrap().unwrap();
            prop_assert_eq!(back.text, text);
            prop_assert_eq!(back.id, m.id);
        }
    }
}
