//! `repowire up`, `down` and `peer spawn`: a team of peers started and ended in one command.
//!
//! A team file (`repowire.yaml`) names each peer with its directory and agent. `up` starts
//! each one not running in a window of one tmux session of the user's tmux server, and gives
//! the new pane the peer's name before its agent can register (under the naming lock the
//! SessionStart hook takes too), so the session becomes that peer whatever its directory is
//! called; then it waits until each has registered. `down` ends the agents it started.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::agents::{self, Agent};
use crate::describe;
use crate::error::Error;
use crate::peer::{self, Peer, Status, Turn};
use crate::spool::Spool;
use crate::time::now_ms;
use crate::tmux::Server;
use crate::wait::Watch;

/// The team file `up` and `down` read when not given one.
pub const FILE: &str = "repowire.yaml";
/// The tmux session the peers' windows go to when the team file names none.
pub const DEFAULT_SESSION: &str = "repowire";
/// How long `down` waits for an agent to end after its pane closed, before it sends SIGTERM.
const HANGUP_PATIENCE: Duration = Duration::from_secs(3);
/// How long `down` then waits for it to end (its SessionEnd hook runs first).
const STOP_PATIENCE: Duration = Duration::from_secs(15);

/// A team: the tmux session for its windows and its peers, in the file's order.
#[derive(Debug)]
pub struct Team {
    pub tmux_session: String,
    pub members: Vec<Member>,
}

/// One peer of a team.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    /// Its directory, `~` expanded and relative to the team file's directory.
    pub path: PathBuf,
    pub agent: Agent,
    pub description: Option<String>,
    /// The command line that starts it, run by the shell (default: the agent's program).
    pub command: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    tmux_session: Option<String>,
    peers: serde_yaml::Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberShape {
    path: String,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    command: Option<String>,
}

impl Team {
    /// Reads the team file `file`, else `repowire.yaml` in the current directory.
    pub fn load(file: Option<&Path>) -> Result<Team> {
        let path = file.unwrap_or(Path::new(FILE));
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {
                return Err(Error::BadInput(format!(
                    "no {FILE} here: write one (see `repowire up --help`) or name it with -f FILE"
                ))
                .into());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let base = std::path::absolute(path)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Team::parse(&text, &base)
            .map_err(|e| Error::BadInput(format!("{}: {e:#}", path.display())).into())
    }

    /// Parses a team file's text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Team> {
        let shape: FileShape = serde_yaml::from_str(text)?;
        let tmux_session = shape
            .tmux_session
            .unwrap_or_else(|| DEFAULT_SESSION.to_string());
        check_session(&tmux_session)?;
        let mut members = Vec::new();
        for (key, value) in shape.peers {
            let name = key
                .as_str()
                .ok_or_else(|| anyhow!("a peer's name must be text, not {key:?}"))?
                .to_string();
            peer::validate_name(&name)?;
            let m: MemberShape =
                serde_yaml::from_value(value).with_context(|| format!("peer {name}"))?;
            members.push(Member::new(
                &name,
                &expand(&m.path, base)?,
                m.agent.as_deref(),
                m.description.as_deref(),
                m.command,
            )?);
        }
        if members.is_empty() {
            bail!("`peers:` names no peer");
        }
        Ok(Team {
            tmux_session,
            members,
        })
    }
}

impl Member {
    /// A member, its fields checked (`agent` by name; default `claude`).
    pub fn new(
        name: &str,
        path: &Path,
        agent: Option<&str>,
        description: Option<&str>,
        command: Option<String>,
    ) -> Result<Member> {
        peer::validate_name(name)?;
        let agent = match agent {
            None => Agent::default(),
            Some(a) => Agent::named(&a.to_ascii_lowercase()).ok_or_else(|| {
                anyhow!("peer {name}: unknown agent '{a}'; use {}", Agent::names())
            })?,
        };
        let description = description
            .map(describe::check)
            .transpose()
            .map_err(|e| anyhow!("peer {name}: {e}"))?
            .filter(|d| !d.is_empty());
        if let Some(c) = &command
            && c.trim().is_empty()
        {
            bail!("peer {name}: `command` is empty; leave it out for the agent's own");
        }
        Ok(Member {
            name: name.to_string(),
            path: path.to_path_buf(),
            agent,
            description,
            command,
        })
    }

    fn command(&self) -> &str {
        self.command.as_deref().unwrap_or(self.agent.name())
    }
}

/// A tmux session name repowire can target: letters, digits, '-' and '_'.
pub fn check_session(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !ok {
        return Err(Error::BadInput(format!(
            "invalid tmux session name {name:?}: use 1 to 64 letters, digits, '-' or '_'"
        ))
        .into());
    }
    Ok(())
}

