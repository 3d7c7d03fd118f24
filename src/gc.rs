//! `repowire gc`: prunes what the spool no longer needs. Finished messages and their answers
//! older than the cut-off go; temporary files left by killed writers and lock files of
//! finished questions go; open messages, peers and the history stay.

use std::fs;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::message;
use crate::spool::{Spool, now_ms};

/// Temporary files older than this were left by a writer that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub messages: usize,
    pub responses: usize,
    pub temp_files: usize,
    pub lock_files: usize,
}

pub fn run(spool: &Spool, older_than: Duration) -> Result<Report> {
    let mut r = Report::default();
    let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
    for id in spool.list("done")? {
        let Some(m) = message::load(spool, &id)? else {
            continue;
        };
        if m.finished_ms.unwrap_or(m.created_ms) < cutoff {
            if remove(&spool.path(&format!("responses/{id}.json"))) {
                r.responses += 1;
            }
            if remove(&spool.path(&format!("done/{id}.json"))) {
                r.messages += 1;
            }
        }
    }
    // Answers whose message is gone (removed by hand, or a crash between the two removals).
    for id in spool.list("responses")? {
        if message::load(spool, &id)?.is_none()
            && remove(&spool.path(&format!("responses/{id}.json")))
        {
            r.responses += 1;
        }
    }
    let now = SystemTime::now();
    for entry in fs::read_dir(spool.path("tmp"))? {
        let entry = entry?;
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TMP);
        if old && remove(&entry.path()) {
            r.temp_files += 1;
        }
    }
    for entry in fs::read_dir(spool.path("queue"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".lock") else {
            continue;
        };
        if id.starts_with('.') {
            continue;
        }
        let open = message::load(spool, id)?.is_some_and(|m| m.state.is_open());
        let rel = format!("queue/{name}");
        if !open && !spool.is_locked(&rel) && remove(&spool.path(&rel)) {
            r.lock_files += 1;
        }
    }
    Ok(r)
}

fn remove(path: &std::path::Path) -> bool {
    fs::remove_file(path).is_ok()
}
