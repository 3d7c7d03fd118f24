//! Waiting for the spool to change, the right way round: arm the watch, then check, then
//! block; on any event, check again. The events come from inotify on Linux and FSEvents on
//! macOS. Where they are unavailable or exhausted (ENOSPC, EMFILE) or the filesystem sends
//! none, it polls instead, so a wait always ends.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

/// How often a wait that can be cancelled (a killed asker, a client's cancel) looks whether it
/// was.
pub const CANCEL_TICK: Duration = Duration::from_millis(100);

/// How often a wait re-checks even without events: a safety net for filesystems that send
/// none, and the pace of polling when there is no watch at all.
const TICK_WATCHED: Duration = Duration::from_millis(1000);
const TICK_POLLING: Duration = Duration::from_millis(50);

/// A watch on some spool directories.
pub struct Watch {
    events: Option<(Receiver<()>, notify::RecommendedWatcher)>,
}

impl Watch {
    /// Watches `dirs` (not recursively). Never fails: without inotify it polls.
    pub fn new(dirs: &[PathBuf]) -> Watch {
        Watch {
            events: arm(dirs, None).ok(),
        }
    }

    /// Watches the directories of `files`, waking only for a change to one of them: so a
    /// hundred waiters on one spool do not all wake for each other's messages.
    pub fn files(files: &[PathBuf]) -> Watch {
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(PathBuf::from))
            .collect();
        dirs.sort();
        dirs.dedup();
        // Events name files by their real path (FSEvents: `/private/var/…` for `/var/…`,
        // `/private/tmp` for `/tmp`): the files are matched under both names.
        let mut only = files.to_vec();
        only.extend(files.iter().filter_map(|f| real_path(f)));
        Watch {
            events: arm(&dirs, Some(only)).ok(),
        }
    }

    /// Blocks until something changed, with no tick: for a caller that has no other reason to
    /// look (a live view). False without a watch (polling) or once the watcher is gone.
    pub fn next_change(&self) -> bool {
        let Some((rx, _)) = &self.events else {
            return false;
        };
        let changed = rx.recv().is_ok();
        while rx.try_recv().is_ok() {}
        changed
    }

    pub fn is_polling(&self) -> bool {
        self.events.is_none()
    }

    /// Blocks until something changed in the watched directories or `max` passed (at most one
    /// tick), then swallows the other events already queued: the caller re-checks everything.
    pub fn wait(&self, max: Duration) {
        match &self.events {
            Some((rx, _)) => {
                match rx.recv_timeout(max.min(TICK_WATCHED)) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    // The watcher thread died: degrade to polling pace.
                    Err(RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(max.min(TICK_POLLING))
                    }
                }
                while rx.try_recv().is_ok() {}
            }
            None => std::thread::sleep(max.min(TICK_POLLING)),
        }
    }
}

fn arm(
    dirs: &[PathBuf],
    only: Option<Vec<PathBuf>>,
) -> notify::Result<(Receiver<()>, notify::RecommendedWatcher)> {
    let (tx, rx) = mpsc::channel();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reading a file (or taking a lock) is an event too (inotify's IN_OPEN, IN_CLOSE): a
        // waiter's own reads of the spool must not wake it, or it spins. Errors, and events
        // naming no file (a queue overflow), count as events: the caller rescans.
        if let Ok(e) = &res
            && (is_read(&e.kind)
                || only.as_ref().is_some_and(|only| {
                    !e.paths.is_empty() && !e.paths.iter().any(|p| only.contains(p))
                }))
        {
            return;
        }
        let _ = tx.send(());
    })?;
    for d in dirs {
        w.watch(d, RecursiveMode::NonRecursive)?;
    }
    Ok((rx, w))
}

/// `file`'s path with its directory's symlinks resolved, where that differs (the file itself
/// may not exist yet).
fn real_path(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?.canonicalize().ok()?;
    let real = dir.join(file.file_name()?);
    (real != file).then_some(real)
}

