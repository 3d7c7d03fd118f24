//! The agents repowire can talk to. Each is one file here that implements [`Kind`]:
//! everything that differs between agents (its names and tested releases, what setup writes
//! into its files and how `status` checks them, how its hook payloads map onto repowire's
//! events, how its prompt box is read and text typed into it, how it forks, and its quirks).
//! The rest of repowire asks an [`Agent`] what it can do and never which one it is.
//!
//! Adding an agent is a file beside this one (plus a plugin file where the agent needs one)
//! and a line in [`Agent::ALL`].
//!
//! Also here, shared by the agents' files: `edit` (planning, checking and writing changes to
//! the agents' files), `hooks` (the hook lists in their JSON files) and `transcript` (reading
//! their JSON-lines transcripts from the end).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod claude;
mod codex;
pub(crate) mod edit;
mod gemini;
pub(crate) mod hooks;
mod opencode;
mod pi;
pub mod transcript;

use edit::Ours;
use hooks::{Found, hook_states};

/// What names an agent, and which of its releases repowire is tested with.
pub struct Identity {
    /// The name in peer records, `--agent`, team files and listings.
    pub name: &'static str,
    /// The people-facing name.
    pub title: &'static str,
    /// Its line in `--agent`'s help.
    pub about: &'static str,
    /// The npm package the agent comes in.
    pub package: &'static str,
    /// The oldest and the newest release that repowire's test suite runs against (README.md,
    /// "Supported versions"); `repowire status` compares the installed one with them.
    pub tested: (&'static str, &'static str),
}

/// One kind of agent session, as repowire meets it.
pub trait Kind: Sync {
    fn identity(&self) -> &'static Identity;
    fn name(&self) -> &'static str {
        self.identity().name
    }
    fn title(&self) -> &'static str {
        self.identity().title
    }
    fn about(&self) -> &'static str {
        self.identity().about
    }
    fn package(&self) -> &'static str {
        self.identity().package
    }
    fn tested(&self) -> (&'static str, &'static str) {
        self.identity().tested
    }

    /// How text is typed into its prompt box.
    fn typing(&self) -> Typing;
    /// The text in its prompt box, if its screen shows one; `None` when none is on screen (a
    /// dialog is open). `screen` is `capture-pane -e` output.
    fn prompt_box(&self, screen: &str) -> Option<String>;

    /// Whether the agent process whose arguments (after the program) are `args` runs no
    /// interactive session a person could see, so none to register as a peer (a script's
    /// `claude -p`).
    fn headless(&self, args: &[&str]) -> bool;
    /// The id of the turn a prompt or stop payload belongs to, if the agent gives one.
    fn turn_id<'a>(&self, _payload: &'a Value) -> Option<&'a str> {
        None
    }
    /// The turn's reply in a stop payload, if it has one.
    fn reply<'a>(&self, payload: &'a Value) -> Option<&'a str> {
        payload
            .get("last_assistant_message")
            .and_then(Value::as_str)
    }
    /// How the turn a stop payload reports ended, where the agent can tell: its reply, or that
    /// it was interrupted.
    fn turn_end(&self, payload: &Value) -> Option<TurnEnd> {
        self.reply(payload).map(|t| TurnEnd::Answer(t.to_string()))
    }
    /// The reply to the prompt `asked` picks, read from the session's transcript, for a
    /// question whose stop hook never stored it; `None` where the agent's transcript is not
    /// read.
    fn reply_in_transcript(
        &self,
        _transcript: &Path,
        _asked: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        None
    }

    /// The command line that answers `prompt` from a read-only fork of session `session_id`,
    /// run in the session's directory `dir`; its stdout is read by [`Kind::fork_answer`]. The
    /// fork leaves the session as it was and no session of its own behind, can use no tool
    /// that changes anything and no MCP server (so none of repowire's tools), and sees the
    /// user's settings and hooks (repowire's own hooks do nothing in it: see `REPOWIRE_FORK`).
    /// `Err` says why the agent cannot.
    fn fork_command(
        &self,
        session_id: &str,
        prompt: &str,
        dir: &Path,
    ) -> Result<Vec<String>, String>;
    /// The answer in the stdout of a [`Kind::fork_command`], or what went wrong.
    fn fork_answer(&self, stdout: &str) -> Result<String, String>;

    /// Whether its hooks may run with another session's environment (so another pane's
    /// `$TMUX_PANE`): the session id then counts first, and the pane only when
    /// [`Kind::check_pane`] vouches for it.
    fn shared_hook_env(&self) -> bool {
        false
    }
    /// Why `$TMUX_PANE` (`pane` of server `socket`) may not be this process's session's pane.
    fn check_pane(&self, _socket: &Path, _pane: &str) -> Result<(), String> {
        Ok(())
    }
    /// Whether its MCP server, started with the session, registers the session (it runs its
    /// session-start hook late).
    fn registers_from_mcp(&self) -> bool {
        false
    }
    /// Whether a session outside tmux registers without an [`Inbox`], as a peer that answers
    /// by fork only (with one, every agent's does, as a full peer).
    fn registers_outside_tmux(&self) -> bool {
        false
    }
    /// The inbox of the session this hook process runs for (read from the hook's environment
    /// and the agent's own files), or why repowire will not use it. `Ok(None)`: the agent has
    /// no inbox at all.
    fn inbox(&self) -> Result<Option<Inbox>, String> {
        Ok(None)
    }
    /// Why a session that stays idle has not taken a message posted to its inbox, and what
    /// fixes that: the end of "it was posted to its inbox but …".
    fn inbox_not_taken(&self) -> String {
        "the session has not taken it".into()
    }

    /// The agent's own events repowire runs `repowire hook` on, each with its hook event.
    fn hooks(&self) -> &'static [(&'static str, Event)];
    /// The JSON file that holds its hook lists (an error for an agent that has none).
    fn hooks_file(&self) -> Result<PathBuf>;
    /// Whether its hook entries carry a `name` (shown while they run).
    fn names_hooks(&self) -> bool {
        false
    }
    /// Its configuration directory.
    fn config_dir(&self) -> Result<PathBuf>;
    /// Whether it looks installed: its command is on PATH, or its configuration directory
    /// exists.
    fn installed(&self) -> bool {
        found(self)
    }
    /// What setup changes in its files (`trust`: let its MCP tools run without asking).
    fn install<'a>(&self, ours: &'a Ours, trust: bool) -> Result<Vec<edit::Edit<'a>>>;
    /// What uninstall changes in its files.
    fn uninstall(&self) -> Result<Vec<edit::Edit<'static>>>;
    /// Its files, checked against what setup leaves there.
    fn health(&self, ours: &Ours) -> Vec<Health>;
}

