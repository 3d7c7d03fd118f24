//! End to end against the real Claude Code CLI (2.1.330): two interactive sessions in tmux,
//! talking to the scripted fake Anthropic API of `../shared/claude-code` (nothing leaves
//! 127.0.0.1), with repowire's four hooks in their `~/.claude/settings.json`.
//!
//! The fake "model" answers `REPLY <text>` with that text, `CALL_TOOL Bash {...}` with a Bash
//! tool call (and then `TOOL_RESULT: <output>`), and anything else with `ECHO: <prompt>`; so
//! the answers below are exactly what Claude Code's turns produced from what repowire typed.
//!
//! The binary comes from `$CLAUDE_BIN`, else `<target>/claude-code` (installed there with
//! `.ci/install-claude` when missing). A test prints `SKIPPED: <reason>` and passes only when
//! that cannot be done: no python3, no tmux, no npm/node, or npm install failed.
//!
//! [`need_claude`] and [`Claude`] are shared with the Claude Code test of tests/mcp.rs; every
//! test against the real CLI runs its sessions one pair at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{self, read_jsonl, run_for, target_dir, text, try_run_for};

const CLAUDE_VERSION: &str = "2.1.330";
/// Claude Code start-up to registered peer; about 1–4 s here, generous for a busy 2-core box.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Whole round trips through one or more Claude Code turns.
pub(crate) const ASK_TIMEOUT: Duration = Duration::from_secs(120);

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/claude-code")
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Claude Code binary, installed if need be, or why the test cannot run. Done once per
/// test binary; a failure that is not "cannot install here" panics.
fn claude_bin() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("CLAUDE_BIN").filter(|b| !b.is_empty()) {
            let b = PathBuf::from(b);
            assert!(b.exists(), "CLAUDE_BIN={} does not exist", b.display());
            return Ok(b);
        }
        let dir = target_dir().join("claude-code");
        let bin = dir.join("node_modules/.bin/claude");
        let t = Instant::now();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-claude");
        let mut cmd = Command::new("sh");
        cmd.arg(&script)
            .arg(&dir)
            .env("CLAUDE_VERSION", CLAUDE_VERSION);
        let out = run_for(cmd, Duration::from_secs(600));
        let log = format!(
            "{} {}: {}",
            script.display(),
            dir.display(),
            text(&out.stderr).trim()
        );
        match out.status.code() {
            Some(0) => {
                let printed = PathBuf::from(text(&out.stdout).trim());
                assert_eq!(printed, bin, "{log}");
                if t.elapsed() > Duration::from_secs(2) {
                    eprintln!(
                        "installed Claude Code {CLAUDE_VERSION} in {:.1?}",
                        t.elapsed()
                    );
                }
                Ok(bin)
            }
            Some(2) => Err(format!("npm or node is missing ({log})")),
            Some(3) => Err(format!("npm install failed ({log})")),
            _ => panic!("installing Claude Code failed: {log}"),
        }
    })
    .clone()
}

/// The Claude Code binary, or `None` after printing `SKIPPED: <why>` when a test against it
/// cannot run here.
pub(crate) fn need_claude() -> Option<PathBuf> {
    let why = if !util::have_tmux() {
        "tmux is not installed".into()
    } else if !runs("python3", "--version") {
        "python3 is not installed (the Claude Code harness needs it)".into()
    } else {
        match claude_bin() {
            Ok(bin) => return Some(bin),
            Err(why) => why,
        }
    };
    crate::util::skipped(&why);
    None
}

/// Held while sessions of a real CLI run: tests start theirs one group at a time. With four
/// Claude Code TUIs starting at once on a busy 2-core machine, a first delivery was not
/// confirmed within repowire's Enter retries.
pub(crate) fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A word for `sh`: quoted unless it is plainly safe.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@%,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `repowire` as the hooks and the agents' Bash tool call it.
pub(crate) fn rw_command() -> String {
    sh_quote(&util::bin().display().to_string())
}

