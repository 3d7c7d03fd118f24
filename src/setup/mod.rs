//! `repowire setup`, `uninstall` and `hooks`: wiring repowire into the agents' own files.
//! This file holds the commands' flow; `edit` the file machinery every agent shares (plan,
//! backup, commit), and one file per agent what setup writes for it:
//!
//! - Claude Code (`claude`): `~/.claude/settings.json` and `~/.claude.json`;
//! - Codex (`codex`): `hooks.json` and `config.toml` in `~/.codex`;
//! - Gemini CLI (`gemini`): `~/.gemini/settings.json`;
//! - OpenCode (`opencode`): a plugin and `opencode.json` in `~/.config/opencode`.
//!
//! Promises:
//! - only repowire's entries change; everything else, and the order of every key, stays;
//! - every file is read and checked before any is written: a file that is not valid JSON (or
//!   TOML) is refused, naming the line, and then nothing at all changes;
//! - TOML keeps its formatting and comments (toml_edit);
//! - a file is replaced atomically (a temporary file in its directory, fsynced, renamed), and
//!   only if it still holds what was read: Claude Code rewrites `.claude.json` while it runs,
//!   so a file that changed meanwhile is read and changed again;
//! - the first change to a file keeps its original as `<file>.repowire-backup`; when removing
//!   repowire leaves a file equal to that original, the original's exact bytes are restored;
//! - running setup again changes no byte, and `--dry-run` writes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::agent::Agent;
use crate::cli::{HooksCommand, SetupArgs};
use crate::hook::Event;
use crate::spool::{self, Spool};

mod claude;
mod codex;
mod edit;
mod gemini;
mod hooks;
mod opencode;

pub(crate) use claude::{ClaudeFiles, mcp_state};
use edit::{Edit, commit_all, plan_all};
pub(crate) use edit::{Ours, read_object};
pub(crate) use hooks::{Found, hook_states};
use hooks::{install_hooks, remove_hooks};

/// The events `agent` runs repowire's hooks on. This and the three functions below are an
/// agent's arms: a new agent is its own file here plus one arm in each.
fn hooks_of(agent: Agent) -> &'static [(&'static str, Event)] {
    match agent {
        Agent::Claude => &claude::HOOKS,
        Agent::Codex => &codex::HOOKS,
        Agent::Gemini => &gemini::HOOKS,
        Agent::OpenCode => &opencode::HOOKS,
    }
}

/// The agent's configuration directory: it counts as installed when that exists.
fn config_dir(agent: Agent) -> Result<PathBuf> {
    match agent {
        Agent::Claude => claude::dir(),
        Agent::Codex => codex::dir(),
        Agent::Gemini => gemini::dir(),
        Agent::OpenCode => opencode::dir(),
    }
}

/// What setup changes in the agent's files.
fn install_edits(agent: Agent, ours: &Ours, trust: bool) -> Result<Vec<Edit<'_>>> {
    match agent {
        Agent::Claude => claude::install(ours, trust),
        Agent::Codex => codex::install(ours, trust),
        Agent::Gemini => gemini::install(ours, trust),
        Agent::OpenCode => opencode::install(ours, trust),
    }
}

/// What uninstall changes in the agent's files.
fn uninstall_edits(agent: Agent) -> Result<Vec<Edit<'static>>> {
    match agent {
        Agent::Claude => claude::uninstall(),
        Agent::Codex => codex::uninstall(),
        Agent::Gemini => gemini::uninstall(),
        Agent::OpenCode => opencode::uninstall(),
    }
}

/// The MCP server's name in `.claude.json`; its tools are `mcp__repowire__*`.
const MCP_NAME: &str = "repowire";

