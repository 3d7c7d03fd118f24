//! End to end against the real Codex CLI (0.169.0) and Gemini CLI (0.61.0), next to a real
//! Claude Code session, all three in one private tmux server, talking to fake model APIs on
//! 127.0.0.1: `tests/fake_model.py` (ours: OpenAI Responses for Codex, Gemini's API for Gemini
//! CLI) and `../shared/claude-code`'s fake Anthropic API. The fakes follow the script in the
//! last prompt (`REPLY <text>`, `CALL_TOOL <name> <json>`, `SLEEP <s>`, else `ECHO: <prompt>`),
//! so every answer below is exactly what the agent's turn made of what repowire typed.
//!
//! The CLIs are installed from the npm registry by `.ci/install-agents` into
//! `<target>/agents` when missing (`$CODEX_BIN` / `$GEMINI_BIN` override). A test prints
//! `SKIPPED: <reason>` only when it cannot run here: no tmux, python3 or npm, or npm install
//! failed; on CI all of that is there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::claude::{self, need_claude, rw_command};
use crate::util::{self, run_for, target_dir, text, try_run_for};

const CODEX_VERSION: &str = "0.169.0";
const GEMINI_VERSION: &str = "0.61.0";
/// Start-up of all three to registered peers; a few seconds here, generous for a busy box.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// One round trip through one or two agent turns.
const ASK_TIMEOUT: Duration = Duration::from_secs(120);

/// The Codex and Gemini CLIs, installed if need be, or why the test cannot run.
fn agent_bins() -> Result<(PathBuf, PathBuf), String> {
    static BINS: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    BINS.get_or_init(|| {
        let given = |var: &str| {
            std::env::var_os(var)
                .filter(|b| !b.is_empty())
                .map(PathBuf::from)
        };
        if let (Some(c), Some(g)) = (given("CODEX_BIN"), given("GEMINI_BIN")) {
            return Ok((c, g));
        }
        let dir = target_dir().join("agents");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-agents");
        let mut cmd = Command::new("sh");
        cmd.arg(&script)
            .arg(&dir)
            .env("CODEX_VERSION", CODEX_VERSION)
            .env("GEMINI_VERSION", GEMINI_VERSION);
        let t = Instant::now();
        let out = run_for(cmd, Duration::from_secs(900));
        let log = format!("{}: {}", script.display(), text(&out.stderr).trim());
        match out.status.code() {
            Some(0) => {
                let paths: Vec<PathBuf> = text(&out.stdout).lines().map(PathBuf::from).collect();
                assert_eq!(paths.len(), 2, "{log}");
                if t.elapsed() > Duration::from_secs(2) {
                    eprintln!("installed Codex and Gemini CLI in {:.1?}", t.elapsed());
                }
                Ok((paths[0].clone(), paths[1].clone()))
            }
            Some(2) => Err(format!("npm or node is missing ({log})")),
            Some(3) => Err(format!("npm install failed ({log})")),
            _ => panic!("installing the Codex and Gemini CLIs failed: {log}"),
        }
    })
    .clone()
}

/// The three agents' binaries (Claude Code, Codex, Gemini CLI), or `None` after printing
/// `SKIPPED: <why>`.
fn need_agents() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let claude = need_claude()?; // also checks tmux and python3
    match agent_bins() {
        Ok((codex, gemini)) => Some((claude, codex, gemini)),
        Err(why) => {
            crate::util::skipped(&why);
            None
        }
    }
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

