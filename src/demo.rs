//! `repowire demo`: two stand-in agents, `frontend` and `backend`, in a tmux server of their
//! own; frontend asks backend a question and then notifies it, and each step is printed as it
//! happens, slowly enough to watch the panes.
//!
//! What it promises:
//! - it needs nothing but tmux: the agents are the built-in stand-in (`repowire standin`),
//!   which calls the hooks as Claude Code does; backend serves an inbox as Claude Code does
//!   (questions are posted to it), frontend has none (it would be typed into);
//! - it never touches the user's spool or tmux server: everything it runs gets a temporary
//!   spool as `REPOWIRE_HOME`, and the agents live on `tmux -L repowire-demo-<pid>`, started
//!   with `-f /dev/null` so no tmux.conf changes how they behave; backend announces its inbox
//!   in a configuration directory of the demo's (`CLAUDE_CONFIG_DIR`), never `~/.claude`;
//! - it leaves nothing behind: the tmux server is killed and the temporary directory removed
//!   when it ends, whether it finished, failed or was stopped (Ctrl-C, SIGTERM, SIGHUP).

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tempfile::TempDir;

use crate::ask;
use crate::error::Error;
use crate::message::{self, State};
use crate::peer::{self, Status};
use crate::spool::Spool;
use crate::wait;

const ASKER: &str = "frontend";
const ANSWERER: &str = "backend";
/// The stand-in answers a prompt with the rest of its `REPLY` line, which stands in for what a
/// real agent would read from its code.
const QUESTION: &str =
    "Which fields does GET /api/users return?\nREPLY id, email and created_at (an RFC 3339 time)";
const NOTICE: &str = "Heads-up: the users page now shows created_at.";

/// The longest any one step may take, on a slow machine, before the demo gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause between steps, so someone watching the panes can follow.
const PACE: Duration = Duration::from_secs(1);
/// How soon a wait notices Ctrl-C.
const TICK: Duration = Duration::from_millis(100);

/// Set by the SIGINT/SIGTERM/SIGHUP handler; every wait checks it, so the cleanup always runs.
static STOPPED: AtomicBool = AtomicBool::new(false);

pub fn run(keep: bool) -> Result<()> {
    require_tmux()?;
    catch_signals().context("cannot install the demo's signal handlers")?;
    let result = Demo::start().and_then(|demo| {
        demo.exchange()?;
        if keep {
            demo.linger();
        }
        Ok(())
        // `demo` is dropped here: the agents are stopped and the directory removed.
    });
    match result {
        Err(_) if stopped() => {
            bail!("interrupted; the demo's agents were stopped and its files removed")
        }
        r => r,
    }
}

fn require_tmux() -> Result<()> {
    match Command::new("tmux").arg("-V").stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("the demo needs tmux: install it (apt install tmux / brew install tmux)")
        }
        Ok(out) => bail!(
            "`tmux -V` failed: {}; the demo needs a working tmux",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => Err(e).context("cannot run tmux, which the demo needs"),
    }
}

/// The running demo. Dropping it stops the agents and removes its directory.
struct Demo {
    /// The `tmux -L` name of the agents' server: named after this process, so it is never the
    /// user's server nor another demo's.
    server: String,
    /// The server's socket file, which tmux leaves behind when its server exits.
    socket: Option<PathBuf>,
    /// Holds the spool, the agents' working directories and their transcripts.
    dir: TempDir,
    spool: Spool,
    exe: PathBuf,
    started: Instant,
}

