//! The few tmux operations repowire needs, on a given tmux server.
//!
//! Every call goes through [`Server::run`]: stdin is never passed to tmux, text always comes
//! after `--` so it cannot be read as an option, and a failure is an [`Error::Tmux`] carrying
//! tmux's own stderr.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tmux_interface::{
    CapturePane, DisplayMessage, HasSession, KillPane, ListPanes, NewSession, NewWindow,
    PasteBuffer, RespawnPane, SendKeys, Tmux, TmuxCommand,
};

use crate::error::Error;

/// One tmux server, by socket path (`None`: the default server of this user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    socket: Option<PathBuf>,
}

/// What repowire reads about a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pane {
    /// `%N`, stable for the life of the pane.
    pub id: String,
    pub dead: bool,
    /// The foreground command, as tmux names it (`#{pane_current_command}`).
    pub command: String,
    pub session: String,
    /// The process tmux started in the pane; every process in it belongs to its session.
    pub pid: u32,
}

const PANE_FORMAT: &str = "#{pane_id}\t#{pane_dead}\t#{pane_current_command}\t#{session_name}\t#{pane_pid}\t#{socket_path}";

impl Server {
    pub fn at(socket: &Path) -> Server {
        Server {
            socket: Some(socket.to_path_buf()),
        }
    }

    /// The server named by `$TMUX` (the one this process runs inside), else the default one.
    pub fn from_env() -> Server {
        Server {
            socket: socket_from_tmux_env(std::env::var("TMUX").ok().as_deref()),
        }
    }

