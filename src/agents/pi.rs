//! Pi (npm `@mariozechner/pi-coding-agent`; tested from 0.65.0 to 0.73.1).
//!
//! Pi runs no shell hooks and has no MCP client: it loads TypeScript extensions. repowire's
//! (`pi.ts`, written by setup to `extensions/repowire.ts` in Pi's directory,
//! `$PI_CODING_AGENT_DIR`, else `~/.pi/agent`) gives it all three: it runs `repowire hook` on
//! Pi's events with payloads in Claude Code's field names, offers the tools of
//! `repowire mcp --agent pi` as Pi tools of the same names, and serves the session an inbox
//! that hands a message over as the next turn (`pi.sendUserMessage`). Where no inbox opened,
//! text is typed, as one bracketed paste. It forks with `pi --fork` into a session directory
//! of the fork's own.
//!
//! Pi names its process `pi` and drops its arguments from it (`process.title`), so whether a
//! run shows a session is decided by the extension, which knows its mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::edit::{Change, Edit, Ours, Verb, home_dir, read_opt};
use super::{Agent, Event, Health, Identity, Inbox, Kind, Typing, is_rule, join_trimmed, lines};

pub(super) struct Pi;

pub(super) const PI: Agent = Agent(&Pi);

const IDENTITY: Identity = Identity {
    name: "pi",
    title: "Pi",
    about: "Pi (npm `@mariozechner/pi-coding-agent`)",
    package: "@mariozechner/pi-coding-agent",
    tested: ("0.65.0", "0.73.1"),
};

impl Kind for Pi {
    fn identity(&self) -> &'static Identity {
        &IDENTITY
    }

    /// Pi takes a bracketed paste whole (a long one shows as "[paste #1 +N lines]" and is
    /// sent in full), and an Enter right after it submits.
    fn typing(&self) -> Typing {
        Typing::Paste {
            gap: Duration::from_millis(50),
        }
    }

    fn prompt_box(&self, screen: &str) -> Option<String> {
        pi_box(&super::strip_escapes(screen))
    }

    /// Where a process's arguments can be read at all (see the module's note; the extension
    /// itself runs no hooks in these modes).
    fn headless(&self, args: &[&str]) -> bool {
        args.iter()
            .any(|a| matches!(*a, "-p" | "--print" | "--mode=json" | "--mode=rpc"))
            || args.windows(2).any(|w| w[0] == "--mode" && w[1] != "text")
    }

    /// repowire's extension serves the session an inbox (see `pi.ts`) and gives its hooks the
    /// socket, the token and the session; a message posted there becomes the session's next
    /// turn once it is idle (measured with 0.65.0 and 0.73.1).
    fn inbox(&self) -> Result<Option<Inbox>, String> {
        super::inbox_from_plugin("extension", self.name(), "Pi gave no session id")
    }

    fn inbox_not_taken(&self) -> String {
        "Pi has not taken it: is repowire's extension loaded (`repowire status`; `/reload` in Pi)?"
            .into()
    }

    /// (0.65.0 to 0.73.1) `pi -p --fork` copies the session into a new one, here in a directory
    /// of the fork's (`--session-dir`) that is removed after, and answers in it with no tools
    /// but read, grep, find and ls (`--tools`: Pi's own, extensions' and repowire's alike).
    /// The question goes in on stdin: as an argument Pi would read `@path` or `-x` in it.
    fn fork_command(
        &self,
        session_id: &str,
        prompt: &str,
        _dir: &Path,
    ) -> Result<Vec<String>, String> {
        Ok(
            ["sh", "-c", FORK_SCRIPT, "repowire-fork", session_id, prompt]
                .map(String::from)
                .to_vec(),
        )
    }

    fn fork_answer(&self, stdout: &str) -> Result<String, String> {
        pi_answer(stdout)
    }

    fn hooks(&self) -> &'static [(&'static str, Event)] {
        &HOOKS
    }

    /// None: repowire's extension runs its hooks.
    fn hooks_file(&self) -> Result<PathBuf> {
        anyhow::bail!(
            "Pi keeps no hook lists: repowire's extension runs its hooks (`repowire setup --agent pi` writes it)"
        )
    }

    fn config_dir(&self) -> Result<PathBuf> {
        dir()
    }

    fn install<'a>(&self, ours: &'a Ours, _trust: bool) -> Result<Vec<Edit<'a>>> {
        let path = extension_path()?;
        let shown = path.display().to_string();
        Ok(vec![Edit::whole(path, move |text| {
            let want = extension(ours);
            let change = match text {
                Some(t) if t == want => return Ok((Some(want), Vec::new())),
                Some(t) if !is_ours(t) => anyhow::bail!(
                    "{shown} exists and is not repowire's extension; move it away and run setup again"
                ),
                Some(_) => Change::new(Verb::Update, format!("extension: runs {}", ours.exe())),
                None => Change::new(Verb::Add, format!("extension: runs {}", ours.exe())),
            };
            Ok((Some(want), vec![change]))
        })])
    }

    fn uninstall(&self) -> Result<Vec<Edit<'static>>> {
        Ok(vec![Edit::whole(extension_path()?, |text| match text {
            Some(t) if is_ours(t) => Ok((
                None,
                vec![Change::new(Verb::Remove, "repowire's extension")],
            )),
            other => Ok((other.map(str::to_string), Vec::new())),
        })])
    }

    fn health(&self, ours: &Ours) -> Vec<Health> {
        let fix = "repowire setup --agent pi";
        let health = match extension_path().and_then(|p| Ok((read_opt(&p)?, p))) {
            Ok((Some(bytes), path)) if bytes == extension(ours).as_bytes() => Health::ok(
                self.name(),
                format!("hooks, tools and inbox in {}", path.display()),
            ),
            Ok((_, path)) => Health::problem(
                self.name(),
                format!(
                    "repowire's extension {} is missing, or from another repowire binary or version",
                    path.display()
                ),
                fix,
            ),
            Err(e) => Health::problem(self.name(), format!("{e:#}"), fix),
        };
        vec![health.registration()]
    }
}

