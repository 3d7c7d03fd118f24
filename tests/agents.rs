//! End to end against the real Codex CLI, Gemini CLI and OpenCode, next to a real Claude Code
//! session, all four in one private tmux server, talking to the project's fake model API on
//! 127.0.0.1 (`tests/fake_model.py`: Anthropic Messages for Claude Code, OpenAI Responses for
//! Codex and OpenCode, Gemini's API for Gemini CLI). The fake follows the script in the last prompt (`REPLY
//! <text>`, `CALL_TOOL <name> <json>`, `SLEEP <s>`, else `ECHO: <prompt>`), so every answer
//! below is exactly what the agent's turn made of what repowire typed.
//!
//! The CLIs are installed from the npm registry by `.ci/install-agent` when missing (see
//! `util::install_agent`). A test prints `SKIPPED: <reason>` only when it cannot run here: no
//! tmux, python3 or npm, or npm install failed; on CI all of that is there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::claude_code::{self, ClaudeCode, Home, need_claude, repowire_hooks, repowire_mcp};
use crate::util::{
    self, FakeModel, Person, Tmux, eventually, need_agent, neutralized, run_for, rw_command,
    sh_quote, text,
};

pub const CODEX_PINNED: &str = "0.169.0";
pub const GEMINI_PINNED: &str = "0.61.0";
pub const OPENCODE_PINNED: &str = "1.18.33";
/// Start-up of all three to registered peers; a few seconds here, generous for a busy box.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// One round trip through one or two agent turns.
const ASK_TIMEOUT: Duration = Duration::from_secs(120);
const NAMES: [&str; 4] = ["claude", "codex", "gemini", "opencode"];

/// The agent CLIs of a [`Team`].
pub struct Clis {
    pub claude: ClaudeCode,
    pub codex: PathBuf,
    pub gemini: PathBuf,
    pub opencode: PathBuf,
}

/// The four agents' releases, or `None` after printing `SKIPPED: <why>`.
pub fn need_agents(claude: &str, codex: &str, gemini: &str, opencode: &str) -> Option<Clis> {
    Some(Clis {
        claude: need_claude(claude)?,
        codex: need_agent("codex", codex)?,
        gemini: need_agent("gemini", gemini)?,
        opencode: need_agent("opencode", opencode)?,
    })
}

/// Each peer's way to run a shell command with its own shell tool, and its name of
/// repowire's `ask_peer` tool.
fn shell_call(agent: &str, command: &str) -> String {
    match agent {
        "codex" => format!("CALL_TOOL exec_command {}", json!({"cmd": command})),
        "gemini" => format!(
            "CALL_TOOL run_shell_command {}",
            json!({"command": command})
        ),
        "opencode" => format!(
            "CALL_TOOL bash {}",
            json!({"command": command, "description": "ask a peer"})
        ),
        _ => format!(
            "CALL_TOOL Bash {}",
            json!({"command": command, "description": "ask a peer"})
        ),
    }
}

fn ask_tool(agent: &str) -> &'static str {
    match agent {
        "gemini" => "mcp_repowire_ask_peer",
        "opencode" => "repowire_ask_peer",
        _ => "mcp__repowire__ask_peer",
    }
}

/// The CI variables set here: Gemini CLI will not start interactively where `CI`,
/// `CONTINUOUS_INTEGRATION` or a `CI_*` variable is set (its is-in-ci check), as on a CI
/// machine; a person's terminal has none of them.
fn ci_variables() -> Vec<String> {
    std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .filter(|k| k == "CI" || k == "CONTINUOUS_INTEGRATION" || k.starts_with("CI_"))
        .collect()
}