/// `~`, `~/...` and paths relative to `base`.
fn expand(path: &str, base: &Path) -> Result<PathBuf> {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("HOME is not set, so {path} cannot be expanded"))
    };
    Ok(match path {
        "~" => home()?,
        p if p.starts_with("~/") => home()?.join(&p[2..]),
        p => base.join(p),
    })
}

/// What became of one peer.
enum Outcome {
    Done(String),
    Failed(String),
}

/// Prints `name: what` for each outcome; an error when any failed.
fn report(results: Vec<(String, Outcome)>) -> Result<()> {
    let w = results.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut failed = 0;
    for (name, o) in &results {
        match o {
            Outcome::Done(what) => println!("{name:w$}  {what}"),
            Outcome::Failed(why) => {
                failed += 1;
                println!("{name:w$}  not done: {why}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} peers not done (see above)", results.len());
    }
    Ok(())
}

/// `repowire up` (and `peer spawn`): starts every member that is not running, then waits up to
/// `timeout` until each has registered.
pub fn up(spool: &Spool, team: &Team, timeout: Duration) -> Result<()> {
    let server = Server::from_env();
    let home = std::path::absolute(spool.root())?;
    let since = now_ms();
    let mut results: Vec<(String, Outcome)> = Vec::new();
    // (index in results, pane, when it started)
    let mut starting: Vec<(usize, String, Instant)> = Vec::new();
    for m in &team.members {
        let old = peer::load(spool, &m.name)?;
        if let Some(p) = &old
            && let Some(d) = &m.description
            && p.description.as_ref() != Some(d)
        {
            peer::set_description(spool, &m.name, d)?;
        }
        let outcome = match old.as_ref().map(|p| (p, peer::status(p).0)) {
            Some((p, Status::Online | Status::Busy)) => {
                Outcome::Done(format!("already running (pane {})", p.pane))
            }
            Some((p, _)) if still_starting(p) => {
                starting.push((results.len(), p.pane.clone(), Instant::now()));
                Outcome::Done(String::new())
            }
            _ => match start(spool, &server, team, m, &home) {
                Ok(pane) => {
                    starting.push((results.len(), pane, Instant::now()));
                    Outcome::Done(String::new())
                }
                Err(e) => Outcome::Failed(format!("{e:#}")),
            },
        };
        results.push((m.name.clone(), outcome));
    }
    let deadline = Instant::now() + timeout;
    let files: Vec<PathBuf> = starting
        .iter()
        .map(|(i, ..)| peer::record_path(spool, &results[*i].0))
        .collect();
    let watch = Watch::files(&files);
    while !starting.is_empty() {
        let mut left = Vec::new();
        for (i, pane, began) in starting {
            let name = &results[i].0;
            let rec = peer::load(spool, name)?;
            let registered = rec
                .as_ref()
                .is_some_and(|p| p.online && p.pane == pane && p.started_ms >= since);
            results[i].1 = if registered {
                Outcome::Done(format!(
                    "started in {}:{name} (pane {pane}), registered after {:.1}s",
                    team.tmux_session,
                    began.elapsed().as_secs_f64()
                ))
            } else if server.pane(&pane)?.is_none_or(|p| p.dead) {
                Outcome::Failed(format!(
                    "its agent exited before it registered; run `{}` in {} to see why",
                    member(team, name).command(),
                    member(team, name).path.display()
                ))
            } else if Instant::now() >= deadline {
                Outcome::Failed(not_registered(&server, team, &pane, timeout))
            } else {
                left.push((i, pane, began));
                continue;
            };
        }
        starting = left;
        if !starting.is_empty() {
            watch.wait(Duration::from_millis(250));
        }
    }
    let started = results
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Done(w) if w.starts_with("started")));
    let res = report(results);
    if started {
        println!("watch them: tmux attach -t {}", team.tmux_session);
    }
    res
}

fn member<'a>(team: &'a Team, name: &str) -> &'a Member {
    team.members
        .iter()
        .find(|m| m.name == name)
        .expect("a member of the team")
}

/// A peer `up` gave a pane whose agent has not registered yet, and whose pane still runs.
fn still_starting(p: &Peer) -> bool {
    !p.online
        && p.started_ms == 0
        && Server::at(&p.tmux_socket)
            .pane(&p.pane)
            .is_ok_and(|pane| pane.is_some_and(|pane| !pane.dead))
}