/// The Pi events the extension runs hooks on (see the extension itself), each with the
/// `repowire hook` event it runs. An aborted turn's `agent_end` is the interrupt.
const HOOKS: [(&str, Event); 5] = [
    ("session_start", Event::SessionStart),
    ("before_agent_start", Event::Prompt),
    ("agent_end", Event::Stop),
    ("agent_end (aborted)", Event::Interrupt),
    ("session_shutdown", Event::SessionEnd),
];

const EXTENSION: &str = include_str!("pi.ts");

/// Pi's directory.
fn dir() -> Result<PathBuf> {
    match std::env::var_os("PI_CODING_AGENT_DIR").filter(|d| !d.is_empty()) {
        Some(d) => Ok(PathBuf::from(d)),
        None => Ok(home_dir()?.join(".pi").join("agent")),
    }
}

fn extension_path() -> Result<PathBuf> {
    Ok(dir()?.join("extensions").join("repowire.ts"))
}

/// The extension, running this binary.
fn extension(ours: &Ours) -> String {
    let exe = serde_json::to_string(ours.exe()).expect("a string serializes");
    EXTENSION.replace("__REPOWIRE__", &exe)
}

/// Whether `text` is an extension of repowire's (any version, any binary).
fn is_ours(text: &str) -> bool {
    text.starts_with("// repowire's Pi extension")
}

/// The `sh` script of a Pi fork: `$1` the session, `$2` the question.
const FORK_SCRIPT: &str = r#"command -v pi >/dev/null || { echo "pi is not on PATH here, so its session cannot be forked" >&2; exit 127; }
d=$(mktemp -d "${TMPDIR:-/tmp}/repowire-fork.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
trap 'exit 143' HUP INT TERM
printf '%s' "$2" | pi -p --fork "$1" --session-dir "$d" --tools read,grep,find,ls
"#;

/// Pi: the lines between the last two rules (`────`) on screen; the cwd and status lines are
/// below them.
fn pi_box(screen: &str) -> Option<String> {
    let lines = lines(screen);
    let bottom = lines.iter().rposition(|l| is_rule(l))?;
    let top = lines[..bottom].iter().rposition(|l| is_rule(l))?;
    Some(join_trimmed(lines[top + 1..bottom].iter().copied()))
}

/// The answer in `pi -p` output: the text of the turn's last reply, and a newline. (`--mode
/// json` would tell more, but 0.65.0 prints text there when the prompt comes on stdin.)
fn pi_answer(stdout: &str) -> Result<String, String> {
    let text = stdout.strip_suffix('\n').unwrap_or(stdout);
    if text.trim().is_empty() {
        return Err("the fork's turn ended without a text reply".into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pi 0.73.1 as `capture-pane -p` shows it (150 columns, cut here).
    #[test]
    fn reads_pis_prompt_box() {
        let rule = "─".repeat(60);
        let screen = |body: &str| {
            format!(
                " hello there\n{rule}\n{body}\n{rule}\n/tmp/proj\n↑10 ↓5 0.0%/128k (auto)          claude-fake\n"
            )
        };
        assert_eq!(Pi.prompt_box(&screen(" ")).as_deref(), Some(""));
        assert_eq!(
            Pi.prompt_box(&screen("first\nsecond line\x1b[7m \x1b[0m"))
                .as_deref(),
            Some("first\nsecond line")
        );
        assert_eq!(
            Pi.prompt_box(&screen("[paste #1 +32 lines]")).as_deref(),
            Some("[paste #1 +32 lines]")
        );
        assert_eq!(Pi.prompt_box("$ ls\nfile\n"), None);
        assert_eq!(Pi.prompt_box(&format!("{rule}\nonly one rule\n")), None);
    }

    #[test]
    fn reads_a_pi_forks_answer() {
        assert_eq!(
            pi_answer("the schema is\nid, email\n").as_deref(),
            Ok("the schema is\nid, email")
        );
        assert!(pi_answer("").is_err());
        assert!(pi_answer(" \n").is_err());
    }

    #[test]
    fn tells_headless_runs_where_it_can_read_them() {
        assert!(Pi.headless(&["/usr/lib/pi/cli.js", "-p", "hi"]));
        assert!(Pi.headless(&["--mode", "rpc"]));
        assert!(Pi.headless(&["--mode=json"]));
        assert!(!Pi.headless(&["--mode", "text"]));
        assert!(!Pi.headless(&[]));
        assert!(!Pi.headless(&["--model", "x"]));
    }

    #[test]
    fn the_extension_names_this_binary_as_a_javascript_string() {
        let ours = Ours {
            exe: "/opt/it's \"here\"/repowire".into(),
        };
        let text = extension(&ours);
        assert!(is_ours(&text));
        assert!(text.contains(r#"const REPOWIRE = "/opt/it's \"here\"/repowire""#));
        assert!(!text.contains("__REPOWIRE__"));
    }
}