impl Demo {
    fn start() -> Result<Demo> {
        // Private, as the agents' transcripts and the spool in it are.
        let dir = tempfile::Builder::new()
            .prefix("repowire-demo-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .context("cannot create the demo's temporary directory")?;
        let spool = Spool::open(&dir.path().join("spool"))?;
        // Peers are named after their directory, not their repository: a temporary directory
        // inside a git checkout would otherwise name both agents after the checkout.
        spool
            .write_atomic(&spool.path("config.yaml"), b"naming: directory\n")
            .context("cannot write the demo's config.yaml")?;
        let mut demo = Demo {
            server: format!("repowire-demo-{}", std::process::id()),
            socket: None,
            dir,
            spool,
            exe: std::env::current_exe().context("cannot find the repowire binary")?,
            started: Instant::now(),
        };
        demo.say(&format!(
            "repowire demo: two stand-in agents, {ASKER} and {ANSWERER}, in a private tmux server."
        ));
        demo.say(&format!(
            "Watch {ANSWERER} from another terminal:  tmux -L {} attach -t {ANSWERER}",
            demo.server
        ));
        demo.say("(The stand-ins are not models: each answers with its prompt's REPLY line.)");
        demo.say(&format!(
            "{ANSWERER} has an inbox, as Claude Code does: questions are posted to it, not typed."
        ));
        demo.say(&format!(
            "Starting them in {}/{{{ASKER},{ANSWERER}}}",
            demo.dir.path().display()
        ));
        demo.start_agent(ANSWERER, true)?;
        let socket = demo.tmux(&["display-message", "-p", "#{socket_path}"])?;
        demo.socket = Some(PathBuf::from(socket.trim_end()));
        demo.start_agent(ASKER, false)?;
        Ok(demo)
    }

    /// Starts the stand-in agent `name` in tmux session `name`, working in a directory of that
    /// name (which its SessionStart hook makes its peer name), with an inbox or without.
    fn start_agent(&self, name: &str, inbox: bool) -> Result<()> {
        let work = self.dir.path().join(name);
        std::fs::create_dir(&work).with_context(|| format!("cannot create {}", work.display()))?;
        let env = |key: &str, value: &Path| format!("{key}={}", value.display());
        let (home, transcripts, config) = (
            env("REPOWIRE_HOME", self.spool.root()),
            env("REPOWIRE_STANDIN_DIR", &self.dir.path().join("transcripts")),
            env("CLAUDE_CONFIG_DIR", &self.dir.path().join("agent-config")),
        );
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("new-session"),
            "-d".as_ref(),
            "-s".as_ref(),
            name.as_ref(),
            "-c".as_ref(),
            work.as_ref(),
            "-e".as_ref(),
            home.as_ref(),
            // Its transcripts, which would otherwise go to a folder shared in the temp dir.
            "-e".as_ref(),
            transcripts.as_ref(),
            // Where an inbox is announced, which would otherwise be ~/.claude.
            "-e".as_ref(),
            config.as_ref(),
            self.exe.as_ref(),
            "standin".as_ref(),
        ];
        if inbox {
            args.push("--inbox".as_ref());
        }
        self.tmux(&args)
            .with_context(|| format!("cannot start the {name} agent"))?;
        Ok(())
    }

    /// The exchange itself, step by step.
    fn exchange(&self) -> Result<()> {
        self.wait_for("the agents to register as peers", &["peers"], || {
            self.registered()
        })?;
        self.say("Both registered as peers (repowire peer list):");
        self.show(&self.repowire(&["peer", "list"])?);
        pause()?;
        self.ask()?;
        pause()?;
        self.notify()?;
        pause()?;
        self.say("The history (repowire log):");
        self.show(&self.repowire(&["log"])?);
        Ok(())
    }

    /// `Some` once both agents are online peers.
    fn registered(&self) -> Result<Option<()>> {
        let peers = peer::all(&self.spool)?;
        let panes = peer::live_panes(&peers);
        let online = |name: &str| {
            peers
                .iter()
                .any(|p| p.name == name && peer::status_of(p, &panes).0 == Status::Online)
        };
        Ok((online(ASKER) && online(ANSWERER)).then_some(()))
    }

    /// Asks as frontend, as `repowire peer ask` run in its pane would, showing each stage.
    fn ask(&self) -> Result<()> {
        self.say(&format!("{ASKER} asks {ANSWERER}:"));
        self.show(QUESTION);
        // The waiter lock, held while waiting as `peer ask` does, so the deadlock check sees it.
        let (msg, _waiting) = ask::ask(
            &self.spool,
            ASKER,
            ANSWERER,
            QUESTION,
            STEP_TIMEOUT,
            &[],
            false,
        )?;
        let mut shown = None;
        let answer = ask::wait_answer(
            &self.spool,
            &msg.id,
            STEP_TIMEOUT,
            Some(&stopped as &dyn Fn() -> bool),
            Some(&mut |p| {
                if shown != Some(p) {
                    self.say(&format!("  {p}"));
                    shown = Some(p);
                }
            }),
        )?;
        self.say(&format!("  answered: {}", answer.text));
        Ok(())
    }

    /// Notifies as frontend, and follows the notification until backend's turn on it ends.
    fn notify(&self) -> Result<()> {
        self.say(&format!("{ASKER} notifies {ANSWERER}: {NOTICE}"));
        let sent = ask::notify(&self.spool, ASKER, ANSWERER, NOTICE)?;
        self.say(&format!("  {sent}"));
        self.wait_for("the notification to arrive", &["queue"], || {
            let m = message::load(&self.spool, &sent.id)?
                .ok_or_else(|| anyhow!("notification {} vanished from the spool", sent.id))?;
            match m.state {
                State::Received => Ok(Some(())),
                s if s.is_open() => Ok(None),
                _ => Err(ask::finished_error(&m).into()),
            }
        })?;
        self.say(&format!(
            "  received: {ANSWERER}'s agent took it as a prompt"
        ));
        self.wait_for(&format!("{ANSWERER}'s turn to end"), &["peers"], || {
            Ok(peer::load(&self.spool, ANSWERER)?
                .filter(|p| !p.turn.busy)
                .map(drop))
        })?;
        self.say(&format!(
            "  {ANSWERER}'s turn ended; nothing is sent back, a notification needs no reply"
        ));
        Ok(())
    }

