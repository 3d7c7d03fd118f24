//! `repowire status`: the health check to run when something does not work.
//!
//! It checks the spool, the hooks and the MCP server in the files of each agent found
//! (with none found, Claude Code's), each installed agent's release against the ones repowire
//! is tested with, tmux and the inotify limits, every file of the spool (a record that cannot
//! be used is moved aside, as every command does, and reported with what was moved aside
//! before), and lists the peers. It creates nothing: a missing spool is reported (an existing
//! one is opened as by every command, which adds a missing subdirectory). Every problem comes
//! with the command that fixes it; a warning is worth knowing but does not stop anything from
//! working, and a note even less. The exit status is non-zero when there is a problem.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::agents::edit::Ours;
use crate::agents::{Agent, Health, newer};
use crate::config::Config;
use crate::message;
use crate::peer::{self, Status, Transport};
use crate::spool::{self, Spool};

/// tmux older than this lacks what repowire relies on.
const TMUX_MIN: (u32, u32) = (3, 0);
#[cfg(target_os = "linux")]
/// Fewer free inotify instances than this, and waits soon fall back to polling: every
/// waiting asker and every deliverer holds one.
const INOTIFY_INSTANCES_LOW: u64 = 32;
#[cfg(target_os = "linux")]
/// Each wait watches a few spool directories; other programs (editors) take thousands.
const INOTIFY_WATCHES_LOW: u64 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    /// Worth knowing, nothing to fix.
    Note,
    Warning,
    Problem,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    /// False only for a problem: a warning is ok.
    ok: bool,
    level: Level,
    detail: String,
    /// The command (or action) that fixes it.
    fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            ok: true,
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn note(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            level: Level::Note,
            ..Check::ok(check, detail)
        }
    }

    fn problem(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::with_fix(Level::Problem, check, detail.into(), fix.into())
    }

    #[cfg_attr(
        not(target_os = "linux"),
        expect(dead_code, reason = "only Linux's inotify limits warn")
    )]
    fn warning(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::with_fix(Level::Warning, check, detail.into(), fix.into())
    }

    fn with_fix(level: Level, check: &'static str, detail: String, fix: String) -> Check {
        Check {
            check,
            ok: level != Level::Problem,
            level,
            detail,
            fix: Some(fix),
        }
    }
}

#[derive(Debug, Serialize)]
struct PeerState {
    name: String,
    status: Status,
    /// Why it is offline.
    #[serde(skip_serializing_if = "str::is_empty")]
    why: &'static str,
    pane: String,
    path: String,
    /// How it is reached.
    transport: Transport,
    /// Why its agent's inbox is not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    no_inbox: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    checks: Vec<Check>,
    peers: Vec<PeerState>,
}