/// An agent: a handle on its [`Kind`], compared and stored by name.
#[derive(Clone, Copy)]
pub struct Agent(&'static dyn Kind);

impl Agent {
    /// Every agent repowire knows; the first is the default (of `--agent` and team files).
    pub const ALL: [Agent; 5] = [
        claude::CLAUDE,
        codex::CODEX,
        gemini::GEMINI,
        opencode::OPENCODE,
        pi::PI,
    ];

    /// The agent called `name`, if repowire knows one.
    pub fn named(name: &str) -> Option<Agent> {
        Agent::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The names of every agent, for messages: "claude, codex, gemini, opencode or pi".
    pub fn names() -> String {
        let names: Vec<&str> = Agent::ALL.iter().map(|a| a.name()).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

impl std::ops::Deref for Agent {
    type Target = dyn Kind;
    fn deref(&self) -> &(dyn Kind + 'static) {
        self.0
    }
}

impl Default for Agent {
    fn default() -> Agent {
        Agent::ALL[0]
    }
}

impl PartialEq for Agent {
    fn eq(&self, other: &Agent) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Agent {}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Agent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Agent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Agent, D::Error> {
        let name = String::deserialize(d)?;
        Agent::named(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown agent '{name}' (this repowire knows {})",
                Agent::names()
            ))
        })
    }
}

impl clap::ValueEnum for Agent {
    fn value_variants<'a>() -> &'a [Agent] {
        &Agent::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.about()))
    }
}

/// The events repowire's hooks handle (`repowire hook EVENT`); each agent's own events map
/// onto them ([`Kind::hooks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Event {
    /// Register this session's pane as a peer (SessionStart)
    SessionStart,
    /// Mark the peer busy and tie the turn to the message it carries (UserPromptSubmit)
    Prompt,
    /// Send the turn's answer to whoever asked; the peer is idle again (Stop)
    Stop,
    /// The turn was cancelled: whoever asked learns it; the peer is idle again (Interrupt)
    Interrupt,
    /// Mark the peer offline; its undelivered messages wait for it (SessionEnd)
    SessionEnd,
}