    /// `--keep`: leaves the agents to the user until Ctrl-C, or until their tmux server exits.
    fn linger(&self) {
        let home = quote(&self.spool.root().display().to_string());
        let exe = quote(&self.exe.display().to_string());
        self.say("The agents keep running. From another terminal:");
        self.show(&format!(
            "watch:  tmux -L {} attach -t {ANSWERER}    (detach with C-b d)\n\
             ask:    REPOWIRE_HOME={home} {exe} peer ask {ANSWERER} \"hello?\"",
            self.server
        ));
        self.say("Press Ctrl-C to stop them and remove their files.");
        while pause_for(Duration::from_secs(1)).is_ok() {
            // Both agents ended (`/exit` in their panes) or someone killed the server.
            if self.tmux(&["has-session"]).is_err() && !stopped() {
                self.say("The agents' tmux server has exited.");
                return;
            }
        }
    }

    /// Waits until `check` returns `Some`, re-checking when the spool's `dirs` change.
    fn wait_for<T>(
        &self,
        what: &str,
        dirs: &[&str],
        mut check: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| self.spool.path(d)).collect();
        let deadline = Instant::now() + STEP_TIMEOUT;
        wait::until_every(&dirs, Some(deadline), TICK, || {
            halt_if_stopped()?;
            check()
        })?
        .ok_or_else(|| {
            anyhow!(
                "gave up waiting {}s for {what}; run the demo again and watch the agents with the tmux attach command it prints",
                STEP_TIMEOUT.as_secs()
            )
        })
    }

    /// Runs a tmux command on the demo's server; returns its stdout.
    fn tmux<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, Error> {
        let failed = |stderr: String| Error::Tmux {
            command: args[0].as_ref().to_string_lossy().into_owned(),
            stderr,
        };
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.server, "-f", "/dev/null"]).args(args);
        let out = output(cmd).map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            return Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `repowire ARGS` on the demo's spool, as a user at a terminal would; returns stdout.
    fn repowire(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .env("REPOWIRE_HOME", self.spool.root())
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        let out = output(cmd).with_context(|| format!("cannot run repowire {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "repowire {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Prints one line of the exchange, stamped with the time since the demo started.
    fn say(&self, line: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        // A reader that went away (`repowire demo | head`) must not stop the cleanup.
        let _ = writeln!(std::io::stdout(), "[{secs:4.1}s] {line}");
    }

    /// Prints a block of text under the last line, indented.
    fn show(&self, block: &str) {
        let mut out = std::io::stdout().lock();
        for line in block.lines() {
            let _ = writeln!(out, "         {line}");
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        // Each agent runs its SessionEnd hook as it exits, which writes into the spool: let it
        // finish before the directory is removed.
        let _ = wait::until(
            &[self.spool.path("peers")],
            Some(Instant::now() + Duration::from_secs(3)),
            || -> Result<Option<()>> {
                Ok(peer::all(&self.spool)?
                    .iter()
                    .all(|p| !p.online)
                    .then_some(()))
            },
        );
        match remove_dir(self.dir.path()) {
            Ok(()) => self.say(&format!(
                "Stopped the agents and removed {}",
                self.dir.path().display()
            )),
            Err(e) => eprintln!(
                "repowire: cannot remove {}: {e}; remove it yourself",
                self.dir.path().display()
            ),
        }
    }
}

/// Runs `cmd` to completion with its output captured and stdin closed. It gets a process group
/// of its own, so Ctrl-C reaches only the demo, which then cleans up in order, instead of
/// killing a tmux command halfway.
fn output(mut cmd: Command) -> std::io::Result<std::process::Output> {
    cmd.stdin(Stdio::null()).process_group(0).output()
}

/// Removes `dir`, trying again for a moment: a background deliverer or hook may still be
/// writing into the spool, and a file created during the removal makes it fail.
fn remove_dir(dir: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn pause() -> Result<()> {
    pause_for(PACE)
}

/// Sleeps for `d`, or less when the demo is stopped (then an error).
fn pause_for(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        halt_if_stopped()?;
        std::thread::sleep(left.min(TICK));
    }
    halt_if_stopped()
}

fn stopped() -> bool {
    STOPPED.load(Ordering::SeqCst)
}

fn halt_if_stopped() -> Result<()> {
    if stopped() {
        bail!("interrupted");
    }
    Ok(())
}

extern "C" fn on_signal(_: libc::c_int) {
    STOPPED.store(true, Ordering::SeqCst);
}

fn catch_signals() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores an atomic.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// `s` as one shell word.
fn quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
