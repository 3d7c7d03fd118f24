//! Faults only Linux can stage here: inotify exhausted (a user namespace whose limits are
//! zero) and a full disk (a tmpfs mounted for the test). Waiting polls and still delivers;
//! a full disk is a clear error that damages nothing already stored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::fake_agent::hook;
use crate::util::spool::check_spool;
use crate::util::{Mesh, Rw, bin, text};

const T: Duration = Duration::from_secs(30);

/// Runs `bin args` in a new user namespace whose inotify limit `limit` is 0, so inotify_init
/// (instances) or inotify_add_watch (watches) fails there, and nowhere else.
fn without_inotify(limit: &str, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--user", "--map-root-user", "sh", "-c"])
        .arg(format!("echo 0 > /proc/sys/user/{limit} && exec \"$@\""))
        .arg("sh")
        .args(args);
    c
}

/// Whether inotify really fails under [`without_inotify`] (a probe in Python, else skip).
fn inotify_fails(limit: &str) -> Result<bool, String> {
    let probe = "import ctypes,os,sys; c=ctypes.CDLL(None,use_errno=True); fd=c.inotify_init(); \
                 sys.exit(0 if fd<0 else (0 if c.inotify_add_watch(fd,b'/',2)<0 else 1))";
    let out = without_inotify(limit, &["python3", "-c", probe])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(format!("unshare --user failed: {}", text(&out.stderr))),
    }
}

#[test]
fn with_inotify_exhausted_waiting_polls_and_still_delivers() {
    need_tmux!();
    for limit in ["max_inotify_instances", "max_inotify_watches"] {
        match inotify_fails(limit) {
            Ok(true) => {}
            Ok(false) => panic!("{limit} = 0 did not make inotify fail"),
            Err(e) => {
                crate::util::skipped(&format!("no user namespaces here ({e})"));
                return;
            }
        }
    }
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let b = bin();
    let home = m.home.display().to_string();
    for limit in ["max_inotify_instances", "max_inotify_watches"] {
        // The asker, and the deliverer it starts, run without inotify; the agent's hooks too
        // when the question is about the agent being busy first.
        let ask = |q: &str| {
            let mut cmd = without_inotify(limit, &[b.to_str().unwrap(), "peer", "ask", "beta", q]);
            cmd.env("REPOWIRE_HOME", &home)
                .env_remove("TMUX")
                .env_remove("TMUX_PANE");
            let out = crate::util::run_for(cmd, Duration::from_secs(60));
            assert!(out.status.success(), "{limit}: {}", text(&out.stderr));
            assert!(
                text(&out.stdout).ends_with(&format!("{q}\n")),
                "{}",
                text(&out.stdout)
            );
        };
        ask(&format!("asked with {limit} exhausted"));
        // A question queued behind a busy peer: the poller must notice the turn end.
        m.ok(["peer", "ask", "beta", "SLEEP 1", "--no-wait"]);
        assert!(m.eventually(T, || m.status("beta") == "busy"));
        ask(&format!("queued with {limit} exhausted"));
    }
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(text(&out.stderr));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every regular file below `dir` with its bytes.
fn snapshot(dir: &Path) -> HashMap<PathBuf, Vec<u8>> {
    let mut out = HashMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                todo.push(p);
            } else if md.is_file() {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Writes `filler` a page at a time until the filesystem is full.
fn fill(filler: &Path) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
        .unwrap();
    let page = [b'f'; 4096];
    loop {
        if let Err(e) = f.write_all(&page) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    // A partial page may have been written: keep the file page-aligned.
    let len = f.metadata().unwrap().len();
    f.set_len(len / 4096 * 4096).unwrap();
}

fn log_file(home: &Path) -> PathBuf {
    std::fs::read_dir(home.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap()
}

#[test]
fn a_full_disk_is_a_clear_error_and_damages_nothing() {
    let m = Mesh::new();
    let fs_dir = m.dir.path().join("fs");
    let _tmpfs = match Tmpfs::mount(&fs_dir, "1m") {
        Ok(t) => t,
        Err(e) => {
            crate::util::skipped(&format!("cannot mount a tmpfs here (needs root): {e}"));
            return;
        }
    };
    let home = fs_dir.join("spool");
    let run = |args: &[&str]| Rw::new(&home).args(args).output();
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    ok(&["peer", "list"]);
    // An offline peer: messages to it wait in the queue, no tmux needed.
    let record = home.join("peers/beta.json");
    std::fs::write(
        &record,
        json!({"name": "beta", "agent": "claude", "tmux_socket": "/nonexistent/tmux.sock",
               "pane": "%1", "path": "/", "session_id": "s1", "online": false,
               "registered_ms": 1, "last_activity_ms": 1})
        .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&record, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    ok(&["peer", "notify", "beta", "x"]);
    // Bring the history to just short of a page boundary, so that later a record fits in the
    // last free page and its history line does not.
    let log = log_file(&home);
    let base = std::fs::metadata(&log).unwrap().len() - 1; // one line, with a 1-byte text
    let len = std::fs::metadata(&log).unwrap().len();
    let slack = 4096 - len % 4096;
    if slack > base + 64 {
        ok(&[
            "peer",
            "notify",
            "beta",
            &"p".repeat((slack - base - 40) as usize),
        ]);
    }
    let slack = 4096 - std::fs::metadata(&log).unwrap().len() % 4096;
    assert!(slack < 1000, "slack {slack}");
    let filler = fs_dir.join("filler");
    let session_end = || {
        hook(
            &mut crate::util::rw(&home),
            "session-end",
            br#"{"session_id":"s1","reason":"other"}"#,
        )
        .0
    };
    // Once with space, so that everything it creates (its lock file) exists before.
    assert!(session_end().status.success());

    // Full: nothing can be sent, the error says so and what to do, nothing changes.
    fill(&filler);
    let before = snapshot(&home);
    let out = run(&["peer", "notify", "beta", "on a full disk"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left") && err.contains("repowire gc"),
        "{err}"
    );
    // A hook that would update the peer cannot write either: it still exits 0.
    let out = session_end();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("full"), "{}", text(&out.stderr));
    assert_eq!(
        snapshot(&home),
        before,
        "a write on a full disk changed the spool"
    );

    // One free page: the record fits, its history line does not. The message goes; the
    // history keeps no half line (the next line would be glued to it and both lost).
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let out = run(&["peer", "notify", "beta", &"h".repeat(1500)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot write the history"),
        "{}",
        text(&out.stderr)
    );
    check_spool(&home, false).unwrap();

    // Space again: everything works, and what was stored before is intact.
    std::fs::remove_file(&filler).unwrap();
    ok(&["peer", "notify", "beta", "after"]);
    check_spool(&home, false).unwrap();
    for (p, bytes) in &before {
        if p.extension().is_some_and(|x| x == "jsonl") {
            assert!(
                std::fs::read(p).unwrap().starts_with(bytes),
                "{}",
                p.display()
            );
        } else {
            assert_eq!(&std::fs::read(p).unwrap(), bytes, "{}", p.display());
        }
    }
    let sent: Vec<String> = Rw::new(&home)
        .args(["log", "--json"])
        .ok()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(sent.last().map(String::as_str), Some("after"), "{sent:?}");
}
