//! Test harness: a temporary spool, a private tmux server (its socket inside the temporary
//! directory, never the user's server) and stand-in agents running in its panes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_repowire"))
}

/// Whether tmux can be run here; tests that need it print why they skip otherwise.
pub fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Says why a test (or part of one) cannot run its real parts here, and lets it pass; but
/// where `REPOWIRE_TEST_NO_SKIP` is set (`.ci/run` sets it), fails it instead, so a check
/// that did not run is never reported as passing.
pub fn skipped(why: &str) {
    if std::env::var_os("REPOWIRE_TEST_NO_SKIP").is_some() {
        panic!("cannot run (REPOWIRE_TEST_NO_SKIP is set): {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Skips the calling test (with the reason on stderr) where tmux is missing.
#[macro_export]
macro_rules! need_tmux {
    () => {
        if !$crate::util::have_tmux() {
            $crate::util::skipped("tmux is not installed");
            return;
        }
    };
}

/// One test's world: a spool, a tmux server and the agents in it.
pub struct Mesh {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub socket: PathBuf,
}

impl Mesh {
    pub fn new() -> Mesh {
        let dir = tempfile::Builder::new().prefix("rw").tempdir().unwrap();
        let home = dir.path().join("spool");
        let socket = dir.path().join("tmux.sock");
        Mesh { dir, home, socket }
    }

    /// `repowire` with this spool, run as a person at a terminal outside tmux.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("REPOWIRE_HOME", &self.home)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(Stdio::null());
        c
    }

    /// `repowire` as if run inside `pane` of this tmux server (its sender is that pane's peer).
    pub fn cmd_in(&self, pane: &str) -> Command {
        let mut c = self.cmd();
        c.env("TMUX", format!("{},1,0", self.socket.display()))
            .env("TMUX_PANE", pane);
        c
    }

    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs repowire and returns stdout, failing the test with stderr if it failed.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "repowire failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn tmux<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts a stand-in agent in a new tmux session `name`, working in `<tmp>/<name>` (a
    /// directory of that name, so the peer is named `name`), and waits until it is ready.
    pub fn agent(&self, name: &str, extra: &[&str]) -> Agent {
        let work = self.dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        let events = self.dir.path().join(format!("{name}.events"));
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            name.into(),
            "-x".into(),
            "160".into(),
            "-y".into(),
            "40".into(),
            "-c".into(),
            work.display().to_string(),
            "-e".into(),
            format!("REPOWIRE_HOME={}", self.home.display()),
            "-e".into(),
            format!(
                "REPOWIRE_STANDIN_DIR={}",
                self.dir.path().join("transcripts").display()
            ),
            bin().display().to_string(),
            "standin".into(),
            "--events".into(),
            events.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = self.tmux(&args);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            text(&out.stderr)
        );
        let agent = Agent {
            name: name.to_string(),
            events,
            work,
        };
        let start = agent.wait_event(Duration::from_secs(10), |e| e["type"] == "start");
        assert!(start.is_some(), "stand-in {name} did not start");
        agent
    }

    /// The pane id (`%N`) of tmux session `name`.
    pub fn pane(&self, name: &str) -> String {
        let out = self.tmux(["display-message", "-p", "-t", name, "#{pane_id}"]);
        text(&out.stdout).trim().to_string()
    }

    /// The peers as `peer list --json` shows them.
    pub fn peers(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(["peer", "list", "--json"])).unwrap()
    }

    pub fn status(&self, name: &str) -> String {
        self.peers()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["status"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Waits until `f` holds, polling; false after `timeout`.
    pub fn eventually(&self, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        f()
    }

    /// The history as JSON entries.
    pub fn history(&self) -> Vec<Value> {
        self.ok(["log", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = self.tmux(["kill-server"]);
    }
}

/// A stand-in agent started by [`Mesh::agent`].
pub struct Agent {
    pub name: String,
    pub events: PathBuf,
    pub work: PathBuf,
}

impl Agent {
    /// Every event the stand-in recorded so far.
    pub fn events(&self) -> Vec<Value> {
        read_jsonl(&self.events)
    }

    /// The events of one type.
    pub fn of_type(&self, ty: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == ty)
            .collect()
    }

    /// The texts of the prompts the agent received.
    pub fn prompts(&self) -> Vec<String> {
        self.of_type("prompt")
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn wait_event(&self, timeout: Duration, f: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| f(e)) {
                return Some(e);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The body of a prompt repowire typed: everything after the header line.
pub fn body(prompt: &str) -> &str {
    prompt.split_once('\n').map_or("", |(_, b)| b)
}

/// Starts a command in the background with its output captured.
pub fn spawn_piped(cmd: &mut Command) -> std::process::Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The build's target directory: the binary is `<target>/<profile>/repowire`.
pub fn target_dir() -> PathBuf {
    bin()
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in <target>/<profile>")
        .to_path_buf()
}

/// Runs `cmd` with stdin closed, killing it after `timeout`. Output goes through files (no
/// pipe can fill up). Panics if it cannot be started or does not finish in time.
pub fn run_for(cmd: Command, timeout: Duration) -> Output {
    try_run_for(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_for`] that reports instead of panicking (for a teardown).
pub fn try_run_for(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (out_p, err_p) = (tmp.path().join("out"), tmp.path().join("err"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
    cmd.stdin(Stdio::null())
        .stdout(file(&out_p)?)
        .stderr(file(&err_p)?);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{what} did not finish within {timeout:?}; stdout: {}; stderr: {}",
                std::fs::read_to_string(&out_p).unwrap_or_default(),
                std::fs::read_to_string(&err_p).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: std::fs::read(&out_p).unwrap_or_default(),
        stderr: std::fs::read(&err_p).unwrap_or_default(),
    })
}

/// Now, in seconds since the Unix epoch (as the Claude Code harness's hook log stamps calls).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