pub fn run(home: &Path, json: bool) -> Result<()> {
    let (spool_check, spool) = check_spool(home);
    let mut checks = vec![spool_check];
    // Each agent found is checked; with none, the default one.
    let mut found: Vec<Agent> = Agent::ALL.into_iter().filter(|a| a.installed()).collect();
    if found.is_empty() {
        found.push(Agent::default());
    }
    checks.extend(found.into_iter().flat_map(check_agent));
    checks.extend(Agent::ALL.into_iter().filter_map(check_version));
    checks.push(check_tmux());
    checks.push(check_events());
    let mut peers = Vec::new();
    if let Some(s) = &spool {
        checks.push(check_size(s));
        // Read first: a record that cannot be used is moved aside as it is read, and then
        // reported with what was moved aside before.
        match peer_states(s) {
            Ok(p) => peers = p,
            Err(e) => checks.push(Check::problem(
                "peers",
                format!("cannot list the peers: {e:#}"),
                "see the message",
            )),
        }
        checks.extend(check_files(s));
    }
    let report = Report {
        ok: checks.iter().all(|c| c.ok),
        checks,
        peers,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    match report.checks.iter().filter(|c| !c.ok).count() {
        0 => Ok(()),
        1 => bail!("1 problem found; its fix is above"),
        n => bail!("{n} problems found; their fixes are above"),
    }
}

fn print_text(report: &Report) {
    for c in &report.checks {
        let level = match c.level {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Problem => "PROBLEM",
        };
        println!("{level:8} {:8} {}", c.check, c.detail);
        if let Some(fix) = &c.fix {
            println!("{:8} {:8} fix: {fix}", "", "");
        }
    }
    if report.peers.is_empty() {
        println!("peers: none yet (an agent session registers itself when it starts)");
        return;
    }
    println!("peers:");
    let w = report.peers.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &report.peers {
        let status = if p.why.is_empty() {
            p.status.as_str().to_string()
        } else {
            format!("{} ({})", p.status.as_str(), p.why)
        };
        let via = match &p.no_inbox {
            Some(why) => format!("{} (its inbox is not used: {why})", p.transport),
            None => p.transport.to_string(),
        };
        let pane = if p.pane.is_empty() { "-" } else { &p.pane };
        println!("  {:w$}  {pane:5}  {}  {status}  via {via}", p.name, p.path);
    }
}

/// The spool, checked as `Spool::open` checks it, but never created here.
fn check_spool(home: &Path) -> (Check, Option<Spool>) {
    if !home.exists() {
        let c = Check::problem(
            "spool",
            format!("{} does not exist", home.display()),
            "repowire setup",
        );
        return (c, None);
    }
    match Spool::open(home) {
        Ok(s) => (
            Check::ok("spool", format!("{} (private to you)", home.display())),
            Some(s),
        ),
        Err(e) => {
            let msg = format!("{e:#}");
            // The spool's errors name their fix in backquotes (`chmod 700 DIR`).
            let fix = fix_in(&msg);
            (Check::problem("spool", msg, fix), None)
        }
    }
}

/// The agent's files, as `repowire setup` leaves them.
fn check_agent(agent: Agent) -> Vec<Check> {
    let health = match Ours::current() {
        Ok(ours) => agent.health(&ours),
        Err(e) => vec![Health {
            check: agent.name(),
            detail: format!("{e:#}"),
            fix: Some(format!("repowire setup --agent {}", agent.name())),
            needed_to_register: true,
        }],
    };
    health
        .into_iter()
        .map(|h| match h.fix {
            None => Check::ok(h.check, h.detail),
            Some(fix) => Check::problem(h.check, h.detail, fix),
        })
        .collect()
}

/// The installed release of `agent` (its `--version`) against the releases repowire is
/// tested with; nothing when its command is not on PATH or tells no version in time.
fn check_version(agent: Agent) -> Option<Check> {
    let printed = version_output(agent.name())?;
    let (oldest, newest) = agent.tested();
    let installed = release(&printed)?;
    let title = agent.title();
    let detail = format!("{title} {installed} (tested: {oldest} to {newest})");
    Some(if newer(oldest, &installed) {
        Check::problem(
            "version",
            format!("{detail}: older than any release repowire is tested with"),
            format!("npm install -g {}@latest", agent.package()),
        )
    } else if newer(&installed, newest) {
        Check::note(
            "version",
            format!("{detail}: newer than repowire was tested with; report what breaks"),
        )
    } else {
        Check::ok("version", detail)
    })
}

/// What `program --version` prints, on stdout then stderr (Pi prints it there), if it runs
/// within 5 s (a hung one is killed: status must answer).
fn version_output(program: &str) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    std::io::Read::read_to_string(&mut child.stderr.take()?, &mut out).ok()?;
    Some(out)
}

/// The first `N.N.N` in a `--version` line: `2.1.330 (Claude Code)`, `codex-cli 0.171.0`.
fn release(printed: &str) -> Option<String> {
    printed
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .find(|w| w.split('.').count() >= 3 && w.split('.').all(|n| n.parse::<u32>().is_ok()))
        .map(str::to_string)
}