/// Why a started agent has not registered, with the end of what its pane shows (a dialog
/// waiting for an answer, most often).
fn not_registered(server: &Server, team: &Team, pane: &str, timeout: Duration) -> String {
    let screen = server.capture(pane).unwrap_or_default();
    let tail: Vec<String> = screen
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(agents::strip_escapes)
        .collect();
    let tail = tail[tail.len().saturating_sub(3)..].join(" / ");
    format!(
        "it did not register within {}s; its pane shows: \"{}\"; answer what it asks in `tmux attach -t {}` (or start it again with a longer --timeout)",
        timeout.as_secs(),
        tail.chars().take(300).collect::<String>(),
        team.tmux_session
    )
}

/// Checks that `m` can start, starts it in a new window and gives the pane its name. Returns
/// the pane.
fn start(spool: &Spool, server: &Server, team: &Team, m: &Member, home: &Path) -> Result<String> {
    let path = std::fs::canonicalize(&m.path)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| anyhow!("its path {} is not a directory", m.path.display()))?;
    if let Some(program) = program(m.command())
        && !on_path(program)
    {
        bail!(
            "{program} is not installed (not on PATH); install {} with `npm install -g {}`",
            m.agent.title(),
            m.agent.package()
        );
    }
    if let Some(why) = agents::not_ready(m.agent) {
        bail!(
            "{why}; run `repowire setup --agent {}` first",
            m.agent.name()
        );
    }
    // The hook that registers the agent takes the naming lock first: it finds the pane named.
    let _naming = spool.lock(peer::NAMING_LOCK)?;
    let (pane, socket) = server.start(
        &team.tmux_session,
        &m.name,
        &path,
        ("REPOWIRE_HOME", &home.to_string_lossy()),
        m.command(),
    )?;
    claim(spool, m, &path, &socket, &pane)?;
    Ok(pane)
}

/// Gives `pane` of the server at `socket` to peer `m`, not yet online: its agent's
/// SessionStart hook finds the peer by its pane and registers it under this name. Any other
/// peer of that pane (the pane id of a server that has since restarted) gives it up.
fn claim(spool: &Spool, m: &Member, path: &Path, socket: &Path, pane: &str) -> Result<()> {
    for other in peer::all(spool)? {
        if other.name != m.name && other.pane == pane && other.tmux_socket == socket {
            peer::update(spool, &other.name, |p| {
                p.pane.clear();
                p.online = false;
                true
            })?;
        }
    }
    let _lock = spool.lock(&peer::lock_name(&m.name))?;
    let old = peer::load(spool, &m.name)?;
    let now = now_ms();
    let (description, described) = match (&m.description, &old) {
        (Some(d), _) => (Some(d.clone()), true),
        (None, Some(o)) if o.described => (o.description.clone(), true),
        _ => (describe::of_repository(path), false),
    };
    let p = Peer {
        name: m.name.clone(),
        agent: m.agent,
        tmux_socket: socket.to_path_buf(),
        pane: pane.to_string(),
        path: path.to_path_buf(),
        session_id: old.as_ref().and_then(|o| o.session_id.clone()),
        agent_command: None,
        agent_process: None,
        pinned: true,
        description,
        described,
        online: false,
        registered_ms: old.as_ref().map_or(now, |o| o.registered_ms),
        started_ms: 0,
        last_activity_ms: now,
        turn: Turn::default(),
        queued_turns: Vec::new(),
        transport: None,
        no_inbox: None,
        transcript: None,
    };
    peer::save_with_pane(spool, &p)
}

/// The program a command line runs, when it is a plain one (`claude`, `X=1 gemini --yolo`);
/// `None` for anything the shell has more to say about.
fn program(command: &str) -> Option<&str> {
    if command.contains(['|', '&', ';', '(', ')', '$', '`', '<', '>', '\'', '"', '\\']) {
        return None;
    }
    let mut words = command.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "exec" | "env" => {
                // env's own options (`-i`, `-u NAME`) come before the program.
                while let Some(o) = words.next_if(|o| o.starts_with('-')) {
                    if matches!(o, "-u" | "--unset" | "-C" | "--chdir" | "-S") {
                        words.next();
                    }
                }
            }
            w if w.contains('=') => {}
            w => return Some(w),
        }
    }
    None
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return runnable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| runnable(&d.join(program))))
}

