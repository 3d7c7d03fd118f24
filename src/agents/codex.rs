//! Codex CLI (npm `@openai/codex`; tested from 0.169.0 to 0.171.0).
//!
//! Its hooks (SessionStart, UserPromptSubmit, Stop, Interrupt, SessionEnd) carry `turn_id`
//! and the reply in `last_assistant_message`; it starts a session, and runs SessionStart,
//! only with the first prompt, so its MCP server registers a fresh session. Text reaches it
//! as one bracketed paste; it forks with `codex exec fork`.
//!
//! What setup writes (in `$CODEX_HOME`, else `~/.codex`): `hooks.json` (five
//! hooks) and `config.toml` (the MCP server, forwarding `TMUX`, `TMUX_PANE` and
//! `REPOWIRE_HOME`, and `features.daemon_auto_start = false`: a shared Codex daemon would run
//! every session's hooks and MCP servers with the environment, so the tmux pane, of whichever
//! session started it). Codex's hook trust is left to the user: Codex asks to review new
//! hooks. TOML keeps its formatting and comments (toml_edit).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};
use serde_json::Value;
use toml_edit::DocumentMut;

use super::edit::{
    Change, Edit, MCP_NAME, Ours, Verb, home_dir, parse_toml, read_object, read_opt, resolve,
};
use super::hooks::{install_hooks, remove_hooks};
use super::{Agent, Event, Health, Identity, Kind, Typing, join_trimmed, lines, strip_escapes};
use crate::process;
use crate::tmux::Server;

pub(super) struct Codex;

pub(super) const CODEX: Agent = Agent(&Codex);

const IDENTITY: Identity = Identity {
    name: "codex",
    title: "Codex",
    about: "OpenAI's Codex CLI",
    package: "@openai/codex",
    tested: ("0.169.0", "0.171.0"),
};

impl Kind for Codex {
    fn identity(&self) -> &'static Identity {
        &IDENTITY
    }

    fn typing(&self) -> Typing {
        Typing::Paste {
            gap: Duration::from_millis(50),
        }
    }

    /// Codex draws its placeholder, which changes, only set apart by being dim.
    fn prompt_box(&self, screen: &str) -> Option<String> {
        codex_box(screen)
    }

    fn headless(&self, args: &[&str]) -> bool {
        matches!(super::command_word(args), Some("exec" | "e"))
    }

    fn turn_id<'a>(&self, payload: &'a Value) -> Option<&'a str> {
        payload.get("turn_id").and_then(Value::as_str)
    }

    /// (0.169.0 to 0.171.0) `codex exec fork ID` answers from a copy, `--ephemeral` writes no
    /// session file, its read-only sandbox makes the file system read-only for every command
    /// it runs (measured: `touch` fails with "Read-only file system"), and each MCP server of
    /// its configuration (`$CODEX_HOME` and the directory's `.codex/config.toml`) is disabled
    /// by name: `-c mcp_servers={}` does not remove them.
    fn fork_command(
        &self,
        session_id: &str,
        prompt: &str,
        dir: &Path,
    ) -> Result<Vec<String>, String> {
        let mut argv: Vec<String> = [
            "codex",
            "exec",
            "fork",
            "--ephemeral",
            "--skip-git-repo-check",
            "-c",
            r#"sandbox_mode="read-only""#,
            "-c",
            r#"approval_policy="never""#,
        ]
        .map(String::from)
        .to_vec();
        let home = std::env::var_os("CODEX_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".codex")));
        for name in codex_mcp_servers(home.as_deref(), dir) {
            argv.extend(["-c".into(), format!("mcp_servers.{name}.enabled=false")]);
        }
        argv.extend(["--".into(), session_id.into(), prompt.into()]);
        Ok(argv)
    }

    /// `codex exec` prints the last message alone on stdout.
    fn fork_answer(&self, stdout: &str) -> Result<String, String> {
        match stdout.trim() {
            "" => Err("the fork's turn ended without a text reply".into()),
            text => Ok(text.to_string()),
        }
    }

    /// A Codex app-server daemon runs the hooks of every TUI attached to it with the
    /// environment of the one that started it.
    fn shared_hook_env(&self) -> bool {
        true
    }

    /// The pane is ours when this process descends from the pane's foreground job (see
    /// [`process::agent_process`]) and not through a Codex app-server daemon (which is the
    /// starting TUI's child while it runs). Where processes cannot be read (a sandbox), it is.
    fn check_pane(&self, socket: &Path, pane: &str) -> Result<(), String> {
        if !process::readable() {
            return Ok(());
        }
        let descends = matches!(Server::at(socket).pane(pane), Ok(Some(p)) if process::agent_process(p.pid).is_some());
        if descends && !under_daemon() {
            return Ok(());
        }
        Err(format!(
            "$TMUX_PANE {pane} is not the pane this Codex session runs in; not registering it (Codex must run without its shared app-server daemon: `repowire setup --agent codex` configures that)"
        ))
    }

    /// Codex starts a session, and runs its SessionStart hook, only with the first prompt; its
    /// MCP servers start with the TUI.
    fn registers_from_mcp(&self) -> bool {
        true
    }

    fn hooks(&self) -> &'static [(&'static str, Event)] {
        &HOOKS
    }

    fn hooks_file(&self) -> Result<PathBuf> {
        Ok(dir()?.join("hooks.json"))
    }

    fn config_dir(&self) -> Result<PathBuf> {
        dir()
    }

    fn install<'a>(&self, ours: &'a Ours, _trust: bool) -> Result<Vec<Edit<'a>>> {
        let dir = dir()?;
        Ok(vec![
            Edit::new(dir.join("hooks.json"), |m, _| install_hooks(m, ours, CODEX)).note(
                "Codex: the next time it starts it shows \"Hooks need review\" for repowire's hooks; choose \"Trust all and continue\" (or review them with /hooks). repowire does not approve them for you, and without that they do not run.",
            ),
            Edit::toml(dir.join("config.toml"), |d, _| codex_install(d, ours)),
        ])
    }

    fn uninstall(&self) -> Result<Vec<Edit<'static>>> {
        let dir = dir()?;
        Ok(vec![
            Edit::new(dir.join("hooks.json"), |m, before| {
                Ok(remove_hooks(m, before))
            }),
            Edit::toml(dir.join("config.toml"), codex_uninstall),
        ])
    }

    fn health(&self, ours: &Ours) -> Vec<Health> {
        vec![Health::of_files(self.name(), problems(ours)).registration()]
    }
}

