//! Claude Code (npm `@anthropic-ai/claude-code`; tested from 2.0.77 to 2.1.332).
//!
//! Its hooks: SessionStart, UserPromptSubmit, Stop and SessionEnd in `settings.json`, whose
//! payloads carry `prompt_id` and (from 2.1) the reply in `last_assistant_message`; the
//! transcript is read where a reply is missing. It is typed into key by key, in pieces, and
//! forks with `-p --resume ID --fork-session`. What setup writes: `settings.json` (the four
//! hooks, and with `--allow-tools` the permission `mcp__repowire`) and `.claude.json` (the
//! user-scope MCP server `repowire`), in `~/.claude` resp. `~`, or both in
//! `$CLAUDE_CONFIG_DIR` when that is set, as Claude Code does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use super::edit::{
    Change, Edit, MCP_NAME, Object, Ours, Verb, array_at, mcp_command_line, object_at, prune,
    read_object, set_mcp_server, unregister_mcp,
};
use super::hooks::{Found, hook_states, install_hooks, remove_hooks};
use super::{
    Agent, Event, Health, Identity, Inbox, Kind, TurnEnd, Typing, is_rule, join_trimmed, lines,
    newer, strip_escapes, transcript,
};

pub(super) struct Claude;

pub(super) const CLAUDE: Agent = Agent(&Claude);

/// How long a Stop hook waits for a reply Claude Code has not yet written to its transcript
/// (2.0.x runs the hook that early at times; it is written within milliseconds).
const TRANSCRIPT_PATIENCE: Duration = Duration::from_secs(2);

/// The first release whose hooks are given the session's inbox (measured: 2.1.224 to 2.1.247,
/// though they announce `peerProtocol` 1, give none).
const INBOX_SINCE: &str = "2.1.248";
/// How long a SessionStart hook waits for the session's `sessions/PID.json`.
const SESSION_FILE_PATIENCE: Duration = Duration::from_secs(5);
/// The inbox protocol (`peerProtocol`) repowire was tested with.
const INBOX_PROTOCOL: u64 = 1;
/// Claude Code's documentation says each of these in a session's environment turns its
/// messaging off (2.1.248 to 2.1.332 give their hooks the inbox with the first two set).
pub(super) const MESSAGING_OFF: [&str; 3] = [
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
];

const IDENTITY: Identity = Identity {
    name: "claude",
    title: "Claude Code",
    about: "Claude Code",
    package: "@anthropic-ai/claude-code",
    tested: ("2.0.77", "2.1.332"),
};

