//! Checks of a spool's invariants, as any reader of it relies on them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The spool's invariants as a reader sees them: every record parses; an answer belongs to an
/// existing message, under that message's id, addressed to its asker; no temporary file is
/// left; every history line is whole (but for a last one without its newline yet, with
/// `partial_tail`: readers do not show it).
pub fn check_spool(home: &Path, partial_tail: bool) -> Result<(), String> {
    let records = |dir: &str| -> Vec<(String, Value)> {
        std::fs::read_dir(home.join(dir))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name()?.to_str()?.to_string();
                let stem = name.strip_suffix(".json")?.to_string();
                let v = serde_json::from_slice(&std::fs::read(&p).unwrap())
                    .unwrap_or_else(|e| panic!("{} is not a whole record: {e}", p.display()));
                Some((stem, v))
            })
            .collect()
    };
    let mut messages = std::collections::HashMap::new();
    for dir in ["queue", "done"] {
        for (stem, v) in records(dir) {
            if v["id"] != stem.as_str() {
                return Err(format!("{dir}/{stem}.json holds {}", v["id"]));
            }
            messages.insert(stem, v);
        }
    }
    for (stem, r) in records("responses") {
        let Some(msg) = messages.get(&stem) else {
            return Err(format!("an answer to {stem}, which does not exist"));
        };
        if r["id"] != stem.as_str() || r["to"] != msg["from"] || r["from"] != msg["to"] {
            return Err(format!("answer {r} does not match its message {msg}"));
        }
    }
    let tmp = std::fs::read_dir(home.join("tmp")).unwrap().count();
    if tmp != 0 {
        return Err(format!("{tmp} temporary files left"));
    }
    for e in std::fs::read_dir(home.join("log")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let mut s = std::fs::read(&p).unwrap();
        if !s.is_empty() && !s.ends_with(b"\n") {
            if !partial_tail {
                return Err(format!("{} ends with a partial line", p.display()));
            }
            s.truncate(s.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
        }
        for l in s.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<Value>(l)
                .map_err(|e| format!("{}: a damaged line: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Every path below `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The files moved aside into the spool's `corrupt/` (their notes left out).
pub fn moved_aside(home: &Path) -> Vec<PathBuf> {
    listing(&home.join("corrupt"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|x| x != "why"))
        .collect()
}

/// A peer record for an offline peer `name`: messages to it wait, no tmux needed.
pub fn peer_record(name: &str) -> String {
    json!({
        "name": name, "agent": "claude", "tmux_socket": "/nonexistent/tmux.sock", "pane": "%1",
        "path": "/", "online": false, "registered_ms": 1, "last_activity_ms": 1
    })
    .to_string()
}
