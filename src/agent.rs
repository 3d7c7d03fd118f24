//! The agents repowire can talk to, and everything that differs between them: the names of
//! their hook payloads' fields, how text is typed into their terminal UI, and how their prompt
//! box looks on screen. The rest of repowire (one peer model, one delivery, one spool) is the
//! same for all of them.
//!
//! Measured with Claude Code 2.1.330, Codex CLI 0.169.0, Gemini CLI 0.61.0 and OpenCode
//! 1.18.33.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Agent {
    /// Claude Code
    #[default]
    Claude,
    /// OpenAI's Codex CLI
    Codex,
    /// Google's Gemini CLI
    Gemini,
    /// OpenCode (npm `opencode-ai`)
    #[value(name = "opencode")]
    OpenCode,
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

impl Agent {
    pub const ALL: [Agent; 4] = [Agent::Claude, Agent::Codex, Agent::Gemini, Agent::OpenCode];

    /// The name in peer records, `--agent` and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
            Agent::OpenCode => "opencode",
        }
    }

    /// The agent a peer record names (records from before other agents existed say `claude`).
    pub fn of_peer(agent: &str) -> Agent {
        Agent::ALL
            .into_iter()
            .find(|a| a.as_str() == agent)
            .unwrap_or_default()
    }

    /// The people-facing name.
    pub fn title(self) -> &'static str {
        match self {
            Agent::Claude => "Claude Code",
            Agent::Codex => "Codex",
            Agent::Gemini => "Gemini CLI",
            Agent::OpenCode => "OpenCode",
        }
    }

    /// The oldest and the newest release of the agent that repowire's test suite runs
    /// against (README.md, "Supported versions"); `repowire status` compares the installed
    /// one with them.
    pub fn tested(self) -> (&'static str, &'static str) {
        match self {
            Agent::Claude => ("2.0.77", "2.1.332"),
            Agent::Codex => ("0.169.0", "0.171.0"),
            Agent::Gemini => ("0.61.0", "0.61.0"),
            Agent::OpenCode => ("1.14.41", "1.18.33"),
        }
    }

    /// The npm package the agent comes in.
    pub fn package(self) -> &'static str {
        match self {
            Agent::Claude => "@anthropic-ai/claude-code",
            Agent::Codex => "@openai/codex",
            Agent::Gemini => "@google/gemini-cli",
            Agent::OpenCode => "opencode-ai",
        }
    }

    pub fn typing(self) -> Typing {
        match self {
            Agent::Claude => Typing::Keys {
                chunk: 200,
                gap: Duration::from_millis(30),
            },
            Agent::Codex => Typing::Paste {
                gap: Duration::from_millis(50),
            },
            Agent::Gemini => Typing::Paste {
                gap: Duration::from_millis(250),
            },
            // OpenCode handles every key on its own (measured: 3,000 characters typed as keys
            // kept it busy for over 20 s, at 1.3 GB); a paste shows as "[Pasted ~N lines]" and
            // is taken whole, and an Enter right after it submits (5 of 5).
            Agent::OpenCode => Typing::Paste {
                gap: Duration::from_millis(50),
            },
        }
    }

    /// The command line that answers `prompt` from a read-only fork of session `session_id`,
    /// run in the session's directory; its stdout is read by [`Agent::fork_answer`]. The fork
    /// leaves the session as it was and no session of its own behind, can use no tool that
    /// changes anything and no MCP server (so none of repowire's tools), and sees the user's
    /// settings and hooks (repowire's own hooks do nothing in it: see `REPOWIRE_FORK`).
    /// `Err` says why the agent cannot.
    ///
    /// Claude Code (2.0.77 to 2.1.332): `-p --resume ID --fork-session` answers in a new
    /// session from a copy of the conversation, `--no-session-persistence` writes none,
    /// `--tools` allows only the built-in read tools and plan mode refuses edits.
    ///
    /// OpenCode (1.14.41 to 1.18.33): `opencode run --fork` keeps its copy as a session in
    /// OpenCode's database, so the fork answers from a copy of its own instead: the session is
    /// exported, imported into a data directory of the fork's (`XDG_DATA_HOME`), continued
    /// there with the plan agent and no tools but read, grep and glob, no plugins (`--pure`)
    /// and repowire's MCP server disabled, and the directory is removed after.
    ///
    /// Codex (0.169.0 to 0.171.0): `codex exec fork ID` answers from a copy, `--ephemeral`
    /// writes no session file, its read-only sandbox makes the file system read-only for
    /// every command it runs (measured: `touch` fails with "Read-only file system"), and
    /// each MCP server of its configuration (`$CODEX_HOME` and the directory's
    /// `.codex/config.toml`) is disabled by name: `-c mcp_servers={}` does not remove them.
    /// `dir` is the session's directory.
    pub fn fork_command(
        self,
        session_id: &str,
        prompt: &str,
        dir: &std::path::Path,
    ) -> Result<Vec<String>, String> {
        match self {
            Agent::Claude => Ok([
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
            .to_vec()),
            Agent::Codex => {
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
                    .map(std::path::PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".codex"))
                    });
                for name in codex_mcp_servers(home.as_deref(), dir) {
                    argv.extend(["-c".into(), format!("mcp_servers.{name}.enabled=false")]);
                }
                argv.extend(["--".into(), session_id.into(), prompt.into()]);
                Ok(argv)
            }
            // 0.61.0: `--resume` continues the session itself; there is no fork.
            Agent::Gemini => Err(
                "Gemini CLI cannot answer by fork: it can only resume a session in place, which would change the peer's own session; ask without --fork".into(),
            ),
            Agent::OpenCode => Ok([
                "sh",
                "-c",
                OPENCODE_FORK,
                "repowire-fork",
                session_id,
                OPENCODE_FORK_CONFIG,
                prompt,
            ]
            .map(String::from)
            .to_vec()),
        }
    }

    /// The answer in the stdout of a [`Agent::fork_command`], or what went wrong.
    pub fn fork_answer(self, stdout: &str) -> Result<String, String> {
        if self == Agent::OpenCode {
            return opencode_answer(stdout);
        }
        if self == Agent::Codex {
            // `codex exec` prints the last message alone on stdout.
            return match stdout.trim() {
                "" => Err("the fork's turn ended without a text reply".into()),
                text => Ok(text.to_string()),
            };
        }
        // Claude Code's `--output-format json`: one object, `result` its reply.
        let v: Value = serde_json::from_str(stdout.trim())
            .map_err(|_| format!("the fork printed no result: {:?}", cut(stdout, 300)))?;
        let result = v.get("result").and_then(Value::as_str).unwrap_or_default();
        if v.get("is_error").and_then(Value::as_bool) == Some(true) {
            return Err(format!("the fork failed: {}", cut(result, 300)));
        }
        if result.trim().is_empty() {
            return Err("the fork's turn ended without a text reply".into());
        }
        Ok(result.to_string())
    }

    /// The id of the turn a prompt or stop payload belongs to: Claude Code's `prompt_id`,
    /// Codex's `turn_id`; Gemini CLI and OpenCode give none.
    pub fn turn_id(self, payload: &Value) -> Option<&str> {
        let key = match self {
            Agent::Claude => "prompt_id",
            Agent::Codex => "turn_id",
            Agent::Gemini | Agent::OpenCode => return None,
        };
        payload.get(key).and_then(Value::as_str)
    }

    /// The turn's reply in a stop payload (Stop, Gemini's AfterAgent, the session.idle of
    /// repowire's OpenCode plugin), if it has one.
    pub fn reply(self, payload: &Value) -> Option<&str> {
        let key = match self {
            Agent::Claude | Agent::Codex | Agent::OpenCode => "last_assistant_message",
            Agent::Gemini => "prompt_response",
        };
        let text = payload.get(key).and_then(Value::as_str)?;
        // What Gemini CLI sends when the turn produced no text, also when it was cancelled.
        (!(self == Agent::Gemini && text == "[no response text]")).then_some(text)
    }

    /// The text in the agent's prompt box, if its screen shows one; `None` when none is on
    /// screen (a dialog is open). `screen` is `capture-pane -e` output: Codex draws its
    /// placeholder, which changes, only set apart by being dim.
    pub fn prompt_box(self, screen: &str) -> Option<String> {
        match self {
            Agent::Claude => claude_box(&strip_escapes(screen)),
            Agent::Codex => codex_box(screen),
            Agent::Gemini => gemini_box(&strip_escapes(screen)),
            Agent::OpenCode => opencode_box(&strip_escapes(screen)),
        }
    }

    /// Whether the agent process whose arguments (after the program) are `args` runs no
    /// interactive session a person could see, so none to register as a peer: Claude Code's
    /// `-p`, `codex exec`, Gemini CLI's `-p`, OpenCode's `run`, `serve`, `web` and `acp` (they
    /// load its plugins too).
    pub fn headless(self, args: &[&str]) -> bool {
        let command = || args.iter().find(|a| !a.starts_with('-')).copied();
        match self {
            Agent::Claude => args.iter().any(|a| *a == "-p" || *a == "--print"),
            Agent::Codex => matches!(command(), Some("exec" | "e")),
            Agent::Gemini => args.iter().any(|a| *a == "-p" || *a == "--prompt"),
            Agent::OpenCode => matches!(command(), Some("run" | "serve" | "web" | "acp")),
        }
    }
}