/// A Claude Code, a Codex and a Gemini CLI session, in directories `claude`, `codex` and
/// `gemini` (so those are their peer names), in one tmux server, sharing a spool. Dropping it
/// stops everything it started (the directory is kept when the test failed).
struct Team {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    spool: PathBuf,
    /// The tmux server: `tmux -L <socket>` (the Claude Code harness names servers this way).
    socket: String,
    fake: Option<Child>,
    cc_state: PathBuf,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Team {
    fn start(claude: &Path, codex: &Path, gemini: &Path) -> Team {
        let guard = claude::one_at_a_time();
        let dir = tempfile::Builder::new().prefix("rwag").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let socket = format!(
            "rwag-{}",
            root.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("rwag")
        );
        let mut team = Team {
            dir: Some(dir),
            spool: root.join("spool"),
            cc_state: root.join("cc"),
            socket,
            fake: None,
            root,
            _one_at_a_time: guard,
        };
        for name in ["claude", "codex", "gemini"] {
            std::fs::create_dir_all(team.root.join(name)).unwrap();
        }
        let port = team.start_fake();
        team.write_codex_home(port);
        team.write_gemini_home();
        let t = Instant::now();
        team.start_claude(claude);
        let spool = team.spool.display().to_string();
        let codex_home = team.root.join("cx");
        team.new_session(
            "codex",
            &[
                "env".into(),
                format!("HOME={}", codex_home.display()),
                format!("CODEX_HOME={}", codex_home.join(".codex").display()),
                format!("REPOWIRE_HOME={spool}"),
                "FAKE_API_KEY=fake".into(),
                codex.display().to_string(),
                // Stands in for the user approving repowire's hooks in Codex's review dialog
                // (setup never writes Codex's trust records).
                "--dangerously-bypass-hook-trust".into(),
            ],
        );
        // Gemini CLI will not start interactively where `CI`, `CONTINUOUS_INTEGRATION` or a
        // `CI_*` variable is set (its is-in-ci check), as on a CI machine; a person's terminal
        // has none of them.
        let mut gemini_argv: Vec<String> = vec!["env".into()];
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k == "CI" || k == "CONTINUOUS_INTEGRATION" || k.starts_with("CI_") {
                gemini_argv.extend(["-u".into(), k.into_owned()]);
            }
        }
        gemini_argv.extend([
            format!("HOME={}", team.root.join("gm").display()),
            format!("REPOWIRE_HOME={spool}"),
            "GEMINI_API_KEY=fake".into(),
            format!("GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:{port}"),
            gemini.display().to_string(),
            "--approval-mode=yolo".into(),
        ]);
        team.new_session("gemini", &gemini_argv);
        let online = team.eventually(START_TIMEOUT, || {
            let peers = team.peers();
            ["claude", "codex", "gemini"].iter().all(|n| {
                peers
                    .iter()
                    .any(|p| p["name"] == *n && p["status"] == "online")
            })
        });
        if !online {
            panic!("the three sessions did not all become online peers");
        }
        eprintln!("agents: all three online peers after {:.2?}", t.elapsed());
        team
    }

