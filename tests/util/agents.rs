//! The real Codex CLI, Gemini CLI, OpenCode and Pi next to a real Claude Code, all five in one
//! private tmux server, talking to the project's fake model API (see tests/agents.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::claude_code::{ClaudeCode, Home, need_claude, repowire_hooks, repowire_mcp};
use super::{
    self as util, FakeModel, Person, Tmux, eventually, need_agent, run_for, rw_command, text,
};

pub const CODEX_PINNED: &str = "0.169.0";
pub const GEMINI_PINNED: &str = "0.61.0";
pub const OPENCODE_PINNED: &str = "1.18.33";
pub const PI_PINNED: &str = "0.73.1";
/// Start-up of all three to registered peers; a few seconds here, generous for a busy box.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(120);
/// One round trip through one or two agent turns.
pub(crate) const ASK_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const NAMES: [&str; 5] = ["claude", "codex", "gemini", "opencode", "pi"];

/// The agent CLIs of a [`Team`].
pub struct Clis {
    pub claude: ClaudeCode,
    pub codex: PathBuf,
    pub gemini: PathBuf,
    pub opencode: PathBuf,
    pub pi: PathBuf,
}

/// The five agents' releases, or `None` after printing `SKIPPED: <why>`.
pub fn need_agents(
    claude: &str,
    codex: &str,
    gemini: &str,
    opencode: &str,
    pi: &str,
) -> Option<Clis> {
    Some(Clis {
        claude: need_claude(claude)?,
        codex: need_agent("codex", codex)?,
        gemini: need_agent("gemini", gemini)?,
        opencode: need_agent("opencode", opencode)?,
        pi: need_agent("pi", pi)?,
    })
}

/// Each peer's way to run a shell command with its own shell tool, and its name of
/// repowire's `ask_peer` tool.
pub(crate) fn shell_call(agent: &str, command: &str) -> String {
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
        "pi" => format!("CALL_TOOL bash {}", json!({ "command": command })),
        _ => format!(
            "CALL_TOOL Bash {}",
            json!({"command": command, "description": "ask a peer"})
        ),
    }
}

pub(crate) fn ask_tool(agent: &str) -> &'static str {
    match agent {
        "gemini" => "mcp_repowire_ask_peer",
        "opencode" => "repowire_ask_peer",
        "pi" => "ask_peer",
        _ => "mcp__repowire__ask_peer",
    }
}

/// The CI variables set here: Gemini CLI will not start interactively where `CI`,
/// `CONTINUOUS_INTEGRATION` or a `CI_*` variable is set (its is-in-ci check), as on a CI
/// machine; a person's terminal has none of them.
pub(crate) fn ci_variables() -> Vec<String> {
    std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .filter(|k| k == "CI" || k == "CONTINUOUS_INTEGRATION" || k.starts_with("CI_"))
        .collect()
}