/// The `sh` script of an OpenCode fork: `$1` the session, `$2` the configuration it runs
/// with, `$3` the question (on stdin: `opencode run` quotes a message given as an argument).
const OPENCODE_FORK: &str = r#"command -v opencode >/dev/null || { echo "opencode is not on PATH here, so its session cannot be forked" >&2; exit 127; }
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
const OPENCODE_FORK_CONFIG: &str = r#"{"tools":{"*":false,"read":true,"grep":true,"glob":true,"list":true},"permission":{"edit":"deny","bash":"deny","webfetch":"deny"},"mcp":{"repowire":{"type":"local","command":["true"],"enabled":false}}}"#;

/// The screen's lines, without trailing empty ones.
fn lines(screen: &str) -> Vec<&str> {
    screen.trim_end_matches('\n').split('\n').collect()
}

fn is_rule(line: &str) -> bool {
    line.trim_start().starts_with(&"─".repeat(10))
}

/// Claude Code (and the stand-in agent): a line starting with `❯` between the last two
/// horizontal rules.
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

fn join_trimmed<'a>(lines: impl Iterator<Item = &'a str>) -> String {
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
                return Err(format!("the fork failed: {}", cut(why, 300)));
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

/// At most `n` characters of `s`, for an error message.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
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

    use super::*;

    const RULE: &str = "────────────────────────────────────────";

    #[test]
    fn reads_claude_codes_prompt_box() {
        let screen = format!(
            "● ECHO: hi\n\n{RULE}\n❯ half a draft\n  second line\n{RULE}\n  ? for shortcuts\n"
        );
        let c = Agent::Claude;
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

    // Screens as `capture-pane -e -p` shows them (Codex 0.169.0, Gemini CLI 0.61.0).
    #[test]
    fn reads_codexs_prompt_box() {
        let c = Agent::Codex;
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

    #[test]
    fn reads_geminis_prompt_box() {
        let g = Agent::Gemini;
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

    // Screens of OpenCode 1.18.33 as `capture-pane -p` shows them (escapes are stripped first).
    #[test]
    fn reads_opencodes_prompt_box() {
        let o = Agent::OpenCode;
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
    fn runs_without_a_session_to_ask() {
        assert!(Agent::Claude.headless(&["-p", "hi"]));
        assert!(!Agent::Claude.headless(&["--resume", "x"]));
        assert!(Agent::OpenCode.headless(&["--print-logs", "run", "hi"]));
        assert!(Agent::OpenCode.headless(&["serve"]));
        assert!(!Agent::OpenCode.headless(&[]));
        assert!(!Agent::OpenCode.headless(&["--model", "x/y"]));
        assert!(!Agent::OpenCode.headless(&["/src/run"]));
        assert!(Agent::Codex.headless(&["exec", "hi"]));
        assert!(!Agent::Codex.headless(&["--no-daemon"]));
        assert!(Agent::Gemini.headless(&["--prompt", "hi"]));
        assert!(!Agent::Gemini.headless(&["--approval-mode=yolo"]));
    }

    #[test]
    fn payload_fields_per_agent() {
        let p = serde_json::json!({"prompt_id": "p", "turn_id": "t",
            "last_assistant_message": "a", "prompt_response": "[no response text]"});
        assert_eq!(Agent::Claude.turn_id(&p), Some("p"));
        assert_eq!(Agent::Codex.turn_id(&p), Some("t"));
        assert_eq!(Agent::Gemini.turn_id(&p), None);
        assert_eq!(Agent::Codex.reply(&p), Some("a"));
        assert_eq!(Agent::Gemini.reply(&p), None);
        assert_eq!(Agent::of_peer("gemini"), Agent::Gemini);
        assert_eq!(Agent::of_peer("something"), Agent::Claude);
    }
}
