//! What the tests against the real agent CLIs share: the project's fake model API, the agents
//! installed from the npm registry, and repowire run by a person at a terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{eventually, have_tmux, run_for, rw, skipped, succeeded, target_dir, text};

/// The scripted fake model API (`tests/fake_model.py`) on a loopback port: Anthropic
/// Messages for Claude Code, OpenAI Responses for Codex, Gemini's API for Gemini CLI. Every
/// request it answered is a line of `log`. Dropping it stops it.
pub struct FakeModel {
    child: std::process::Child,
    pub port: u16,
    pub log: PathBuf,
}

impl FakeModel {
    /// Starts it with its files in `dir`.
    pub fn start(dir: &Path) -> FakeModel {
        let port_file = dir.join("fake.port");
        let log = dir.join("api.jsonl");
        let stderr = std::fs::File::create(dir.join("fake.stderr")).unwrap();
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_model.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("python3 runs the fake model");
        let mut port = None;
        eventually(Duration::from_secs(20), || {
            port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.parse().ok());
            port.is_some()
        });
        let port = port.expect("the fake model API did not start");
        FakeModel { child, port, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program arg` runs and succeeds here.
pub fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One release of an agent CLI (`claude`, `codex`, `gemini`), installed from the npm
/// registry by `.ci/install-agent` into `<target>/agents/AGENT-VERSION` when it is not there
/// yet. `Err` says why it cannot be had here (no npm, the registry unreachable); any other
/// failure panics. One install runs at a time, and each release is installed once per run.
pub fn install_agent(agent: &str, version: &str) -> Result<PathBuf, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DONE: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = format!("{agent}-{version}");
    if let Some(r) = done.get(&key) {
        return r.clone();
    }
    let dir = target_dir().join("agents").join(&key);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-agent");
    let mut cmd = Command::new("sh");
    cmd.arg(&script).arg(agent).arg(version).arg(&dir);
    let t = Instant::now();
    let out = run_for(cmd, Duration::from_secs(900));
    let log = format!(
        "{} {agent} {version}: {}",
        script.display(),
        text(&out.stderr).trim()
    );
    let result = match out.status.code() {
        Some(0) => {
            if t.elapsed() > Duration::from_secs(2) {
                eprintln!("installed {agent} {version} in {:.1?}", t.elapsed());
            }
            Ok(PathBuf::from(text(&out.stdout).trim()))
        }
        Some(2) => Err(format!("npm or node is missing ({log})")),
        Some(3) => Err(format!("npm install failed ({log})")),
        _ => panic!("installing {agent} {version} failed: {log}"),
    };
    done.insert(key, result.clone());
    result
}

/// A release of an agent CLI, installed if need be, or `None` after printing
/// `SKIPPED: <why>` when a test against it cannot run here (no tmux, python3 or npm).
pub fn need_agent(agent: &str, version: &str) -> Option<PathBuf> {
    let why = if !have_tmux() {
        "tmux is not installed".to_string()
    } else if !runs("python3", "--version") {
        "python3 is not installed (the fake model API needs it)".to_string()
    } else {
        match install_agent(agent, version) {
            Ok(bin) => return Some(bin),
            Err(why) => why,
        }
    };
    skipped(&why);
    None
}

/// Held while sessions of a real agent CLI run: tests start theirs one group at a time. With
/// four Claude Code TUIs starting at once on a busy 2-core machine, a first delivery was not
/// confirmed within repowire's Enter retries.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// repowire on one spool, run by a person at a terminal (in no pane): what the tests against
/// real agents ask of it.
pub struct Person {
    pub spool: PathBuf,
    /// How long an ask may take.
    pub timeout: Duration,
    /// Their `PATH`, when not the test's.
    pub path: Option<String>,
}

impl Person {
    pub fn new(spool: &Path, timeout: Duration) -> Person {
        Person {
            spool: spool.to_path_buf(),
            timeout,
            path: None,
        }
    }

    /// `repowire ARGS` run by a person at a terminal (not in any pane), on this spool.
    pub fn rw(&self, args: &[&str]) -> Output {
        let mut c = rw(&self.spool);
        if let Some(path) = &self.path {
            c.env("PATH", path);
        }
        c.args(args);
        run_for(c, self.timeout + Duration::from_secs(30))
    }

    pub fn rw_ok(&self, args: &[&str]) -> String {
        succeeded(&format!("repowire {args:?}"), self.rw(args))
    }

    /// `peer ask NAME TEXT`: the printed answer (without the newline after it) and how long
    /// it took.
    pub fn ask(&self, name: &str, question: &str) -> (String, Duration) {
        let t = Instant::now();
        let timeout = format!("{}s", self.timeout.as_secs());
        let out = self.rw_ok(&["peer", "ask", name, question, "--timeout", &timeout]);
        let took = t.elapsed();
        let answer = out
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("answer not newline-terminated: {out:?}"));
        (answer.to_string(), took)
    }

    pub fn peers(&self) -> Vec<Value> {
        serde_json::from_slice(&self.rw(&["peer", "list", "--json"]).stdout).unwrap_or_default()
    }

    pub fn peer(&self, name: &str) -> Value {
        self.peers()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    pub fn history(&self) -> Vec<Value> {
        self.rw_ok(&["log", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The history entries of one message, as (event, entry).
    pub fn events_of(&self, id: &str) -> Vec<(String, Value)> {
        self.history()
            .into_iter()
            .filter(|e| e["id"] == id)
            .map(|e| (e["event"].as_str().unwrap_or("").to_string(), e))
            .collect()
    }

    /// The events of one message's history entries, in order.
    pub fn event_names(&self, id: &str) -> Vec<String> {
        self.events_of(id).into_iter().map(|(e, _)| e).collect()
    }

    /// The id of the last `sent` entry from `from` to `to`.
    pub fn last_sent(&self, from: &str, to: &str) -> String {
        self.history()
            .iter()
            .rev()
            .find(|e| e["event"] == "sent" && e["from"] == from && e["to"] == to)
            .and_then(|e| e["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no message from {from} to {to} in the log"))
    }

    /// Asserts `name` is online (its turn over) now or soon.
    pub fn assert_online(&self, name: &str) {
        let online = eventually(Duration::from_secs(20), || {
            self.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "online")
        });
        assert!(online, "{name} is not online again");
    }
}

/// `$PATH` with `dir` first (where a test's agent CLI is installed).
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
