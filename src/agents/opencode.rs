//! OpenCode (npm `opencode-ai`; tested from 1.14.41 to 1.18.33).
//!
//! It runs no shell hooks: repowire's plugin runs `repowire hook` on its events with payloads
//! in Claude Code's field names. Text reaches it as one bracketed paste; it forks from a copy
//! of its session of repowire's own.
//!
//! What setup writes for OpenCode (in `$XDG_CONFIG_HOME/opencode`, else
//! `~/.config/opencode`): the plugin `plugin/repowire.js`, a file of repowire's own that runs
//! repowire's hooks on OpenCode's events (OpenCode runs no shell hooks; its plugins get its
//! events in the TUI's process, so with its `TMUX_PANE`), and `mcp.repowire` in
//! `opencode.json`. OpenCode also reads `opencode.jsonc` beside it and merges the two, so a
//! user's own `opencode.jsonc` is never touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::edit::{
    Change, Edit, MCP_NAME, Object, Ours, Verb, home_dir, read_object, read_opt, set_mcp_server,
    unregister_mcp,
};
use super::{
    Agent, Event, Health, Identity, Inbox, Kind, Typing, join_trimmed, lines, strip_escapes,
};

pub(super) struct OpenCode;

pub(super) const OPENCODE: Agent = Agent(&OpenCode);

const IDENTITY: Identity = Identity {
    name: "opencode",
    title: "OpenCode",
    about: "OpenCode (npm `opencode-ai`)",
    package: "opencode-ai",
    tested: ("1.14.41", "1.18.33"),
};

impl Kind for OpenCode {
    fn identity(&self) -> &'static Identity {
        &IDENTITY
    }

    /// OpenCode handles every key on its own (measured: 3,000 characters typed as keys kept
    /// it busy for over 20 s, at 1.3 GB); a paste shows as "[Pasted ~N lines]" and is taken
    /// whole, and an Enter right after it submits (5 of 5).
    fn typing(&self) -> Typing {
        Typing::Paste {
            gap: Duration::from_millis(50),
        }
    }

    fn prompt_box(&self, screen: &str) -> Option<String> {
        opencode_box(&strip_escapes(screen))
    }

    /// `run`, `serve`, `web` and `acp` (they load its plugins too).
    fn headless(&self, args: &[&str]) -> bool {
        matches!(
            super::command_word(args),
            Some("run" | "serve" | "web" | "acp")
        )
    }

    /// repowire's plugin serves the session an inbox (see `opencode.js`) and gives its hooks
    /// the socket, the token and the session the event is about. A message posted there
    /// becomes a turn of that session through the plugin's client (`session.promptAsync`),
    /// shown in the TUI as if typed (measured with 1.18.33). Before its first prompt the TUI
    /// has no session to post to.
    fn inbox(&self) -> Result<Option<Inbox>, String> {
        super::inbox_from_plugin(
            "plugin",
            self.name(),
            "no session yet (OpenCode starts one with the first prompt)",
        )
    }

    /// (1.14.41 to 1.18.33) `opencode run --fork` keeps its copy as a session in OpenCode's
    /// database, so the fork answers from a copy of its own instead: the session is exported,
    /// imported into a data directory of the fork's (`XDG_DATA_HOME`), continued there with
    /// the plan agent and no tools but read, grep and glob, no plugins (`--pure`) and
    /// repowire's MCP server disabled, and the directory is removed after.
    fn fork_command(
        &self,
        session_id: &str,
        prompt: &str,
        _dir: &Path,
    ) -> Result<Vec<String>, String> {
        Ok([
            "sh",
            "-c",
            FORK_SCRIPT,
            "repowire-fork",
            session_id,
            FORK_CONFIG,
            prompt,
        ]
        .map(String::from)
        .to_vec())
    }

    fn fork_answer(&self, stdout: &str) -> Result<String, String> {
        opencode_answer(stdout)
    }

    fn hooks(&self) -> &'static [(&'static str, Event)] {
        &HOOKS
    }

    /// None: repowire's plugin runs its hooks.
    fn hooks_file(&self) -> Result<PathBuf> {
        anyhow::bail!(
            "OpenCode keeps no hook lists: repowire's plugin runs its hooks (`repowire setup --agent opencode` writes it)"
        )
    }

    fn config_dir(&self) -> Result<PathBuf> {
        dir()
    }

    fn install<'a>(&self, ours: &'a Ours, _trust: bool) -> Result<Vec<Edit<'a>>> {
        let path = plugin_path()?;
        let shown = path.display().to_string();
        Ok(vec![
            Edit::whole(path, move |text| {
                let want = plugin(ours);
                let change = match text {
                    Some(t) if t == want => return Ok((Some(want), Vec::new())),
                    Some(t) if !is_ours(t) => anyhow::bail!(
                        "{shown} exists and is not repowire's plugin; move it away and run setup again"
                    ),
                    Some(_) => Change::new(Verb::Update, format!("plugin: runs {}", ours.exe())),
                    None => Change::new(Verb::Add, format!("plugin: runs {}", ours.exe())),
                };
                Ok((Some(want), vec![change]))
            }),
            Edit::new(config_path()?, move |m, _| register_mcp(m, ours)),
        ])
    }

    fn uninstall(&self) -> Result<Vec<Edit<'static>>> {
        Ok(vec![
            Edit::whole(plugin_path()?, |text| match text {
                Some(t) if is_ours(t) => {
                    Ok((None, vec![Change::new(Verb::Remove, "repowire's plugin")]))
                }
                other => Ok((other.map(str::to_string), Vec::new())),
            }),
            Edit::new(config_path()?, |m, before| unregister_mcp(m, "mcp", before)),
        ])
    }

    fn health(&self, ours: &Ours) -> Vec<Health> {
        vec![Health::of_files(self.name(), problems(ours)).registration()]
    }
}