/// `repowire down`: ends the team's agents that run in its tmux session, and waits until each
/// has ended (its SessionEnd hook has run). Messages sent to them meanwhile wait, and are
/// delivered after the next `up`.
pub fn down(spool: &Spool, team: &Team) -> Result<()> {
    let mut results = Vec::new();
    let mut stopping: Vec<(usize, Peer)> = Vec::new();
    for m in &team.members {
        let outcome = match peer::load(spool, &m.name)? {
            Some(p) if peer::status(&p).0 != Status::Offline || still_starting(&p) => {
                let server = Server::at(&p.tmux_socket);
                match server.pane(&p.pane)? {
                    Some(pane) if pane.session == team.tmux_session => {
                        server.kill_pane(&p.pane)?;
                        stopping.push((results.len(), p));
                        Outcome::Done(String::new())
                    }
                    Some(pane) => Outcome::Failed(format!(
                        "it runs in pane {} of tmux session {}, not in {}: end it there",
                        p.pane, pane.session, team.tmux_session
                    )),
                    None => Outcome::Done("not running".into()),
                }
            }
            _ => Outcome::Done("not running".into()),
        };
        results.push((m.name.clone(), outcome));
    }
    let ended = |p: &Peer| p.agent_process.is_none_or(|a| !a.alive());
    let all_ended = |stopping: &[(usize, Peer)], until: Instant| {
        crate::wait::until_every(&[], Some(until), Duration::from_millis(50), || {
            Ok::<_, anyhow::Error>(stopping.iter().all(|(_, p)| ended(p)).then_some(()))
        })
    };
    // An agent that ignores the hangup (Gemini CLI 0.61.0 outlives its pane) is asked to
    // end with SIGTERM, as a shutdown would: its job's process group.
    if all_ended(&stopping, Instant::now() + HANGUP_PATIENCE)?.is_none() {
        for (_, p) in &stopping {
            if let Some(a) = p.agent_process.filter(|a| a.alive()) {
                // SAFETY: kill only sends a signal; the group is the agent's own job.
                unsafe {
                    libc::kill(-(a.pid as i32), libc::SIGTERM);
                }
            }
        }
        all_ended(&stopping, Instant::now() + STOP_PATIENCE)?;
    }
    for (i, p) in stopping {
        results[i].1 = if ended(&p) {
            Outcome::Done(format!("stopped (pane {})", p.pane))
        } else {
            Outcome::Failed(format!(
                "its agent (pid {}) still runs {}s after its pane was closed and it was sent SIGTERM",
                p.agent_process.map_or(0, |a| a.pid),
                STOP_PATIENCE.as_secs()
            ))
        };
    }
    report(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_files() {
        let t = Team::parse(
            "tmux_session: dev\npeers:\n  backend: { path: ~/src/backend, agent: claude, description: \"users API\" }\n  frontend: { path: web, agent: codex }\n  infra: { path: /srv/infra, agent: gemini, command: \"gemini --yolo\" }\n",
            Path::new("/team"),
        )
        .unwrap();
        assert_eq!(t.tmux_session, "dev");
        let names: Vec<&str> = t.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["backend", "frontend", "infra"]);
        assert!(t.members[0].path.ends_with("src/backend"));
        assert_eq!(t.members[0].description.as_deref(), Some("users API"));
        assert_eq!(t.members[1].path, Path::new("/team/web"));
        assert_eq!(t.members[1].agent.name(), "codex");
        assert_eq!(t.members[2].command(), "gemini --yolo");
        assert_eq!(t.members[1].command(), "codex");
        let d = Team::parse("peers:\n  a: { path: . }\n", Path::new("/x")).unwrap();
        assert_eq!(d.tmux_session, DEFAULT_SESSION);
        assert_eq!(d.members[0].agent, Agent::default());
    }

    #[test]
    fn bad_team_files_say_what_is_wrong() {
        for (text, says) in [
            (
                "peers:\n  a: { path: ., agent: vim }\n",
                "unknown agent 'vim'",
            ),
            (
                "peers:\n  a: { path: ., colour: red }\n",
                "unknown field `colour`",
            ),
            ("peers:\n  a: { agent: codex }\n", "missing field `path`"),
            ("peers:\n  ../x: { path: . }\n", "invalid peer name"),
            (
                "tmux_session: \"a:b\"\npeers:\n  a: { path: . }\n",
                "invalid tmux session",
            ),
            ("peers: {}\n", "names no peer"),
            ("peer:\n  a: { path: . }\n", "unknown field `peer`"),
            (
                "peers:\n  a: { path: ., description: \"x\\ny\" }\n",
                "one line",
            ),
        ] {
            let e = format!("{:#}", Team::parse(text, Path::new("/")).unwrap_err());
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn programs_of_command_lines() {
        assert_eq!(program("claude"), Some("claude"));
        assert_eq!(program("X=1 exec gemini --yolo"), Some("gemini"));
        assert_eq!(program("cd sub && claude"), None);
        assert_eq!(program("env -i -u CI HOME=/h codex --yolo"), Some("codex"));
        assert!(on_path("sh"));
        assert!(!on_path("surely-not-a-program-here"));
    }
}