/// A Claude Code, a Codex, a Gemini CLI and an OpenCode session, in directories `claude`,
/// `codex`, `gemini` and `opencode` (so those are their peer names), in one tmux server, sharing a spool. Dropping it
/// stops everything it started (the directory is kept when the test failed).
pub struct Team {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    person: Person,
    tmux: Tmux,
    model: FakeModel,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Team {
    type Target = Person;
    fn deref(&self) -> &Person {
        &self.person
    }
}

impl Team {
    pub fn start(clis: &Clis) -> Team {
        let Clis {
            claude,
            codex,
            gemini,
            opencode,
        } = clis;
        let team = Team::prepare();
        let t = Instant::now();
        team.start_claude(claude);
        team.start_codex(codex, &[]);
        team.start_opencode(opencode);
        let spool = team.spool.display().to_string();
        let mut gemini_argv: Vec<String> = vec!["env".into()];
        for k in ci_variables() {
            gemini_argv.extend(["-u".into(), k]);
        }
        gemini_argv.extend([
            format!("HOME={}", team.root.join("gm").display()),
            format!("REPOWIRE_HOME={spool}"),
            "GEMINI_API_KEY=fake".into(),
            format!("GOOGLE_GEMINI_BASE_URL={}", team.model.url()),
            gemini.display().to_string(),
            "--approval-mode=yolo".into(),
        ]);
        team.tmux
            .new_session("gemini", &team.root.join("gemini"), &gemini_argv);
        let online = eventually(START_TIMEOUT, || {
            let peers = team.peers();
            NAMES.iter().all(|n| {
                peers
                    .iter()
                    .any(|p| p["name"] == *n && p["status"] == "online")
            })
        });
        assert!(online, "the four sessions did not all become online peers");
        eprintln!("agents: all four online peers after {:.2?}", t.elapsed());
        team
    }