/// What of Codex's files is not as setup leaves it, and the files looked at.
fn problems(ours: &Ours) -> Result<(Vec<String>, String)> {
    let hooks_file = Codex.hooks_file()?;
    let mut problems = super::hook_problems(&hooks_file, &read_object(&hooks_file)?, ours, CODEX);
    let config = mcp_problems(ours, &mut problems)?;
    Ok((problems, format!("{}, {config}", hooks_file.display())))
}

/// Whether an ancestor of this process is a `codex app-server` (the shared daemon).
fn under_daemon() -> bool {
    process::ancestors().any(|pid| {
        let argv = process::command_line(pid);
        argv.first().is_some_and(|p| p.ends_with("codex")) && argv.iter().any(|a| a == "app-server")
    })
}

/// The Codex events repowire hooks into (`hooks.json`), each with the `repowire hook` event
/// it runs.
const HOOKS: [(&str, Event); 5] = [
    ("SessionStart", Event::SessionStart),
    ("UserPromptSubmit", Event::Prompt),
    ("Stop", Event::Stop),
    ("Interrupt", Event::Interrupt),
    ("SessionEnd", Event::SessionEnd),
];

/// The environment Codex must pass to the MCP server (it passes a filtered one): the pane it
/// runs in, and the spool.
const CODEX_MCP_ENV: [&str; 3] = ["TMUX", "TMUX_PANE", "REPOWIRE_HOME"];

/// How long Codex lets an MCP tool call run (its default is a minute; ask_peer waits up to
/// `mcp_ask_timeout`, 300 s unless configured).
const CODEX_TOOL_TIMEOUT: i64 = 600;

/// Codex's directory: `$CODEX_HOME`, else `~/.codex`.
fn dir() -> Result<PathBuf> {
    match std::env::var_os("CODEX_HOME").filter(|d| !d.is_empty()) {
        Some(d) => Ok(std::path::absolute(d)?),
        None => Ok(home_dir()?.join(".codex")),
    }
}

