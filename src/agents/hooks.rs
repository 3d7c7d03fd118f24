//! The hook lists in the agents' JSON files: Claude Code's and Gemini CLI's `settings.json`
//! and Codex's `hooks.json` all hold `hooks.EVENT[]` groups of `{"type": "command", ...}`
//! entries, and repowire's are the ones running `repowire hook`.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;
use serde_json::{Value, json};

use super::Agent;
use super::edit::{Change, Object, Ours, Verb, array_at, object_at, prune, sh_words};

/// One of repowire's entries as found in a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// There, running this binary.
    Ours,
    Missing,
    /// There, but running something else (another repowire binary): the command.
    Elsewhere(String),
}

/// The state of each of `agent`'s hooks in `settings`.
pub(crate) fn hook_states(
    settings: &Object,
    ours: &Ours,
    agent: Agent,
) -> Vec<(&'static str, Found)> {
    let hooks = settings.get("hooks").and_then(Value::as_object);
    agent
        .hooks()
        .iter()
        .map(|&(event, ev)| {
            let groups = hooks
                .and_then(|h| h.get(event))
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let want = ours.hook_command(ev, agent);
            let found = our_hooks(groups);
            let state = if found.iter().any(|(_, _, c)| *c == want) {
                Found::Ours
            } else if let Some((_, _, c)) = found.first() {
                Found::Elsewhere(c.clone())
            } else {
                Found::Missing
            };
            (event, state)
        })
        .collect()
}

/// The hooks of ours among an event's hook groups: (group index, hook index, command).
/// Ours: a command hook whose program is named `repowire` and whose first argument is `hook`.
pub(crate) fn our_hooks(groups: &[Value]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let Some(hooks) = group.get("hooks").and_then(Value::as_array) else {
            continue;
        };
        for (h, hook) in hooks.iter().enumerate() {
            let Some(cmd) = hook.get("command").and_then(Value::as_str) else {
                continue;
            };
            let words = sh_words(cmd);
            let program = words.first().map(|w| Path::new(w).file_name());
            if program == Some(Some("repowire".as_ref()))
                && words.get(1).map(String::as_str) == Some("hook")
            {
                out.push((g, h, cmd.to_string()));
            }
        }
    }
    out
}

/// Removes hook `h` of group `g`, and the group if that was its last hook.
pub(crate) fn remove_hook(groups: &mut Vec<Value>, g: usize, h: usize) {
    if let Some(hooks) = groups[g].get_mut("hooks").and_then(Value::as_array_mut) {
        hooks.remove(h);
        if hooks.is_empty() {
            groups.remove(g);
        }
    }
}

/// Adds `agent`'s hooks, or points ours at this binary; a second hook of ours on one event
/// (it would run twice) is removed.
pub(crate) fn install_hooks(
    settings: &mut Object,
    ours: &Ours,
    agent: Agent,
) -> Result<Vec<Change>> {
    let hooks = object_at(settings, "hooks", "hooks")?;
    let mut changes = Vec::new();
    for &(event, ev) in agent.hooks() {
        let groups = array_at(hooks, event, &format!("hooks.{event}"))?;
        let want = ours.hook_command(ev, agent);
        let found = our_hooks(groups);
        let Some(((g, h, cmd), extra)) = found.split_first() else {
            let mut hook = json!({"type": "command", "command": want});
            if agent.names_hooks() {
                let name = ev.to_possible_value().expect("not hidden");
                hook["name"] = json!(format!("repowire-{}", name.get_name()));
            }
            groups.push(json!({ "hooks": [hook] }));
            changes.push(Change::new(Verb::Add, format!("hook {event}: {want}")));
            continue;
        };
        if *cmd != want {
            groups[*g]["hooks"][*h]["command"] = json!(want);
            changes.push(Change::new(
                Verb::Update,
                format!("hook {event}: {cmd} → {want}"),
            ));
        }
        // In reverse, so the indices of the ones still to remove stay valid.
        for (g, h, cmd) in extra.iter().rev() {
            remove_hook(groups, *g, *h);
            changes.push(Change::new(
                Verb::Remove,
                format!("hook {event} (a second one): {cmd}"),
            ));
        }
    }
    Ok(changes)
}

/// Removes every hook of ours, from every event. `before` is the file before setup changed it.
pub(crate) fn remove_hooks(settings: &mut Object, before: Option<&Object>) -> Vec<Change> {
    let Some(hooks) = settings.get_mut("hooks").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let before_hooks = before
        .and_then(|b| b.get("hooks"))
        .and_then(Value::as_object);
    let mut changes = Vec::new();
    let mut touched = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        let Some(groups) = groups.as_array_mut() else {
            continue;
        };
        let found = our_hooks(groups);
        for (g, h, cmd) in found.iter().rev() {
            remove_hook(groups, *g, *h);
            changes.push(Change::new(Verb::Remove, format!("hook {event}: {cmd}")));
        }
        if !found.is_empty() {
            touched.push(event.clone());
        }
    }
    for event in touched {
        prune(hooks, &event, before_hooks);
    }
    if !changes.is_empty() {
        prune(settings, "hooks", before);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_our_hooks_only() {
        let groups: Vec<Value> = serde_json::from_str(
            r#"[{"hooks": [{"type": "command", "command": "/x/notify.sh"},
                           {"type": "command", "command": "'/old place/repowire' hook stop"}]},
                {"matcher": "*", "hooks": [{"type": "command", "command": "repowire-other hook stop"},
                                           {"type": "command", "command": "/y/repowire peer list"},
                                           {"type": "command", "command": "repowire hook stop"}]}]"#,
        )
        .unwrap();
        let found: Vec<(usize, usize)> = our_hooks(&groups)
            .into_iter()
            .map(|(g, h, _)| (g, h))
            .collect();
        assert_eq!(found, [(0, 1), (1, 2)]);
    }
}