    /// Runs one tmux command; returns its stdout.
    pub fn run<'a>(&self, cmd: impl Into<TmuxCommand<'a>>) -> Result<String, Error> {
        let cmd: TmuxCommand<'a> = cmd.into();
        let name = cmd.name.as_deref().unwrap_or("").to_string();
        // -u: without a UTF-8 locale (as in a minimal environment) tmux would print `_` for
        // the tabs that separate the fields repowire reads, and for any non-ASCII text.
        let mut tmux = Tmux::with_command(cmd).force_utf8();
        if let Some(s) = &self.socket {
            tmux = tmux.socket_path(s.to_string_lossy().into_owned());
        }
        let out = tmux
            .into_command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::Tmux {
                command: name.clone(),
                stderr: if e.kind() == std::io::ErrorKind::NotFound {
                    "tmux is not installed or not on PATH; install tmux (3.0 or newer)".into()
                } else {
                    e.to_string()
                },
            })?;
        if !out.status.success() {
            return Err(Error::Tmux {
                command: name,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Types `text` into `pane` literally: no key names, no options, one write.
    pub fn send_literal(&self, pane: &str, text: &str) -> Result<(), Error> {
        self.run(
            SendKeys::new()
                .target_pane(pane)
                .disable_lookup()
                .key("--")
                .key(escape_trailing_semicolon(text)),
        )
        .map(drop)
    }

    /// Presses Enter in `pane`.
    pub fn send_enter(&self, pane: &str) -> Result<(), Error> {
        self.run(SendKeys::new().target_pane(pane).key("Enter"))
            .map(drop)
    }

    /// What `pane` shows now, as text.
    pub fn capture(&self, pane: &str) -> Result<String, Error> {
        self.run(CapturePane::new().stdout().target_pane(pane))
    }

    /// What `pane` shows now, with the escape sequences of its colours and attributes.
    pub fn capture_styled(&self, pane: &str) -> Result<String, Error> {
        self.run(
            CapturePane::new()
                .stdout()
                .escape_sequences()
                .target_pane(pane),
        )
    }

    /// Every pane of this server, or an empty list when no server runs there.
    pub fn panes(&self) -> Result<Vec<Pane>, Error> {
        match self.run(ListPanes::new().all().format(PANE_FORMAT)) {
            Ok(out) => Ok(out
                .lines()
                .filter_map(|l| parse_pane(l).map(|p| p.0))
                .collect()),
            Err(Error::Tmux { stderr, .. }) if no_server(&stderr) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Resolves a tmux target (session, window or pane) to its pane and the server's socket.
    pub fn resolve(&self, target: &str) -> Result<(Pane, PathBuf), Error> {
        let out = self.run(
            DisplayMessage::new()
                .print()
                .target_pane(target)
                .message(PANE_FORMAT),
        )?;
        // tmux 3.3 prints an empty line and succeeds for a target it cannot find.
        let (pane, socket) = out
            .lines()
            .next()
            .and_then(parse_pane)
            .filter(|(p, _)| p.id.starts_with('%'))
            .ok_or_else(|| Error::Tmux {
                command: "display-message".into(),
                stderr: format!("can't find pane, window or session '{target}'"),
            })?;
        Ok((pane, PathBuf::from(socket)))
    }

    /// Pastes `text` into `pane` as one bracketed paste (`paste-buffer -p`), through a buffer
    /// of its own that is deleted after. Line breaks arrive as CR inside the paste, which the
    /// agent takes as newlines, not as Enter; `text` must hold no other control characters
    /// (an ESC could end the paste early).
    pub fn paste(&self, pane: &str, text: &str) -> Result<(), Error> {
        let buffer = format!("repowire-{}", std::process::id());
        // load-buffer from stdin: a command line is limited to a few KB by tmux's protocol.
        let mut cmd = std::process::Command::new("tmux");
        cmd.arg("-u");
        if let Some(s) = &self.socket {
            cmd.arg("-S").arg(s);
        }
        cmd.args(["load-buffer", "-b", &buffer, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let failed = |stderr: String| Error::Tmux {
            command: "load-buffer".into(),
            stderr,
        };
        let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| failed(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            return Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        self.run(
            PasteBuffer::new()
                .bracket_codes()
                .delete()
                .buffer_name(&buffer)
                .target_pane(pane),
        )
        .map(drop)
    }

    /// Runs `command` (a shell command line) in `dir`, with the environment variable `env`, in
    /// a new window `window` of session `session` (created, and the server with it, if there
    /// is none). Returns the new pane's id and the server's socket. tmux before 3.2 cannot set a new session's
    /// environment, so a new session's first pane starts empty and is respawned.
    pub fn start(
        &self,
        session: &str,
        window: &str,
        dir: &Path,
        env: (&str, &str),
        command: &str,
    ) -> Result<(String, PathBuf), Error> {
        let dir = dir.to_string_lossy();
        let env = format!("{}={}", env.0, env.1);
        // `=NAME` matches the session named exactly so, not one whose name starts with it.
        let exact = format!("={session}");
        let exists = self.run(HasSession::new().target_session(&exact)).is_ok();
        let pane = if exists {
            self.run(
                NewWindow::new()
                    .detached()
                    .print()
                    .format("#{pane_id}\t#{socket_path}")
                    .target_window(format!("{exact}:"))
                    .window_name(window)
                    .start_directory(&*dir)
                    .environment(&env)
                    .shell_command(command),
            )?
        } else {
            let pane = self.run(
                NewSession::new()
                    .detached()
                    .print()
                    .format("#{pane_id}\t#{socket_path}")
                    .session_name(session)
                    .window_name(window)
                    .start_directory(&*dir)
                    .shell_command("exec sleep 600"),
            )?;
            let id = pane.split('\t').next().unwrap_or_default();
            let respawned = self.run(
                RespawnPane::new()
                    .kill()
                    .target_pane(id)
                    .start_directory(&*dir)
                    .environment(&env)
                    .shell_command(command),
            );
            if let Err(e) = respawned {
                let _ = self.kill_pane(id);
                return Err(e);
            }
            pane
        };
        match pane.trim().split_once('\t') {
            Some((id, socket)) if id.starts_with('%') => Ok((id.to_string(), socket.into())),
            _ => Err(Error::Tmux {
                command: "new-window".into(),
                stderr: format!("unexpected reply {:?}", pane.trim()),
            }),
        }
    }

    /// Ends `pane` and what runs in it (tmux sends it SIGHUP, as a closed terminal does).
    pub fn kill_pane(&self, pane: &str) -> Result<(), Error> {
        self.run(KillPane::new().target_pane(pane)).map(drop)
    }

    /// One pane by id; `None` if it (or the server) is gone.
    pub fn pane(&self, id: &str) -> Result<Option<Pane>, Error> {
        Ok(self.panes()?.into_iter().find(|p| p.id == id))
    }
}

fn no_server(stderr: &str) -> bool {
    stderr.contains("no server running")
        || stderr.contains("error connecting to")
        || stderr.contains("No such file or directory")
}

fn parse_pane(line: &str) -> Option<(Pane, String)> {
    let mut f = line.split('\t');
    let pane = Pane {
        id: f.next()?.to_string(),
        dead: f.next()? == "1",
        command: f.next()?.to_string(),
        session: f.next()?.to_string(),
        pid: f.next()?.parse().unwrap_or(0),
    };
    Some((pane, f.next().unwrap_or("").to_string()))
}

/// The socket path in a `$TMUX` value (`socket,pid,session`).
pub fn socket_from_tmux_env(tmux: Option<&str>) -> Option<PathBuf> {
    let v = tmux?;
    let socket = v.split(',').next()?;
    (!socket.is_empty()).then(|| PathBuf::from(socket))
}

/// `text` as tmux must be given it to keep it whole: tmux reads a `;` that ends an argument
/// as the end of a command, even given as an argument of its own (`send-keys -l -- 'ls;'`
/// types `ls`), and a trailing `\;` as a literal `;` (measured with tmux 3.3a).
fn escape_trailing_semicolon(text: &str) -> std::borrow::Cow<'_, str> {
    match text.strip_suffix(';') {
        Some(head) => format!("{head}\\;").into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trailing_semicolon_is_escaped() {
        for (text, arg) in [
            ("run ls;", r"run ls\;"),
            (";", r"\;"),
            ("a;;", r"a;\;"),
            (r"a\;", r"a\\;"),
            ("a;b", "a;b"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(escape_trailing_semicolon(text), arg, "{text:?}");
        }
    }

    #[test]
    fn socket_from_env() {
        assert_eq!(
            socket_from_tmux_env(Some("/tmp/tmux-0/default,123,0")),
            Some(PathBuf::from("/tmp/tmux-0/default"))
        );
        assert_eq!(socket_from_tmux_env(Some("")), None);
        assert_eq!(socket_from_tmux_env(None), None);
    }

    #[test]
    fn parses_pane_lines() {
        let (p, s) = parse_pane("%3\t0\tclaude\tbackend\t42\t/tmp/s").unwrap();
        assert_eq!(p.id, "%3");
        assert!(!p.dead);
        assert_eq!(p.command, "claude");
        assert_eq!(p.pid, 42);
        assert_eq!(s, "/tmp/s");
        assert!(parse_pane("garbage").is_none());
    }
}