/// Codex's `config.toml`: `[mcp_servers.repowire]` and `features.daemon_auto_start = false`.
fn codex_install(doc: &mut DocumentMut, ours: &Ours) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let servers = toml_table(doc.as_table_mut(), "mcp_servers")?;
    let mut want = toml_edit::Table::new();
    want["command"] = toml_edit::value(ours.exe.as_str());
    want["args"] = toml_edit::value(toml_edit::Array::from_iter(["mcp", "--agent", "codex"]));
    want["env_vars"] = toml_edit::value(toml_edit::Array::from_iter(CODEX_MCP_ENV));
    want["tool_timeout_sec"] = toml_edit::value(CODEX_TOOL_TIMEOUT);
    let line = format!("{} mcp --agent codex", ours.exe);
    match servers
        .get_mut(MCP_NAME)
        .and_then(|i| i.as_table_like_mut())
    {
        None => {
            servers.insert(MCP_NAME, toml_edit::Item::Table(want));
            changes.push(Change::new(
                Verb::Add,
                format!("MCP server {MCP_NAME}: {line}"),
            ));
        }
        Some(entry) => {
            // Keep whatever else the entry has (an `env` of the user's, say).
            let mut differs = false;
            for (key, value) in want.iter() {
                let same = entry.get(key).map(|v| v.to_string().trim().to_string())
                    == Some(value.to_string().trim().to_string());
                if !same {
                    entry.insert(key, value.clone());
                    differs = true;
                }
            }
            if differs {
                changes.push(Change::new(
                    Verb::Update,
                    format!("MCP server {MCP_NAME}: {line}"),
                ));
            }
        }
    }
    let features = toml_table(doc.as_table_mut(), "features")?;
    if features.get("daemon_auto_start").and_then(|v| v.as_bool()) != Some(false) {
        features.insert("daemon_auto_start", toml_edit::value(false));
        changes.push(Change::new(
            Verb::Add,
            "features.daemon_auto_start = false (a shared daemon would run every session's hooks in the first session's tmux pane)",
        ));
    }
    Ok(changes)
}

/// Removes what [`codex_install`] added; `before` is the file before setup first changed it.
fn codex_uninstall(doc: &mut DocumentMut, before: Option<&DocumentMut>) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let had = |table: &str, key: &str| {
        before
            .and_then(|b| b.get(table))
            .and_then(|t| t.get(key))
            .cloned()
    };
    let had_table = |table: &str| before.is_some_and(|b| b.contains_key(table));
    if let Some(servers) = doc
        .get_mut("mcp_servers")
        .and_then(|i| i.as_table_like_mut())
        && servers.remove(MCP_NAME).is_some()
    {
        changes.push(Change::new(Verb::Remove, format!("MCP server {MCP_NAME}")));
        if servers.is_empty() && !had_table("mcp_servers") {
            doc.remove("mcp_servers");
        }
    }
    if let Some(features) = doc.get_mut("features").and_then(|i| i.as_table_like_mut())
        && features.get("daemon_auto_start").and_then(|v| v.as_bool()) == Some(false)
    {
        // Only where setup put it: the user's own setting (in the original) stays.
        match had("features", "daemon_auto_start") {
            Some(v) if v.as_bool() == Some(false) => {}
            Some(v) => {
                features.insert("daemon_auto_start", v);
                changes.push(Change::new(
                    Verb::Update,
                    "features.daemon_auto_start, back to what it was",
                ));
            }
            None => {
                features.remove("daemon_auto_start");
                changes.push(Change::new(Verb::Remove, "features.daemon_auto_start"));
                if features.is_empty() && !had_table("features") {
                    doc.remove("features");
                }
            }
        }
    }
    Ok(changes)
}

/// `table[key]` as a table, created (implicit, so `[key.sub]` headers stay as they are) if
/// missing; an error if it is something else.
fn toml_table<'a>(
    table: &'a mut toml_edit::Table,
    key: &str,
) -> Result<&'a mut dyn toml_edit::TableLike> {
    let item = table.entry(key).or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let kind = item.type_name();
    item.as_table_like_mut()
        .ok_or_else(|| anyhow!("`{key}` is {kind}, where Codex expects a table"))
}

/// What in `config.toml` is not as setup leaves it, added to `problems`; the file's name.
fn mcp_problems(ours: &Ours, problems: &mut Vec<String>) -> Result<String> {
    let config = dir()?.join("config.toml");
    let doc = parse_toml(&config, read_opt(&resolve(&config)?)?.as_deref())?;
    let server = doc.get("mcp_servers").and_then(|s| s.get(MCP_NAME));
    let command = server
        .and_then(|s| s.get("command"))
        .and_then(|c| c.as_str());
    let forwarded = |var: &str| {
        server
            .and_then(|s| s.get("env_vars"))
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(var)))
    };
    if command != Some(ours.exe()) {
        problems.push(format!(
            "the MCP server repowire in {} is missing or runs another binary",
            config.display()
        ));
    } else if !CODEX_MCP_ENV.iter().all(|v| forwarded(v)) {
        problems.push(format!(
            "the MCP server repowire in {} does not get {}",
            config.display(),
            CODEX_MCP_ENV.join(", ")
        ));
    }
    let daemon = doc.get("features").and_then(|f| f.get("daemon_auto_start"));
    if daemon.and_then(|d| d.as_bool()) != Some(false) {
        problems.push(format!(
            "{} lacks features.daemon_auto_start = false: a shared Codex daemon would run the hooks in the wrong pane",
            config.display()
        ));
    }
    Ok(config.display().to_string())
}

