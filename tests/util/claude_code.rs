//! The project's driver for the real Claude Code CLI: its interactive TUI in a private tmux
//! server, talking to the scripted fake model of `tests/fake_model.py` (nothing leaves
//! 127.0.0.1), in a throw-away HOME, with a hook logger beside repowire's hooks.
//!
//! What Claude Code needs to start without a question (measured with 2.0.77, 2.1.330 and
//! 2.1.332): `~/.claude.json` saying onboarding is done and each work directory is trusted,
//! `ANTHROPIC_AUTH_TOKEN` rather than an API key (no "use this key?" dialog), and
//! `--permission-mode default` (2.0.x rejects `manual`; 2.1.3xx's default is an auto mode
//! that needs the real service's classifier, and takes `default` as manual). Typing follows
//! the recipe repowire itself uses: literal keys in pieces under 200 bytes, then Enter as a
//! separate write, then a look at the prompt box.
//!
//! [`Claude`] is the fixture most tests use: two sessions, `alpha` and `beta`, in one HOME and
//! one spool, both online peers before the test goes on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    self, FakeModel, Person, Tmux, eventually, need_agent, read_jsonl, rw_command, text,
    try_run_for,
};

/// The release the whole suite runs against; the version matrix (tests/versions.rs) runs the
/// core flows against the oldest and newest releases `repowire status` names as tested.
pub const PINNED: &str = "2.1.330";
/// Claude Code start-up to registered peer; about 1–4 s here, generous for a busy 2-core box.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Whole round trips through one or more Claude Code turns.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(120);
/// The first Claude Code release whose hooks are given the session's inbox, and the release
/// before it (measured: 2.1.224 to 2.1.247 give none, though they announce `peerProtocol` 1).
pub const FIRST_WITH_AN_INBOX: &str = "2.1.248";
pub const LAST_WITHOUT_AN_INBOX: &str = "2.1.247";

/// Whether Claude Code `version` gives its hooks the session's inbox.
pub fn has_inbox(version: &str) -> bool {
    let nums = |v: &str| -> Vec<u32> { v.split('.').filter_map(|n| n.parse().ok()).collect() };
    nums(version) >= nums(FIRST_WITH_AN_INBOX)
}

/// The hook events the logger records.
const LOGGED: [&str; 5] = [
    "SessionStart",
    "UserPromptSubmit",
    "Stop",
    "Notification",
    "SessionEnd",
];

/// One installed release of Claude Code.
#[derive(Clone)]
pub struct ClaudeCode {
    pub bin: PathBuf,
    pub version: String,
}

/// Claude Code `version`, installed if need be, or `None` after `SKIPPED: <why>`.
pub fn need_claude(version: &str) -> Option<ClaudeCode> {
    let bin = need_agent("claude", version)?;
    Some(ClaudeCode {
        bin,
        version: version.to_string(),
    })
}

/// Group `command` as one entry of a hook event in Claude Code's settings.
fn hook_group(command: String) -> Value {
    json!([{"hooks": [{"type": "command", "command": command}]}])
}

/// repowire's four hooks, as `repowire setup` writes them.
pub fn repowire_hooks() -> Value {
    let rw = rw_command();
    let hook = |event: &str| hook_group(format!("{rw} hook {event}"));
    json!({
        "SessionStart": hook("session-start"),
        "UserPromptSubmit": hook("prompt"),
        "Stop": hook("stop"),
        "SessionEnd": hook("session-end"),
    })
}

/// repowire's MCP server, as an entry of `mcpServers`.
pub fn repowire_mcp() -> Value {
    json!({"type": "stdio", "command": util::bin(), "args": ["mcp"], "env": {}})
}

/// A HOME for Claude Code sessions. Its hook log records, for every session, each call of the
/// events in [`LOGGED`] as `{"ts", "name", "payload"}` (`name` is the session's name).
pub struct Home {
    pub dir: PathBuf,
    pub hook_log: PathBuf,
}

