//! Gemini CLI (npm `@google/gemini-cli`; tested with 0.61.0).
//!
//! Its hooks: SessionStart, BeforeAgent (prompt), AfterAgent (stop, the reply in
//! `prompt_response`) and SessionEnd; no turn id, and a turn cancelled with Esc shows only in
//! its chat file. Text reaches it as one bracketed paste. It cannot fork: `--resume`
//! continues the session itself. What setup writes: `~/.gemini/settings.json` (four hooks,
//! the MCP server; with `--allow-tools` the server is trusted, so its tools run without
//! asking).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::edit::{
    Change, Edit, MCP_NAME, Object, Ours, home_dir, read_object, set_mcp_server, unregister_mcp,
};
use super::hooks::{install_hooks, remove_hooks};
use super::{
    Agent, Event, Health, Identity, Kind, TurnEnd, Typing, is_rule, join_trimmed, lines,
    strip_escapes, transcript,
};

pub(super) struct Gemini;

pub(super) const GEMINI: Agent = Agent(&Gemini);

const IDENTITY: Identity = Identity {
    name: "gemini",
    title: "Gemini CLI",
    about: "Google's Gemini CLI",
    package: "@google/gemini-cli",
    tested: ("0.61.0", "0.61.0"),
};

impl Kind for Gemini {
    fn identity(&self) -> &'static Identity {
        &IDENTITY
    }

    /// Gemini CLI still takes an Enter up to ~0.1 s after the paste shows for part of it.
    fn typing(&self) -> Typing {
        Typing::Paste {
            gap: Duration::from_millis(250),
        }
    }

    fn prompt_box(&self, screen: &str) -> Option<String> {
        gemini_box(&strip_escapes(screen))
    }

    fn headless(&self, args: &[&str]) -> bool {
        args.iter().any(|a| *a == "-p" || *a == "--prompt")
    }

    /// `prompt_response`; "[no response text]" is what Gemini CLI sends when the turn
    /// produced no text, also when it was cancelled.
    fn reply<'a>(&self, payload: &'a Value) -> Option<&'a str> {
        let text = payload.get("prompt_response").and_then(Value::as_str)?;
        (text != "[no response text]").then_some(text)
    }

    /// A turn without a reply whose chat file ends with "Request cancelled." was cut short
    /// with Esc.
    fn turn_end(&self, payload: &Value) -> Option<TurnEnd> {
        if let Some(text) = self.reply(payload) {
            return Some(TurnEnd::Answer(text.to_string()));
        }
        let chat = payload.get("transcript_path").and_then(Value::as_str)?;
        turn_cancelled(Path::new(chat)).then_some(TurnEnd::Interrupted)
    }

    /// 0.61.0: `--resume` continues the session itself; there is no fork.
    fn fork_command(&self, _: &str, _: &str, _: &Path) -> Result<Vec<String>, String> {
        Err("Gemini CLI cannot answer by fork: it can only resume a session in place, which would change the peer's own session; ask without --fork".into())
    }

    fn fork_answer(&self, _: &str) -> Result<String, String> {
        Err("Gemini CLI does not fork".into())
    }

    fn hooks(&self) -> &'static [(&'static str, Event)] {
        &HOOKS
    }

    /// Gemini CLI shows a hook's name while it runs.
    fn names_hooks(&self) -> bool {
        true
    }

    fn hooks_file(&self) -> Result<PathBuf> {
        settings()
    }

    fn config_dir(&self) -> Result<PathBuf> {
        Ok(home_dir()?.join(".gemini"))
    }

    fn install<'a>(&self, ours: &'a Ours, trust: bool) -> Result<Vec<Edit<'a>>> {
        Ok(vec![Edit::new(settings()?, move |m, _| {
            let mut changes = install_hooks(m, ours, GEMINI)?;
            changes.extend(gemini_register_mcp(m, ours, trust)?);
            Ok(changes)
        })])
    }

    fn uninstall(&self) -> Result<Vec<Edit<'static>>> {
        Ok(vec![Edit::new(settings()?, |m, before| {
            let mut changes = remove_hooks(m, before);
            changes.extend(unregister_mcp(m, "mcpServers", before)?);
            Ok(changes)
        })])
    }

    fn health(&self, ours: &Ours) -> Vec<Health> {
        let found = settings().and_then(|path| {
            let settings = read_object(&path)?;
            let mut problems = super::hook_problems(&path, &settings, ours, GEMINI);
            mcp_problems(&settings, &path, ours, &mut problems);
            Ok((problems, path.display().to_string()))
        });
        vec![Health::of_files(self.name(), found).registration()]
    }
}

