//! `repowire setup`, `uninstall` and `hooks`: wiring repowire into the agents' own files.
//! This file holds the commands' flow; what setup writes for each agent is in that agent's
//! file (`agents::*`), and the machinery every agent shares (plan, backup, commit) is
//! `agents::edit`. `hooks` is the seed's command for the default agent's (Claude Code's)
//! hooks alone.
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
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::agents::Agent;
use crate::agents::edit::{Edit, Ours, commit_all, plan_all, read_object};
use crate::agents::hooks::{Found, hook_states, install_hooks, remove_hooks};
use crate::spool::{self, Spool};

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Set up this agent (repeat for several); default: every one found (on PATH, or its
    /// configuration directory exists)
    #[arg(long, value_enum, value_name = "AGENT")]
    pub agent: Vec<Agent>,
    /// Show what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also let the agents run the repowire MCP tools without a permission prompt (Claude
    /// Code: mcp__repowire in permissions.allow; Gemini CLI: the server is trusted)
    #[arg(long)]
    pub allow_tools: bool,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Add repowire's hooks to ~/.claude/settings.json
    Install {
        /// Show what would change, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove repowire's hooks from ~/.claude/settings.json
    Uninstall {
        /// Show what would change, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Say for each hook whether it is installed and runs this binary
    ///
    /// Exit status 0 when all four do, 1 otherwise.
    Status,
}

pub fn setup(home: &Path, args: &SetupArgs) -> Result<()> {
    let agents = if args.agent.is_empty() {
        let found: Vec<Agent> = Agent::ALL.into_iter().filter(|a| a.installed()).collect();
        if found.is_empty() {
            let dirs: Vec<String> = Agent::ALL
                .iter()
                .filter_map(|a| a.config_dir().ok())
                .map(|d| d.display().to_string())
                .collect();
            bail!(
                "found none of {} on PATH (nor {}); install one, or name it with --agent",
                Agent::names(),
                dirs.join(", ")
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
        edits.extend(agent.install(ours, trust)?);
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
    let notes: Vec<&str> = edits
        .iter()
        .zip(&plans)
        .filter(|(_, p)| !p.changes.is_empty())
        .filter_map(|(e, _)| e.note)
        .collect();
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
    for note in notes {
        println!("{note}");
    }
    println!(
        "Next: start {} in a tmux pane per repository (e.g. `tmux new-session -s backend -c ~/src/backend {}`); each registers itself as a peer. Check everything with `repowire status`.",
        names.join(" or "),
        agents[0].name()
    );
    if changed {
        println!("Sessions already running see these changes after a restart.");
    }
    Ok(())
}

pub fn uninstall(home: &Path, dry_run: bool, purge: bool) -> Result<()> {
    let mut edits = Vec::new();
    for agent in Agent::ALL {
        edits.extend(agent.uninstall()?);
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

/// `repowire hooks`: the default agent's (Claude Code's) hooks alone.
pub fn hooks(cmd: HooksCommand) -> Result<()> {
    let agent = Agent::default();
    let file = agent.hooks_file()?;
    let ours = Ours::current()?;
    let (edit, dry_run) = match cmd {
        HooksCommand::Install { dry_run } => (
            Edit::new(file, |m, _| install_hooks(m, &ours, agent)),
            dry_run,
        ),
        HooksCommand::Uninstall { dry_run } => (
            Edit::new(file, |m, before| Ok(remove_hooks(m, before))),
            dry_run,
        ),
        HooksCommand::Status => return hooks_status(agent, &file, &ours),
    };
    let edits = [edit];
    commit_all(&edits, plan_all(&edits)?, dry_run)?;
    if dry_run {
        println!("Dry run: nothing was written.");
    }
    Ok(())
}

fn hooks_status(agent: Agent, file: &Path, ours: &Ours) -> Result<()> {
    let settings = read_object(file)?;
    println!("{}:", file.display());
    let mut all_ok = true;
    for (event, found) in hook_states(&settings, ours, agent) {
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