impl Kind for Claude {
    fn identity(&self) -> &'static Identity {
        &IDENTITY
    }

    fn typing(&self) -> Typing {
        Typing::Keys {
            chunk: 200,
            gap: Duration::from_millis(30),
        }
    }

    fn prompt_box(&self, screen: &str) -> Option<String> {
        claude_box(&strip_escapes(screen))
    }

    fn headless(&self, args: &[&str]) -> bool {
        args.iter().any(|a| *a == "-p" || *a == "--print")
    }

    fn turn_id<'a>(&self, payload: &'a Value) -> Option<&'a str> {
        payload.get("prompt_id").and_then(Value::as_str)
    }

    /// The reply, else (2.0.x) the transcript's last assistant text.
    fn turn_end(&self, payload: &Value) -> Option<TurnEnd> {
        let reply = self.reply(payload).map(str::to_string).or_else(|| {
            let t = payload.get("transcript_path").and_then(Value::as_str)?;
            transcript::reply_of_turn(Path::new(t), TRANSCRIPT_PATIENCE)
        });
        reply.map(TurnEnd::Answer)
    }

    /// A message posted to its inbox is in the transcript as Claude Code showed it to the
    /// model: after a line of its own (see [`posted`]).
    fn reply_in_transcript(
        &self,
        transcript: &Path,
        asked: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        transcript::reply_to(transcript, |prompt: &str| asked(posted(prompt)))
    }

    /// (2.0.77 to 2.1.332) `-p --resume ID --fork-session` answers in a new session from a
    /// copy of the conversation, `--no-session-persistence` writes none, `--tools` allows only
    /// the built-in read tools and plan mode refuses edits.
    fn fork_command(
        &self,
        session_id: &str,
        prompt: &str,
        _dir: &Path,
    ) -> Result<Vec<String>, String> {
        Ok([
            "claude",
            "-p",
            "--resume",
            session_id,
            "--fork-session",
            "--no-session-persistence",
            "--permission-mode",
            "plan",
            "--tools",
            "Read,Grep,Glob",
            "--strict-mcp-config",
            "--mcp-config",
            r#"{"mcpServers":{}}"#,
            "--output-format",
            "json",
            "--",
            prompt,
        ]
        .map(String::from)
        .to_vec())
    }

    /// `--output-format json`: one object, `result` its reply.
    fn fork_answer(&self, stdout: &str) -> Result<String, String> {
        let v: Value = serde_json::from_str(stdout.trim())
            .map_err(|_| format!("the fork printed no result: {:?}", super::cut(stdout, 300)))?;
        let result = v.get("result").and_then(Value::as_str).unwrap_or_default();
        if v.get("is_error").and_then(Value::as_bool) == Some(true) {
            return Err(format!("the fork failed: {}", super::cut(result, 300)));
        }
        if result.trim().is_empty() {
            return Err("the fork's turn ended without a text reply".into());
        }
        Ok(result.to_string())
    }

    /// A session outside tmux registers (a full peer with its inbox, else fork-only): its
    /// hooks name its process and session.
    fn registers_outside_tmux(&self) -> bool {
        true
    }

    /// Cross-session messaging (2.1.248 and later): every hook's environment names the
    /// session's socket and token, and `sessions/PID.json` in the configuration directory
    /// tells the protocol the socket speaks. The frame that carries a message is not
    /// documented, so only protocol 1 of the tested releases is used.
    fn inbox(&self) -> Result<Option<Inbox>, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(socket), Some(token)) = (
            var("CLAUDE_CODE_MESSAGING_SOCKET"),
            var("CLAUDE_CODE_MESSAGING_TOKEN"),
        ) else {
            let off = MESSAGING_OFF.iter().find(|v| var(v).is_some());
            return Err(format!(
                "its hooks are given no inbox (releases before {INBOX_SINCE} have none; messaging is off on Bedrock, Vertex or Foundry{})",
                off.map_or(String::new(), |v| format!(
                    ", and documented off with {v}, which is set"
                ))
            ));
        };
        if token.len() > 256 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("its inbox token is not the kind repowire knows".into());
        }
        let (Some(pid), Some(session_id)) = (
            var("CLAUDE_PID").and_then(|p| p.parse::<u32>().ok()),
            var("CLAUDE_CODE_SESSION_ID"),
        ) else {
            return Err("CLAUDE_PID or CLAUDE_CODE_SESSION_ID is missing beside its inbox".into());
        };
        let file = self
            .config_dir()
            .map_err(|e| format!("{e:#}"))?
            .join(format!("sessions/{pid}.json"));
        // Claude Code writes it while its SessionStart hooks run (measured with 2.1.330: at
        // times just after).
        let read = || {
            std::fs::File::open(&file).and_then(|f| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, 64 * 1024), &mut bytes)?;
                Ok(serde_json::from_slice::<Value>(&bytes).ok())
            })
        };
        let end = std::time::Instant::now() + SESSION_FILE_PATIENCE;
        let info = loop {
            match read() {
                Ok(Some(info)) => break info,
                Err(e) if std::time::Instant::now() >= end => {
                    return Err(format!("cannot read {}: {e}", file.display()));
                }
                Ok(None) if std::time::Instant::now() >= end => {
                    return Err(format!("{} is not JSON", file.display()));
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let protocol = info.get("peerProtocol").and_then(Value::as_u64);
        if protocol != Some(INBOX_PROTOCOL) {
            return Err(format!(
                "its inbox speaks protocol {}, repowire knows {INBOX_PROTOCOL}",
                protocol.map_or("(none)".into(), |p| p.to_string())
            ));
        }
        let version = info.get("version").and_then(Value::as_str).unwrap_or("");
        let newest = IDENTITY.tested.1;
        if version.is_empty() || newer(INBOX_SINCE, version) || newer(version, newest) {
            return Err(format!(
                "its release {version:?} is outside the ones repowire delivers to an inbox ({INBOX_SINCE} to {newest})"
            ));
        }
        Ok(Some(Inbox {
            socket: PathBuf::from(socket),
            token,
            session_id,
        }))
    }

    fn inbox_not_taken(&self) -> String {
        let settings = ClaudeFiles::locate().map_or("~/.claude/settings.json".into(), |f| {
            f.settings.display().to_string()
        });
        format!(
            "the session did not start a turn for it: it holds or refuses messages from other sessions (\"crossSessionInbound\" is \"hold\" or \"refuse\" in its settings, or it bypasses permission prompts). Set \"crossSessionInbound\": \"accept\" in {settings} and restart the session, or ask it with --fork"
        )
    }

    fn hooks(&self) -> &'static [(&'static str, Event)] {
        &HOOKS
    }

    fn hooks_file(&self) -> Result<PathBuf> {
        Ok(ClaudeFiles::locate()?.settings)
    }

    fn config_dir(&self) -> Result<PathBuf> {
        let files = ClaudeFiles::locate()?;
        Ok(files
            .settings
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default())
    }

    /// Also when `CLAUDE_CONFIG_DIR` names a directory not made yet.
    fn installed(&self) -> bool {
        std::env::var_os("CLAUDE_CONFIG_DIR").is_some() || super::found(self)
    }

    fn install<'a>(&self, ours: &'a Ours, trust: bool) -> Result<Vec<Edit<'a>>> {
        let files = ClaudeFiles::locate()?;
        Ok(vec![
            Edit::new(files.settings, move |m, _| {
                let mut changes = install_hooks(m, ours, CLAUDE)?;
                if trust {
                    changes.extend(allow_tools(m)?);
                }
                Ok(changes)
            }),
            Edit::new(files.state, |m, _| register_mcp(m, ours)),
        ])
    }

    fn uninstall(&self) -> Result<Vec<Edit<'static>>> {
        let files = ClaudeFiles::locate()?;
        Ok(vec![
            Edit::new(files.settings, |m, before| {
                let mut changes = remove_hooks(m, before);
                changes.extend(disallow_tools(m, before));
                Ok(changes)
            }),
            Edit::new(files.state, |m, before| {
                unregister_mcp(m, "mcpServers", before)
            }),
        ])
    }

    /// Two checks: the hooks (without them no session becomes a peer) and the MCP server.
    fn health(&self, ours: &Ours) -> Vec<Health> {
        match ClaudeFiles::locate() {
            Ok(files) => vec![
                check_hooks(&files, ours),
                check_mcp(&files, ours),
                check_inbox(&files),
            ],
            Err(e) => vec![Health::problem(
                "claude",
                format!("{e:#}"),
                "set HOME (or CLAUDE_CONFIG_DIR)",
            )],
        }
    }
}

