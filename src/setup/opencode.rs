//! What setup writes for OpenCode (in `$XDG_CONFIG_HOME/opencode`, else
//! `~/.config/opencode`): the plugin `plugin/repowire.js`, a file of repowire's own that runs
//! repowire's hooks on OpenCode's events (OpenCode runs no shell hooks; its plugins get its
//! events in the TUI's process, so with its `TMUX_PANE`), and `mcp.repowire` in
//! `opencode.json`. OpenCode also reads `opencode.jsonc` beside it and merges the two, so a
//! user's own `opencode.jsonc` is never touched.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Value, json};

use super::edit::{
    Change, Edit, Object, Ours, Verb, read_object, read_opt, set_mcp_server, unregister_mcp,
};
use super::{MCP_NAME, home_dir};
use crate::hook::Event;

/// The OpenCode events the plugin runs hooks on (see the plugin itself), each with the
/// `repowire hook` event it runs. OpenCode reports no event when it exits (measured with
/// 1.18.33: neither `/exit` nor a killed pane gives the plugin one); the peer then shows
/// offline because its process is gone, and questions to it fail as for any ended session.
pub(super) const HOOKS: [(&str, Event); 5] = [
    ("session.created", Event::SessionStart),
    ("chat.message", Event::Prompt),
    ("session.idle", Event::Stop),
    ("session.error", Event::Interrupt),
    ("session.deleted", Event::SessionEnd),
];

const PLUGIN: &str = include_str!("opencode.js");

/// OpenCode's configuration directory.
pub(super) fn dir() -> Result<PathBuf> {
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

pub(super) fn install(ours: &Ours, _trust: bool) -> Result<Vec<Edit<'_>>> {
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

pub(super) fn uninstall() -> Result<Vec<Edit<'static>>> {
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

/// What is not as setup leaves it, and the files looked at.
pub(super) fn problems(ours: &Ours) -> Result<(Vec<String>, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