/// A Claude Code, a Codex, a Gemini CLI, an OpenCode and a Pi session, in directories
/// `claude`, `codex`, `gemini`, `opencode` and `pi` (so those are their peer names), in one
/// tmux server, sharing a spool. Dropping it
/// stops everything it started (the directory is kept when the test failed).
pub struct Team {
    dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    person: Person,
    pub tmux: Tmux,
    pub model: FakeModel,
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
            pi,
        } = clis;
        let team = Team::prepare();
        let t = Instant::now();
        team.start_claude(claude);
        team.start_codex(codex, &[]);
        team.start_opencode(opencode);
        team.start_pi(pi, true);
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
        assert!(online, "the five sessions did not all become online peers");
        eprintln!("agents: all five online peers after {:.2?}", t.elapsed());
        team
    }

    /// The directories, the fake API, and the homes of Codex, Gemini CLI, OpenCode and Pi after
    /// `repowire setup`, with no session started.
    pub(crate) fn prepare() -> Team {
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
        team.write_pi_home();
        team
    }

    /// `repowire setup --agent AGENT` with `HOME` (and `CODEX_HOME`) of that agent's session.
    pub(crate) fn setup(&self, agent: &str, home: &Path) {
        let mut c = Command::new(util::bin());
        c.args(["setup", "--agent", agent])
            .env("HOME", home)
            .env("CODEX_HOME", home.join(".codex"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("PI_CODING_AGENT_DIR")
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
    pub(crate) fn write_codex_home(&self) {
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
    pub(crate) fn write_gemini_home(&self) {
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
    pub(crate) fn write_opencode_home(&self) {
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
    pub(crate) fn opencode_env(&self) -> Vec<String> {
        vec![
            format!("HOME={}", self.root.join("oc").display()),
            format!("REPOWIRE_HOME={}", self.spool.display()),
            "OPENCODE_DISABLE_MODELS_FETCH=1".into(),
        ]
    }

    /// OpenCode's TUI in session `opencode` of this team's tmux server.
    pub(crate) fn start_opencode(&self, opencode: &Path) {
        self.start_opencode_with(opencode, true);
    }

    /// [`Team::start_opencode`], or (`in_tmux` false) in a terminal with no sign of tmux: tmux
    /// gives it its terminal, but neither it nor its plugin's hooks have `TMUX` or `TMUX_PANE`.
    pub(crate) fn start_opencode_with(&self, opencode: &Path, in_tmux: bool) {
        let mut argv: Vec<String> = vec!["env".into(), "-u".into(), "XDG_CONFIG_HOME".into()];
        if !in_tmux {
            argv.extend(["-u", "TMUX", "-u", "TMUX_PANE"].map(String::from));
        }
        argv.extend(self.opencode_env());
        argv.push(opencode.display().to_string());
        self.tmux
            .new_session("opencode", &self.root.join("opencode"), &argv);
    }

    /// Pi's home: its models configuration for the fake API (its Anthropic Messages
    /// provider type at a local URL) as the default model, then `repowire setup --agent pi`.
    pub(crate) fn write_pi_home(&self) {
        let dir = self.root.join("pih/.pi/agent");
        std::fs::create_dir_all(&dir).unwrap();
        let models = json!({"providers": {"fake": {
            "baseUrl": self.model.url(),
            "api": "anthropic-messages",
            "apiKey": "fake",
            "models": [{"id": "claude-fake"}],
        }}});
        std::fs::write(dir.join("models.json"), models.to_string()).unwrap();
        let settings = json!({"defaultProvider": "fake", "defaultModel": "claude-fake"});
        std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
        self.setup("pi", &self.root.join("pih"));
    }

    /// The environment Pi runs in: its home, the spool, and no downloads (`PI_OFFLINE`: it
    /// would fetch fd and ripgrep).
    pub(crate) fn pi_env(&self) -> Vec<String> {
        vec![
            format!("HOME={}", self.root.join("pih").display()),
            format!("REPOWIRE_HOME={}", self.spool.display()),
            "PI_OFFLINE=1".into(),
        ]
    }

    /// Pi in session `pi` of this team's tmux server; `in_tmux` false: in a terminal with no
    /// sign of tmux (tmux gives it its terminal, but neither it nor its extension's hooks
    /// have `TMUX` or `TMUX_PANE`).
    pub(crate) fn start_pi(&self, pi: &Path, in_tmux: bool) {
        self.start_pi_with(pi, in_tmux, &[]);
    }

    /// [`Team::start_pi`] with `env` (`NAME=VALUE`) added to its environment.
    pub(crate) fn start_pi_with(&self, pi: &Path, in_tmux: bool, env: &[String]) {
        let mut argv: Vec<String> = vec!["env".into(), "-u".into(), "PI_CODING_AGENT_DIR".into()];
        if !in_tmux {
            argv.extend(["-u", "TMUX", "-u", "TMUX_PANE"].map(String::from));
        }
        argv.extend(self.pi_env());
        argv.extend(env.iter().cloned());
        argv.push(pi.display().to_string());
        self.tmux.new_session("pi", &self.root.join("pi"), &argv);
    }

    /// Codex in session `codex` of this team's tmux server, `env` (`NAME=VALUE`) added to its
    /// environment.
    pub(crate) fn start_codex(&self, codex: &Path, env: &[String]) {
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
    pub(crate) fn start_claude(&self, claude: &ClaudeCode) {
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
    pub(crate) fn relay(&self, asker: &str, target: &str, call: &str, reply: &str, how: &str) {
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
    pub(crate) fn busy_after_a_fact(
        &self,
        name: &str,
        secs: u32,
    ) -> (&'static str, std::process::Child) {
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
    pub(crate) fn fork_requests(&self, fact: &str) -> Vec<serde_json::Value> {
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
    pub(crate) fn diagnosis(&self) -> String {
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