impl Home {
    /// Writes `dir/.claude.json` (onboarding done, `workdirs` trusted, `mcp` as its
    /// `mcpServers`) and `dir/.claude/settings.json`: the hook logger first, then `settings`
    /// (its `hooks` added event by event after the logger's, its other keys as they are).
    pub fn new(dir: &Path, version: &str, workdirs: &[&Path], mcp: Value, settings: Value) -> Home {
        std::fs::create_dir_all(dir.join(".claude")).unwrap();
        let projects: serde_json::Map<String, Value> = workdirs
            .iter()
            .map(|w| {
                (
                    w.display().to_string(),
                    json!({"hasTrustDialogAccepted": true}),
                )
            })
            .collect();
        let state = json!({
            "hasCompletedOnboarding": true,
            "lastOnboardingVersion": version,
            "projects": projects,
            "mcpServers": mcp,
        });
        std::fs::write(dir.join(".claude.json"), state.to_string()).unwrap();

        let hook_log = dir.join("hooks.jsonl");
        // One line per call, under a lock: the payload is one line of JSON (newlines inside
        // JSON strings are escaped, so dropping raw ones loses nothing).
        let logger = format!(
            "sh -c 'exec >>\"$0\"; flock 1; printf \"{{\\\"ts\\\":%s,\\\"name\\\":\\\"%s\\\",\\\"payload\\\":\" \"$(date +%s.%N)\" \"$RW_TEST_SESSION\"; tr -d \"\\n\"; echo \"}}\"' {}",
            util::sh_quote(&hook_log.display().to_string())
        );
        let mut hooks = serde_json::Map::new();
        for event in LOGGED {
            hooks.insert(event.into(), hook_group(logger.clone()));
        }
        let mut all = json!({});
        for (key, value) in settings.as_object().cloned().unwrap_or_default() {
            match (key.as_str(), value) {
                ("hooks", Value::Object(extra)) => {
                    for (event, groups) in extra {
                        let list = hooks.entry(event).or_insert_with(|| json!([]));
                        let list = list.as_array_mut().unwrap();
                        list.extend(groups.as_array().cloned().unwrap_or_default());
                    }
                }
                (_, value) => {
                    all[key] = value;
                }
            }
        }
        all["hooks"] = Value::Object(hooks);
        std::fs::write(dir.join(".claude/settings.json"), all.to_string()).unwrap();
        Home {
            dir: dir.to_path_buf(),
            hook_log,
        }
    }

    /// Hook calls logged for session `name` and `event`: (unix time, payload).
    pub fn hooks(&self, name: &str, event: &str) -> Vec<(f64, Value)> {
        read_jsonl(&self.hook_log)
            .into_iter()
            .filter(|e| e["name"] == name && e["payload"]["hook_event_name"] == event)
            .map(|e| (e["ts"].as_f64().unwrap_or(0.0), e["payload"].clone()))
            .collect()
    }