/// The message in a prompt of the transcript: a message posted to the inbox is recorded
/// after "Another Claude session sent a message:" (and followed by a paragraph of Claude
/// Code's); anything else is the prompt itself.
fn posted(prompt: &str) -> &str {
    prompt
        .strip_prefix("Another Claude session sent a message:\n")
        .unwrap_or(prompt)
}

/// A line starting with `❯` between the last two horizontal rules (the stand-in agent draws
/// the same).
fn claude_box(screen: &str) -> Option<String> {
    let lines = lines(screen);
    let rules: Vec<usize> = (0..lines.len()).filter(|&i| is_rule(lines[i])).collect();
    let [.., top, bottom] = rules[..] else {
        return None;
    };
    let body = &lines[top + 1..bottom];
    let first = body.first()?.strip_prefix('❯')?;
    let text = join_trimmed(std::iter::once(first).chain(body[1..].iter().copied()));
    // Claude Code's hint while prompts typed during a turn wait: the box is empty.
    if text.starts_with("Press up to edit queued messages") {
        return Some(String::new());
    }
    Some(text)
}

/// The Claude Code events repowire hooks into, each with the `repowire hook` event it runs.
const HOOKS: [(&str, Event); 4] = [
    ("SessionStart", Event::SessionStart),
    ("UserPromptSubmit", Event::Prompt),
    ("Stop", Event::Stop),
    ("SessionEnd", Event::SessionEnd),
];

/// The permission rule that allows every tool of the MCP server.
const TOOLS_RULE: &str = "mcp__repowire";

/// Where Claude Code keeps its user settings and its state (where user MCP servers live).
struct ClaudeFiles {
    pub settings: PathBuf,
    pub state: PathBuf,
}

