//! Test harness: a temporary spool, a private tmux server (its socket inside the temporary
//! directory, never the user's server) and stand-in agents running in its panes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod agents;
pub mod claude_code;
pub mod fake_agent;
pub mod files;
pub mod mcp;
pub mod procs;
mod real;
pub mod spool;
#[macro_use]
pub mod ssh;

pub use real::{FakeModel, Person, need_agent, one_at_a_time, path_with};

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
        rw(&self.home)
    }

    /// [`Mesh::cmd`] as a [`Rw`]: run with a time limit and checked.
    pub fn rw(&self) -> Rw {
        Rw::new(&self.home)
    }

    /// `repowire` as if run inside `pane` of this tmux server (its sender is that pane's peer).
    pub fn cmd_in(&self, pane: &str) -> Command {
        let mut c = self.cmd();
        c.env("TMUX", format!("{},1,0", self.socket.display()))
            .env("TMUX_PANE", pane);
        c
    }

    /// Runs repowire (within [`RUN_TIMEOUT`]).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.rw().args(args).output()
    }

    /// Runs repowire and returns stdout, failing the test with stderr if it failed.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.rw().args(args).ok()
    }

    /// Waits until none of this spool's helpers and hooks runs (see [`helpers_done`]).
    pub fn helpers_done(&self) {
        helpers_done(&self.home);
    }

    /// Runs repowire expecting exit status `code`; its stderr.
    pub fn fails<I, S>(&self, args: I, code: i32) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.rw().args(args).fails(code)
    }

    pub fn tmux<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Tmux {
            socket: self.socket.clone(),
        }
        .run(args)
    }

    /// Starts a stand-in agent in a new tmux session `name`, working in `<tmp>/<name>` (a
    /// directory of that name, so the peer is named `name`), and waits until it is ready.
    pub fn agent(&self, name: &str, extra: &[&str]) -> Agent {
        self.agent_with(name, extra, true, &[])
    }

    /// [`Mesh::agent`] as a session outside tmux: tmux gives it its terminal, but neither it
    /// nor its hooks have `TMUX` or `TMUX_PANE` to tell them.
    pub fn agent_outside_tmux(&self, name: &str, extra: &[&str]) -> Agent {
        self.agent_with(name, extra, false, &[])
    }

    /// [`Mesh::agent`] (or, not `in_tmux`, [`Mesh::agent_outside_tmux`]) with `env`
    /// (`NAME=VALUE`) in its environment and its hooks'.
    pub fn agent_with(&self, name: &str, extra: &[&str], in_tmux: bool, env: &[&str]) -> Agent {
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
            // Where an inbox's session file goes (never the user's ~/.claude).
            "-e".into(),
            format!("CLAUDE_CONFIG_DIR={}", self.claude_dir().display()),
        ];
        args.push("env".into());
        if !in_tmux {
            args.extend(["-u", "TMUX", "-u", "TMUX_PANE"].map(String::from));
        }
        args.extend(env.iter().map(|e| e.to_string()));
        args.extend([
            bin().display().to_string(),
            "standin".into(),
            "--events".into(),
            events.display().to_string(),
        ]);
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

    /// [`Mesh::agent`], asked once, so that it is reading its input when the test starts.
    pub fn warm_agent(&self, name: &str) -> Agent {
        let agent = self.agent(name, &[]);
        self.ok([
            "peer",
            "ask",
            name,
            "warm up: the agent reads its input now",
        ]);
        agent
    }

    /// The configuration directory the stand-ins' inboxes are announced in.
    pub fn claude_dir(&self) -> PathBuf {
        self.dir.path().join("claude")
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
    pub fn eventually(&self, timeout: Duration, f: impl FnMut() -> bool) -> bool {
        eventually(timeout, f)
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

/// Waits until no helper or hook of the spool at `home` runs: no deliverer, housekeeping,
/// fork runner or hook process (found by their `REPOWIRE_HOME`). What they were
/// started to do is then done, so what has not happened by then will not: the positive event
/// a check that something does *not* happen waits for, instead of a fixed sleep.
pub fn helpers_done(home: &Path) {
    let var = format!("REPOWIRE_HOME={}", home.display());
    let running = || procs::repowire_with_env(&["deliver", "gc", "fork", "hook"], &var);
    let done = eventually(Duration::from_secs(60), || running().is_empty());
    assert!(done, "still running after 60 s: {:?}", running());
}

/// How long a `repowire` command run by a test may take before the test fails: none takes
/// more than seconds unless it waits for an answer, and those set their own.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// `repowire` for the spool at `home`, run as a person at a terminal outside tmux, with stdin
/// closed.
pub fn rw(home: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env("REPOWIRE_HOME", home)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null());
    c
}

/// A run of `repowire` (or of any command) built step by step, then run within
/// [`RUN_TIMEOUT`] and checked: its status, and the stdout or stderr the test reads.
pub struct Rw {
    cmd: Command,
    stdin: Option<String>,
}

impl Rw {
    /// `repowire` for the spool at `home` (see [`rw`]).
    pub fn new(home: &Path) -> Rw {
        Rw::of(rw(home))
    }

    /// Runs `cmd`.
    pub fn of(cmd: Command) -> Rw {
        Rw { cmd, stdin: None }
    }

    pub fn args<I, S>(mut self, args: I) -> Rw
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Rw {
        self.cmd.env(key, value);
        self
    }

    /// Gives it `text` on stdin (as `peer ask NAME -` reads its question).
    pub fn stdin_text(mut self, text: &str) -> Rw {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn env_remove(mut self, key: &str) -> Rw {
        self.cmd.env_remove(key);
        self
    }

    /// Runs it; fails the test if it does not finish in time.
    pub fn output(self) -> Output {
        run_with(self.cmd, self.stdin.as_deref(), RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs it; its stdout, failing the test if it did not exit 0.
    pub fn ok(self) -> String {
        let what = format!("{:?}", self.cmd);
        succeeded(&what, self.output())
    }

    /// Runs it; its stderr, failing the test unless it exited with `code`.
    pub fn fails(self, code: i32) -> String {
        let what = format!("{:?}", self.cmd);
        let out = self.output();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{what}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }
}

/// The stdout of `what`'s run `out`, failing the test if it did not exit 0.
fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `cmd` with stdin closed, killing it after `timeout`. Output goes through files (no
/// pipe can fill up). Panics if it cannot be started or does not finish in time.
pub fn run_for(cmd: Command, timeout: Duration) -> Output {
    try_run_for(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_for`] that reports instead of panicking (for a teardown).
pub fn try_run_for(cmd: Command, timeout: Duration) -> Result<Output, String> {
    run_with(cmd, None, timeout)
}

/// [`try_run_for`] with `stdin` (through a file) as the command's input.
fn run_with(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (in_p, out_p, err_p) = (
        tmp.path().join("in"),
        tmp.path().join("out"),
        tmp.path().join("err"),
    );
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
    match stdin {
        Some(text) => {
            std::fs::write(&in_p, text).map_err(|e| e.to_string())?;
            cmd.stdin(std::fs::File::open(&in_p).map_err(|e| e.to_string())?)
        }
        None => cmd.stdin(Stdio::null()),
    };
    cmd.stdout(file(&out_p)?).stderr(file(&err_p)?);
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

/// Now, in seconds since the Unix epoch (as the Claude Code driver's hook log stamps calls).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A question that tries to be anything but text to a real agent, and what the agent must
/// receive of it (GUIDE.md, "Text between agents"), written out by hand: the tab as four
/// spaces, ESC as its picture.
pub const HOSTILE_QUESTION: &str = "Echo this back:\n  \"double\" 'single' `ticks` $HOME \\back; semi\n/clear\n!touch pwned\n\
                                    ünïcødé ✓ 日本\tTAB \x1b[201~ after ESC";
pub const HOSTILE_QUESTION_RECEIVED: &str = "Echo this back:\n  \"double\" 'single' `ticks` $HOME \\back; semi\n/clear\n!touch pwned\n\
                                             ünïcødé ✓ 日本    TAB \u{241b}[201~ after ESC";

/// A word for `sh`: quoted unless it is plainly safe.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@%,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `repowire` as an agent's hooks and shell tool call it.
pub fn rw_command() -> String {
    sh_quote(&bin().display().to_string())
}

/// Polls `f` until it holds; false after `timeout`.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A private tmux server: its socket is a file in a test's temporary directory, never the
/// user's server, and it reads no configuration.
#[derive(Clone)]
pub struct Tmux {
    pub socket: PathBuf,
}

impl Tmux {
    pub fn run<I, S>(&self, args: I) -> Output
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

    /// Starts `argv` in a new session `name` (160x45), working in `work`.
    pub fn new_session(&self, name: &str, work: &Path, argv: &[String]) {
        let mut args: Vec<String> = ["new-session", "-d", "-s", name, "-x", "160", "-y", "45"]
            .map(String::from)
            .into();
        args.extend(["-c".into(), work.display().to_string()]);
        args.extend(argv.iter().cloned());
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "tmux new-session {name}: {}",
            text(&out.stderr)
        );
    }

    /// What session `name`'s pane shows (with `-e`: its colours and attributes as escapes).
    pub fn screen(&self, name: &str, escapes: bool) -> String {
        let target = format!("={name}:");
        let mut args = vec!["capture-pane", "-p", "-t", &target];
        if escapes {
            args.push("-e");
        }
        text(&self.run(args).stdout)
    }

    /// The last `n` lines of session `name`'s screen that are not blank, for a diagnosis.
    pub fn screen_tail(&self, name: &str, n: usize) -> String {
        let screen = self.screen(name, false);
        let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Presses keys (tmux key names: `Enter`, `Escape`, `C-c`) in session `name`.
    pub fn keys(&self, name: &str, keys: &[&str]) {
        let target = format!("={name}:");
        let mut args = vec!["send-keys", "-t", &target];
        args.extend(keys);
        let out = self.run(args);
        assert!(out.status.success(), "send-keys: {}", text(&out.stderr));
    }

    /// Types `typed` literally into session `name`, as keys, in pieces small enough that no
    /// agent takes them for a paste.
    pub fn type_text(&self, name: &str, typed: &str) {
        let target = format!("={name}:");
        let mut rest = typed;
        while !rest.is_empty() {
            let mut cut = rest.len().min(200);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let out = self.run(["send-keys", "-t", &target, "-l", "--", &rest[..cut]]);
            assert!(out.status.success(), "send-keys: {}", text(&out.stderr));
            rest = &rest[cut..];
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Pastes `typed` into session `name` as one bracketed paste, as a person would.
    pub fn paste(&self, name: &str, typed: &str) {
        let buffer = format!("test-{name}");
        let mut load = Command::new("tmux");
        load.arg("-S")
            .arg(&self.socket)
            .args(["load-buffer", "-b", &buffer, "-"])
            .stdin(Stdio::piped());
        let mut child = load.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), typed.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        let target = format!("={name}:");
        let out = self.run(["paste-buffer", "-p", "-d", "-b", &buffer, "-t", &target]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// The pids of every pane's first process.
    pub fn pane_pids(&self) -> Vec<u32> {
        text(&self.run(["list-panes", "-a", "-F", "#{pane_pid}"]).stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Ends the server and every process its panes started (some agents outlive their
    /// pane's hangup), then waits up to `grace` for them to exit: their SessionEnd hooks
    /// write to the spool, which must not go before they are done.
    pub fn shut_down(&self, grace: Duration) {
        let procs = procs::trees(&self.pane_pids());
        let _ = self.run(["kill-server"]);
        for pid in &procs {
            // SIGTERM; an error for a process already gone is fine.
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
        eventually(grace, || {
            procs::trees(&procs).iter().all(|p| !procs::alive(*p))
        });
    }
}

/// [`sh_quote`] builds the hook commands the setup tests expect: it is checked against a table
/// of its own, not against repowire's quoting.
#[test]
fn the_tests_sh_quote_quotes_as_sh_reads() {
    for (word, quoted) in [
        ("/usr/bin/repowire", "/usr/bin/repowire"),
        ("", "''"),
        ("/opt/my tools/repowire", "'/opt/my tools/repowire'"),
        ("/it's", r"'/it'\''s'"),
        ("$x", "'$x'"),
    ] {
        assert_eq!(sh_quote(word), quoted, "{word:?}");
        let echoed = Command::new("sh")
            .args(["-c", &format!("printf %s {quoted}")])
            .output()
            .unwrap();
        assert_eq!(
            text(&echoed.stdout),
            word,
            "sh reads {quoted} as something else"
        );
    }
}

/// `tmux` wrapped on a `PATH` of its own: every call is written down, then run by the real
/// tmux. A test gives [`TmuxLog::path`] to repowire (the asker, the agent and so its hooks) to
/// see what repowire asked tmux to do.
pub struct TmuxLog {
    pub calls: PathBuf,
    /// `PATH` with the wrapper first.
    pub path: String,
}

impl TmuxLog {
    pub fn new(dir: &Path) -> TmuxLog {
        let calls = dir.join("tmux-calls");
        let wrapped = dir.join("wrapped-tmux");
        std::fs::create_dir_all(&wrapped).unwrap();
        let real = Command::new("sh")
            .args(["-c", "command -v tmux"])
            .output()
            .unwrap();
        let real = text(&real.stdout).trim().to_string();
        assert!(!real.is_empty(), "no tmux on PATH");
        let script = wrapped.join("tmux");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {} \"$@\"\n",
                sh_quote(&calls.display().to_string()),
                sh_quote(&real)
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = format!(
            "{}:{}",
            wrapped.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        TmuxLog { calls, path }
    }

    /// Every call so far, one line each.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(&self.calls).unwrap_or_default()
    }

    /// The calls that typed or pasted into `pane` (tmux_interface spells some commands short).
    pub fn typed_into(&self, pane: &str) -> Vec<String> {
        self.calls()
            .lines()
            .filter(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.contains(&pane)
                    && words
                        .iter()
                        .any(|w| ["send-keys", "send", "paste-buffer", "pasteb"].contains(w))
            })
            .map(str::to_string)
            .collect()
    }
}
