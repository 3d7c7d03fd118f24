//! What setup writes for Codex (in `$CODEX_HOME`, else `~/.codex`): `hooks.json` (five
//! hooks) and `config.toml` (the MCP server, forwarding `TMUX`, `TMUX_PANE` and
//! `REPOWIRE_HOME`, and `features.daemon_auto_start = false`: a shared Codex daemon would run
//! every session's hooks and MCP servers with the environment, so the tmux pane, of whichever
//! session started it). Codex's hook trust is left to the user: Codex asks to review new
//! hooks. TOML keeps its formatting and comments (toml_edit).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use toml_edit::DocumentMut;

use super::edit::{Change, Edit, Ours, Verb, parse_toml, read_opt, resolve};
use super::hooks::{install_hooks, remove_hooks};
use super::{MCP_NAME, home_dir};
use crate::agent::Agent;
use crate::hook::Event;

/// The Codex events repowire hooks into (`hooks.json`), each with the `repowire hook` event
/// it runs.
pub(super) const HOOKS: [(&str, Event); 5] = [
    ("SessionStart", Event::SessionStart),
    ("UserPromptSubmit", Event::Prompt),
    ("Stop", Event::Stop),
    ("Interrupt", Event::Interrupt),
    ("SessionEnd", Event::SessionEnd),
];

/// The environment Codex must pass to the MCP server (it passes a filtered one): the pane it
/// runs in, and the spool.
pub(super) const CODEX_MCP_ENV: [&str; 3] = ["TMUX", "TMUX_PANE", "REPOWIRE_HOME"];

/// How long Codex lets an MCP tool call run (its default is a minute; ask_peer waits up to
/// `mcp_ask_timeout`, 300 s unless configured).
pub(super) const CODEX_TOOL_TIMEOUT: i64 = 600;

/// Codex's directory: `$CODEX_HOME`, else `~/.codex`.
pub(super) fn dir() -> Result<PathBuf> {
    match std::env::var_os("CODEX_HOME").filter(|d| !d.is_empty()) {
        Some(d) => Ok(std::path::absolute(d)?),
        None => Ok(home_dir()?.join(".codex")),
    }
}

/// Codex's `config.toml`: `[mcp_servers.repowire]` and `features.daemon_auto_start = false`.
pub(super) fn codex_install(doc: &mut DocumentMut, ours: &Ours) -> Result<Vec<Change>> {
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
pub(super) fn codex_uninstall(
    doc: &mut DocumentMut,
    before: Option<&DocumentMut>,
) -> Result<Vec<Change>> {
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
pub(super) fn toml_table<'a>(
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

pub(super) fn install(ours: &Ours, _trust: bool) -> Result<Vec<Edit<'_>>> {
    let dir = dir()?;
    Ok(vec![
        Edit::new(dir.join("hooks.json"), |m, _| {
            install_hooks(m, ours, Agent::Codex)
        }),
        Edit::toml(dir.join("config.toml"), |d, _| codex_install(d, ours)),
    ])
}

pub(super) fn uninstall() -> Result<Vec<Edit<'static>>> {
    let dir = dir()?;
    Ok(vec![
        Edit::new(dir.join("hooks.json"), |m, before| {
            Ok(remove_hooks(m, before))
        }),
        Edit::toml(dir.join("config.toml"), codex_uninstall),
    ])
}

/// What in `config.toml` is not as setup leaves it, added to `problems`; the file's name.
pub(super) fn mcp_problems(ours: &Ours, problems: &mut Vec<String>) -> Result<String> {
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