/// Whether the last turn in a Gemini CLI chat file (JSON lines) was cancelled: its last
/// message entry is the `info` "Request cancelled." that Esc leaves, written before the
/// AfterAgent hook runs (checked with Gemini CLI 0.61.0).
fn turn_cancelled(path: &Path) -> bool {
    let Some(mut lines) = transcript::backwards(path) else {
        return false;
    };
    while let Some(line) = lines.next_line() {
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("info") => {
                return v.get("content").and_then(Value::as_str) == Some("Request cancelled.");
            }
            Some(_) => return false,
            None => {} // bookkeeping (`$set`)
        }
    }
    false
}

/// The Gemini CLI events repowire hooks into (`settings.json`), each with the `repowire
/// hook` event it runs.
const HOOKS: [(&str, Event); 4] = [
    ("SessionStart", Event::SessionStart),
    ("BeforeAgent", Event::Prompt),
    ("AfterAgent", Event::Stop),
    ("SessionEnd", Event::SessionEnd),
];

/// Gemini CLI's user settings.
fn settings() -> Result<PathBuf> {
    Ok(home_dir()?.join(".gemini").join("settings.json"))
}

/// Gemini CLI's `mcpServers.repowire` (trusted, so its tools run without asking, with
/// `--allow-tools`). Gemini passes the environment on, `TMUX_PANE` included.
fn gemini_register_mcp(settings: &mut Object, ours: &Ours, trust: bool) -> Result<Vec<Change>> {
    let mut want = json!({"command": ours.exe(), "args": ["mcp", "--agent", "gemini"]});
    let mut keys = vec!["command", "args"];
    if trust {
        want["trust"] = json!(true);
        keys.push("trust");
    }
    set_mcp_server(settings, "mcpServers", want, &keys)
}

/// Whether the MCP server in `settings` (read from `path`) runs this binary; if not, a problem.
fn mcp_problems(settings: &Object, path: &Path, ours: &Ours, problems: &mut Vec<String>) {
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

/// Gemini CLI: after the last horizontal rule, the line starting with `>` (`*` in YOLO mode)
/// and the indented lines under it; its placeholder means empty. Shell mode (`!`) is no box
/// to type a message into.
fn gemini_box(screen: &str) -> Option<String> {
    let lines = lines(screen);
    let rule = lines.iter().rposition(|l| is_rule(l))?;
    let at = rule
        + 1
        + lines[rule + 1..].iter().position(|l| {
            let l = l.trim_start();
            ["> ", "* ", "! "].iter().any(|m| l.starts_with(m)) || l == ">" || l == "*"
        })?;
    let line = lines[at].trim_start();
    if line.starts_with('!') {
        return None;
    }
    let first = line[1..].trim();
    if first == "Type your message or @path/to/file" {
        return Some(String::new());
    }
    let body = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("   ") && !l.trim().is_empty())
        .copied();
    Some(join_trimmed(std::iter::once(first).chain(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "────────────────────────────────────────";

    #[test]
    fn reads_geminis_prompt_box() {
        let g = Gemini;
        let head = format!(
            " > SLEEP 4\n   hello there\n\n✦ ECHO: hi\n{RULE}\n Shift+Tab to accept edits\n\n"
        );
        let foot = "\n workspace (/directory)     sandbox\n /w   no sandbox\n";
        let empty = format!(
            "{head} \x1b[38;5;183m> \x1b[7m\x1b[39m \x1b[0m\x1b[38;5;248m\x1b[48;5;240m Type your message or @path/to/file\x1b[39m\n{foot}"
        );
        assert_eq!(g.prompt_box(&empty).as_deref(), Some(""));
        let typed = format!(" {head} > hello there\n   second line\n{foot}");
        assert_eq!(
            g.prompt_box(&typed).as_deref(),
            Some("hello there\nsecond line")
        );
        assert_eq!(g.prompt_box("$ ls\n"), None);
        let yolo = format!("{RULE}\n YOLO Ctrl+Y\n *   Type your message or @path/to/file\n{foot}");
        assert_eq!(g.prompt_box(&yolo).as_deref(), Some(""));
        let shell = format!("{RULE}\n shell mode enabled\n ! ls{foot}");
        assert_eq!(g.prompt_box(&shell), None);
    }
}
