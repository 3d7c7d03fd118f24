//! One bad file never stops the mesh. A record that cannot be used is moved aside into
//! `corrupt/`, with a note, and the work around it goes on; `repowire status` names every bad
//! file with its fix and exits non-zero; a lock that is no lock file, and a `config.yaml` that
//! is no file of the user's, fail at once naming themselves. The fault corpus plants every
//! kind of bad file in each of the spool's record folders and asks between two healthy peers
//! each time: every question is answered, once.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::spool::{moved_aside, peer_record};
use crate::util::{Mesh, Rw, body, run_for, text};

const ID: &str = "01JBADBADBADBADBADBADBADBA";

/// How a file of the spool can be bad.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// A valid record cut short.
    Truncated,
    /// JSON of the wrong shape.
    WrongTypes,
    /// A valid record whose name or id is not its file's.
    WrongName,
    Empty,
    /// Over the size of any record.
    Huge,
    /// Writable by others.
    Loose,
    /// A symlink to nothing.
    Dangling,
    /// A symlink to a valid record elsewhere.
    Link,
    Fifo,
    Directory,
}

const FAULTS: [Fault; 10] = [
    Fault::Truncated,
    Fault::WrongTypes,
    Fault::WrongName,
    Fault::Empty,
    Fault::Huge,
    Fault::Loose,
    Fault::Dangling,
    Fault::Link,
    Fault::Fifo,
    Fault::Directory,
];

/// A valid record for `rel` (a path below the spool), and one that is valid but names
/// something else.
fn records(rel: &str) -> (Value, Value) {
    let message = |id: &str| {
        json!({"id": id, "kind": "notify", "from": "user", "to": "ghost", "text": "hi",
               "created_ms": 1, "state": "queued"})
    };
    let peer = |name: &str| {
        json!({"name": name, "agent": "claude", "tmux_socket": "/nonexistent/tmux.sock",
               "pane": "%9", "path": "/", "online": false, "registered_ms": 1,
               "last_activity_ms": 1})
    };
    if rel.starts_with("peers/.pane-") {
        (json!("ghost"), json!(5))
    } else if rel.starts_with("peers/") {
        (peer("ghost"), peer("../../elsewhere"))
    } else if rel.starts_with("responses/") {
        let answer = |id: &str| json!({"id": id, "from": "ghost", "to": "user", "text": "an answer", "created_ms": 1});
        (answer(ID), answer("01JOTHEROTHEROTHEROTHEROTH"))
    } else {
        let mut done = message(ID);
        if rel.starts_with("done/") {
            done["state"] = json!("received");
        }
        let mut other = done.clone();
        other["id"] = json!("01JOTHEROTHEROTHEROTHEROTH");
        (done, other)
    }
}