    /// Every hook call logged, one line each, for a diagnosis.
    pub fn hook_lines(&self) -> String {
        let mut d = String::new();
        for e in read_jsonl(&self.hook_log) {
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
        d
    }
}

/// One interactive Claude Code session in a tmux session of the same name.
#[derive(Clone)]
pub struct Session {
    pub name: String,
    pub work: PathBuf,
    pub session_id: String,
    pub transcript: PathBuf,
    /// Start to prompt box on screen.
    pub ready: Duration,
}

impl ClaudeCode {
    /// Starts a session `name` in `work` on `tmux`, in `home`, talking to `model`, with only
    /// these variables (and `env`, `NAME=VALUE`) in its environment, and waits until its
    /// prompt box shows. Its hooks see `REPOWIRE_HOME=spool`.
    pub fn launch(
        &self,
        tmux: &Tmux,
        home: &Home,
        model: &FakeModel,
        spool: &Path,
        (name, work): (&str, &Path),
        env: &[String],
    ) -> Session {
        let session_id = new_uuid();
        let mut argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            // Nothing of the test's own environment but what is named here; tmux's own
            // variables tell the hooks their pane.
            r#"exec env -i TMUX="$TMUX" TMUX_PANE="$TMUX_PANE" "$@""#.into(),
            "sh".into(),
            format!("HOME={}", home.dir.display()),
            format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            "SHELL=/bin/bash".into(),
            "LANG=C.UTF-8".into(),
            "TERM=xterm-256color".into(),
            format!("ANTHROPIC_BASE_URL={}", model.url()),
            "ANTHROPIC_AUTH_TOKEN=fake".into(),
            // (Claude Code's documentation says the first and the last turn its cross-session
            // messaging off; 2.1.248 to 2.1.332 give their hooks the inbox all the same.)
            "DISABLE_TELEMETRY=1".into(),
            "DISABLE_AUTOUPDATER=1".into(),
            "DISABLE_ERROR_REPORTING=1".into(),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1".into(),
            format!("REPOWIRE_HOME={}", spool.display()),
            format!("RW_TEST_SESSION={name}"),
        ];
        argv.extend(env.iter().cloned());
        argv.extend([
            self.bin.display().to_string(),
            "--session-id".into(),
            session_id.clone(),
            "--permission-mode".into(),
            "default".into(),
        ]);
        let t = Instant::now();
        tmux.new_session(name, work, &argv);
        if !eventually(START_TIMEOUT, || {
            prompt_box(&tmux.screen(name, false)).is_some()
        }) {
            panic!(
                "Claude Code {} in {name} shows no prompt box:\n{}",
                self.version,
                tmux.screen_tail(name, 30)
            );
        }
        Session {
            name: name.into(),
            work: work.into(),
            transcript: project_dir(&home.dir, work).join(format!("{session_id}.jsonl")),
            session_id,
            ready: t.elapsed(),
        }
    }
}

/// A random (version 4) UUID, for `--session-id`.
fn new_uuid() -> String {
    let mut b = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The text in Claude Code's prompt box (the lines between the last two rules of `─`, the
/// first starting with `❯`), or `None` when none is on screen (a dialog is open instead).
pub fn prompt_box(screen: &str) -> Option<String> {
    let lines: Vec<&str> = screen.trim_end().lines().collect();
    let rules: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim_start().starts_with("──────────"))
        .collect();
    let [.., a, b] = rules[..] else { return None };
    let body = lines[a + 1..b].join("\n");
    Some(body.strip_prefix('❯')?.trim().to_string())
}

/// Types `typed` into session `name`'s prompt box and submits it, as a person would; waits
/// until the box is empty again (pressing Enter again, at most twice, if it is not).
pub fn send(tmux: &Tmux, name: &str, typed: &str) {
    let screen = tmux.screen(name, false);
    assert!(
        prompt_box(&screen).is_some_and(|b| b.is_empty()),
        "{name}'s prompt box is not empty and ready:\n{screen}"
    );
    tmux.type_text(name, typed);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        tmux.keys(name, &["Enter"]);
        if eventually(Duration::from_secs(3), || {
            prompt_box(&tmux.screen(name, false)).is_some_and(|b| b.is_empty())
        }) {
            return;
        }
    }
    panic!(
        "{name} did not take the text:\n{}",
        tmux.screen_tail(name, 30)
    );
}

/// Two Claude Code sessions, `alpha` and `beta`, each in a directory of that name, in one HOME,
/// sharing a spool. Dropping it stops them (also when the test fails; the directory is then
/// kept and what the sessions showed is printed).
pub struct Claude {
    dir: Option<tempfile::TempDir>,
    pub claude: ClaudeCode,
    pub root: PathBuf,
    /// repowire on the sessions' spool, as a person at a terminal.
    pub person: Person,
    pub spool: PathBuf,
    pub home: Home,
    pub tmux: Tmux,
    pub model: FakeModel,
    pub sessions: Vec<Session>,
    /// More `NAME=VALUE` for the sessions' environment (set between `prepare` and `launch`).
    pub env: Vec<String>,
    /// Dropped last, after the teardown.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

pub const NAMES: [&str; 2] = ["alpha", "beta"];

impl Claude {
    /// Starts the sessions with repowire's hooks, `settings` merged into their settings (see
    /// [`Home::new`]) and `mcp` as their MCP servers, and waits until both are online peers.
    pub fn start(claude: &ClaudeCode, settings: Value, mcp: Value) -> Claude {
        let mut all = json!({"hooks": repowire_hooks()});
        if let (Some(a), Some(extra)) = (all.as_object_mut(), settings.as_object()) {
            a.extend(extra.clone());
        }
        let mut cc = Claude::prepare(claude, all, mcp);
        cc.launch();
        cc
    }