/// How much the spool holds and how old its oldest record is, against `keep`.
fn check_size(spool: &Spool) -> Check {
    let (mut bytes, mut files, mut oldest) = (0u64, 0u64, None::<std::time::SystemTime>);
    for dir in ["peers", "queue", "done", "responses", "log"] {
        for entry in std::fs::read_dir(spool.path(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            bytes += meta.len();
            files += 1;
            if let Ok(t) = meta.modified() {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
        }
    }
    let age = oldest
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map_or("none".to_string(), |a| {
            let now = crate::time::now_ms();
            let then = now.saturating_sub(a.as_millis() as u64).max(1);
            format!("from {}", crate::time::ago(then, now))
        });
    let keep = Config::load(spool).map(|c| c.keep).unwrap_or_default();
    let kept = match keep.as_secs() {
        0 => "housekeeping keeps everything (keep: 0)".to_string(),
        s => format!(
            "housekeeping removes what is older than {} days",
            s.div_ceil(86_400)
        ),
    };
    Check::ok(
        "size",
        format!(
            "{:.1} MB in {files} files, oldest record {age}; {kept}",
            bytes as f64 / 1e6
        ),
    )
}

fn check_tmux() -> Check {
    let out = Command::new("tmux")
        .arg("-V")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let install = "install tmux 3.0 or newer (e.g. `sudo apt install tmux`, `brew install tmux`)";
    let version = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => return Check::problem("tmux", "tmux is not installed (or not on PATH)", install),
    };
    match tmux_version(&version) {
        Some(v) if v < TMUX_MIN => Check::problem(
            "tmux",
            format!("{version} is too old: repowire needs 3.0 or newer"),
            install,
        ),
        Some(_) => Check::ok("tmux", version),
        None => Check::ok("tmux", format!("{version} (version not recognized)")),
    }
}

/// (major, minor) from `tmux -V` output: `tmux 3.3a`, `tmux next-3.4`, `tmux 3.5`.
fn tmux_version(s: &str) -> Option<(u32, u32)> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let mut nums = s[start..]
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    let major = nums.next()?.ok()?;
    let minor = nums.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor))
}

/// macOS: FSEvents has no per-user limits to run out of.
#[cfg(target_os = "macos")]
fn check_events() -> Check {
    Check::ok("events", "FSEvents (macOS): no limits to check")
}

/// Linux: inotify's limits, and how much of them this user's processes hold.
#[cfg(target_os = "linux")]
fn check_events() -> Check {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (Some(instances), Some(watches)) = (read("max_user_instances"), read("max_user_watches"))
    else {
        return Check::ok("inotify", "not available here; repowire polls instead");
    };
    let used = inotify_instances_in_use();
    let sysctl = |key: &str, value: u64| {
        format!(
            "sudo sysctl fs.inotify.{key}={value} (to keep it: echo fs.inotify.{key}={value} | sudo tee /etc/sysctl.d/60-inotify.conf)"
        )
    };
    let limits = format!("{used} of {instances} instances in use, {watches} watches per user");
    if instances.saturating_sub(used) < INOTIFY_INSTANCES_LOW {
        return Check::warning(
            "inotify",
            format!("{limits}: few instances left, so waits may poll (slower, more CPU)"),
            sysctl("max_user_instances", (instances * 2).max(1024)),
        );
    }
    if watches < INOTIFY_WATCHES_LOW {
        return Check::warning(
            "inotify",
            format!("{limits}: few watches, so waits may poll (slower, more CPU)"),
            sysctl("max_user_watches", 65536),
        );
    }
    Check::ok("inotify", limits)
}

#[cfg(target_os = "linux")]
/// How many inotify instances this user's processes hold (the limit is per user): open
/// files that are `anon_inode:inotify`, in every process of ours that /proc lets us see.
fn inotify_instances_in_use() -> u64 {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for p in procs.flatten() {
        if !p.metadata().is_ok_and(|m| m.uid() == uid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        n += fds
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify")
            })
            .count() as u64;
    }
    n
}

