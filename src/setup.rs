//! `repowire setup`, `uninstall` and `hooks`: wiring repowire into the agents' own files.
//!
//! Claude Code: `settings.json` (the four hooks, and with `--allow-tools` the permission
//! `mcp__repowire`) and `.claude.json` (the user-scope MCP server `repowire`), both in
//! `~/.claude` resp. `~`, or both in `$CLAUDE_CONFIG_DIR` when that is set, as Claude Code
//! does. Codex (in `$CODEX_HOME`, else `~/.codex`): `hooks.json` (five hooks) and
//! `config.toml` (the MCP server, forwarding `TMUX`, `TMUX_PANE` and `REPOWIRE_HOME`, and
//! `features.daemon_auto_start = false`: a shared Codex daemon would run every session's
//! hooks and MCP servers with the environment, so the tmux pane, of whichever session started
//! it). Codex's hook trust is left to the user: Codex asks to review new hooks. Gemini CLI:
//! `~/.gemini/settings.json` (four hooks, the MCP server; with `--allow-tools` it is trusted).
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
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use serde_json::{Map, Value, json};

use toml_edit::DocumentMut;

use crate::agent::Agent;
use crate::cli::{HooksCommand, SetupArgs};
use crate::hook::Event;
use crate::spool::{self, Spool};

/// A JSON file's top-level object.
type Object = Map<String, Value>;

/// The Claude Code events repowire hooks into, each with the `repowire hook` event it runs.
const HOOKS: [(&str, Event); 4] = [
    ("SessionStart", Event::SessionStart),
    ("UserPromptSubmit", Event::Prompt),
    ("Stop", Event::Stop),
    ("SessionEnd", Event::SessionEnd),
];
/// Codex's (`hooks.json`).
const CODEX_HOOKS: [(&str, Event); 5] = [
    ("SessionStart", Event::SessionStart),
    ("UserPromptSubmit", Event::Prompt),
    ("Stop", Event::Stop),
    ("Interrupt", Event::Interrupt),
    ("SessionEnd", Event::SessionEnd),
];
/// Gemini CLI's (`settings.json`).
const GEMINI_HOOKS: [(&str, Event); 4] = [
    ("SessionStart", Event::SessionStart),
    ("BeforeAgent", Event::Prompt),
    ("AfterAgent", Event::Stop),
    ("SessionEnd", Event::SessionEnd),
];

fn hooks_of(agent: Agent) -> &'static [(&'static str, Event)] {
    match agent {
        Agent::Claude => &HOOKS,
        Agent::Codex => &CODEX_HOOKS,
        Agent::Gemini => &GEMINI_HOOKS,
    }
}

/// The environment Codex must pass to the MCP server (it passes a filtered one): the pane it
/// runs in, and the spool.
const CODEX_MCP_ENV: [&str; 3] = ["TMUX", "TMUX_PANE", "REPOWIRE_HOME"];
/// How long Codex lets an MCP tool call run (its default is a minute; ask_peer waits up to
/// `mcp_ask_timeout`, 300 s unless configured).
const CODEX_TOOL_TIMEOUT: i64 = 600;
/// The MCP server's name in `.claude.json`; its tools are `mcp__repowire__*`.
const MCP_NAME: &str = "repowire";
/// The permission rule that allows every tool of the MCP server.
const TOOLS_RULE: &str = "mcp__repowire";
const BACKUP_SUFFIX: &str = ".repowire-backup";
/// How often a file that keeps changing under us is read and changed again.
const ATTEMPTS: usize = 5;