pub fn setup(home: &Path, args: &SetupArgs) -> Result<()> {
    let agents = if args.agent.is_empty() {
        let found: Vec<Agent> = Agent::ALL.into_iter().filter(|a| installed(*a)).collect();
        if found.is_empty() {
            bail!(
                "found none of claude, codex, gemini and opencode on PATH (nor ~/.claude, ~/.codex, ~/.gemini, ~/.config/opencode); install one, or name it with --agent"
            );
        }
        found
    } else {
        args.agent.clone()
    };
    let ours = &Ours::current()?;
    let trust = args.allow_tools;
    let mut edits = Vec::new();
    for agent in &agents {
        edits.extend(install_edits(*agent, ours, trust)?);
    }
    let plans = plan_all(&edits)?;
    let spool_new = !home.exists();
    if !args.dry_run {
        Spool::open(home)?;
    }
    let verb = match (spool_new, args.dry_run) {
        (false, _) => "exists",
        (true, false) => "created",
        (true, true) => "would be created",
    };
    println!("spool {} ({verb})", home.display());
    let codex_hooks_changed = agents.contains(&Agent::Codex)
        && edits
            .iter()
            .zip(&plans)
            .any(|(e, p)| e.path.ends_with("hooks.json") && !p.changes.is_empty());
    let changed = commit_all(&edits, plans, args.dry_run)?;
    if args.dry_run {
        println!("Dry run: nothing was written.");
        return Ok(());
    }
    if !changed && !spool_new {
        println!("Everything was already set up; nothing changed.");
    }
    let names: Vec<&str> = agents.iter().map(|a| a.title()).collect();
    if spool::default_home().as_deref() != Some(home) {
        println!(
            "Note: this spool is not the default (~/.repowire); start {} with REPOWIRE_HOME={} too, or their hooks use the default.",
            names.join(", "),
            home.display()
        );
    }
    if codex_hooks_changed {
        println!(
            "Codex: the next time it starts it shows \"Hooks need review\" for repowire's hooks; choose \"Trust all and continue\" (or review them with /hooks). repowire does not approve them for you, and without that they do not run."
        );
    }
    println!(
        "Next: start {} in a tmux pane per repository (e.g. `tmux new-session -s backend -c ~/src/backend {}`); each registers itself as a peer. Check everything with `repowire status`.",
        names.join(" or "),
        agents[0].as_str()
    );
    if changed {
        println!("Sessions already running see the MCP server after a restart.");
    }
    Ok(())
}

/// Whether `agent` looks installed: its command is on PATH, or its configuration directory
/// exists (or, for Claude Code, is named by `CLAUDE_CONFIG_DIR`).
fn installed(agent: Agent) -> bool {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(agent.as_str()).is_file()));
    let dir = config_dir(agent).ok();
    let chosen = agent == Agent::Claude && std::env::var_os("CLAUDE_CONFIG_DIR").is_some();
    on_path || chosen || dir.is_some_and(|d| d.is_dir())
}

fn home_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set, so the agents' files cannot be found"))
}

pub fn uninstall(home: &Path, dry_run: bool, purge: bool) -> Result<()> {
    let mut edits = Vec::new();
    for agent in Agent::ALL {
        edits.extend(uninstall_edits(agent)?);
    }
    let plans = plan_all(&edits)?;
    if purge {
        check_is_spool(home)?;
    }
    let changed = commit_all(&edits, plans, dry_run)?;
    match (purge, home.exists(), dry_run) {
        (true, true, true) => println!("spool {}: would be deleted", home.display()),
        (true, true, false) => {
            fs::remove_dir_all(home)
                .with_context(|| format!("cannot delete the spool {}", home.display()))?;
            println!("spool {}: deleted", home.display());
        }
        (false, true, _) => println!(
            "spool {}: kept (`repowire uninstall --purge` deletes it)",
            home.display()
        ),
        (_, false, _) => {}
    }
    if dry_run {
        println!("Dry run: nothing was written.");
    } else if !changed {
        println!("The agents' files held nothing of repowire's to remove.");
    }
    Ok(())
}

pub fn hooks(cmd: HooksCommand) -> Result<()> {
    let files = ClaudeFiles::locate()?;
    let ours = Ours::current()?;
    let (edit, dry_run) = match cmd {
        HooksCommand::Install { dry_run } => (
            Edit::new(files.settings.clone(), |m, _| {
                install_hooks(m, &ours, Agent::Claude)
            }),
            dry_run,
        ),
        HooksCommand::Uninstall { dry_run } => (
            Edit::new(files.settings.clone(), |m, before| {
                Ok(remove_hooks(m, before))
            }),
            dry_run,
        ),
        HooksCommand::Status => return hooks_status(&files, &ours),
    };
    let edits = [edit];
    commit_all(&edits, plan_all(&edits)?, dry_run)?;
    if dry_run {
        println!("Dry run: nothing was written.");
    }
    Ok(())
}