    fn start_fake(&mut self) -> u16 {
        let port_file = self.root.join("fake.port");
        let log = std::fs::File::create(self.root.join("fake.stderr")).unwrap();
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_model.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(self.root.join("api.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.fake = Some(child);
        let mut port = None;
        self.eventually(Duration::from_secs(20), || {
            port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.parse().ok());
            port.is_some()
        });
        port.expect("the fake model API did not start")
    }

    /// `repowire setup --agent AGENT` with `HOME` (and `CODEX_HOME`) of that agent's session.
    fn setup(&self, agent: &str, home: &Path) {
        let mut c = Command::new(util::bin());
        c.args(["setup", "--agent", agent])
            .env("HOME", home)
            .env("CODEX_HOME", home.join(".codex"))
            .env("REPOWIRE_HOME", &self.spool)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        let out = run_for(c, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "setup --agent {agent}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// Codex's home: a config pointing it at the fake API and skipping its first-run
    /// questions, then `repowire setup --agent codex`.
    fn write_codex_home(&self, port: u16) {
        let dir = self.root.join("cx/.codex");
        std::fs::create_dir_all(&dir).unwrap();
        let work = self.root.join("codex");
        let config = format!(
            r#"model = "fake-model"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.fake]
name = "Fake"
base_url = "http://127.0.0.1:{port}/v1"
env_key = "FAKE_API_KEY"
wire_api = "responses"

[projects."{work}"]
trust_level = "trusted"

[tui]
screen_reader_detection_done = true
"#,
            work = work.display(),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        self.setup("codex", &self.root.join("cx"));
    }

    /// Gemini CLI's home: settings for the fake API, then `repowire setup --agent gemini`.
    fn write_gemini_home(&self) {
        let dir = self.root.join("gm/.gemini");
        std::fs::create_dir_all(&dir).unwrap();
        let settings = json!({
            "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": false}},
            "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
            "privacy": {"usageStatisticsEnabled": false},
            "telemetry": {"enabled": false},
            "ui": {"hideTips": true},
            "model": {"name": "gemini-2.5-flash"},
        });
        std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
        self.setup("gemini", &self.root.join("gm"));
    }

    /// Claude Code through the shared harness, on this team's tmux server (the harness takes
    /// the server's name from its state file).
    fn start_claude(&self, claude: &Path) {
        std::fs::create_dir_all(&self.cc_state).unwrap();
        std::fs::write(
            self.cc_state.join("state.json"),
            json!({"socket": self.socket}).to_string(),
        )
        .unwrap();
        let rw = rw_command();
        let hook = |event: &str| json!([{"hooks": [{"type": "command", "command": format!("{rw} hook {event}")}]}]);
        let settings = json!({
            "hooks": {
                "SessionStart": hook("session-start"),
                "UserPromptSubmit": hook("prompt"),
                "Stop": hook("stop"),
                "SessionEnd": hook("session-end"),
            },
            "permissions": {"allow": [format!("Bash({rw} peer ask:*)")]},
        });
        let settings_file = self.root.join("claude-settings.json");
        std::fs::write(&settings_file, settings.to_string()).unwrap();
        let mut up = self.harness("up");
        up.arg("--claude")
            .arg(claude)
            .arg("--settings")
            .arg(&settings_file)
            .arg("--env")
            .arg(format!("REPOWIRE_HOME={}", self.spool.display()))
            .arg("--mcp")
            .arg(format!("repowire={rw} mcp"))
            .arg("--timeout")
            .arg(START_TIMEOUT.as_secs().to_string())
            .arg("--session")
            .arg(format!("claude={}", self.root.join("claude").display()));
        let out = run_for(up, START_TIMEOUT + Duration::from_secs(30));
        assert!(
            out.status.success(),
            "cc_harness.py up failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    fn harness(&self, sub: &str) -> Command {
        let mut c = Command::new("python3");
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/claude-code/cc_harness.py"))
            .arg(sub)
            .arg("--state")
            .arg(&self.cc_state)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        c
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts `argv` in a new tmux session `name`, working in the directory `name`.
    fn new_session(&self, name: &str, argv: &[String]) {
        let work = self.root.join(name).display().to_string();
        let mut args = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "160",
            "-y",
            "45",
            "-c",
            &work,
        ];
        args.extend(argv.iter().map(String::as_str));
        let out = self.tmux(&args);
        assert!(out.status.success(), "tmux: {}", text(&out.stderr));
    }

    /// `repowire ARGS` as a person at a terminal, on this spool.
    fn rw(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(util::bin());
        c.args(args)
            .env("REPOWIRE_HOME", &self.spool)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        run_for(c, ASK_TIMEOUT + Duration::from_secs(30))
    }

    fn rw_ok(&self, args: &[&str]) -> String {
        let out = self.rw(args);
        assert!(
            out.status.success(),
            "repowire {args:?} failed ({}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `peer ask NAME TEXT` by a person: the answer.
    fn ask(&self, name: &str, question: &str) -> String {
        let timeout = format!("{}s", ASK_TIMEOUT.as_secs());
        let out = self.rw_ok(&["peer", "ask", name, question, "--timeout", &timeout]);
        out.strip_suffix('\n').unwrap_or(&out).to_string()
    }

    fn peers(&self) -> Vec<Value> {
        serde_json::from_slice(&self.rw(&["peer", "list", "--json"]).stdout).unwrap_or_default()
    }

    fn history(&self) -> Vec<Value> {
        self.rw_ok(&["log", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The id of the last `sent` entry from `from` to `to`.
    fn last_sent(&self, from: &str, to: &str) -> String {
        self.history()
            .iter()
            .rev()
            .find(|e| e["event"] == "sent" && e["from"] == from && e["to"] == to)
            .and_then(|e| e["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no message from {from} to {to} in the log"))
    }

    fn event_names(&self, id: &str) -> Vec<String> {
        self.history()
            .into_iter()
            .filter(|e| e["id"] == id)
            .map(|e| e["event"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn eventually(&self, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        f()
    }

    fn assert_online(&self, name: &str) {
        let online = self.eventually(Duration::from_secs(20), || {
            self.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "online")
        });
        assert!(online, "{name} is not online again");
    }

    /// Pastes `text` into session `name`'s prompt box, as a person would, without Enter.
    fn paste(&self, name: &str, typed: &str) {
        let buffer = format!("test-{name}");
        let mut load = Command::new("tmux");
        load.args(["-L", &self.socket, "load-buffer", "-b", &buffer, "-"])
            .stdin(Stdio::piped());
        let mut child = load.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), typed.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        let target = format!("={name}:");
        let out = self.tmux(&["paste-buffer", "-p", "-d", "-b", &buffer, "-t", &target]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// Presses keys in session `name` (e.g. Escape).
    fn key(&self, name: &str, key: &str) {
        let out = self.tmux(&["send-keys", "-t", &format!("={name}:"), key]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// What the sessions show, the peers and the history. Never panics.
    fn diagnosis(&self) -> String {
        let mut d = format!("--- state: {}\n", self.root.display());
        for name in ["claude", "codex", "gemini"] {
            let out = self.tmux(&["capture-pane", "-p", "-t", &format!("={name}:")]);
            let screen = text(&out.stdout);
            let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
            d += &format!(
                "--- {name}'s screen:\n{}\n",
                lines[lines.len().saturating_sub(25)..].join("\n")
            );
        }
        for args in [&["peer", "list"][..], &["log"][..]] {
            let mut c = Command::new(util::bin());
            c.args(args).env("REPOWIRE_HOME", &self.spool);
            d += &format!(
                "--- repowire {}:\n{}",
                args.join(" "),
                try_run_for(c, Duration::from_secs(30))
                    .map(|o| text(&o.stdout) + &text(&o.stderr))
                    .unwrap_or_else(|e| e)
            );
        }
        d
    }
}

/// Every process under `roots` (by parent id), roots included.
fn process_trees(roots: &[u32]) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let ppid = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            });
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut out: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == p)
                .map(|(c, _)| *c)
                .filter(|c| !out.contains(c))
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    out
}

impl Drop for Team {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnosis());
        }
        // Gemini CLI outlives its pane (it ignores the hangup), so every process of the panes
        // is ended by its id after the server is gone.
        let panes: Vec<u32> = text(&self.tmux(&["list-panes", "-a", "-F", "#{pane_pid}"]).stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let procs = process_trees(&panes);
        let down = try_run_for(self.harness("down"), Duration::from_secs(60));
        if !down.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("agents: cc_harness.py down failed: {down:?}");
            let _ = self.tmux(&["kill-server"]);
        }
        for pid in &procs {
            terminate(*pid);
        }
        // Their SessionEnd hooks write to the spool here: wait for them before it goes.
        let gone = |pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let end = Instant::now() + Duration::from_secs(20);
        while !process_trees(&procs).iter().all(gone) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(mut fake) = self.fake.take() {
            let _ = fake.kill();
            let _ = fake.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("agents: kept {} for inspection", dir.keep().display());
        }
    }
}

/// SIGTERM to `pid` if it still runs (an error for a gone process is fine).
fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// What repowire makes of text typed into a pane (see `message::neutralize`).
fn neutralized(s: &str) -> String {
    s.replace('\t', "    ").replace('\x1b', "\u{241b}")
}

/// The three sessions, each asked from the command line, each asking another through the MCP
/// tool and through `repowire peer ask` in its own shell tool, each getting a notification;
/// then a Codex and a Gemini turn cut short with Esc are reported as interrupted, a person's
/// draft holds a question back until its own turn is over, and `/quit` takes them offline.
#[test]
fn claude_codex_and_gemini_ask_each_other() {
    let Some((claude, codex, gemini)) = need_agents() else {
        return;
    };
    let team = Team::start(&claude, &codex, &gemini);
    let peers = team.peers();
    for name in ["claude", "codex", "gemini"] {
        let p = peers.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(p["agent"], name, "{p}");
    }
    let listing = team.rw_ok(&["peer", "list"]);
    assert!(listing.contains("AGENT"), "{listing}");

    // 1. A person asks each, from the command line.
    for name in ["codex", "gemini", "claude"] {
        let t = Instant::now();
        let answer = team.ask(name, &format!("What is 6*7?\nREPLY forty-two, says {name}"));
        eprintln!("agents: user asks {name}: {:.2?}", t.elapsed());
        assert_eq!(answer, format!("forty-two, says {name}"));
        let id = team.last_sent("user", name);
        assert_eq!(team.event_names(&id), ["sent", "delivered", "answered"]);
        team.assert_online(name);
    }

    // 2. Hostile text reaches Codex and Gemini inert and whole.
    let question = "Echo this back:\n  \"double\" 'single' `ticks` $HOME \\back; semi\n/clear\n!touch pwned\n\
                    ünïcødé ✓ 日本\tTAB \x1b[201~ after ESC";
    for name in ["codex", "gemini"] {
        let answer = team.ask(name, question);
        let id = team.last_sent("user", name);
        let header = format!("ECHO: [repowire] Question from user (query {id})");
        assert!(answer.starts_with(&header), "{answer}");
        assert!(
            answer.ends_with(&format!("\n{}", neutralized(question))),
            "{name} saw something else: {answer:?}"
        );
        assert!(
            !team.root.join(name).join("pwned").exists(),
            "a '!' line ran a command in {name}"
        );
        team.assert_online(name);
    }

    // 3. Through the MCP tool, round the ring: claude → codex → gemini → claude.
    for (asker, tool, target) in [
        ("claude", "mcp__repowire__ask_peer", "codex"),
        ("codex", "mcp__repowire__ask_peer", "gemini"),
        ("gemini", "mcp_repowire_ask_peer", "claude"),
    ] {
        let reply = format!("{target} answers {asker} through MCP");
        let args = json!({"peer_name": target, "query": format!("REPLY {reply}")});
        let t = Instant::now();
        let answer = team.ask(asker, &format!("CALL_TOOL {tool} {args}"));
        eprintln!(
            "agents: {asker} asks {target} through MCP: {:.2?}",
            t.elapsed()
        );
        assert!(
            answer.starts_with("TOOL_RESULT: ") && answer.contains(&reply),
            "{asker}: {answer}"
        );
        let inner = team.last_sent(asker, target);
        assert_eq!(team.event_names(&inner), ["sent", "delivered", "answered"]);
        team.assert_online(asker);
        team.assert_online(target);
    }

    // 4. Through `repowire peer ask` run by each agent's own shell tool.
    let rw = rw_command();
    for (asker, target) in [
        ("codex", "claude"),
        ("gemini", "codex"),
        ("claude", "gemini"),
    ] {
        let reply = format!("{target} answers {asker}'s shell");
        let command = format!(
            "{rw} peer ask {target} {} --timeout 90s",
            sh_quote(&format!("REPLY {reply}"))
        );
        let call = match asker {
            "codex" => format!("CALL_TOOL exec_command {}", json!({"cmd": command})),
            "gemini" => format!(
                "CALL_TOOL run_shell_command {}",
                json!({"command": command})
            ),
            _ => format!(
                "CALL_TOOL Bash {}",
                json!({"command": command, "description": "ask a peer"})
            ),
        };
        let t = Instant::now();
        let answer = team.ask(asker, &call);
        eprintln!(
            "agents: {asker} runs `peer ask {target}`: {:.2?}",
            t.elapsed()
        );
        assert!(
            answer.starts_with("TOOL_RESULT: ") && answer.contains(&reply),
            "{asker}: {answer}"
        );
        let inner = team.last_sent(asker, target);
        assert_eq!(team.event_names(&inner), ["sent", "delivered", "answered"]);
        team.assert_online(asker);
    }

    // 5. A notification reaches each, as a turn of its own.
    for name in ["claude", "codex", "gemini"] {
        let note = format!("Heads up, {name}: the API moves to /v2 on Friday.");
        let out = team.rw_ok(&["peer", "notify", name, &note]);
        let id = out.split_whitespace().nth(1).unwrap().to_string();
        let received = team.eventually(ASK_TIMEOUT, || {
            team.event_names(&id) == ["sent", "delivered", "received"]
        });
        assert!(received, "{name}: {:?}", team.event_names(&id));
        team.assert_online(name);
    }
    // Codex's and Gemini's model saw them (Claude Code's is checked in tests/claude.rs).
    let api = std::fs::read_to_string(team.root.join("api.jsonl")).unwrap();
    for name in ["codex", "gemini"] {
        assert!(
            api.contains(&format!("Heads up, {name}: the API moves")),
            "{name}'s notification never reached its model"
        );
    }

    // 6. A turn cut short with Esc is no answer: the asker hears it was interrupted.
    for name in ["codex", "gemini"] {
        let mut c = Command::new(util::bin());
        c.args([
            "peer",
            "ask",
            name,
            "SLEEP 30\nREPLY too late",
            "--timeout",
            "100s",
        ])
        .env("REPOWIRE_HOME", &team.spool)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let asker = c.spawn().unwrap();
        let busy = team.eventually(ASK_TIMEOUT, || {
            team.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "busy")
        });
        assert!(busy, "{name} never got busy");
        std::thread::sleep(Duration::from_millis(500));
        team.key(name, "Escape");
        let out = asker.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{name}: {err}");
        assert!(err.contains("interrupted"), "{name}: {err}");
        let id = team.last_sent("user", name);
        assert_eq!(team.event_names(&id), ["sent", "delivered", "failed"]);
        team.assert_online(name);
    }

    // 7. A person's draft in the prompt box is never typed after: the question waits until
    //    the draft's own turn has ended.
    for name in ["codex", "gemini"] {
        team.paste(name, "REPLY the person's own prompt");
        let drafted = team.eventually(Duration::from_secs(20), || {
            let out = team.tmux(&["capture-pane", "-p", "-t", &format!("={name}:")]);
            text(&out.stdout).contains("REPLY the person's own prompt")
        });
        assert!(drafted, "{name} does not show the draft");
        let id = team
            .rw_ok(&["peer", "ask", name, "REPLY after the draft", "--no-wait"])
            .trim()
            .to_string();
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(
            team.event_names(&id),
            ["sent"],
            "{name} typed after a draft"
        );
        team.key(name, "Enter");
        let out = team.rw_ok(&["peer", "wait", &id, "--timeout", "120s"]);
        assert_eq!(out, "after the draft\n");
        team.assert_online(name);
    }

    // 8. Quitting ends the session: the peer goes offline.
    for name in ["codex", "gemini"] {
        team.paste(name, "/quit");
        std::thread::sleep(Duration::from_millis(500));
        team.key(name, "Enter");
        let offline = team.eventually(Duration::from_secs(60), || {
            team.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "offline")
        });
        assert!(offline, "{name} is not offline after /quit");
    }
}