/// The OpenCode events the plugin runs hooks on (see the plugin itself), each with the
/// `repowire hook` event it runs. OpenCode reports no event when it exits (measured with
/// 1.18.33: neither `/exit` nor a killed pane gives the plugin one); the peer then shows
/// offline because its process is gone, and questions to it fail as for any ended session.
const HOOKS: [(&str, Event); 5] = [
    ("session.created", Event::SessionStart),
    ("chat.message", Event::Prompt),
    ("session.idle", Event::Stop),
    ("session.error", Event::Interrupt),
    ("session.deleted", Event::SessionEnd),
];

const PLUGIN: &str = include_str!("opencode.js");

/// OpenCode's configuration directory.
fn dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => home_dir()?.join(".config"),
    };
    Ok(base.join("opencode"))
}

fn plugin_path() -> Result<PathBuf> {
    Ok(dir()?.join("plugin").join("repowire.js"))
}

fn config_path() -> Result<PathBuf> {
    Ok(dir()?.join("opencode.json"))
}

/// The plugin, running this binary.
fn plugin(ours: &Ours) -> String {
    let exe = serde_json::to_string(ours.exe()).expect("a string serializes");
    PLUGIN.replace("__REPOWIRE__", &exe)
}

/// Whether `text` is a plugin of repowire's (any version, any binary).
fn is_ours(text: &str) -> bool {
    text.starts_with("// repowire's OpenCode plugin")
}

/// How long OpenCode lets a call of repowire's tools run, in milliseconds (`timeout`). Its
/// default is a minute (measured with 1.18.33: an `ask_peer` whose answer took 75 s failed
/// with "MCP error -32001: Request timed out"; with this it was answered); ask_peer waits up
/// to `mcp_ask_timeout`, 300 s unless configured.
const TOOL_TIMEOUT_MS: u64 = 600_000;

/// `mcp.repowire` in `opencode.json`: a local server running this binary. OpenCode passes
/// its environment on, `TMUX_PANE` included.
fn register_mcp(config: &mut Object, ours: &Ours) -> Result<Vec<Change>> {
    let want = json!({
        "type": "local",
        "command": [ours.exe(), "mcp", "--agent", "opencode"],
        "enabled": true,
        "timeout": TOOL_TIMEOUT_MS,
    });
    set_mcp_server(
        config,
        "mcp",
        want,
        &["type", "command", "enabled", "timeout"],
    )
}