/// Codex: the last line starting with `›`, and the indented lines under it. Empty when what
/// follows `› ` is dim (the placeholder). A numbered choice (`› 1. Yes`) is a dialog.
fn codex_box(screen: &str) -> Option<String> {
    let lines = lines(screen);
    let at = lines
        .iter()
        .rposition(|l| strip_escapes(l).starts_with('›'))?;
    let raw_first = lines[at];
    let first = strip_escapes(raw_first);
    let rest = first['›'.len_utf8()..].trim_start();
    let numbered = rest.split_once(". ").is_some_and(|(n, _)| {
        !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
    });
    if numbered {
        return None;
    }
    let after_mark = &raw_first[raw_first.find('›')? + '›'.len_utf8()..];
    if placeholder_dim(after_mark) {
        return Some(String::new());
    }
    let body = lines[at + 1..]
        .iter()
        .map(|l| strip_escapes(l))
        .take_while(|l| l.starts_with("  ") && !l.trim().is_empty())
        .collect::<Vec<_>>();
    Some(join_trimmed(
        std::iter::once(rest).chain(body.iter().map(String::as_str)),
    ))
}

/// Whether the first styled text after the `›` is dim (SGR 2).
fn placeholder_dim(after_mark: &str) -> bool {
    let mut rest = after_mark.trim_start_matches(' ');
    while let Some(seq) = rest.strip_prefix("\x1b[") {
        let end = seq
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(seq.len());
        if seq[end..].starts_with('m') && seq[..end].split(';').any(|p| p == "2") {
            return true;
        }
        rest = seq.get(end + 1..).unwrap_or("").trim_start_matches(' ');
    }
    false
}

/// The names of the MCP servers Codex would start for a session in `dir`: those of
/// `home/config.toml` (Codex's home) and of `dir/.codex/config.toml`. A name that cannot be
/// written as a bare TOML key is quoted.
fn codex_mcp_servers(home: Option<&std::path::Path>, dir: &std::path::Path) -> Vec<String> {
    let files = home
        .map(std::path::Path::to_path_buf)
        .into_iter()
        .chain([dir.join(".codex")]);
    let mut names: Vec<String> = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f.join("config.toml")) else {
            continue;
        };
        let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
            continue;
        };
        if let Some(servers) = doc.get("mcp_servers").and_then(|s| s.as_table_like()) {
            for (name, _) in servers.iter() {
                let bare = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                let key = if bare {
                    name.to_string()
                } else {
                    serde_json::to_string(name).expect("a string serializes")
                };
                if !names.contains(&key) {
                    names.push(key);
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mcp_server_of_codex_is_found_to_be_disabled_in_a_fork() {
        let t = tempfile::tempdir().unwrap();
        let (home, dir) = (t.path().join("h"), t.path().join("w"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(dir.join(".codex")).unwrap();
        std::fs::write(
            home.join("config.toml"),
            "model = \"x\"\n[mcp_servers.repowire]\ncommand = \"r\"\n[mcp_servers.\"my files\"]\ncommand = \"f\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(".codex/config.toml"),
            "[mcp_servers.repowire]\ncommand = \"r\"\n[mcp_servers.db]\ncommand = \"d\"\n",
        )
        .unwrap();
        assert_eq!(
            codex_mcp_servers(Some(&home), &dir),
            ["repowire", "\"my files\"", "db"]
        );
        assert!(codex_mcp_servers(None, t.path()).is_empty());
    }

    // Screens as `capture-pane -e -p` shows them (Codex 0.169.0, Gemini CLI 0.61.0).
    #[test]
    fn reads_codexs_prompt_box() {
        let c = Codex;
        let empty = "› hi\n\n• ECHO: hi\n\n\x1b[1m›\x1b[0m\x1b[39m\x1b[49m \x1b[2mAsk Codex to do anything\n\x1b[0m\x1b[39m\x1b[49m\n  \x1b[38;5;223mfake-model default\x1b[39m · /w\n";
        assert_eq!(c.prompt_box(empty).as_deref(), Some(""));
        let typed = "\x1b[1m›\x1b[0m\x1b[39m\x1b[49m hello there\n  second line\n\n  \x1b[38;5;223mfake-model default\x1b[39m · /w\n";
        assert_eq!(
            c.prompt_box(typed).as_deref(),
            Some("hello there\nsecond line")
        );
        let dialog = "  Hooks need review\n› 1. Review hooks\n  2. Trust all and continue\n";
        assert_eq!(c.prompt_box(dialog), None);
        assert_eq!(c.prompt_box("$ ls\n"), None);
    }
}