    /// The HOME (with `settings` and `mcp` as they are), the fake model and the directories,
    /// without starting the sessions: for a test that changes the HOME first.
    pub fn prepare(claude: &ClaudeCode, settings: Value, mcp: Value) -> Claude {
        let guard = util::one_at_a_time();
        let dir = tempfile::Builder::new().prefix("rwcc").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for name in NAMES {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        let works: Vec<PathBuf> = NAMES.iter().map(|n| root.join(n)).collect();
        let works: Vec<&Path> = works.iter().map(PathBuf::as_path).collect();
        Claude {
            home: Home::new(&root.join("home"), &claude.version, &works, mcp, settings),
            model: FakeModel::start(&root),
            tmux: Tmux {
                socket: root.join("tmux.sock"),
            },
            spool: root.join("spool"),
            person: Person::new(&root.join("spool"), ASK_TIMEOUT),
            claude: claude.clone(),
            sessions: Vec::new(),
            env: Vec::new(),
            dir: Some(dir),
            root,
            _one_at_a_time: guard,
        }
    }

    /// Starts both sessions and waits until both are online peers.
    pub fn launch(&mut self) {
        let t = Instant::now();
        for name in NAMES {
            let session = self.claude.launch(
                &self.tmux,
                &self.home,
                &self.model,
                &self.spool,
                (name, &self.root.join(name)),
                &self.env,
            );
            self.sessions.push(session);
        }
        let up = t.elapsed();
        if !eventually(START_TIMEOUT, || {
            let peers = self.peers();
            NAMES.iter().all(|n| {
                peers
                    .iter()
                    .any(|p| p["name"] == *n && p["status"] == "online")
            })
        }) {
            panic!("alpha and beta did not both become online peers");
        }
        eprintln!(
            "claude {}: both prompt boxes on screen after {up:.2?} (alpha {:.2?}, beta {:.2?}), both online peers after {:.2?}",
            self.claude.version,
            self.sessions[0].ready,
            self.sessions[1].ready,
            t.elapsed()
        );
        for s in &self.sessions {
            let p = self.peer(&s.name);
            assert_eq!(p["agent"], "claude");
            assert_eq!(p["session_id"], s.session_id.as_str(), "{}: {p}", s.name);
            assert_eq!(Path::new(p["path"].as_str().unwrap()), s.work.as_path());
            assert_eq!(p["queued"], 0);
            // Its SessionStart hook found the agent's process, which tells when it exits.
            let record: Value = serde_json::from_slice(
                &std::fs::read(self.spool.join(format!("peers/{}.json", s.name))).unwrap(),
            )
            .unwrap();
            let pid = &record["agent_process"]["pid"];
            assert!(
                pid.as_u64().is_some_and(|p| util::procs::alive(p as u32)),
                "{}: no live agent process recorded: {record}",
                s.name
            );
        }
    }

    pub fn session(&self, name: &str) -> &Session {
        self.sessions.iter().find(|s| s.name == name).unwrap()
    }

    /// Types `typed` into session `name`, waits for the turn it starts to end, and returns
    /// the turn's reply as its transcript records it (2.0.x's Stop payload has no
    /// `last_assistant_message`; every release writes the transcript).
    pub fn turn(&self, name: &str, typed: &str) -> String {
        let before = self.replies(name).len();
        let t0 = util::unix_now();
        send(&self.tmux, name, typed);
        let ended = eventually(ASK_TIMEOUT, || {
            self.hooks(name, "Stop").iter().any(|(ts, _)| *ts > t0)
        });
        assert!(ended, "{name}'s turn for {typed:?} did not end");
        // Claude Code writes the transcript around its Stop hook.
        let mut replies = Vec::new();
        eventually(Duration::from_secs(10), || {
            replies = self.replies(name);
            replies.len() > before
        });
        replies
            .pop()
            .filter(|_| replies.len() >= before)
            .unwrap_or_else(|| panic!("{name}'s turn for {typed:?} left no reply"))
    }

    /// The text replies in `name`'s transcript, oldest first.
    pub fn replies(&self, name: &str) -> Vec<String> {
        read_jsonl(&self.session(name).transcript)
            .into_iter()
            .filter(|l| l["type"] == "assistant")
            .flat_map(|l| {
                let blocks = l["message"]["content"].as_array().cloned();
                blocks.unwrap_or_default().into_iter().filter_map(|b| {
                    (b["type"] == "text").then(|| b["text"].as_str().unwrap_or("").to_string())
                })
            })
            .collect()
    }

    pub fn hooks(&self, name: &str, event: &str) -> Vec<(f64, Value)> {
        self.home.hooks(name, event)
    }

    /// The UserPromptSubmit payload whose prompt carries message `id`.
    pub fn prompt_of(&self, name: &str, id: &str) -> Option<(f64, Value)> {
        self.hooks(name, "UserPromptSubmit")
            .into_iter()
            .find(|(_, p)| p["prompt"].as_str().is_some_and(|s| s.contains(id)))
    }

    /// How long after repowire logged `delivered` the agent's UserPromptSubmit hook ran
    /// (typing, the pause before Enter, Enter retries), as text.
    pub fn delivery_latency(&self, name: &str, id: &str) -> String {
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

    /// The prompts typed into `name`'s conversation, as its transcript records them.
    pub fn typed_prompts(&self, name: &str) -> Vec<String> {
        read_jsonl(&self.session(name).transcript)
            .into_iter()
            .filter(|l| l["type"] == "user")
            .filter_map(|l| l["message"]["content"].as_str().map(str::to_string))
            .collect()
    }

    /// What the sessions show, their hook calls, the peers and the history. Never panics.
    fn diagnosis(&self) -> String {
        let mut d = format!(
            "--- Claude Code {} in {}\n",
            self.claude.version,
            self.root.display()
        );
        for name in NAMES {
            d += &format!(
                "--- {name}'s screen:\n{}\n",
                self.tmux.screen_tail(name, 25)
            );
        }
        d += "--- hooks:\n";
        d += &self.home.hook_lines();
        for args in [&["peer", "list"][..], &["log"][..]] {
            let mut c = Command::new(util::bin());
            c.args(args).env("REPOWIRE_HOME", &self.spool);
            let out = try_run_for(c, Duration::from_secs(30))
                .map(|o| text(&o.stdout) + &text(&o.stderr))
                .unwrap_or_else(|e| e);
            d += &format!("--- repowire {}:\n{out}", args.join(" "));
        }
        d
    }
}

impl std::ops::Deref for Claude {
    type Target = Person;
    fn deref(&self) -> &Person {
        &self.person
    }
}

impl Drop for Claude {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnosis());
        }
        self.tmux.shut_down(Duration::from_secs(15));
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("claude: kept {} for inspection", dir.keep().display());
        }
    }
}

#[test]
fn prompt_box_reads_the_box_between_the_last_two_rules() {
    let rule = "─".repeat(40);
    let screen = format!("welcome\n{rule}\nold\n{rule}\n❯ draft text\n{rule}\n  ? for shortcuts\n");
    assert_eq!(prompt_box(&screen).as_deref(), Some("draft text"));
    let empty = format!("{rule}\n❯ \n{rule}\n");
    assert_eq!(prompt_box(&empty).as_deref(), Some(""));
    let dialog = format!("{rule}\n Do you want to proceed?\n ❯ 1. Yes\n{rule}\n");
    assert_eq!(prompt_box(&dialog), None);
    assert_eq!(prompt_box("no rules at all"), None);
}

/// Where Claude Code, with its home in `home`, keeps the sessions of work directory `work`:
/// the path with every character but letters and digits made `-`.
pub fn project_dir(home: &Path, work: &Path) -> PathBuf {
    let project: String = work
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    home.join(".claude/projects").join(project)
}