/// How a turn ended.
#[derive(Debug, PartialEq, Eq)]
pub enum TurnEnd {
    /// With this answer.
    Answer(String),
    /// Cancelled (Esc): there is no answer.
    Interrupted,
}

/// A session's own inbox, as its hook finds it: a Unix stream socket that takes the inbox
/// protocol (see `deliver::inbox`), and the secret that lets a writer post to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbox {
    pub socket: PathBuf,
    /// A secret: kept in a private file, never logged or printed.
    pub token: String,
    /// The session the messages are for.
    pub session_id: String,
}

/// The inbox a plugin of repowire's (`what`: "plugin", "extension") serves agent `name`'s
/// session and gives the hook in `REPOWIRE_INBOX_SOCKET`, `REPOWIRE_INBOX_TOKEN` and
/// `REPOWIRE_INBOX_SESSION`; `no_session` says why the last may be empty.
fn inbox_from_plugin(what: &str, name: &str, no_session: &str) -> Result<Option<Inbox>, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(socket), Some(token)) = (var("REPOWIRE_INBOX_SOCKET"), var("REPOWIRE_INBOX_TOKEN"))
    else {
        return Err(format!(
            "repowire's {what} gave its hooks no inbox (a {what} from before inboxes, or it could not open one: run `repowire setup --agent {name}`)"
        ));
    };
    if token.len() > 256 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "its inbox token is not the kind repowire's {what} makes"
        ));
    }
    let Some(session_id) = var("REPOWIRE_INBOX_SESSION") else {
        return Err(no_session.into());
    };
    Ok(Some(Inbox {
        socket: socket.into(),
        token,
        session_id,
    }))
}

/// Whether release `a` is newer than `b` (both `N.N.N`).
pub fn newer(a: &str, b: &str) -> bool {
    let nums = |v: &str| -> Vec<u32> { v.split('.').filter_map(|n| n.parse().ok()).collect() };
    nums(a) > nums(b)
}

/// One check of an agent's files, for `repowire status`.
#[derive(Debug)]
pub struct Health {
    /// What was checked (`hooks`, `codex`).
    pub check: &'static str,
    pub detail: String,
    /// The command that fixes it; `None` when all is well.
    pub fix: Option<String>,
    /// Without what this checks, a session of the agent does not become a peer.
    pub needed_to_register: bool,
}

impl Health {
    fn ok(check: &'static str, detail: impl Into<String>) -> Health {
        Health {
            check,
            detail: detail.into(),
            fix: None,
            needed_to_register: false,
        }
    }

    fn problem(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Health {
        Health {
            fix: Some(fix.into()),
            ..Health::ok(check, detail)
        }
    }

    fn registration(self) -> Health {
        Health {
            needed_to_register: true,
            ..self
        }
    }

    /// The one check of an agent whose setup is fixed by `repowire setup --agent NAME`: the
    /// problems found in its files, and which files were read.
    fn of_files(name: &'static str, found: Result<(Vec<String>, String)>) -> Health {
        let fix = format!("repowire setup --agent {name}");
        match found {
            Ok((problems, _)) if !problems.is_empty() => {
                Health::problem(name, problems.join("; "), fix)
            }
            Ok((_, files)) => Health::ok(name, format!("hooks and MCP server in {files}")),
            Err(e) => Health::problem(name, format!("{e:#}"), fix),
        }
    }
}

/// Why a session of `agent` started now would not become a peer: what setup writes is not as
/// it leaves it. `None` when it is.
pub fn not_ready(agent: Agent) -> Option<String> {
    let ours = match Ours::current() {
        Ok(o) => o,
        Err(e) => return Some(format!("{e:#}")),
    };
    let problems: Vec<String> = agent
        .health(&ours)
        .into_iter()
        .filter(|h| h.needed_to_register && h.fix.is_some())
        .map(|h| h.detail)
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The default of [`Kind::installed`]: the agent's command is on PATH, or its configuration
/// directory exists.
fn found<K: Kind + ?Sized>(kind: &K) -> bool {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(kind.name()).is_file()));
    on_path || kind.config_dir().is_ok_and(|d| d.is_dir())
}

