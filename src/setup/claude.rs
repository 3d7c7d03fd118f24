//! What setup writes for Claude Code: `settings.json` (the four hooks, and with
//! `--allow-tools` the permission `mcp__repowire`) and `.claude.json` (the user-scope MCP
//! server `repowire`), in `~/.claude` resp. `~`, or both in `$CLAUDE_CONFIG_DIR` when that is
//! set, as Claude Code does.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use super::MCP_NAME;
use super::edit::{
    Change, Edit, Object, Ours, Verb, array_at, mcp_command_line, object_at, prune, set_mcp_server,
    unregister_mcp,
};
use super::hooks::{Found, install_hooks, remove_hooks};
use crate::agent::Agent;
use crate::hook::Event;

/// The Claude Code events repowire hooks into, each with the `repowire hook` event it runs.
pub(super) const HOOKS: [(&str, Event); 4] = [
    ("SessionStart", Event::SessionStart),
    ("UserPromptSubmit", Event::Prompt),
    ("Stop", Event::Stop),
    ("SessionEnd", Event::SessionEnd),
];

/// The permission rule that allows every tool of the MCP server.
pub(super) const TOOLS_RULE: &str = "mcp__repowire";

/// Where Claude Code keeps its user settings and its state (where user MCP servers live).
pub(crate) struct ClaudeFiles {
    pub settings: PathBuf,
    pub state: PathBuf,
}

impl ClaudeFiles {
    /// `~/.claude/settings.json` and `~/.claude.json`; with `CLAUDE_CONFIG_DIR` set, Claude Code
    /// (checked with 2.1.330) keeps both in that directory instead.
    pub(crate) fn locate() -> Result<ClaudeFiles> {
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
pub(crate) fn mcp_state(state: &Object, ours: &Ours) -> Found {
    match state.get("mcpServers").and_then(|s| s.get(MCP_NAME)) {
        None => Found::Missing,
        Some(entry) if mcp_differs(entry, &ours.mcp_server()).is_none() => Found::Ours,
        Some(entry) => Found::Elsewhere(mcp_command_line(entry)),
    }
}

pub(super) fn allow_tools(settings: &mut Object) -> Result<Vec<Change>> {
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

pub(super) fn disallow_tools(settings: &mut Object, before: Option<&Object>) -> Vec<Change> {
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

pub(super) fn register_mcp(state: &mut Object, ours: &Ours) -> Result<Vec<Change>> {
    set_mcp_server(state, "mcpServers", ours.mcp_server(), &MCP_KEYS)
}

pub(super) fn mcp_differs(entry: &Value, want: &Value) -> Option<&'static str> {
    MCP_KEYS.into_iter().find(|k| entry.get(k) != want.get(k))
}

/// What of Claude Code's MCP server entry says what runs.
const MCP_KEYS: [&str; 3] = ["type", "command", "args"];

/// Claude Code's configuration directory (for whether it is installed).
pub(super) fn dir() -> Result<PathBuf> {
    let files = ClaudeFiles::locate()?;
    Ok(files
        .settings
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default())
}

pub(super) fn install(ours: &Ours, trust: bool) -> Result<Vec<Edit<'_>>> {
    let files = ClaudeFiles::locate()?;
    Ok(vec![
        Edit::new(files.settings, move |m, _| {
            let mut changes = install_hooks(m, ours, Agent::Claude)?;
            if trust {
                changes.extend(allow_tools(m)?);
            }
            Ok(changes)
        }),
        Edit::new(files.state, |m, _| register_mcp(m, ours)),
    ])
}

pub(super) fn uninstall() -> Result<Vec<Edit<'static>>> {
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