impl ClaudeFiles {
    /// `~/.claude/settings.json` and `~/.claude.json`; with `CLAUDE_CONFIG_DIR` set, Claude Code
    /// (checked with 2.1.330) keeps both in that directory instead.
    fn locate() -> Result<ClaudeFiles> {
        if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
            let dir = std::path::absolute(dir)?;
            return Ok(ClaudeFiles {
                settings: dir.join("settings.json"),
                state: dir.join(".claude.json"),
            });
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("HOME is not set, so Claude Code's files cannot be found"))?;
        Ok(ClaudeFiles {
            settings: home.join(".claude").join("settings.json"),
            state: home.join(".claude.json"),
        })
    }
}

/// The state of the MCP server entry in `state` (`.claude.json`).
fn mcp_state(state: &Object, ours: &Ours) -> Found {
    match state.get("mcpServers").and_then(|s| s.get(MCP_NAME)) {
        None => Found::Missing,
        Some(entry) if mcp_differs(entry, &ours.mcp_server()).is_none() => Found::Ours,
        Some(entry) => Found::Elsewhere(mcp_command_line(entry)),
    }
}

fn allow_tools(settings: &mut Object) -> Result<Vec<Change>> {
    let permissions = object_at(settings, "permissions", "permissions")?;
    let allow = array_at(permissions, "allow", "permissions.allow")?;
    if allow.iter().any(|r| r == TOOLS_RULE) {
        return Ok(Vec::new());
    }
    allow.push(json!(TOOLS_RULE));
    Ok(vec![Change::new(
        Verb::Add,
        format!("permission {TOOLS_RULE} (its tools run without asking)"),
    )])
}

fn disallow_tools(settings: &mut Object, before: Option<&Object>) -> Vec<Change> {
    let Some(permissions) = settings
        .get_mut("permissions")
        .and_then(Value::as_object_mut)
    else {
        return Vec::new();
    };
    let Some(allow) = permissions.get_mut("allow").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    let len = allow.len();
    allow.retain(|r| r != TOOLS_RULE);
    if allow.len() == len {
        return Vec::new();
    }
    let before_permissions = before
        .and_then(|b| b.get("permissions"))
        .and_then(Value::as_object);
    prune(permissions, "allow", before_permissions);
    prune(settings, "permissions", before);
    vec![Change::new(
        Verb::Remove,
        format!("permission {TOOLS_RULE}"),
    )]
}

fn register_mcp(state: &mut Object, ours: &Ours) -> Result<Vec<Change>> {
    set_mcp_server(state, "mcpServers", ours.mcp_server(), &MCP_KEYS)
}

fn mcp_differs(entry: &Value, want: &Value) -> Option<&'static str> {
    MCP_KEYS.into_iter().find(|k| entry.get(k) != want.get(k))
}

/// What of Claude Code's MCP server entry says what runs.
const MCP_KEYS: [&str; 3] = ["type", "command", "args"];

/// What keeps questions from reaching a session through its inbox: `crossSessionInbound`
/// set to hold or refuse them (a problem: they fail), or the variables documented to turn
/// messaging off, in the settings' `env` or in this environment (a choice: sessions without
/// an inbox are typed into).
fn check_inbox(files: &ClaudeFiles) -> Health {
    let path = files.settings.display();
    let Ok(settings) = read_object(&files.settings) else {
        return Health::ok("inbox", format!("{path} unreadable (see hooks)"));
    };
    let inbound = settings.get("crossSessionInbound").and_then(Value::as_str);
    if let Some(how @ ("hold" | "refuse")) = inbound {
        return Health::problem(
            "inbox",
            format!(
                "crossSessionInbound is {how:?} in {path}: questions posted to a session's inbox are not taken, and fail"
            ),
            format!("set \"crossSessionInbound\": \"accept\" in {path}"),
        );
    }
    let env = settings.get("env").and_then(Value::as_object);
    let off: Vec<String> = MESSAGING_OFF
        .iter()
        .filter_map(|v| {
            let set = |x: Option<&str>| x.is_some_and(|x| !x.is_empty());
            if set(env.and_then(|e| e.get(*v)).and_then(Value::as_str)) {
                Some(format!("{v} in {path}'s env"))
            } else if set(std::env::var(v).ok().as_deref()) {
                Some(format!("{v} in this environment"))
            } else {
                None
            }
        })
        .collect();
    if !off.is_empty() {
        return Health::ok(
            "inbox",
            format!(
                "{} set: Claude Code's documentation says that turns its messaging off (2.1.248 to 2.1.332 keep it on); a session whose hooks get no inbox is typed into in tmux, and answers by fork only outside it",
                off.join(" and ")
            ),
        );
    }
    Health::ok(
        "inbox",
        format!(
            "sessions of {INBOX_SINCE} to {} are posted to (crossSessionInbound: {})",
            IDENTITY.tested.1,
            inbound.unwrap_or("accept")
        ),
    )
}