/// The problem with `agent`'s hooks in `file` (read as `settings`), if any.
fn hook_problems(file: &Path, settings: &edit::Object, ours: &Ours, agent: Agent) -> Vec<String> {
    let bad: Vec<&str> = hook_states(settings, ours, agent)
        .into_iter()
        .filter(|(_, f)| *f != Found::Ours)
        .map(|(e, _)| e)
        .collect();
    if bad.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "hooks {} are missing from {} or run another binary",
        bad.join(", "),
        file.display()
    )]
}

/// The first argument that is no option: the subcommand of `codex exec`, `opencode run`.
fn command_word<'a>(args: &[&'a str]) -> Option<&'a str> {
    args.iter().find(|a| !a.starts_with('-')).copied()
}

/// At most `n` characters of `s`, for an error message.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// How text reaches an agent's prompt box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typing {
    /// `send-keys -l` in pieces of at most this many bytes, a pause between them: Claude Code
    /// turns one read of 800 bytes or more into a "[Pasted text]" placeholder.
    Keys { chunk: usize, gap: Duration },
    /// One bracketed paste (`paste-buffer -p`): Codex and Gemini take a fast run of keys
    /// followed by Enter as a paste and make the Enter a newline, but know a bracketed paste
    /// for what it is. Enter then waits `gap` after the text shows in the box: Gemini CLI
    /// still takes an Enter up to ~0.1 s after it for part of the paste (measured: 0.05 s
    /// after the text showed, 2 of 5 Enters became newlines; 0.1 s, 1 of 5; 0.2 s, 0 of 6;
    /// Codex: 0 s, 0 of 12).
    Paste { gap: Duration },
}

/// The screen's lines, without trailing empty ones.
pub(super) fn lines(screen: &str) -> Vec<&str> {
    screen.trim_end_matches('\n').split('\n').collect()
}

pub(super) fn is_rule(line: &str) -> bool {
    line.trim_start().starts_with(&"─".repeat(10))
}

pub(super) fn join_trimmed<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// `text` without CSI escape sequences (what `capture-pane -e` adds for colours).
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: up to BEL or ST.
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if c == '\x07' || (prev == '\x1b' && c == '\\') {
                        break;
                    }
                    prev = c;
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> Agent {
        Agent::named(name).unwrap()
    }

    #[test]
    fn runs_without_a_session_to_ask() {
        assert!(agent("claude").headless(&["-p", "hi"]));
        assert!(!agent("claude").headless(&["--resume", "x"]));
        assert!(agent("opencode").headless(&["--print-logs", "run", "hi"]));
        assert!(agent("opencode").headless(&["serve"]));
        assert!(!agent("opencode").headless(&[]));
        assert!(!agent("opencode").headless(&["--model", "x/y"]));
        assert!(!agent("opencode").headless(&["/src/run"]));
        assert!(agent("codex").headless(&["exec", "hi"]));
        assert!(!agent("codex").headless(&["--no-daemon"]));
        assert!(agent("gemini").headless(&["--prompt", "hi"]));
        assert!(!agent("gemini").headless(&["--approval-mode=yolo"]));
    }

    #[test]
    fn payload_fields_per_agent() {
        let p = serde_json::json!({"prompt_id": "p", "turn_id": "t",
            "last_assistant_message": "a", "prompt_response": "[no response text]"});
        assert_eq!(agent("claude").turn_id(&p), Some("p"));
        assert_eq!(agent("codex").turn_id(&p), Some("t"));
        assert_eq!(agent("gemini").turn_id(&p), None);
        assert_eq!(agent("codex").reply(&p), Some("a"));
        assert_eq!(agent("gemini").reply(&p), None);
        assert_eq!(Agent::named("gemini"), Some(agent("gemini")));
        assert_eq!(Agent::named("something"), None);
        assert_eq!(Agent::default(), agent("claude"));
    }

    #[test]
    fn an_agent_is_stored_and_parsed_by_its_name_only() {
        for a in Agent::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
            assert_eq!(serde_json::from_str::<Agent>(&json).unwrap(), a);
        }
        let err = serde_json::from_str::<Agent>("\"nobody\"").unwrap_err();
        assert!(err.to_string().contains("unknown agent 'nobody'"), "{err}");
        assert_eq!(Agent::names(), "claude, codex, gemini, opencode or pi");
    }
}