/// Opening, reading or closing a file changes nothing; every change that matters (a record
/// renamed into place, a log line appended) comes as its own create or modify event.
fn is_read(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Access(_))
}

/// Calls `check` until it returns `Some`, re-checking whenever `dirs` change; `None` once
/// `deadline` has passed without an answer.
pub fn until<T, E>(
    dirs: &[PathBuf],
    deadline: Option<Instant>,
    check: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    until_every(dirs, deadline, TICK_WATCHED, check)
}

/// [`until`], re-checking at least every `tick` even without events: for a wait that
/// something outside the spool can end (a cancelled MCP call).
pub fn until_every<T, E>(
    dirs: &[PathBuf],
    deadline: Option<Instant>,
    tick: Duration,
    check: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    watching(&Watch::new(dirs), deadline, tick, check)
}

/// [`until_every`] for a check that depends only on `files`: woken by changes to them alone.
pub fn until_file_changes<T, E>(
    files: &[PathBuf],
    deadline: Option<Instant>,
    tick: Duration,
    check: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    watching(&Watch::files(files), deadline, tick, check)
}

fn watching<T, E>(
    watch: &Watch,
    deadline: Option<Instant>,
    tick: Duration,
    mut check: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    loop {
        if let Some(v) = check()? {
            return Ok(Some(v));
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(None),
            },
            None => TICK_WATCHED,
        };
        watch.wait(left.min(tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_matched_by_its_real_path_too() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(real_path(&link.join("x.json")), Some(real.join("x.json")));
        assert_eq!(real_path(&real.join("x.json")), None);
        assert_eq!(real_path(Path::new("/nonexistent/dir/x")), None);
    }

    #[test]
    fn a_check_that_reads_the_spool_does_not_wake_itself() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("x");
        std::fs::write(&file, "x").unwrap();
        let mut checks = 0;
        let end = Some(Instant::now() + Duration::from_millis(500));
        let got = until(&[t.path().to_path_buf()], end, || {
            checks += 1;
            std::fs::read(&file).map(|_| None::<()>)
        });
        assert!(got.unwrap().is_none());
        assert!(checks < 10, "{checks} checks in 500 ms: the waiter spins");
    }

    #[test]
    fn a_file_watch_ignores_other_files_in_its_directory() {
        let t = tempfile::tempdir().unwrap();
        let mine = t.path().join("mine.json");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (dir, stop) = (t.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::write(dir.join(format!("other{}.json", i % 5)), b"x").unwrap();
                    i += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let mut checks = 0;
        let got = until_file_changes(
            std::slice::from_ref(&mine),
            Some(Instant::now() + Duration::from_millis(600)),
            Duration::from_secs(1),
            || {
                checks += 1;
                Ok::<_, ()>(None::<()>)
            },
        );
        assert_eq!(got, Ok(None));
        assert!(checks < 5, "{checks} checks: woken by other files");
        // And a change to its own file does wake it.
        let writer = {
            let mine = mine.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(mine, b"1").unwrap();
            })
        };
        let got = until_file_changes(
            std::slice::from_ref(&mine),
            Some(Instant::now() + Duration::from_secs(30)),
            Duration::from_secs(30),
            || Ok::<_, ()>(mine.exists().then_some(())),
        );
        writer.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
        assert_eq!(got, Ok(Some(())));
    }

    #[test]
    fn wakes_on_a_new_file_and_times_out_without_one() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let target = dir.join("x");
        let writer = {
            let target = target.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(target, b"1").unwrap();
            })
        };
        let got = until::<_, ()>(
            std::slice::from_ref(&dir),
            Some(Instant::now() + Duration::from_secs(10)),
            || Ok(target.exists().then_some(())),
        );
        writer.join().unwrap();
        assert_eq!(got, Ok(Some(())));
        let none = until::<(), ()>(
            &[dir],
            Some(Instant::now() + Duration::from_millis(50)),
            || Ok(None),
        );
        assert_eq!(none, Ok(None));
    }
}
