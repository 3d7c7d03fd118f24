//! Waiting for the spool to change, the right way round: arm the watch, then check, then
//! block; on any event, check again. Where inotify is unavailable or exhausted (ENOSPC,
//! EMFILE) or the filesystem sends no events, it polls instead, so a wait always ends.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

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
            events: arm(dirs).ok(),
        }
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

fn arm(dirs: &[PathBuf]) -> notify::Result<(Receiver<()>, notify::RecommendedWatcher)> {
    let (tx, rx) = mpsc::channel();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reading a file (or taking a lock) is an event too (inotify's IN_OPEN, IN_CLOSE): a
        // waiter's own reads of the spool must not wake it, or it spins. Errors count as
        // events: the caller rescans.
        if let Ok(e) = &res
            && is_read(&e.kind)
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
    mut check: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    let watch = Watch::new(dirs);
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