/// Two Claude Code sessions, `alpha` and `beta`, each in a directory of that name, sharing a
/// spool. Dropping it stops them (also when the test fails; the directory is then kept).
pub(crate) struct Claude {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    state: PathBuf,
    spool: PathBuf,
    work: HashMap<String, PathBuf>,
    /// state.json after `up`.
    pub(crate) info: Value,
    /// One pair of sessions at a time: with four Claude Code TUIs starting at once on a busy
    /// 2-core machine, a first delivery was not confirmed within repowire's Enter retries.
    /// Dropped last, after the teardown.
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Claude {
    /// Starts the sessions (with `extra_settings` merged into their settings and `extra_args`
    /// for `cc_harness.py up`) and waits until both are online peers.
    pub(crate) fn start(claude: &Path, extra_settings: Value, extra_args: &[&str]) -> Claude {
        let guard = one_at_a_time();
        let dir = tempfile::Builder::new().prefix("rwcc").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let mut cc = Claude {
            dir: Some(dir),
            state: root.join("cc"),
            spool: root.join("spool"),
            work: HashMap::new(),
            info: Value::Null,
            root,
            _one_at_a_time: guard,
        };
        for name in ["alpha", "beta"] {
            let w = cc.root.join(name);
            std::fs::create_dir_all(&w).unwrap();
            cc.work.insert(name.into(), w);
        }
        let rw = rw_command();
        let hook = |event: &str| json!([{"hooks": [{"type": "command", "command": format!("{rw} hook {event}")}]}]);
        let mut settings = json!({"hooks": {
            "SessionStart": hook("session-start"),
            "UserPromptSubmit": hook("prompt"),
            "Stop": hook("stop"),
            "SessionEnd": hook("session-end"),
        }});
        if let (Some(s), Some(extra)) = (settings.as_object_mut(), extra_settings.as_object()) {
            s.extend(extra.clone());
        }
        let settings_file = cc.root.join("settings.json");
        std::fs::write(&settings_file, settings.to_string()).unwrap();

        // The harness's logging hooks stay: hooks.jsonl shows what Claude Code did.
        let mut up = cc.harness("up");
        up.arg("--claude")
            .arg(claude)
            .arg("--settings")
            .arg(&settings_file)
            .arg("--env")
            .arg(format!("REPOWIRE_HOME={}", cc.spool.display()))
            .arg("--timeout")
            .arg(START_TIMEOUT.as_secs().to_string())
            .args(extra_args);
        for name in ["alpha", "beta"] {
            up.arg("--session")
                .arg(format!("{name}={}", cc.work[name].display()));
        }
        let t = Instant::now();
        let out = run_for(up, START_TIMEOUT + Duration::from_secs(30));
        if !out.status.success() {
            cc.fail(&format!(
                "cc_harness.py up failed: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        let up_time = t.elapsed();
        cc.info =
            serde_json::from_slice(&std::fs::read(cc.state.join("state.json")).unwrap()).unwrap();

        let registered = cc.eventually(START_TIMEOUT, || {
            let peers = cc.peers();
            ["alpha", "beta"].iter().all(|n| {
                peers
                    .iter()
                    .any(|p| p["name"] == *n && p["status"] == "online")
            })
        });
        if !registered {
            cc.fail("alpha and beta did not both become online peers");
        }
        eprintln!(
            "claude: both sessions' prompt boxes on screen after {up_time:.2?} (alpha {}s, beta {}s), both online peers after {:.2?}",
            cc.info["sessions"]["alpha"]["ready_s"],
            cc.info["sessions"]["beta"]["ready_s"],
            t.elapsed()
        );
        for name in ["alpha", "beta"] {
            let p = cc.peer(name);
            let s = &cc.info["sessions"][name];
            assert_eq!(p["agent"], "claude");
            assert_eq!(p["session_id"], s["session_id"], "{name}: {p}");
            assert_eq!(
                Path::new(p["path"].as_str().unwrap()),
                cc.work[name].as_path()
            );
            assert_eq!(p["queued"], 0);
            // Its SessionStart hook found the agent's process, which tells when it exits.
            let record: Value = serde_json::from_slice(
                &std::fs::read(cc.spool.join(format!("peers/{name}.json"))).unwrap(),
            )
            .unwrap();
            let pid = &record["agent_process"]["pid"];
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            assert!(
                pid.is_u64() && !comm.is_empty(),
                "{name}: no live agent process recorded: {record}"
            );
            eprintln!("claude: {name}'s agent process is {pid} ({})", comm.trim());
        }
        cc
    }

    pub(crate) fn harness(&self, sub: &str) -> Command {
        let mut c = Command::new("python3");
        c.arg(shared_dir().join("cc_harness.py"))
            .arg(sub)
            .arg("--state")
            .arg(&self.state)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        c
    }

    /// `repowire` run by a person at a terminal (not in any pane), on this spool.
    fn rw(&self, args: &[&str]) -> Output {
        let mut c = Command::new(util::bin());
        c.args(args)
            .env("REPOWIRE_HOME", &self.spool)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        run_for(c, ASK_TIMEOUT + Duration::from_secs(30))
    }

    pub(crate) fn rw_ok(&self, args: &[&str]) -> String {
        let out = self.rw(args);
        if !out.status.success() {
            self.fail(&format!(
                "repowire {args:?} failed ({}): {}{}",
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        text(&out.stdout)
    }

    /// `peer ask NAME TEXT`: the printed answer (without the newline added after it) and how
    /// long it took.
    pub(crate) fn ask(&self, name: &str, question: &str) -> (String, Duration) {
        let t = Instant::now();
        let timeout = format!("{}s", ASK_TIMEOUT.as_secs());
        let out = self.rw_ok(&["peer", "ask", name, question, "--timeout", &timeout]);
        let took = t.elapsed();
        let answer = out
            .strip_suffix('\n')
            .unwrap_or_else(|| self.fail(&format!("answer not newline-terminated: {out:?}")));
        (answer.to_string(), took)
    }

    pub(crate) fn peers(&self) -> Vec<Value> {
        let out = self.rw(&["peer", "list", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    fn peer(&self, name: &str) -> Value {
        self.peers()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| self.fail(&format!("no peer {name}")))
    }

    pub(crate) fn history(&self) -> Vec<Value> {
        self.rw_ok(&["log", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The history entries of one message, as (event, entry).
    pub(crate) fn events_of(&self, id: &str) -> Vec<(String, Value)> {
        self.history()
            .into_iter()
            .filter(|e| e["id"] == id)
            .map(|e| (e["event"].as_str().unwrap_or("").to_string(), e))
            .collect()
    }

    /// The events of one message's history entries, in order.
    pub(crate) fn event_names(&self, id: &str) -> Vec<String> {
        self.events_of(id).into_iter().map(|(e, _)| e).collect()
    }

    /// The id of the last `sent` entry from `from` to `to`.
    pub(crate) fn last_sent(&self, from: &str, to: &str) -> String {
        self.history()
            .iter()
            .rev()
            .find(|e| e["event"] == "sent" && e["from"] == from && e["to"] == to)
            .and_then(|e| e["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| self.fail(&format!("no message from {from} to {to} in the log")))
    }

    /// Hook calls the harness's logger recorded for session `name`: (unix time, payload).
    pub(crate) fn hooks(&self, name: &str, event: &str) -> Vec<(f64, Value)> {
        read_jsonl(&self.state.join("hooks.jsonl"))
            .into_iter()
            .filter(|e| e["name"] == name && e["payload"]["hook_event_name"] == event)
            .map(|e| (e["ts"].as_f64().unwrap_or(0.0), e["payload"].clone()))
            .collect()
    }

    /// The UserPromptSubmit payload whose prompt carries message `id`.
    fn prompt_of(&self, name: &str, id: &str) -> Option<(f64, Value)> {
        self.hooks(name, "UserPromptSubmit")
            .into_iter()
            .find(|(_, p)| p["prompt"].as_str().is_some_and(|s| s.contains(id)))
    }

    pub(crate) fn eventually(&self, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        f()
    }

    /// Asserts `peer` is online (its turn over) now or very soon.
    fn assert_online(&self, name: &str) {
        let t = Instant::now();
        if !self.eventually(Duration::from_secs(10), || {
            self.peer(name)["status"] == "online"
        }) {
            self.fail(&format!("{name} is not online again"));
        }
        if t.elapsed() > Duration::from_millis(500) {
            eprintln!(
                "claude: {name} was online again only after {:.2?}",
                t.elapsed()
            );
        }
    }

    /// How long after repowire logged `delivered` the agent's UserPromptSubmit hook ran (typing,
    /// the pause before Enter, Enter retries), as text.
    fn delivery_latency(&self, name: &str, id: &str) -> String {
        let delivered = self
            .events_of(id)
            .into_iter()
            .find(|(ev, _)| ev == "delivered")
            .and_then(|(_, e)| e["ts_ms"].as_f64());
        match (delivered, self.prompt_of(name, id)) {
            (Some(d), Some((ts, _))) => format!("{:.2}s", ts - d / 1000.0),
            _ => "?".into(),
        }
    }

    /// Fails the test with `msg` (the teardown then prints what the sessions show).
    pub(crate) fn fail(&self, msg: &str) -> ! {
        panic!("{msg}")
    }

    /// What the sessions show: screens, hook calls, peers and history. Never panics.
    fn diagnosis(&self) -> String {
        let output = |c: Command| {
            try_run_for(c, Duration::from_secs(30))
                .map(|o| text(&o.stdout) + &text(&o.stderr))
                .unwrap_or_else(|e| e)
        };
        let mut d = format!("--- state: {}\n", self.root.display());
        for name in ["alpha", "beta"] {
            let mut c = self.harness("screen");
            c.arg(name);
            let screen = output(c);
            let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
            d += &format!(
                "--- {name}'s screen:\n{}\n",
                lines[lines.len().saturating_sub(25)..].join("\n")
            );
        }
        d += "--- hooks (harness logger):\n";
        for e in read_jsonl(&self.state.join("hooks.jsonl")) {
            let p = &e["payload"];
            let detail = [
                "prompt",
                "last_assistant_message",
                "source",
                "reason",
                "message",
            ]
            .iter()
            .find_map(|k| p[*k].as_str())
            .unwrap_or("");
            d += &format!(
                "{:.3} {} {} {:?}\n",
                e["ts"].as_f64().unwrap_or(0.0),
                e["name"].as_str().unwrap_or("?"),
                p["hook_event_name"].as_str().unwrap_or("?"),
                detail.chars().take(160).collect::<String>()
            );
        }
        for args in [&["peer", "list"][..], &["log"][..]] {
            let mut c = Command::new(util::bin());
            c.args(args).env("REPOWIRE_HOME", &self.spool);
            d += &format!("--- repowire {}:\n{}", args.join(" "), output(c));
        }
        d
    }
}

impl Drop for Claude {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnosis());
        }
        // The sessions' process ids, to wait for their SessionEnd hooks before the directory
        // goes. (state.json is read again: `up` may have failed half-way.)
        let info: Value = std::fs::read(self.state.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let pids: Vec<String> = match info["socket"].as_str() {
            Some(socket) => Command::new("tmux")
                .args(["-L", socket, "list-panes", "-a", "-F", "#{pane_pid}"])
                .stdin(Stdio::null())
                .output()
                .map(|o| {
                    text(&o.stdout)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let down = try_run_for(self.harness("down"), Duration::from_secs(60));
        if !down.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("claude: cc_harness.py down failed: {down:?}");
        }
        let gone = |pid: &String| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let end = Instant::now() + Duration::from_secs(15);
        while !pids.iter().all(gone) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("claude: kept {} for inspection", dir.keep().display());
        }
    }
}

/// What repowire makes of text typed into a pane (see `message::neutralize`).
fn neutralized(s: &str) -> String {
    s.replace('\t', "    ").replace('\x1b', "\u{241b}")
}

/// A person asks beta, twice: a `REPLY` answer, then an echo of a hostile multi-line question
/// that must arrive byte-exact and inert; then notifies alpha.
#[test]
fn claude_code_answers_asks_and_gets_notifications() {
    let Some(claude) = need_claude() else { return };
    let cc = Claude::start(&claude, json!({}), &[]);

    // 1. A question whose answer the model scripts.
    let (answer, took) = cc.ask(
        "beta",
        "What is 6*7?\nREPLY forty-two, says beta's Claude Code",
    );
    let id = cc.last_sent("user", "beta");
    eprintln!(
        "claude: ask beta (REPLY) round trip {took:.2?}; delivered → UserPromptSubmit {}",
        cc.delivery_latency("beta", &id)
    );
    assert_eq!(answer, "forty-two, says beta's Claude Code");
    cc.assert_online("beta");
    let events = cc.events_of(&id);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["sent", "delivered", "answered"], "{events:?}");
    assert_eq!(events[2].1["text"], answer);
    assert_eq!(events[2].1["from"], "user");
    assert_eq!(events[2].1["to"], "beta");
    let stop = cc.hooks("beta", "Stop");
    assert_eq!(stop.last().unwrap().1["last_assistant_message"], answer);

    // 2. Text that would be a slash command, a shell escape, a cancel or a paste end if it
    //    were typed raw comes back exactly as the model saw it.
    let question = "Echo this back:\n  \"double\" 'single' `ticks` $HOME \\back; semi\n/clear\n!touch pwned\n\
                    ünïcødé ✓ 日本\tTAB \x1b[201~ after ESC";
    let (answer, took) = cc.ask("beta", question);
    let id = cc.last_sent("user", "beta");
    eprintln!(
        "claude: ask beta (ECHO, {} bytes) round trip {took:.2?}; delivered → UserPromptSubmit {}",
        question.len(),
        cc.delivery_latency("beta", &id)
    );
    let Some((_, submitted)) = cc.prompt_of("beta", &id) else {
        cc.fail(&format!("beta's UserPromptSubmit for {id} is missing"));
    };
    let prompt = submitted["prompt"].as_str().unwrap();
    let (header, body) = prompt.split_once('\n').unwrap();
    assert!(
        header.starts_with(&format!("[repowire] Question from user (query {id})")),
        "{header}"
    );
    assert_eq!(body, neutralized(question));
    assert_eq!(answer, format!("ECHO: {prompt}"));
    assert!(
        !cc.work["beta"].join("pwned").exists(),
        "a '!' line ran a command"
    );
    assert_eq!(
        cc.hooks("beta", "SessionStart").len(),
        1,
        "a '/clear' line cleared the session"
    );
    cc.assert_online("beta");
    assert_eq!(cc.event_names(&id), ["sent", "delivered", "answered"]);

    // 3. A notification reaches alpha's conversation as its own turn.
    let note = "Heads up: the API moves to /v2 on Friday.\nNo need to answer.";
    let out = cc.rw_ok(&["peer", "notify", "alpha", note]);
    let t = Instant::now();
    let nid = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| cc.fail(&format!("unexpected notify output {out:?}")))
        .to_string();
    assert_eq!(out, format!("sent {nid} to alpha (delivered now)\n"));
    let mut last = String::new();
    let answered = cc.eventually(ASK_TIMEOUT, || {
        cc.hooks("alpha", "Stop").into_iter().any(|(_, p)| {
            last = p["last_assistant_message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            last.contains(&nid)
        })
    });
    if !answered {
        cc.fail(&format!("alpha's turn never saw notification {nid}"));
    }
    eprintln!(
        "claude: notify alpha → its Stop hook {:.2?}; delivered → UserPromptSubmit {}",
        t.elapsed(),
        cc.delivery_latency("alpha", &nid)
    );
    assert!(
        last.starts_with(&format!(
            "ECHO: [repowire] Notification from user (message {nid})"
        )),
        "{last}"
    );
    assert!(last.ends_with(&format!("\n{note}")), "{last}");
    // It is in alpha's transcript as a prompt of its own (Claude Code writes the transcript
    // a moment after the Stop hook ran).
    let transcript = PathBuf::from(cc.info["sessions"]["alpha"]["transcript"].as_str().unwrap());
    let typed = || -> Vec<String> {
        read_jsonl(&transcript)
            .into_iter()
            .filter(|l| l["type"] == "user")
            .filter_map(|l| l["message"]["content"].as_str().map(str::to_string))
            .collect()
    };
    let in_transcript = cc.eventually(Duration::from_secs(10), || {
        typed()
            .iter()
            .any(|c| c.contains(&nid) && c.ends_with(note))
    });
    if !in_transcript {
        cc.fail(&format!("not in alpha's transcript: {:?}", typed()));
    }
    let got = cc.eventually(Duration::from_secs(10), || {
        cc.event_names(&nid) == ["sent", "delivered", "received"]
    });
    assert!(got, "history of {nid}: {:?}", cc.events_of(&nid));
    cc.assert_online("alpha");
    for p in cc.peers() {
        assert_eq!(p["queued"], 0, "{p}");
    }
}

/// The agents ask each other: a person asks alpha, whose turn runs `repowire peer ask beta`
/// in its Bash tool and answers with beta's answer; then beta's turn tries to ask alpha back
/// while alpha waits on it, which is refused at once as a deadlock.
#[test]
fn claude_code_sessions_ask_each_other_and_deadlock_is_refused() {
    let Some(claude) = need_claude() else { return };
    let rw = rw_command();
    let cc = Claude::start(
        &claude,
        json!({"permissions": {"allow": [format!("Bash({rw} peer ask:*)")]}}),
        &[],
    );
    let bash = |command: String| {
        format!(
            "CALL_TOOL Bash {}",
            json!({"command": command, "description": "ask a peer"})
        )
    };

    // 1. user → alpha → beta and back.
    let question = bash(format!(
        "{rw} peer ask beta {} --timeout 60s",
        sh_quote("REPLY pong from beta")
    ));
    let (answer, took) = cc.ask("alpha", &question);
    let outer = cc.last_sent("user", "alpha");
    let inner = cc.last_sent("alpha", "beta");
    eprintln!(
        "claude: user → alpha → beta round trip {took:.2?}; delivered → UserPromptSubmit: alpha {}, beta {}",
        cc.delivery_latency("alpha", &outer),
        cc.delivery_latency("beta", &inner)
    );
    assert_eq!(answer, "TOOL_RESULT: pong from beta");
    assert_eq!(cc.event_names(&inner), ["sent", "delivered", "answered"]);
    cc.assert_online("alpha");
    cc.assert_online("beta");

    // 2. beta asks alpha back while alpha waits for beta: refused, not a hang.
    let back = bash(format!(
        "{rw} peer ask alpha {} --timeout 60s",
        sh_quote("REPLY never")
    ));
    let question = bash(format!(
        "{rw} peer ask beta {} --timeout 60s",
        sh_quote(&back)
    ));
    let (answer, took) = cc.ask("alpha", &question);
    let outer = cc.last_sent("user", "alpha");
    let inner = cc.last_sent("alpha", "beta");
    eprintln!(
        "claude: deadlock refused, round trip {took:.2?}; delivered → UserPromptSubmit: alpha {}, beta {}",
        cc.delivery_latency("alpha", &outer),
        cc.delivery_latency("beta", &inner)
    );
    let refused = format!(
        "deadlock refused: beta would wait for alpha, alpha is waiting for beta (query {inner})"
    );
    assert!(
        answer.starts_with("TOOL_RESULT: TOOL_RESULT: Exit code 6\n") && answer.contains(&refused),
        "{answer}"
    );
    assert!(
        took < Duration::from_secs(50),
        "the refusal waited: {took:?}"
    );
    assert!(
        !cc.history()
            .iter()
            .any(|e| e["from"] == "beta" && e["to"] == "alpha"),
        "beta's question to alpha was queued"
    );
    cc.assert_online("alpha");
    cc.assert_online("beta");
}