fn check_hooks(files: &ClaudeFiles, ours: &Ours) -> Health {
    let path = files.settings.display();
    let settings = match read_object(&files.settings) {
        Ok(s) => s,
        Err(e) => {
            return Health::problem("hooks", format!("{e:#}"), format!("edit {path}"))
                .registration();
        }
    };
    let states = hook_states(&settings, ours, CLAUDE);
    let missing: Vec<&str> = states
        .iter()
        .filter(|(_, f)| *f == Found::Missing)
        .map(|(e, _)| *e)
        .collect();
    let elsewhere: Vec<String> = states
        .iter()
        .filter_map(|(e, f)| match f {
            Found::Elsewhere(cmd) => Some(format!("{e} runs {cmd}")),
            _ => None,
        })
        .collect();
    if missing.is_empty() && elsewhere.is_empty() {
        return Health::ok(
            "hooks",
            format!("all {} in {path} run {}", states.len(), ours.exe()),
        );
    }
    let mut detail = Vec::new();
    if !missing.is_empty() {
        detail.push(format!("{} missing from {path}", missing.join(", ")));
    }
    if !elsewhere.is_empty() {
        detail.push(format!(
            "{}, not this binary ({})",
            elsewhere.join(", "),
            ours.exe()
        ));
    }
    Health::problem("hooks", detail.join("; "), "repowire hooks install").registration()
}

fn check_mcp(files: &ClaudeFiles, ours: &Ours) -> Health {
    let path = files.state.display();
    let state = match read_object(&files.state) {
        Ok(s) => s,
        Err(e) => return Health::problem("mcp", format!("{e:#}"), format!("edit {path}")),
    };
    match mcp_state(&state, ours) {
        Found::Ours => Health::ok(
            "mcp",
            format!("server repowire in {path} runs {} mcp", ours.exe()),
        ),
        Found::Missing => Health::problem(
            "mcp",
            format!("no MCP server repowire in {path}"),
            "repowire setup",
        ),
        Found::Elsewhere(cmd) => Health::problem(
            "mcp",
            format!(
                "the MCP server repowire in {path} runs {cmd}, not this binary ({})",
                ours.exe()
            ),
            "repowire setup",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "────────────────────────────────────────";

    #[test]
    fn a_posted_message_is_read_without_claude_codes_words_around_it() {
        let header = "[repowire] Question from a (query 01J). Answer it.";
        let recorded = format!(
            "Another Claude session sent a message:\n{header}\nq\n\nThis came from another Claude session — treat it as a teammate's request."
        );
        assert!(posted(&recorded).starts_with(&format!("{header}\n")));
        assert_eq!(posted("typed by a person"), "typed by a person");
    }

    #[test]
    fn reads_claude_codes_prompt_box() {
        let screen = format!(
            "● ECHO: hi\n\n{RULE}\n❯ half a draft\n  second line\n{RULE}\n  ? for shortcuts\n"
        );
        let c = Claude;
        assert_eq!(
            c.prompt_box(&screen).as_deref(),
            Some("half a draft\nsecond line")
        );
        let empty = format!("{RULE}\n❯ \n{RULE}\n");
        assert_eq!(c.prompt_box(&empty).as_deref(), Some(""));
        let queued = format!("{RULE}\n❯ Press up to edit queued messages\n{RULE}\n");
        assert_eq!(c.prompt_box(&queued).as_deref(), Some(""));
        let dialog = format!("{RULE}\n Do you want to proceed?\n ❯ 1. Yes\n   2. No\n{RULE}\n");
        assert_eq!(c.prompt_box(&dialog), None);
        assert_eq!(c.prompt_box("$ ls\nfile\n"), None);
    }
}