fn hooks_status(files: &ClaudeFiles, ours: &Ours) -> Result<()> {
    let settings = read_object(&files.settings)?;
    println!("{}:", files.settings.display());
    let mut all_ok = true;
    for (event, found) in hook_states(&settings, ours, Agent::Claude) {
        let state = match &found {
            Found::Ours => "installed".to_string(),
            Found::Missing => "missing".to_string(),
            Found::Elsewhere(cmd) => format!("runs {cmd}, not this binary"),
        };
        all_ok &= found == Found::Ours;
        println!("  {event:16}  {state}");
    }
    if !all_ok {
        bail!(
            "the hooks are not all installed for this binary; `repowire hooks install` fixes that"
        );
    }
    Ok(())
}

/// What is not as `repowire setup --agent codex|gemini` leaves it, one sentence each, and the
/// files looked at. (Claude Code's files are checked by `status` itself, in more detail.)
pub(crate) fn agent_problems(agent: Agent, ours: &Ours) -> Result<(Vec<String>, String)> {
    let mut problems = Vec::new();
    let hooks_file = match agent {
        Agent::Claude => bail!("Claude Code is checked elsewhere"),
        Agent::OpenCode => return opencode::problems(ours),
        Agent::Codex => codex::dir()?.join("hooks.json"),
        Agent::Gemini => gemini::settings()?,
    };
    let hooks = read_object(&hooks_file)?;
    let bad: Vec<&str> = hook_states(&hooks, ours, agent)
        .into_iter()
        .filter(|(_, f)| *f != Found::Ours)
        .map(|(e, _)| e)
        .collect();
    if !bad.is_empty() {
        problems.push(format!(
            "hooks {} are missing from {} or run another binary",
            bad.join(", "),
            hooks_file.display()
        ));
    }
    let mut files = hooks_file.display().to_string();
    match agent {
        Agent::Codex => files += &format!(", {}", codex::mcp_problems(ours, &mut problems)?),
        Agent::Gemini => gemini::mcp_problems(&hooks, &hooks_file, ours, &mut problems),
        Agent::Claude | Agent::OpenCode => {}
    }
    Ok((problems, files))
}

/// Why a session of `agent` started now would not become a peer: repowire's hooks (or, for
/// Codex and Gemini CLI, its MCP server) are not as `repowire setup` leaves them. `None` when
/// they are.
pub(crate) fn not_ready(agent: Agent) -> Option<String> {
    let ours = match Ours::current() {
        Ok(o) => o,
        Err(e) => return Some(format!("{e:#}")),
    };
    let problems = match agent {
        Agent::Claude => ClaudeFiles::locate().and_then(|files| {
            let settings = read_object(&files.settings)?;
            let ok = hook_states(&settings, &ours, agent)
                .iter()
                .all(|(_, f)| *f == Found::Ours);
            Ok(if ok {
                Vec::new()
            } else {
                vec![format!(
                    "repowire's hooks in {} are missing or run another binary",
                    files.settings.display()
                )]
            })
        }),
        _ => agent_problems(agent, &ours).map(|(p, _)| p),
    };
    match problems {
        Ok(p) if p.is_empty() => None,
        Ok(p) => Some(p.join("; ")),
        Err(e) => Some(format!("{e:#}")),
    }
}

/// Whether `agent` looks installed here (see `setup`).
pub(crate) fn agent_installed(agent: Agent) -> bool {
    installed(agent)
}

/// `uninstall --purge` deletes the spool only if it is one: a wrong REPOWIRE_HOME must not
/// delete some other directory.
fn check_is_spool(home: &Path) -> Result<()> {
    if !home.exists() {
        return Ok(());
    }
    if !home.join("peers").is_dir() || !home.join("queue").is_dir() {
        bail!(
            "{} does not look like a repowire spool (no peers/ and queue/ in it), so --purge will not delete it; check REPOWIRE_HOME",
            home.display()
        );
    }
    Ok(())
}
