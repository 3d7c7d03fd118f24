//! What setup writes for Gemini CLI: `~/.gemini/settings.json` (four hooks, the MCP server;
//! with `--allow-tools` the server is trusted, so its tools run without asking).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Value, json};

use super::edit::{Change, Edit, Object, Ours, set_mcp_server, unregister_mcp};
use super::hooks::{install_hooks, remove_hooks};
use super::{MCP_NAME, home_dir};
use crate::agent::Agent;
use crate::hook::Event;

/// The Gemini CLI events repowire hooks into (`settings.json`), each with the `repowire
/// hook` event it runs.
pub(super) const HOOKS: [(&str, Event); 4] = [
    ("SessionStart", Event::SessionStart),
    ("BeforeAgent", Event::Prompt),
    ("AfterAgent", Event::Stop),
    ("SessionEnd", Event::SessionEnd),
];

/// Gemini CLI's user settings.
pub(super) fn settings() -> Result<PathBuf> {
    Ok(home_dir()?.join(".gemini").join("settings.json"))
}

/// Gemini CLI's `mcpServers.repowire` (trusted, so its tools run without asking, with
/// `--allow-tools`). Gemini passes the environment on, `TMUX_PANE` included.
pub(super) fn gemini_register_mcp(
    settings: &mut Object,
    ours: &Ours,
    trust: bool,
) -> Result<Vec<Change>> {
    let mut want = json!({"command": ours.exe, "args": ["mcp", "--agent", "gemini"]});
    let mut keys = vec!["command", "args"];
    if trust {
        want["trust"] = json!(true);
        keys.push("trust");
    }
    set_mcp_server(settings, "mcpServers", want, &keys)
}

/// Gemini CLI's configuration directory (for whether it is installed).
pub(super) fn dir() -> Result<PathBuf> {
    Ok(home_dir()?.join(".gemini"))
}

pub(super) fn install(ours: &Ours, trust: bool) -> Result<Vec<Edit<'_>>> {
    Ok(vec![Edit::new(settings()?, move |m, _| {
        let mut changes = install_hooks(m, ours, Agent::Gemini)?;
        changes.extend(gemini_register_mcp(m, ours, trust)?);
        Ok(changes)
    })])
}

pub(super) fn uninstall() -> Result<Vec<Edit<'static>>> {
    Ok(vec![Edit::new(settings()?, |m, before| {
        let mut changes = remove_hooks(m, before);
        changes.extend(unregister_mcp(m, "mcpServers", before)?);
        Ok(changes)
    })])
}

/// Whether the MCP server in `settings` (read from `path`) runs this binary; if not, a problem.
pub(super) fn mcp_problems(
    settings: &Object,
    path: &Path,
    ours: &Ours,
    problems: &mut Vec<String>,
) {
    let command = settings
        .get("mcpServers")
        .and_then(|s| s.get(MCP_NAME))
        .and_then(|s| s.get("command"))
        .and_then(Value::as_str);
    if command != Some(ours.exe()) {
        problems.push(format!(
            "the MCP server repowire in {} is missing or runs another binary",
            path.display()
        ));
    }
}