fn peer_states(spool: &Spool) -> Result<Vec<PeerState>> {
    let peers = peer::all(spool)?;
    let panes = peer::live_panes(&peers);
    Ok(peers
        .iter()
        .map(|p| {
            let (status, why) = peer::status_of(p, &panes);
            PeerState {
                name: p.name.clone(),
                status,
                why,
                pane: p.pane.clone(),
                path: p.path.display().to_string(),
                transport: p.transport(),
                no_inbox: p.no_inbox.clone(),
            }
        })
        .collect())
}

/// Every file of the spool that cannot be used, each with its fix: `config.yaml`, the records
/// (read as every command reads them, so a bad one is moved aside), the locks and the
/// history's files (checked as they are opened), and whatever was moved aside into `corrupt/`.
fn check_files(spool: &Spool) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Err(e) = Config::load(spool) {
        let msg = format!("{e:#}");
        let fix = fix_in(&msg);
        checks.push(Check::problem("config", msg, fix));
    }
    if let Err(e) = message::read_all(spool) {
        checks.push(Check::problem(
            "records",
            format!("cannot read the messages: {e:#}"),
            "see the message",
        ));
    }
    for dir in ["peers", "queue", "done", "responses", "log"] {
        for entry in std::fs::read_dir(spool.path(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".pane-") {
                // The pane index: read as the hooks read it (a bad one is moved aside).
                let _ = spool.read_json::<String>(&path);
                continue;
            }
            let opened_as_is = name.ends_with(".lock") || name.ends_with(".jsonl");
            if !opened_as_is {
                continue;
            }
            if let Err(e) = spool::open_private(&path, std::fs::OpenOptions::new().read(true)) {
                let msg = e.to_string();
                let fix = fix_in(&msg);
                checks.push(Check::problem("file", msg, fix));
            }
        }
    }
    let corrupt = spool.path("corrupt");
    let mut moved: Vec<_> = std::fs::read_dir(&corrupt)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|x| x != "why"))
        .collect();
    moved.sort();
    for p in moved {
        let note = format!("{}.why", p.display());
        let why = std::fs::read_to_string(&note).unwrap_or_default();
        let mut fields = why.trim_end().splitn(3, '\t');
        let (when, what, why) = (fields.next(), fields.next(), fields.next());
        checks.push(Check::problem(
            "corrupt",
            format!(
                "{} could not be used ({}) and was moved aside{}: {}",
                what.unwrap_or("a file"),
                why.unwrap_or("no note"),
                when.map_or(String::new(), |w| format!(" at {w}")),
                p.display()
            ),
            format!("look at it, then remove it: `rm -r {} {note}`", p.display()),
        ));
    }
    checks
}

/// The command a message of the spool's names in backquotes (`chmod 600 FILE`).
fn fix_in(msg: &str) -> String {
    msg.split('`')
        .nth(1)
        .map_or("see the message".to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_releases() {
        assert_eq!(release("2.0.77 (Claude Code)\n").as_deref(), Some("2.0.77"));
        assert_eq!(release("codex-cli 0.171.0\n").as_deref(), Some("0.171.0"));
        assert_eq!(release("0.61.0").as_deref(), Some("0.61.0"));
        assert_eq!(release("v1.2 nightly"), None);
        assert!(newer("2.1.332", "2.1.330"));
        assert!(newer("2.10.0", "2.9.99"));
        assert!(!newer("2.0.77", "2.0.77"));
        assert!(!newer("0.169.0", "0.171.0"));
    }

    #[test]
    fn tmux_versions() {
        assert_eq!(tmux_version("tmux 3.3a"), Some((3, 3)));
        assert_eq!(tmux_version("tmux next-3.4"), Some((3, 4)));
        assert_eq!(tmux_version("tmux 2.9"), Some((2, 9)));
        assert_eq!(tmux_version("tmux 3"), Some((3, 0)));
        assert_eq!(tmux_version("tmux master"), None);
    }
}