/// What is not as setup leaves it, and the files looked at.
fn problems(ours: &Ours) -> Result<(Vec<String>, String)> {
    let (plugin_file, config) = (plugin_path()?, config_path()?);
    let mut problems = Vec::new();
    let text = read_opt(&plugin_file)?.map(|b| String::from_utf8_lossy(&b).into_owned());
    if text.as_deref() != Some(plugin(ours).as_str()) {
        problems.push(format!(
            "repowire's plugin {} is missing, or from another repowire binary or version",
            plugin_file.display()
        ));
    }
    let settings = read_object(&config)?;
    let command = settings
        .get("mcp")
        .and_then(|s| s.get(MCP_NAME))
        .and_then(|s| s.get("command"))
        .and_then(|c| c.get(0))
        .and_then(Value::as_str);
    if command != Some(ours.exe()) {
        problems.push(format!(
            "the MCP server repowire in {} is missing or runs another binary",
            config.display()
        ));
    }
    Ok((
        problems,
        format!("{}, {}", plugin_file.display(), config.display()),
    ))
}

/// The `sh` script of an OpenCode fork: `$1` the session, `$2` the configuration it runs
/// with, `$3` the question (on stdin: `opencode run` quotes a message given as an argument).
const FORK_SCRIPT: &str = r#"command -v opencode >/dev/null || { echo "opencode is not on PATH here, so its session cannot be forked" >&2; exit 127; }
d=$(mktemp -d "${TMPDIR:-/tmp}/repowire-fork.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
trap 'exit 143' HUP INT TERM
opencode export "$1" >"$d/session.json" 2>"$d/err" || { cat "$d/err" >&2; exit 1; }
XDG_DATA_HOME="$d" opencode import "$d/session.json" >/dev/null 2>"$d/err" || { cat "$d/err" >&2; exit 1; }
printf '%s' "$3" | XDG_DATA_HOME="$d" OPENCODE_CONFIG_CONTENT="$2" opencode run --pure --session "$1" --agent plan --format json
"#;

/// What an OpenCode fork may use, on top of the user's configuration: read, grep and glob
/// (every other tool, MCP servers' included, is off), no edits, commands or fetches, and not
/// repowire's MCP server.
const FORK_CONFIG: &str = r#"{"tools":{"*":false,"read":true,"grep":true,"glob":true,"list":true},"permission":{"edit":"deny","bash":"deny","webfetch":"deny"},"mcp":{"repowire":{"type":"local","command":["true"],"enabled":false}}}"#;

/// OpenCode: the run of lines starting with `┃` that ends in the status line (`┃  Build ·
/// MODEL`) just above the box's bottom edge (`╹▀▀…`); what is between the run's first line
/// and the status line is the text. Its placeholder (`Ask anything… "…"`; 1.14.41: `Ask
/// anything... "…"`) means empty.
fn opencode_box(screen: &str) -> Option<String> {
    let lines = lines(screen);
    let bottom = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("╹▀"))?;
    let bar = |l: &str| l.trim_start().strip_prefix('┃').map(str::to_string);
    let status = bottom.checked_sub(1)?;
    bar(lines[status])?;
    let mut top = status;
    while top > 0 && bar(lines[top - 1]).is_some() {
        top -= 1;
    }
    let body: Vec<String> = lines[top..status].iter().filter_map(|l| bar(l)).collect();
    let text = join_trimmed(body.iter().map(String::as_str));
    let placeholder = ["Ask anything… \"", "Ask anything... \""]
        .iter()
        .any(|p| text.starts_with(p));
    if placeholder && text.ends_with('"') && !text.contains('\n') {
        return Some(String::new());
    }
    Some(text)
}