pub fn setup(home: &Path, args: &SetupArgs) -> Result<()> {
    let agents = if args.agent.is_empty() {
        let found: Vec<Agent> = Agent::ALL.into_iter().filter(|a| installed(*a)).collect();
        if found.is_empty() {
            bail!(
                "found none of claude, codex and gemini on PATH (nor ~/.claude, ~/.codex, ~/.gemini); install one, or name it with --agent"
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
        match agent {
            Agent::Claude => {
                let files = ClaudeFiles::locate()?;
                edits.push(Edit::new(files.settings, move |m, _| {
                    let mut changes = install_hooks(m, ours, Agent::Claude)?;
                    if trust {
                        changes.extend(allow_tools(m)?);
                    }
                    Ok(changes)
                }));
                edits.push(Edit::new(files.state, |m, _| register_mcp(m, ours)));
            }
            Agent::Codex => {
                let dir = codex_dir()?;
                edits.push(Edit::new(dir.join("hooks.json"), |m, _| {
                    install_hooks(m, ours, Agent::Codex)
                }));
                edits.push(Edit::toml(dir.join("config.toml"), |d, _| {
                    codex_install(d, ours)
                }));
            }
            Agent::Gemini => {
                edits.push(Edit::new(gemini_settings()?, move |m, _| {
                    let mut changes = install_hooks(m, ours, Agent::Gemini)?;
                    changes.extend(gemini_register_mcp(m, ours, trust)?);
                    Ok(changes)
                }));
            }
        }
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
        "Next: start {} in a tmux pane per repository (e.g. `tmux new-session -s backend -c ~/src/backend codex`); each registers itself as a peer. Check everything with `repowire status`.",
        names.join(" or ")
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
    let dir = match agent {
        Agent::Claude => ClaudeFiles::locate()
            .ok()
            .and_then(|f| f.settings.parent().map(Path::to_path_buf)),
        Agent::Codex => codex_dir().ok(),
        Agent::Gemini => gemini_settings()
            .ok()
            .and_then(|f| f.parent().map(Path::to_path_buf)),
    };
    let chosen = agent == Agent::Claude && std::env::var_os("CLAUDE_CONFIG_DIR").is_some();
    on_path || chosen || dir.is_some_and(|d| d.is_dir())
}

fn home_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set, so the agents' files cannot be found"))
}

/// Codex's directory: `$CODEX_HOME`, else `~/.codex`.
fn codex_dir() -> Result<PathBuf> {
    match std::env::var_os("CODEX_HOME").filter(|d| !d.is_empty()) {
        Some(d) => Ok(std::path::absolute(d)?),
        None => Ok(home_dir()?.join(".codex")),
    }
}

/// Gemini CLI's user settings.
fn gemini_settings() -> Result<PathBuf> {
    Ok(home_dir()?.join(".gemini").join("settings.json"))
}

pub fn uninstall(home: &Path, dry_run: bool, purge: bool) -> Result<()> {
    let files = ClaudeFiles::locate()?;
    let codex = codex_dir()?;
    let edits = [
        Edit::new(files.settings, |m, before| {
            let mut changes = remove_hooks(m, before);
            changes.extend(disallow_tools(m, before));
            Ok(changes)
        }),
        Edit::new(files.state, unregister_mcp),
        Edit::new(codex.join("hooks.json"), |m, before| {
            Ok(remove_hooks(m, before))
        }),
        Edit::toml(codex.join("config.toml"), codex_uninstall),
        Edit::new(gemini_settings()?, |m, before| {
            let mut changes = remove_hooks(m, before);
            changes.extend(unregister_mcp(m, before)?);
            Ok(changes)
        }),
    ];
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

/// What repowire puts into Claude Code's files: commands running this binary.
pub(crate) struct Ours {
    exe: String,
}

impl Ours {
    pub(crate) fn current() -> Result<Ours> {
        let exe = std::env::current_exe().context("cannot find the path of this binary")?;
        let exe = exe.into_os_string().into_string().map_err(|p| {
            anyhow!(
                "the path of this binary ({}) is not UTF-8, which Claude Code's JSON files cannot hold; install repowire elsewhere",
                Path::new(&p).display()
            )
        })?;
        Ok(Ours { exe })
    }

    pub(crate) fn exe(&self) -> &str {
        &self.exe
    }

    /// The hook command for `event` of `agent`: the agents run it with `sh -c`.
    fn hook_command(&self, event: Event, agent: Agent) -> String {
        let name = event
            .to_possible_value()
            .expect("hook events are not hidden");
        let cmd = format!("{} hook {}", sh_quote(&self.exe), name.get_name());
        match agent {
            Agent::Claude => cmd,
            _ => format!("{cmd} --agent {}", agent.as_str()),
        }
    }

    /// What `claude mcp add -s user repowire -- /abs/repowire mcp` writes.
    fn mcp_server(&self) -> Value {
        json!({"type": "stdio", "command": self.exe, "args": ["mcp"], "env": {}})
    }
}

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
    hooks_of(agent)
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

/// What is not as `repowire setup --agent codex|gemini` leaves it, one sentence each, and the
/// files looked at. (Claude Code's files are checked by `status` itself, in more detail.)
pub(crate) fn agent_problems(agent: Agent, ours: &Ours) -> Result<(Vec<String>, String)> {
    let mut problems = Vec::new();
    let hooks_file = match agent {
        Agent::Claude => bail!("Claude Code is checked elsewhere"),
        Agent::Codex => codex_dir()?.join("hooks.json"),
        Agent::Gemini => gemini_settings()?,
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
        Agent::Codex => {
            let config = codex_dir()?.join("config.toml");
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
            files += &format!(", {}", config.display());
        }
        Agent::Gemini => {
            let command = hooks
                .get("mcpServers")
                .and_then(|s| s.get(MCP_NAME))
                .and_then(|s| s.get("command"))
                .and_then(Value::as_str);
            if command != Some(ours.exe()) {
                problems.push(format!(
                    "the MCP server repowire in {} is missing or runs another binary",
                    hooks_file.display()
                ));
            }
        }
        Agent::Claude => {}
    }
    Ok((problems, files))
}

/// Whether `agent` looks installed here (see `setup`).
pub(crate) fn agent_installed(agent: Agent) -> bool {
    installed(agent)
}

/// The state of the MCP server entry in `state` (`.claude.json`).
pub(crate) fn mcp_state(state: &Object, ours: &Ours) -> Found {
    match state.get("mcpServers").and_then(|s| s.get(MCP_NAME)) {
        None => Found::Missing,
        Some(entry) if mcp_differs(entry, &ours.mcp_server()).is_none() => Found::Ours,
        Some(entry) => Found::Elsewhere(mcp_command_line(entry)),
    }
}

/// `command args...` of an MCP server entry, for people.
fn mcp_command_line(entry: &Value) -> String {
    let mut words = vec![entry["command"].as_str().unwrap_or("?").to_string()];
    if let Some(args) = entry["args"].as_array() {
        words.extend(args.iter().map(|a| a.as_str().unwrap_or("?").to_string()));
    }
    words.join(" ")
}

/// One line of what a command changed (or would change) in a file.
struct Change {
    verb: Verb,
    what: String,
}

#[derive(Clone, Copy)]
enum Verb {
    Add,
    Update,
    Remove,
}

impl Change {
    fn new(verb: Verb, what: impl Into<String>) -> Change {
        Change {
            verb,
            what: what.into(),
        }
    }

    fn show(&self, dry_run: bool) -> String {
        let verb = match (self.verb, dry_run) {
            (Verb::Add, false) => "added",
            (Verb::Update, false) => "updated",
            (Verb::Remove, false) => "removed",
            (Verb::Add, true) => "would add",
            (Verb::Update, true) => "would update",
            (Verb::Remove, true) => "would remove",
        };
        format!("{verb} {}", self.what)
    }
}

/// The hooks of ours among an event's hook groups: (group index, hook index, command).
/// Ours: a command hook whose program is named `repowire` and whose first argument is `hook`.
fn our_hooks(groups: &[Value]) -> Vec<(usize, usize, String)> {
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
fn remove_hook(groups: &mut Vec<Value>, g: usize, h: usize) {
    if let Some(hooks) = groups[g].get_mut("hooks").and_then(Value::as_array_mut) {
        hooks.remove(h);
        if hooks.is_empty() {
            groups.remove(g);
        }
    }
}

/// Adds `agent`'s hooks, or points ours at this binary; a second hook of ours on one event
/// (it would run twice) is removed.
fn install_hooks(settings: &mut Object, ours: &Ours, agent: Agent) -> Result<Vec<Change>> {
    let hooks = object_at(settings, "hooks", "hooks")?;
    let mut changes = Vec::new();
    for &(event, ev) in hooks_of(agent) {
        let groups = array_at(hooks, event, &format!("hooks.{event}"))?;
        let want = ours.hook_command(ev, agent);
        let found = our_hooks(groups);
        let Some(((g, h, cmd), extra)) = found.split_first() else {
            let mut hook = json!({"type": "command", "command": want});
            if agent == Agent::Gemini {
                // Gemini CLI shows it while the hook runs.
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
fn remove_hooks(settings: &mut Object, before: Option<&Object>) -> Vec<Change> {
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

fn allow_tools(settings: &mut Object) -> Result<Vec<Change>> {
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

fn disallow_tools(settings: &mut Object, before: Option<&Object>) -> Vec<Change> {
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

fn register_mcp(state: &mut Object, ours: &Ours) -> Result<Vec<Change>> {
    let servers = object_at(state, "mcpServers", "mcpServers")?;
    let want = ours.mcp_server();
    let line = mcp_command_line(&want);
    let Some(entry) = servers.get_mut(MCP_NAME) else {
        servers.insert(MCP_NAME.into(), want);
        return Ok(vec![Change::new(
            Verb::Add,
            format!("MCP server {MCP_NAME}: {line}"),
        )]);
    };
    let Some(field) = mcp_differs(entry, &want) else {
        return Ok(Vec::new());
    };
    let old = mcp_command_line(entry);
    // Keep whatever else the entry has (an `env` of the user's, say); set what runs.
    match entry.as_object_mut() {
        Some(e) => {
            for key in ["type", "command", "args"] {
                e.insert(key.into(), want[key].clone());
            }
        }
        None => *entry = want,
    }
    let what = if old == line {
        format!("MCP server {MCP_NAME}: its {field}")
    } else {
        format!("MCP server {MCP_NAME}: {old} → {line}")
    };
    Ok(vec![Change::new(Verb::Update, what)])
}

/// The first field of an MCP server entry that is not as `want` has it, if any (`env` may
/// differ: it is the user's).
fn mcp_differs(entry: &Value, want: &Value) -> Option<&'static str> {
    ["type", "command", "args"]
        .into_iter()
        .find(|k| entry.get(k) != want.get(k))
}

fn unregister_mcp(state: &mut Object, before: Option<&Object>) -> Result<Vec<Change>> {
    let Some(servers) = state.get_mut("mcpServers").and_then(Value::as_object_mut) else {
        return Ok(Vec::new());
    };
    let Some(entry) = servers.shift_remove(MCP_NAME) else {
        return Ok(Vec::new());
    };
    prune(state, "mcpServers", before);
    Ok(vec![Change::new(
        Verb::Remove,
        format!("MCP server {MCP_NAME}: {}", mcp_command_line(&entry)),
    )])
}

/// Gemini CLI's `mcpServers.repowire` (trusted, so its tools run without asking, with
/// `--allow-tools`). Gemini passes the environment on, `TMUX_PANE` included.
fn gemini_register_mcp(settings: &mut Object, ours: &Ours, trust: bool) -> Result<Vec<Change>> {
    let servers = object_at(settings, "mcpServers", "mcpServers")?;
    let mut want = json!({"command": ours.exe, "args": ["mcp", "--agent", "gemini"]});
    if trust {
        want["trust"] = json!(true);
    }
    let line = mcp_command_line(&want);
    let Some(entry) = servers.get_mut(MCP_NAME) else {
        servers.insert(MCP_NAME.into(), want);
        return Ok(vec![Change::new(
            Verb::Add,
            format!("MCP server {MCP_NAME}: {line}"),
        )]);
    };
    let keys: &[&str] = if trust {
        &["command", "args", "trust"]
    } else {
        &["command", "args"]
    };
    if keys.iter().all(|k| entry.get(*k) == want.get(*k)) {
        return Ok(Vec::new());
    }
    let old = mcp_command_line(entry);
    match entry.as_object_mut() {
        Some(e) => {
            for key in keys {
                e.insert((*key).into(), want[*key].clone());
            }
        }
        None => *entry = want,
    }
    Ok(vec![Change::new(
        Verb::Update,
        format!("MCP server {MCP_NAME}: {old} → {line}"),
    )])
}

/// Codex's `config.toml`: `[mcp_servers.repowire]` and `features.daemon_auto_start = false`.
fn codex_install(doc: &mut DocumentMut, ours: &Ours) -> Result<Vec<Change>> {
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
fn codex_uninstall(doc: &mut DocumentMut, before: Option<&DocumentMut>) -> Result<Vec<Change>> {
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
fn toml_table<'a>(
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

/// Removes `map[key]` if it is an empty list or object that `before` (the file as it was
/// before setup first changed it) did not have: a container setup created, now emptied.
fn prune(map: &mut Object, key: &str, before: Option<&Object>) {
    let empty = match map.get(key) {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    if empty && !before.is_some_and(|b| b.contains_key(key)) {
        map.shift_remove(key);
    }
}

/// `map[key]` as an object, created if missing; an error naming `path` if it is not one.
fn object_at<'a>(map: &'a mut Object, key: &str, path: &str) -> Result<&'a mut Object> {
    let v = map.entry(key).or_insert_with(|| json!({}));
    let kind = kind_of(v);
    v.as_object_mut()
        .ok_or_else(|| anyhow!("`{path}` is {kind}, where Claude Code expects an object"))
}

/// `map[key]` as a list, created if missing; an error naming `path` if it is not one.
fn array_at<'a>(map: &'a mut Object, key: &str, path: &str) -> Result<&'a mut Vec<Value>> {
    let v = map.entry(key).or_insert_with(|| json!([]));
    let kind = kind_of(v);
    v.as_array_mut()
        .ok_or_else(|| anyhow!("`{path}` is {kind}, where Claude Code expects a list"))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What an edit does to a file's top-level object, given the file as it was before setup
/// first changed it (its backup), if known: it says what it changed.
type Apply<'a> = dyn Fn(&mut Object, Option<&Object>) -> Result<Vec<Change>> + 'a;
/// The same for a TOML file (Codex's `config.toml`).
type ApplyToml<'a> = dyn Fn(&mut DocumentMut, Option<&DocumentMut>) -> Result<Vec<Change>> + 'a;

/// A change to one file.
struct Edit<'a> {
    path: PathBuf,
    apply: Applier<'a>,
}

enum Applier<'a> {
    Json(Box<Apply<'a>>),
    Toml(Box<ApplyToml<'a>>),
}

impl<'a> Edit<'a> {
    fn new(
        path: PathBuf,
        apply: impl Fn(&mut Object, Option<&Object>) -> Result<Vec<Change>> + 'a,
    ) -> Edit<'a> {
        Edit {
            path,
            apply: Applier::Json(Box::new(apply)),
        }
    }

    fn toml(
        path: PathBuf,
        apply: impl Fn(&mut DocumentMut, Option<&DocumentMut>) -> Result<Vec<Change>> + 'a,
    ) -> Edit<'a> {
        Edit {
            path,
            apply: Applier::Toml(Box::new(apply)),
        }
    }
}

/// An edit worked out on the file as read, not yet written.
struct Plan {
    /// The file actually written: the path, or where it links to.
    target: PathBuf,
    /// The file's bytes as read (`None`: no such file).
    before: Option<Vec<u8>>,
    /// The bytes to write (`None`: delete the file).
    after: Option<Vec<u8>>,
    changes: Vec<Change>,
    /// `after` is the backup, which then goes.
    restores_backup: bool,
}

fn backup_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(BACKUP_SUFFIX);
    PathBuf::from(p)
}

/// Reads every file and works out every edit, so that nothing is written unless all of them
/// can be done.
fn plan_all(edits: &[Edit]) -> Result<Vec<Plan>> {
    edits
        .iter()
        .map(|e| {
            plan(e).map_err(|err| {
                err.context("nothing was changed; fix that and run the command again")
            })
        })
        .collect()
}

fn plan(edit: &Edit) -> Result<Plan> {
    let path = edit.path.as_path();
    let target = resolve(path)?;
    let before = read_opt(&target)?;
    let backup_bytes = read_opt(&backup_path(path))?;
    // A backup that no longer parses is no guide to what the user had: ignore it.
    let (changes, after, restores_backup) = match &edit.apply {
        Applier::Json(apply) => {
            let mut value = parse_object(path, before.as_deref())?;
            let backup =
                backup_bytes.and_then(|b| parse_object(path, Some(&b)).ok().map(|v| (b, v)));
            let changes = apply(&mut value, backup.as_ref().map(|(_, v)| v))
                .with_context(|| format!("cannot change {}", path.display()))?;
            match backup {
                _ if changes.is_empty() => (changes, before.clone(), false),
                Some((bytes, old)) if old == value => (changes, Some(bytes), true),
                // Nothing but repowire's entries was in it, and no backup says the user had
                // the file before: it goes, as it was before setup.
                None if value.is_empty() => (changes, None, false),
                _ => {
                    let after = render(&value, before.as_deref());
                    (changes, Some(after), false)
                }
            }
        }
        Applier::Toml(apply) => {
            let mut doc = parse_toml(path, before.as_deref())?;
            let backup = backup_bytes.and_then(|b| parse_toml(path, Some(&b)).ok().map(|d| (b, d)));
            let changes = apply(&mut doc, backup.as_ref().map(|(_, d)| d))
                .with_context(|| format!("cannot change {}", path.display()))?;
            let text = doc.to_string();
            match backup {
                _ if changes.is_empty() => (changes, before.clone(), false),
                Some((bytes, old)) if old.to_string() == text => (changes, Some(bytes), true),
                None if text.trim().is_empty() => (changes, None, false),
                _ => (changes, Some(text.into_bytes()), false),
            }
        }
    };
    Ok(Plan {
        target,
        before,
        after,
        changes,
        restores_backup,
    })
}

/// Parses a TOML file (`bytes`, `None`: missing) keeping its formatting; an error names the
/// file and the line.
fn parse_toml(path: &Path, bytes: Option<&[u8]>) -> Result<DocumentMut> {
    let Some(bytes) = bytes else {
        return Ok(DocumentMut::new());
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow!("{} is not UTF-8 text; fix or remove it", path.display()))?;
    text.parse::<DocumentMut>().map_err(|e| {
        let msg = e.to_string();
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(0);
        anyhow!(
            "{}:{line}: not valid TOML; Codex cannot read it either. Fix it at line {line}:\n{}",
            path.display(),
            msg.trim_end()
        )
    })
}

/// As Claude Code writes its files: pretty-printed with two-space indents (the original's
/// final newline kept, or its absence).
fn render(value: &Object, before: Option<&[u8]>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    if before.is_none_or(|b| b.ends_with(b"\n")) {
        bytes.push(b'\n');
    }
    bytes
}

/// Writes every plan (or, for a dry run, only says what it would change). Returns whether
/// any file changed.
fn commit_all(edits: &[Edit], plans: Vec<Plan>, dry_run: bool) -> Result<bool> {
    let mut changed = false;
    for (edit, plan) in edits.iter().zip(plans) {
        let (plan, backup) = if dry_run {
            (plan, None)
        } else {
            commit(edit, plan)?
        };
        report(&edit.path, &plan, backup.as_deref(), dry_run);
        changed |= !plan.changes.is_empty();
    }
    Ok(changed)
}

fn report(path: &Path, plan: &Plan, backup: Option<&Path>, dry_run: bool) {
    if plan.changes.is_empty() {
        println!("{}: up to date", path.display());
        return;
    }
    let (restore, delete) = match dry_run {
        false => ("restored", "deleted"),
        true => ("to be restored", "to be deleted"),
    };
    let note = match (plan.restores_backup, plan.after.is_none(), backup) {
        (true, _, _) => format!(
            ", {restore} byte for byte from {}",
            backup_path(path).display()
        ),
        (_, true, _) => format!(", {delete}: nothing else is in it"),
        (_, _, Some(b)) => format!(", the original kept in {}", b.display()),
        _ => String::new(),
    };
    println!("{}{note}:", path.display());
    for c in &plan.changes {
        println!("  {}", c.show(dry_run));
    }
}

/// Writes one plan, working it out again if the file changed since it was read. Returns the
/// plan written and the backup made now, if any.
fn commit(edit: &Edit, first: Plan) -> Result<(Plan, Option<PathBuf>)> {
    let mut p = first;
    for _ in 0..ATTEMPTS {
        if p.after == p.before {
            return Ok((p, None));
        }
        match write(&edit.path, &p)? {
            Written::Done(backup) => return Ok((p, backup)),
            Written::Raced => p = plan(edit)?,
        }
    }
    bail!(
        "{} kept changing while repowire tried to update it; quit the agent and run the command again",
        edit.path.display()
    )
}

/// What [`write`] did.
#[derive(Debug, PartialEq)]
enum Written {
    /// Nothing: the file changed since the plan was made.
    Raced,
    /// Replaced the file; the backup made now, if any.
    Done(Option<PathBuf>),
}

/// Replaces the file atomically, if it still holds what the plan was made from.
fn write(path: &Path, plan: &Plan) -> Result<Written> {
    let dir = plan.target.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let staged = match &plan.after {
        Some(bytes) => Some(stage(&plan.target, bytes)?),
        None => None,
    };
    // The staging took a while; Claude Code may have rewritten the file meanwhile, and
    // renaming over that would lose its change. (The window left is the rename itself.)
    if read_opt(&plan.target)? != plan.before {
        return Ok(Written::Raced);
    }
    let backup = backup_path(path);
    let made = match &plan.before {
        // (A file deleted held nothing but repowire's entries: nothing to keep.)
        Some(original) if !plan.restores_backup && plan.after.is_some() => {
            write_backup(&backup, original)?.then_some(backup.clone())
        }
        _ => None,
    };
    let what = || format!("cannot write {}", plan.target.display());
    match staged {
        Some(tmp) => {
            tmp.persist(&plan.target)
                .map_err(|e| e.error)
                .with_context(what)?;
        }
        None => fs::remove_file(&plan.target).with_context(what)?,
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(what)?;
    if plan.restores_backup {
        fs::remove_file(&backup).with_context(|| format!("cannot remove {}", backup.display()))?;
    }
    Ok(Written::Done(made))
}

/// A temporary file beside `target` holding `bytes`, fsynced, with `target`'s permissions
/// (0600 for a new file).
fn stage(target: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let what = || format!("cannot write a temporary file in {}", dir.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".repowire-")
        .tempfile_in(dir)
        .with_context(what)?;
    if let Ok(md) = fs::metadata(target) {
        tmp.as_file()
            .set_permissions(md.permissions())
            .with_context(what)?;
    }
    tmp.write_all(bytes).with_context(what)?;
    tmp.as_file().sync_all().with_context(what)?;
    Ok(tmp)
}

/// Saves `original` as the backup unless there is one already (only the first change is
/// backed up). Returns whether it made one.
fn write_backup(backup: &Path, original: &[u8]) -> Result<bool> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(backup);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", backup.display())),
    };
    file.write_all(original)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", backup.display()))?;
    Ok(true)
}

/// The file to read and replace for `path`: where it links to, if it is a symbolic link
/// (as with a dotfiles repository), so the link stays a link.
fn resolve(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => fs::canonicalize(path).with_context(|| {
            format!(
                "{} is a symbolic link to a file that does not exist; fix or remove the link",
                path.display()
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// A file's bytes; `None` if it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Reads a Claude Code JSON file's top-level object: empty if the file does not exist.
pub(crate) fn read_object(path: &Path) -> Result<Object> {
    parse_object(path, read_opt(&resolve(path)?)?.as_deref())
}

/// Parses a Claude Code JSON file (`bytes`, `None`: missing); an error names the file, the
/// line and the column.
fn parse_object(path: &Path, bytes: Option<&[u8]>) -> Result<Object> {
    let Some(bytes) = bytes.filter(|b| !b.trim_ascii().is_empty()) else {
        return Ok(Map::new());
    };
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(v) => bail!(
            "{} holds {}, not a JSON object as Claude Code expects; fix or remove it",
            path.display(),
            kind_of(&v)
        ),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            bail!(
                "{}:{}:{}: not valid JSON ({msg}); Claude Code cannot read it either. Fix it at line {}, column {}",
                path.display(),
                e.line(),
                e.column(),
                e.line(),
                e.column()
            )
        }
    }
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

/// A word for `sh`: quoted unless it is plainly safe.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@%,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The words of a simple `sh` command line: quotes and backslashes as `sh` reads them;
/// anything fancier (`$`, `;`) is taken literally, which is enough to tell a repowire hook.
fn sh_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => w.push(n),
                            Some(n) => w.extend(['\\', n]),
                            None => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_round_trip_quoting() {
        for path in [
            "/usr/bin/repowire",
            "/opt/my tools/repowire",
            "/it's/repowire",
            "/a\"b/$x/repowire",
        ] {
            let line = format!("{} hook stop", sh_quote(path));
            assert_eq!(sh_words(&line), [path, "hook", "stop"], "{line}");
        }
        assert_eq!(
            sh_words(r#"a\ b "c \"d\"" 'e''f'"#),
            ["a b", "c \"d\"", "ef"]
        );
    }

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

    #[test]
    fn a_file_rewritten_since_it_was_read_is_changed_again_not_overwritten() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(".claude.json");
        fs::write(&path, br#"{"numStartups": 1}"#).unwrap();
        let ours = Ours {
            exe: "/x/repowire".into(),
        };
        let edit = Edit::new(path.clone(), |m, _| register_mcp(m, &ours));
        let first = plan(&edit).unwrap();
        // Claude Code rewrites the file between our read and our rename.
        fs::write(&path, br#"{"numStartups": 2}"#).unwrap();
        assert_eq!(write(&path, &first).unwrap(), Written::Raced);
        assert_eq!(fs::read(&path).unwrap(), br#"{"numStartups": 2}"#);

        let (_, backup) = commit(&edit, first).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["numStartups"], 2);
        assert_eq!(v["mcpServers"]["repowire"]["command"], "/x/repowire");
        assert_eq!(backup, Some(backup_path(&path)));
        assert_eq!(
            fs::read(backup_path(&path)).unwrap(),
            br#"{"numStartups": 2}"#
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2);
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let e = parse_object(Path::new("/h/settings.json"), Some(b"{\n  \"a\": 1,\n}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/h/settings.json:3:1: not valid JSON"), "{e}");
        assert!(e.contains("line 3, column 1"), "{e}");
        let e = parse_object(Path::new("/h/x.json"), Some(b"[]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds a list"), "{e}");
        assert!(
            parse_object(Path::new("/h/x.json"), Some(b" \n"))
                .unwrap()
                .is_empty()
        );
    }
}