/// Puts a bad file of kind `fault` at `path` (`rel` below the spool); `outside` is a
/// directory outside the spool.
fn plant(path: &Path, rel: &str, fault: Fault, outside: &Path) {
    let (valid, other) = records(rel);
    let write = |bytes: &[u8]| {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let whole = serde_json::to_vec_pretty(&valid).unwrap();
    match fault {
        Fault::Truncated => write(&whole[..whole.len() / 2]),
        Fault::WrongTypes => write(br#"{"id": 7, "name": ["x"], "online": "yes", "state": 3}"#),
        Fault::WrongName => write(&serde_json::to_vec(&other).unwrap()),
        Fault::Empty => write(b""),
        Fault::Huge => {
            write(b"");
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(5 * 1024 * 1024).unwrap();
        }
        Fault::Loose => {
            write(&whole);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        Fault::Dangling => std::os::unix::fs::symlink(outside.join("nothing"), path).unwrap(),
        Fault::Link => {
            let target = outside.join("record.json");
            std::fs::write(&target, &whole).unwrap();
            std::os::unix::fs::symlink(&target, path).unwrap();
        }
        Fault::Fifo => {
            let made = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .unwrap();
            assert!(made.success());
        }
        Fault::Directory => std::fs::create_dir(path).unwrap(),
    }
}

/// Removes whatever is at `path`.
fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// `repowire status`: its exit status and what it printed.
fn status(m: &Mesh) -> (Option<i32>, String) {
    let out = m.rw().args(["status"]).env("HOME", m.dir.path()).output();
    (out.status.code(), text(&out.stdout))
}

/// Two healthy peers, alpha and beta; questions from alpha.
struct Pair {
    m: Mesh,
    beta: crate::util::Agent,
    _alpha: crate::util::Agent,
    alpha_pane: String,
    asked: Vec<String>,
}

impl Pair {
    fn new() -> Pair {
        let m = Mesh::new();
        let alpha = m.warm_agent("alpha");
        let beta = m.warm_agent("beta");
        let alpha_pane = m.pane("alpha");
        Pair {
            m,
            beta,
            _alpha: alpha,
            alpha_pane,
            asked: vec!["warm up: the agent reads its input now".into()],
        }
    }

    /// alpha asks beta `q`: the answer must be beta's echo of it.
    fn ask(&mut self, q: &str) -> Result<(), String> {
        let out = Rw::of(self.m.cmd_in(&self.alpha_pane))
            .args(["peer", "ask", "beta", q, "--timeout", "60s"])
            .output();
        if !out.status.success() {
            return Err(text(&out.stderr));
        }
        self.asked.push(q.to_string());
        let answer = text(&out.stdout);
        let echo = answer.strip_prefix("ECHO: ").unwrap_or_default();
        assert_eq!(body(echo).trim_end(), q, "{answer}");
        Ok(())
    }

    /// Every question beta was asked reached it exactly once, in order.
    fn assert_each_once(&self) {
        let got: Vec<String> = self
            .beta
            .prompts()
            .iter()
            .map(|p| body(p).trim_end().to_string())
            .collect();
        assert_eq!(got, self.asked);
    }

    fn clear_corrupt(&self) {
        remove(&self.m.home.join("corrupt"));
    }
}

/// Every kind of bad file, in each of the spool's record folders: an ask between two healthy
/// peers is answered each time, exactly once; `status` names the bad file and fails; the file
/// is moved aside whole, never followed, never used.
#[test]
fn the_fault_corpus_never_stops_an_ask_between_healthy_peers() {
    need_tmux!();
    let mut p = Pair::new();
    let outside = p.m.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let places = [
        "peers/ghost.json".to_string(),
        format!("queue/{ID}.json"),
        format!("done/{ID}.json"),
        format!("responses/{ID}.json"),
        "peers/.pane-0000000000000000-9".to_string(),
    ];
    let mut cases = 0;
    for rel in &places {
        for fault in FAULTS {
            let path = p.m.home.join(rel);
            plant(&path, rel, fault, &outside);
            let q = format!("question {cases}: {rel} is {fault:?}");
            if let Err(e) = p.ask(&q) {
                panic!("{rel} {fault:?}: the ask failed: {e}");
            }
            let (code, report) = status(&p.m);
            // Where the file was (a record, moved aside, or a name that never matches its
            // file's, never written).
            let shown = rel.replace('/', "_");
            assert_eq!(code, Some(1), "{rel} {fault:?}: status passed:\n{report}");
            assert!(
                report.contains(rel.as_str()) || report.contains(&shown),
                "{rel} {fault:?}: status does not name it:\n{report}"
            );
            // Never followed: the record a link pointed to is as it was.
            if let Fault::Link = fault {
                let (valid, _) = records(rel);
                let there: Value =
                    serde_json::from_slice(&std::fs::read(outside.join("record.json")).unwrap())
                        .unwrap();
                assert_eq!(there, valid);
            }
            remove(&path);
            p.clear_corrupt();
            cases += 1;
        }
    }
    eprintln!(
        "corrupt: {cases} bad files ({} kinds in {} places), every ask answered",
        FAULTS.len(),
        places.len()
    );
    p.assert_each_once();
    let (code, report) = status(&p.m);
    assert!(!report.contains("corrupt"), "{report}");
    let _ = code;
}

/// One garbled record in `queue/` stopped all messaging: `peer ask`, `notify`, `broadcast`
/// and `list` failed with "… is not a valid record" after their message was queued (so a
/// retry sent it twice), and `status` passed.
#[test]
fn one_garbled_record_in_the_queue_stops_nothing() {
    need_tmux!();
    let mut p = Pair::new();
    let garbled = p.m.home.join(format!("queue/{ID}.json"));
    std::fs::write(&garbled, b"{\"id\": \"01J").unwrap();
    std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.ask("asked past a garbled record").unwrap();
    let out = p.m.run(["peer", "notify", "beta", "notified past it"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.asked.push("notified past it".into());
    let out = p.m.run(["peer", "broadcast", "broadcast past it"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("beta"), "{}", text(&out.stdout));
    p.asked.push("broadcast past it".into());
    p.m.ok(["peer", "list"]);
    assert!(p.m.eventually(Duration::from_secs(30), || p.beta.prompts().len() == 4));
    p.m.helpers_done();
    p.assert_each_once();
    // Moved aside whole, with a note; status names it with the fix, and fails.
    assert!(!garbled.exists());
    let corrupt: Vec<PathBuf> = std::fs::read_dir(p.m.home.join("corrupt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(corrupt.len(), 2, "{corrupt:?}");
    let moved = corrupt
        .iter()
        .find(|c| c.extension().is_none_or(|x| x != "why"))
        .unwrap();
    assert_eq!(std::fs::read(moved).unwrap(), b"{\"id\": \"01J");
    let (code, report) = status(&p.m);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains(&format!("queue/{ID}.json could not be used")),
        "{report}"
    );
    assert!(
        report.contains(&format!("rm -r {}", moved.display())),
        "{report}"
    );
}

/// One garbled peer record broke `peer list`, `broadcast` and the registration of every new
/// session, and `status` said "peers: none yet".
#[test]
fn one_garbled_peer_record_breaks_nothing() {
    need_tmux!();
    let mut p = Pair::new();
    let garbled = p.m.home.join("peers/ghost.json");
    std::fs::write(&garbled, b"not json at all").unwrap();
    std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o600)).unwrap();
    let names: Vec<String> =
        p.m.peers()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(names, ["alpha", "beta"]);
    std::fs::write(&garbled, b"not json at all").unwrap();
    std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = p.m.run(["peer", "broadcast", "still there?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.asked.push("still there?".into());
    std::fs::write(&garbled, b"not json at all").unwrap();
    std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A new session registers.
    let _gamma = p.m.agent("gamma", &[]);
    assert!(p.m.peers().iter().any(|p| p["name"] == "gamma"));
    p.ask("and asked").unwrap();
    p.m.helpers_done();
    p.assert_each_once();
    std::fs::write(&garbled, b"not json at all").unwrap();
    std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, report) = status(&p.m);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("peers/ghost.json could not be used"),
        "{report}"
    );
    assert!(!report.contains("none yet"), "{report}");
}

/// A lock file that is a directory made the asker wait out its whole timeout, then print
/// `Is a directory (os error 21)` with no path; `queue/.send.lock` as a directory failed
/// every send the same way.
#[test]
fn a_lock_that_is_not_a_lock_file_fails_at_once_with_its_path() {
    need_tmux!();
    let mut p = Pair::new();
    let outside = p.m.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    for rel in [
        "peers/beta.lock",
        "peers/beta.deliver.lock",
        "queue/.send.lock",
    ] {
        for fault in [Fault::Directory, Fault::Fifo, Fault::Link] {
            let path = p.m.home.join(rel);
            remove(&path);
            plant(&path, rel, fault, &outside);
            let mut cmd = p.m.cmd_in(&p.alpha_pane);
            cmd.args([
                "peer",
                "ask",
                "beta",
                "through a broken lock",
                "--timeout",
                "60s",
            ]);
            // At once: far less than the ask's timeout.
            let out = run_for(cmd, Duration::from_secs(20));
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{rel} {fault:?}: {err}");
            assert!(
                err.contains(&path.display().to_string()),
                "{rel} {fault:?}: {err}"
            );
            assert!(err.contains("`rm "), "{rel} {fault:?}: no fix in {err}");
            let (code, report) = status(&p.m);
            assert_eq!(code, Some(1), "{rel} {fault:?}: {report}");
            assert!(report.contains(rel), "{rel} {fault:?}: {report}");
            remove(&path);
            assert!(
                std::fs::read_dir(p.m.home.join("queue"))
                    .unwrap()
                    .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".json")),
                "{rel} {fault:?}: a question was left queued"
            );
        }
    }
    p.ask("after the locks are mended").unwrap();
    p.assert_each_once();
}

/// `config.yaml` was read without the spool's file checks: a FIFO there hung `peer ask`,
/// `status` and `config show`; a symlink to another file was followed and that file's first
/// line printed in the parse error; one others could write was accepted.
#[test]
fn config_yaml_is_read_with_the_spools_file_checks() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    let config = m.home.join("config.yaml");
    let secret = m.dir.path().join("secret");
    std::fs::write(&secret, "password: hunter2 is the secret\n").unwrap();
    let runs = |what: &str| {
        for args in [&["config", "show"][..], &["peer", "ask", "ghost", "hi"]] {
            let mut cmd = m.cmd();
            cmd.args(args);
            let out = run_for(cmd, Duration::from_secs(20));
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what} {args:?}: {err}");
            assert!(err.contains(&config.display().to_string()), "{what}: {err}");
            assert!(err.contains('`'), "{what}: no fix in {err}");
            assert!(
                !err.contains("hunter2"),
                "{what}: printed another file: {err}"
            );
        }
        let out = m.rw().args(["status"]).env("HOME", m.dir.path()).output();
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(
            text(&out.stdout).contains(&config.display().to_string()),
            "{what}: {}",
            text(&out.stdout)
        );
    };
    let made = std::process::Command::new("mkfifo")
        .arg(&config)
        .status()
        .unwrap();
    assert!(made.success());
    runs("a FIFO");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink(&secret, &config).unwrap();
    runs("a symlink");
    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, "keep: 2d\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    runs("writable by others");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(m.ok(["config", "show"]).contains("keep: 2d"));
}

/// A record another user could write, or owns, is never used: it is moved aside (the work
/// around it goes on) and `status` names it with the fix; a FIFO planted as a record does not
/// hang the reader. The history and the spool's directories are refused with their fix.
#[test]
fn a_record_others_can_write_or_own_is_moved_aside_and_never_used() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    let record = m.home.join("peers/beta.json");
    let mode = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let plant = || {
        std::fs::write(&record, peer_record("beta")).unwrap();
        mode(&record, 0o600);
    };
    plant();
    m.ok(["peer", "notify", "beta", "fine"]);
    // Writable by others: its content cannot be trusted. The rest goes on without it, and
    // status names it with the fix until it is looked at.
    for loose in [0o666, 0o620, 0o602] {
        mode(&record, loose);
        let out = m.run(["peer", "list", "--json"]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{loose:o}: {err}");
        assert_eq!(
            text(&out.stdout).trim(),
            "[]",
            "{loose:o}: a loose record was used"
        );
        assert!(err.contains("can be written by other users"), "{err}");
        assert!(!record.exists());
        let report = status_report(&m);
        let moved = moved_aside(&m.home);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert!(
            report.contains(&format!("rm -r {}", moved[0].display())),
            "{report}"
        );
        std::fs::remove_dir_all(m.home.join("corrupt")).unwrap();
        plant();
    }

    // The same for a message waiting in the queue: moved aside, and the history, which is
    // no record, refused with its fix.
    let queued: Vec<PathBuf> = std::fs::read_dir(m.home.join("queue"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(queued.len(), 1);
    mode(&queued[0], 0o646);
    let out = m.run(["peer", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!queued[0].exists());
    assert_eq!(moved_aside(&m.home).len(), 1);
    std::fs::remove_dir_all(m.home.join("corrupt")).unwrap();
    let log = std::fs::read_dir(m.home.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    mode(&log, 0o666);
    let err = m.fails(["log"], 1);
    assert!(err.contains(&format!("chmod 600 {}", log.display())));
    let report = status_report(&m);
    assert!(
        report.contains(&format!("chmod 600 {}", log.display())),
        "{report}"
    );
    mode(&log, 0o600);

    // Owned by someone else (we are root in CI; elsewhere this part cannot be set up).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&record, Some(4242), None).unwrap();
        let out = m.run(["peer", "list", "--json"]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("belongs to uid 4242"), "{err}");
        assert_eq!(text(&out.stdout).trim(), "[]");
        std::fs::remove_dir_all(m.home.join("corrupt")).unwrap();
        plant();
        m.ok(["peer", "list"]);
        // And a directory of the spool: that stops everything, with the fix.
        let peers = m.home.join("peers");
        std::os::unix::fs::chown(&peers, Some(4242), None).unwrap();
        let out = m.run(["peer", "list"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("sudo chown -R 0 {}", peers.display())),
            "{err}"
        );
        std::os::unix::fs::chown(&peers, Some(0), None).unwrap();
        m.ok(["peer", "list"]);
    } else {
        crate::util::skipped("(part) a file owned by another user needs root to set up");
    }

    // A FIFO where a record should be: moved aside at once, not read forever.
    std::fs::remove_file(&record).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&record)
        .status()
        .unwrap();
    assert!(made.success());
    let mut cmd = m.cmd();
    cmd.args(["peer", "list"]);
    let out = run_for(cmd, Duration::from_secs(10));
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(!record.exists());
}

/// Symlinks planted where records, locks and the history live are never followed: the file
/// they point to is neither read as a record nor written, and the error says to remove them.
#[test]
fn symlinks_planted_in_the_spool_are_never_followed() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    let outside = m.dir.path().join("outside");
    let original = peer_record("beta");
    std::fs::write(&outside, &original).unwrap();
    let record = m.home.join("peers/beta.json");
    let plant = |rel: &str| {
        let p = m.home.join(rel);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(&outside, &p).unwrap();
        p
    };
    // A record that is a link to a valid record elsewhere: never read, moved aside (the link,
    // not what it points to), so the peer is unknown.
    let link = plant("peers/beta.json");
    let err = m.fails(["peer", "notify", "beta", "hi"], 3);
    assert!(err.contains("symbolic link"), "{err}");
    assert!(std::fs::symlink_metadata(&link).is_err());
    let moved = moved_aside(&m.home);
    assert_eq!(moved.len(), 1);
    assert_eq!(std::fs::read_link(&moved[0]).unwrap(), outside);
    std::fs::remove_dir_all(m.home.join("corrupt")).unwrap();
    std::fs::write(&record, &original).unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Lock files that are links: whoever would take them refuses.
    for (rel, args) in [
        ("queue/.send.lock", vec!["peer", "notify", "beta", "hi"]),
        ("peers/beta.lock", vec!["peer", "unregister", "beta"]),
    ] {
        let link = plant(rel);
        let out = m.run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{rel}: {err}");
        assert!(err.contains("symbolic link"), "{rel}: {err}");
        std::fs::remove_file(&link).unwrap();
    }
    // Today's history file as a link: the message still goes, the link is not written through.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let log = m.ok(["log", "--json"]);
    assert!(log.is_empty());
    let log_link = plant(&format!("log/{}.jsonl", civil(secs / 86400)));
    plant(&format!("log/{}.jsonl", civil(secs / 86400 + 1)));
    let out = m.run(["peer", "notify", "beta", "through the link?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), original);
    assert_eq!(std::fs::read_link(&log_link).unwrap(), outside);
}

/// What `repowire status` reports, when it finds a problem.
fn status_report(m: &Mesh) -> String {
    let out = m.run(["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    text(&out.stdout)
}

/// `YYYY-MM-DD` of day `days` since the Unix epoch, as the history names its files.
fn civil(days: u64) -> String {
    let (y, m, d) = repowire::time::civil_date(days * 86_400_000);
    format!("{y:04}-{m:02}-{d:02}")
}