    /// The directories, the fake API, and the homes of Codex, Gemini CLI and OpenCode after
    /// `repowire setup`, with no session started.
    fn prepare() -> Team {
        let guard = util::one_at_a_time();
        let dir = tempfile::Builder::new().prefix("rwag").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for name in NAMES {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        let team = Team {
            person: Person::new(&root.join("spool"), ASK_TIMEOUT),
            tmux: Tmux {
                socket: root.join("tmux.sock"),
            },
            model: FakeModel::start(&root),
            dir: Some(dir),
            root,
            _one_at_a_time: guard,
        };
        team.write_codex_home();
        team.write_gemini_home();
        team.write_opencode_home();
        team
    }

    /// `repowire setup --agent AGENT` with `HOME` (and `CODEX_HOME`) of that agent's session.
    fn setup(&self, agent: &str, home: &Path) {
        let mut c = Command::new(util::bin());
        c.args(["setup", "--agent", agent])
            .env("HOME", home)
            .env("CODEX_HOME", home.join(".codex"))
            .env_remove("XDG_CONFIG_HOME")
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
    fn write_codex_home(&self) {
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
base_url = "{url}/v1"
env_key = "FAKE_API_KEY"
wire_api = "responses"

[projects."{work}"]
trust_level = "trusted"

[tui]
screen_reader_detection_done = true
"#,
            url = self.model.url(),
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

    /// OpenCode's home: `opencode.json` for the fake API (its openai provider at a local URL),
    /// no update checks and no sharing, then `repowire setup --agent opencode`.
    fn write_opencode_home(&self) {
        let dir = self.root.join("oc/.config/opencode");
        std::fs::create_dir_all(&dir).unwrap();
        let config = json!({
            "$schema": "https://opencode.ai/config.json",
            "model": "openai/gpt-5",
            "autoupdate": false,
            "share": "disabled",
            "provider": {"openai": {"options": {
                "baseURL": format!("{}/v1", self.model.url()),
                "apiKey": "fake",
            }}},
        });
        std::fs::write(
            dir.join("opencode.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        self.setup("opencode", &self.root.join("oc"));
    }

    /// The environment OpenCode runs in: its home, the spool, and no fetch of the models'
    /// catalogue from the network.
    fn opencode_env(&self) -> Vec<String> {
        vec![
            format!("HOME={}", self.root.join("oc").display()),
            format!("REPOWIRE_HOME={}", self.spool.display()),
            "OPENCODE_DISABLE_MODELS_FETCH=1".into(),
        ]
    }

    /// OpenCode's TUI in session `opencode` of this team's tmux server.
    fn start_opencode(&self, opencode: &Path) {
        let mut argv: Vec<String> = vec!["env".into(), "-u".into(), "XDG_CONFIG_HOME".into()];
        argv.extend(self.opencode_env());
        argv.push(opencode.display().to_string());
        self.tmux
            .new_session("opencode", &self.root.join("opencode"), &argv);
    }

    /// Codex in session `codex` of this team's tmux server, `env` (`NAME=VALUE`) added to its
    /// environment.
    fn start_codex(&self, codex: &Path, env: &[String]) {
        let codex_home = self.root.join("cx");
        let mut argv: Vec<String> = vec![
            "env".into(),
            format!("HOME={}", codex_home.display()),
            format!("CODEX_HOME={}", codex_home.join(".codex").display()),
            format!("REPOWIRE_HOME={}", self.spool.display()),
            "FAKE_API_KEY=fake".into(),
        ];
        argv.extend(env.iter().cloned());
        argv.extend([
            codex.display().to_string(),
            // Stands in for the user approving repowire's hooks in Codex's review dialog
            // (setup never writes Codex's trust records).
            "--dangerously-bypass-hook-trust".into(),
        ]);
        self.tmux
            .new_session("codex", &self.root.join("codex"), &argv);
    }

    /// Claude Code through the project's driver, on this team's tmux server.
    fn start_claude(&self, claude: &ClaudeCode) {
        let work = self.root.join("claude");
        let settings = json!({
            "hooks": repowire_hooks(),
            "permissions": {"allow": [format!("Bash({} peer ask:*)", rw_command()), "mcp__repowire"]},
        });
        let home = Home::new(
            &self.root.join("cc"),
            &claude.version,
            &[&work],
            json!({"repowire": repowire_mcp()}),
            settings,
        );
        claude.launch(
            &self.tmux,
            &home,
            &self.model,
            &self.spool,
            ("claude", &work),
            &[],
        );
    }

    /// A person asks `asker` to `call` a tool that asks `target`: `asker`'s answer is the tool
    /// result, which holds `target`'s `reply`, and the question to `target` went through the
    /// spool.
    fn relay(&self, asker: &str, target: &str, call: &str, reply: &str, how: &str) {
        let (answer, took) = self.ask(asker, call);
        eprintln!("agents: {asker} {how} {target}: {took:.2?}");
        assert!(
            answer.starts_with("TOOL_RESULT: ") && answer.contains(reply),
            "{asker}: {answer}"
        );
        let inner = self.last_sent(asker, target);
        assert_eq!(self.event_names(&inner), ["sent", "delivered", "answered"]);
        self.assert_online(asker);
        self.assert_online(target);
    }

    /// `name` online, told a fact, then busy with a turn of `secs` seconds: a peer to ask by
    /// fork. Returns the fact, and the asker of that turn (to kill at the end).
    fn busy_after_a_fact(&self, name: &str, secs: u32) -> (&'static str, std::process::Child) {
        assert!(eventually(START_TIMEOUT, || self
            .peers()
            .iter()
            .any(|p| p["name"] == name && p["status"] == "online")));
        let fact = "The vault code is 8086.";
        let (answer, _) = self.ask(name, &format!("{fact}\nREPLY noted"));
        assert_eq!(answer, "noted");
        let long = Command::new(util::bin())
            .args([
                "peer",
                "ask",
                name,
                &format!("SLEEP {secs}\nREPLY the long turn is over"),
            ])
            .env("REPOWIRE_HOME", &self.spool)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(eventually(
            Duration::from_secs(30),
            || self.peer(name)["status"] == "busy"
        ));
        (fact, long)
    }

    /// The fake API's requests of forks (their prompt says so), of which one at least must
    /// carry `fact` from the forked session.
    fn fork_requests(&self, fact: &str) -> Vec<serde_json::Value> {
        let requests: Vec<serde_json::Value> = util::read_jsonl(&self.model.log)
            .into_iter()
            .filter(|e| e["body"].to_string().contains("read-only fork"))
            .collect();
        assert!(
            requests
                .iter()
                .any(|e| e["body"].to_string().contains(fact)),
            "no fork request carried the session"
        );
        requests
    }

    /// What the sessions show, the peers and the history. Never panics.
    fn diagnosis(&self) -> String {
        let mut d = format!("--- state: {}\n", self.root.display());
        for name in NAMES {
            d += &format!(
                "--- {name}'s screen:\n{}\n",
                self.tmux.screen_tail(name, 25)
            );
        }
        for args in [&["peer", "list"][..], &["log"][..]] {
            let out = self.rw(args);
            d += &format!(
                "--- repowire {}:\n{}{}",
                args.join(" "),
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        d
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnosis());
        }
        // Gemini CLI outlives its pane (it ignores the hangup): shut_down ends every process
        // of the panes by its id, and waits for their SessionEnd hooks.
        self.tmux.shut_down(Duration::from_secs(20));
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("agents: kept {} for inspection", dir.keep().display());
        }
    }
}

/// The four sessions, each asked from the command line, each asking another through the MCP
/// tool and through `repowire peer ask` in its own shell tool, each getting a notification;
/// then Codex, Gemini and OpenCode turns cut short with Esc are reported as interrupted, a
/// person's draft holds a question back until its own turn is over, and quitting takes them
/// offline.
#[test]
fn claude_codex_gemini_and_opencode_ask_each_other() {
    let Some(clis) = need_agents(
        claude_code::PINNED,
        CODEX_PINNED,
        GEMINI_PINNED,
        OPENCODE_PINNED,
    ) else {
        return;
    };
    let team = Team::start(&clis);
    core_flows(&team);

    // 5. Hostile text reaches Codex, Gemini and OpenCode inert and whole.
    let question = "Echo this back:\n  \"double\" 'single' `ticks` $HOME \\back; semi\n/clear\n!touch pwned\n\
                    ünïcødé ✓ 日本\tTAB \x1b[201~ after ESC";
    for name in ["codex", "gemini", "opencode"] {
        let (answer, _) = team.ask(name, question);
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

    // 6. Through `repowire peer ask` run by each agent's own shell tool.
    let rw = rw_command();
    for (asker, target) in [
        ("codex", "claude"),
        ("gemini", "codex"),
        ("opencode", "gemini"),
        ("claude", "opencode"),
    ] {
        let reply = format!("{target} answers {asker}'s shell");
        let command = format!(
            "{rw} peer ask {target} {} --timeout 90s",
            sh_quote(&format!("REPLY {reply}"))
        );
        let call = shell_call(asker, &command);
        team.relay(asker, target, &call, &reply, "runs `peer ask`");
    }

    // 7. A person's draft in the prompt box is never typed after: the question waits until
    //    the draft's own turn has ended.
    for name in ["codex", "gemini", "opencode"] {
        team.tmux.paste(name, "REPLY the person's own prompt");
        let drafted = eventually(Duration::from_secs(20), || {
            team.tmux
                .screen(name, false)
                .contains("REPLY the person's own prompt")
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
        team.tmux.keys(name, &["Enter"]);
        let out = team.rw_ok(&["peer", "wait", &id, "--timeout", "120s"]);
        assert_eq!(out, "after the draft\n");
        team.assert_online(name);
    }

    // 8. Quitting ends the session: the peer goes offline (OpenCode tells no plugin that it
    //    exits: its process is gone).
    for name in ["codex", "gemini", "opencode"] {
        let quit = if name == "opencode" { "/exit" } else { "/quit" };
        team.tmux.paste(name, quit);
        std::thread::sleep(Duration::from_millis(500));
        team.tmux.keys(name, &["Enter"]);
        let offline = eventually(Duration::from_secs(60), || {
            team.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "offline")
        });
        assert!(offline, "{name} is not offline after /quit");
    }
}

/// What every tested release must do (tests/versions.rs runs it on other releases): each
/// agent registers as itself and answers a person's question, asks the next round the ring
/// through the MCP tool, takes a notification, and reports a turn cut short with Esc.
pub(crate) fn core_flows(team: &Team) {
    let peers = team.peers();
    for name in NAMES {
        let p = peers.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(p["agent"], name, "{p}");
    }
    let listing = team.rw_ok(&["peer", "list"]);
    assert!(listing.contains("AGENT"), "{listing}");

    // 1. A person asks each, from the command line.
    for name in ["codex", "gemini", "opencode", "claude"] {
        let t = Instant::now();
        let (answer, _) = team.ask(name, &format!("What is 6*7?\nREPLY forty-two, says {name}"));
        eprintln!("agents: user asks {name}: {:.2?}", t.elapsed());
        assert_eq!(answer, format!("forty-two, says {name}"));
        let id = team.last_sent("user", name);
        assert_eq!(team.event_names(&id), ["sent", "delivered", "answered"]);
        team.assert_online(name);
    }

    // 2. Through the MCP tool, round the ring: claude → codex → gemini → opencode → claude.
    for (asker, target) in [
        ("claude", "codex"),
        ("codex", "gemini"),
        ("gemini", "opencode"),
        ("opencode", "claude"),
    ] {
        let reply = format!("{target} answers {asker} through MCP");
        let args = json!({"peer_name": target, "query": format!("REPLY {reply}")});
        let call = format!("CALL_TOOL {} {args}", ask_tool(asker));
        team.relay(asker, target, &call, &reply, "asks through MCP");
    }

    // 3. A notification reaches each, as a turn of its own.
    for name in NAMES {
        let note = format!("Heads up, {name}: the API moves to /v2 on Friday.");
        let out = team.rw_ok(&["peer", "notify", name, &note]);
        let id = out.split_whitespace().nth(1).unwrap().to_string();
        let received = eventually(ASK_TIMEOUT, || {
            team.event_names(&id) == ["sent", "delivered", "received"]
        });
        assert!(received, "{name}: {:?}", team.event_names(&id));
        team.assert_online(name);
    }
    // Their models saw them (Claude Code's is checked in tests/claude.rs).
    let api = std::fs::read_to_string(&team.model.log).unwrap();
    for name in ["codex", "gemini", "opencode"] {
        assert!(
            api.contains(&format!("Heads up, {name}: the API moves")),
            "{name}'s notification never reached its model"
        );
    }

    // 4. A turn cut short with Esc is no answer: the asker hears it was interrupted.
    for name in ["codex", "gemini", "opencode"] {
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
        let busy = eventually(ASK_TIMEOUT, || {
            team.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "busy")
        });
        assert!(busy, "{name} never got busy");
        std::thread::sleep(Duration::from_millis(500));
        team.tmux.keys(name, &["Escape"]);
        if name == "opencode" {
            // Its first Esc says "esc again to interrupt".
            std::thread::sleep(Duration::from_millis(300));
            team.tmux.keys(name, &["Escape"]);
        }
        let out = asker.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{name}: {err}");
        assert!(err.contains("interrupted"), "{name}: {err}");
        let id = team.last_sent("user", name);
        assert_eq!(team.event_names(&id), ["sent", "delivered", "failed"]);
        team.assert_online(name);
    }
}

/// `repowire up` starts a Codex, a Gemini CLI and an OpenCode session from a team file (each
/// named by the file, not by its directory), each answers, and `repowire down` ends their
/// processes.
#[test]
fn codex_gemini_and_opencode_come_up_from_a_team_file_and_go_down() {
    let (Some(codex), Some(gemini), Some(opencode)) = (
        need_agent("codex", CODEX_PINNED),
        need_agent("gemini", GEMINI_PINNED),
        need_agent("opencode", OPENCODE_PINNED),
    ) else {
        return;
    };
    let team = Team::prepare();
    let tmux_tmpdir = team.root.join("tt");
    std::fs::create_dir_all(&tmux_tmpdir).unwrap();
    struct Server(PathBuf);
    impl Drop for Server {
        fn drop(&mut self) {
            let uid = unsafe { libc::getuid() };
            let tmux = Tmux {
                socket: self.0.join(format!("tmux-{uid}/default")),
            };
            tmux.shut_down(Duration::from_secs(20));
        }
    }
    let _server = Server(tmux_tmpdir.clone());
    let (cx, gm) = (team.root.join("cx"), team.root.join("gm"));
    let unset: String = ci_variables()
        .iter()
        .map(|k| format!("unset {k}; "))
        .collect();
    let file = team.root.join("repowire.yaml");
    std::fs::write(
        &file,
        format!(
            "tmux_session: team\npeers:\n  web: {{ path: codex, agent: codex, command: \"HOME={} CODEX_HOME={} FAKE_API_KEY=fake exec {} --dangerously-bypass-hook-trust\" }}\n  ops: {{ path: gemini, agent: gemini, command: \"{unset}HOME={} GEMINI_API_KEY=fake GOOGLE_GEMINI_BASE_URL={} exec {} --approval-mode=yolo\" }}\n  app: {{ path: opencode, agent: opencode, command: \"unset XDG_CONFIG_HOME; {} exec {}\" }}\n",
            cx.display(),
            cx.join(".codex").display(),
            codex.display(),
            gm.display(),
            team.model.url(),
            gemini.display(),
            team.opencode_env().join(" "),
            opencode.display(),
        ),
    )
    .unwrap();
    let rw = |args: &[&str]| {
        let mut c = Command::new(util::bin());
        c.args(args)
            // Where `up` looks for each agent's setup: Gemini CLI's in HOME, Codex's in
            // CODEX_HOME, OpenCode's in XDG_CONFIG_HOME.
            .env("HOME", &gm)
            .env("CODEX_HOME", cx.join(".codex"))
            .env("XDG_CONFIG_HOME", team.root.join("oc/.config"))
            .env("TMUX_TMPDIR", &tmux_tmpdir)
            .env("REPOWIRE_HOME", &team.spool)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        run_for(c, Duration::from_secs(150))
    };
    let t = Instant::now();
    let up = rw(&["up", "-f", file.to_str().unwrap(), "--timeout", "120s"]);
    let said = text(&up.stdout);
    assert!(up.status.success(), "{said}{}", text(&up.stderr));
    eprintln!(
        "agents: `repowire up` of Codex, Gemini CLI and OpenCode took {:.2?}:\n{said}",
        t.elapsed()
    );
    for (name, agent) in [("web", "codex"), ("ops", "gemini"), ("app", "opencode")] {
        let p = team.peer(name);
        assert_eq!(
            (&p["status"], &p["agent"]),
            (&json!("online"), &json!(agent)),
            "{p}"
        );
    }
    assert!(
        !team
            .peers()
            .iter()
            .any(|p| NAMES[1..].contains(&p["name"].as_str().unwrap_or_default()))
    );
    let (answer, took) = team.ask("web", "REPLY codex, up from a team file");
    eprintln!("agents: ask to web (Codex) {took:.2?}");
    assert_eq!(answer, "codex, up from a team file");
    let (answer, took) = team.ask("ops", "REPLY gemini, up from a team file");
    eprintln!("agents: ask to ops (Gemini CLI) {took:.2?}");
    assert_eq!(answer, "gemini, up from a team file");
    let (answer, took) = team.ask("app", "REPLY opencode, up from a team file");
    eprintln!("agents: ask to app (OpenCode) {took:.2?}");
    assert_eq!(answer, "opencode, up from a team file");

    // Their agents' processes, which `down` must end.
    let pids: Vec<u64> = ["web", "ops", "app"]
        .iter()
        .map(|n| {
            let record: serde_json::Value = serde_json::from_slice(
                &std::fs::read(team.spool.join(format!("peers/{n}.json"))).unwrap(),
            )
            .unwrap();
            record["agent_process"]["pid"]
                .as_u64()
                .unwrap_or_else(|| panic!("{n}: no agent process recorded: {record}"))
        })
        .collect();
    let t = Instant::now();
    let down = rw(&["down", "-f", file.to_str().unwrap()]);
    let said = text(&down.stdout);
    assert!(down.status.success(), "{said}{}", text(&down.stderr));
    eprintln!("agents: `repowire down` took {:.2?}:\n{said}", t.elapsed());
    for name in ["web", "ops", "app"] {
        assert!(said.contains(&format!("{name}  stopped")), "{said}");
        assert_eq!(team.peer(name)["status"], "offline");
    }
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        assert!(
            stat.is_empty() || state.starts_with('Z'),
            "agent {pid} still runs: {stat}"
        );
    }
}

/// A fork of a busy Codex session answers at once from what the session was told (the fake
/// API sees it in the fork's request), types nothing into the session, cannot write a file
/// (its sandbox makes the file system read-only), has none of the MCP servers of Codex's
/// configuration (repowire's among them), and leaves no session file and no new peer.
#[test]
fn codex_fork_answers_while_busy_and_changes_nothing() {
    let Some(codex) = need_agent("codex", CODEX_PINNED) else {
        return;
    };
    codex_fork_flow(&codex);
}

pub(crate) fn codex_fork_flow(codex: &Path) {
    let team = Team::prepare();
    team.start_codex(codex, &[]);
    let (fact, mut long) = team.busy_after_a_fact("codex", 30);
    let sessions = || {
        let mut n = 0;
        let mut dirs = vec![team.root.join("cx/.codex/sessions")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    dirs.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
        n
    };
    let before = sessions();
    let cx = team.root.join("cx");
    let path = util::path_with(codex.parent().unwrap());
    let fork = |question: &str| {
        let mut c = Command::new(util::bin());
        c.args(["peer", "ask", "codex", "--fork", question])
            .env("REPOWIRE_HOME", &team.spool)
            .env("HOME", &cx)
            .env("CODEX_HOME", cx.join(".codex"))
            .env("FAKE_API_KEY", "fake")
            .env("PATH", &path)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        run_for(c, Duration::from_secs(90))
    };
    let t = Instant::now();
    let out = fork("REPLY it is 8086");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "it is 8086\n");
    eprintln!(
        "agents: a fork of busy Codex answered in {:.2?}",
        t.elapsed()
    );
    let requests = team.fork_requests(fact);
    // None of Codex's MCP servers in the fork: repowire's tools are not offered.
    for r in &requests {
        assert!(
            !r["body"]["tools"].to_string().contains("ask_peer"),
            "repowire's tools in a fork"
        );
    }
    let target = team.root.join("codex/written-by-a-fork.txt");
    let call = format!(
        "CALL_TOOL exec_command {}",
        json!({"cmd": format!("touch {} && echo made", target.display())})
    );
    let out = fork(&call);
    eprintln!(
        "agents: Codex fork told to touch a file: {}",
        text(&out.stdout).trim()
    );
    assert!(!target.exists(), "a fork wrote a file");
    assert_eq!(
        team.peer("codex")["status"],
        "busy",
        "the fork disturbed the session"
    );
    assert_eq!(sessions(), before, "a fork left a session file");
    assert_eq!(team.peers().len(), 1, "{:?}", team.peers());
    let _ = long.kill();
    let _ = long.wait();
}

/// A fork of a busy OpenCode session answers at once from what the session was told (the fake
/// API sees it in the fork's request), types nothing into the session, is offered no tool but
/// read, grep and glob (none of repowire's), writes no file when told to, and leaves no session
/// in OpenCode's database, no copy in the temporary directory and no new peer.
#[test]
fn opencode_fork_answers_while_busy_and_changes_nothing() {
    let Some(opencode) = need_agent("opencode", OPENCODE_PINNED) else {
        return;
    };
    opencode_fork_flow(&opencode);
}

pub(crate) fn opencode_fork_flow(opencode: &Path) {
    let team = Team::prepare();
    team.start_opencode(opencode);
    // Longer than the forks below take, with OpenCode starting three times for each.
    let (fact, mut long) = team.busy_after_a_fact("opencode", 150);
    let path = util::path_with(opencode.parent().unwrap());
    let tmp = team.root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let oc = |c: &mut Command| {
        c.env("HOME", team.root.join("oc"))
            .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
            .env("PATH", &path)
            .env("TMPDIR", &tmp)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
    };
    let sessions = || {
        let mut c = Command::new(opencode);
        c.args(["session", "list"])
            .current_dir(team.root.join("opencode"));
        oc(&mut c);
        let out = run_for(c, Duration::from_secs(60));
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ses_"))
            .count()
    };
    let before = sessions();
    assert!(before >= 1, "no session listed");
    let fork = |question: &str| {
        let mut c = Command::new(util::bin());
        c.args(["peer", "ask", "opencode", "--fork", question])
            .env("REPOWIRE_HOME", &team.spool);
        oc(&mut c);
        run_for(c, Duration::from_secs(120))
    };
    let t = Instant::now();
    let out = fork("REPLY it is 8086");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "it is 8086\n");
    eprintln!(
        "agents: a fork of busy OpenCode answered in {:.2?}",
        t.elapsed()
    );
    let requests = team.fork_requests(fact);
    for r in requests.iter().filter(|r| r["body"]["tools"].is_array()) {
        let tools: Vec<&str> = r["body"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            tools
                .iter()
                .all(|t| ["read", "grep", "glob", "list"].contains(t)),
            "a fork was offered {tools:?}"
        );
    }
    let target = team.root.join("opencode/written-by-a-fork.txt");
    for call in [
        format!(
            "CALL_TOOL write {}",
            json!({"filePath": target.display().to_string(), "content": "x"})
        ),
        format!(
            "CALL_TOOL bash {}",
            json!({"command": format!("touch {}", target.display()), "description": "touch"})
        ),
    ] {
        let out = fork(&call);
        eprintln!(
            "agents: OpenCode fork told to {}: {}{}",
            &call[10..15],
            text(&out.stdout).trim(),
            text(&out.stderr).trim()
        );
        assert!(!target.exists(), "a fork wrote a file");
    }
    // A fork ended at its deadline, in the middle of its work, leaves no copy either.
    let mut c = Command::new(util::bin());
    c.args([
        "peer",
        "ask",
        "opencode",
        "--fork",
        // Its model's reply takes longer than its deadline.
        "SLEEP 30\nREPLY too late",
        "--timeout",
        "4s",
    ])
    .env("REPOWIRE_HOME", &team.spool);
    oc(&mut c);
    let out = run_for(c, Duration::from_secs(60));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        team.peer("opencode")["status"],
        "busy",
        "the fork disturbed the session"
    );
    assert_eq!(
        sessions(),
        before,
        "a fork left a session in OpenCode's database"
    );
    // (OpenCode itself leaves files of its runtime there, when run by the test.)
    let copies: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("repowire-fork"))
        .collect();
    assert!(copies.is_empty(), "a fork left its copy behind: {copies:?}");
    assert_eq!(team.peers().len(), 1, "{:?}", team.peers());
    let _ = long.kill();
    let _ = long.wait();
}