/// The answer in `opencode run --format json` output (one JSON event a line): the text parts
/// of the last message that has any; an error event is the fork's failure.
fn opencode_answer(stdout: &str) -> Result<String, String> {
    let mut last: Option<(String, Vec<String>)> = None;
    for line in stdout.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let part = &event["part"];
        match event["type"].as_str() {
            Some("error") => {
                let e = &event["error"];
                let why = e["data"]["message"]
                    .as_str()
                    .or(e["name"].as_str())
                    .unwrap_or("unknown error");
                return Err(format!("the fork failed: {}", super::cut(why, 300)));
            }
            Some("text") => {
                let (Some(message), Some(text)) =
                    (part["messageID"].as_str(), part["text"].as_str())
                else {
                    continue;
                };
                match &mut last {
                    Some((id, texts)) if id == message => texts.push(text.to_string()),
                    _ => last = Some((message.to_string(), vec![text.to_string()])),
                }
            }
            _ => {}
        }
    }
    match last.map(|(_, texts)| texts.join("\n")) {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err("the fork's turn ended without a text reply".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Screens of OpenCode 1.18.33 as `capture-pane -p` shows them (escapes are stripped first).
    #[test]
    fn reads_opencodes_prompt_box() {
        let o = OpenCode;
        let edge = format!("╹{}", "▀".repeat(60));
        let start = format!(
            "   █▀▀█ █▀▀█\n\n             \x1b[38;5;75m┃\x1b[38;5;15m\x1b[48;5;234m     \n             ┃  \x1b[38;5;8mAsk anything… \"Fix a TODO in the codebase\"\n             ┃\n             ┃  Build · GPT-5 OpenAI\n             {edge}\n      tab agents  ctrl+p commands\n\n  /w  ⊙ 1 MCP /status   1.18.33\n"
        );
        assert_eq!(o.prompt_box(&start).as_deref(), Some(""));
        let old = format!(
            "┃\n┃  Ask anything... \"Fix broken tests\"\n┃\n┃  Build · GPT-5 OpenAI\n{edge}\n"
        );
        assert_eq!(o.prompt_box(&old).as_deref(), Some(""));
        // In a session: the chat's own `┃` blocks are above, apart from the box.
        let chat = format!(
            "  ┃\n  ┃  SLEEP 10\n  ┃\n\n     ▣  Build · GPT-5 · interrupted\n  ┃\n  ┃  REPLY hello\n  ┃  second line\n  ┃\n  ┃  Build · GPT-5 OpenAI\n  {edge}\n   /w      15 (0%) · $0.00  ctrl+p commands\n"
        );
        assert_eq!(
            o.prompt_box(&chat).as_deref(),
            Some("REPLY hello\nsecond line")
        );
        let pasted =
            format!("  ┃\n  ┃  [Pasted ~2 lines]\n  ┃\n  ┃  Build · GPT-5 OpenAI\n  {edge}\n");
        assert_eq!(o.prompt_box(&pasted).as_deref(), Some("[Pasted ~2 lines]"));
        // A box whose text imitates the placeholder over two lines is text.
        let typed =
            format!("┃\n┃  Ask anything… \"a\n┃  b\"\n┃\n┃  Build · GPT-5 OpenAI\n{edge}\n");
        assert_eq!(
            o.prompt_box(&typed).as_deref(),
            Some("Ask anything… \"a\nb\"")
        );
        assert_eq!(o.prompt_box("$ ls\nfile\n"), None);
        assert_eq!(o.prompt_box(&format!("text\n{edge}\n")), None);
        // A dialog (`/status`) drawn over the box: never an empty box to type into.
        let dialog = format!(
            "          Status                          esc\n          1 Plugins\n ┃        • repowire\n ┃  Ask\n ┃\n ┃  Build · GPT-5 OpenAI\n {edge}\n"
        );
        assert!(o.prompt_box(&dialog).is_some_and(|t| !t.is_empty()));
    }

    #[test]
    fn reads_an_opencode_forks_answer() {
        let ev = |t: &str, m: &str, text: &str| {
            serde_json::json!({"type": t, "part": {"messageID": m, "type": t, "text": text}})
                .to_string()
        };
        let out = [
            r#"{"type":"step_start","part":{"messageID":"m1"}}"#.to_string(),
            ev("text", "m1", "looking"),
            ev("tool_use", "m1", ""),
            ev("text", "m2", "the schema is"),
            ev("text", "m2", "id, email"),
        ]
        .join("\n");
        assert_eq!(
            opencode_answer(&out).as_deref(),
            Ok("the schema is\nid, email")
        );
        let err = r#"{"type":"error","error":{"name":"APIError","data":{"message":"model down"}}}"#;
        assert_eq!(
            opencode_answer(err),
            Err("the fork failed: model down".to_string())
        );
        assert!(opencode_answer("").is_err());
    }

    #[test]
    fn the_plugin_names_this_binary_as_a_javascript_string() {
        let ours = Ours {
            exe: "/opt/it's \"here\"/repowire".into(),
        };
        let text = plugin(&ours);
        assert!(is_ours(&text));
        assert!(text.contains(r#"const REPOWIRE = "/opt/it's \"here\"/repowire""#));
        assert!(!text.contains("__REPOWIRE__"));
    }
}
