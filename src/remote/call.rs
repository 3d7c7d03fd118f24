//! The calling side: `ssh HOST repowire remote`, one [`Request`] line in, [`Reply`] lines
//! out, each failure told apart (see the module above for what it promises).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::ask::{self, Checked, Notified, Progress};
use crate::error::Error;
use crate::message;
use crate::process;

use super::{
    EXIT_REMOTE, HostPeers, LIST_BOUND, MAX_WAIT_SECS, Op, PROTOCOL, Reply, Request, VERSION,
};
use crate::host;
use crate::wait::CANCEL_TICK;

/// ssh's own connect timeout.
const CONNECT_TIMEOUT_SECS: u32 = 10;
/// The longest `peer broadcast --all` waits for the remote hosts.
const BROADCAST_BOUND: Duration = Duration::from_secs(15);
/// What the local side allows beyond the remote wait's own timeout (connecting, a slow link)
/// before it takes the connection for dead.
const SLACK: Duration = Duration::from_secs(30);
/// How long a cancelled wait gives the remote to withdraw its question before hanging up.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How long ssh is given to exit once its output has ended.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Stderr of ssh kept for error messages.
const MAX_STDERR: u64 = 64 * 1024;

/// Asks `name` on `host` and waits for the answer, as [`ask::ask`] and [`ask::wait_answer`]
/// do locally: `progress` hears every new stage, `cancelled` withdraws a question the peer
/// does not have yet.
pub fn ask(
    host: &str,
    name: &str,
    (from, chain): (&str, &[String]),
    text: &str,
    timeout: Duration,
    cancelled: Option<&dyn Fn() -> bool>,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<String> {
    let op = ask_op(name, (from, chain), text, timeout, true, progress.is_some())?;
    Call::start(host, op)?.stream(None, timeout, cancelled, progress)
}

fn ask_op(
    name: &str,
    (from, chain): (&str, &[String]),
    text: &str,
    timeout: Duration,
    wait: bool,
    progress: bool,
) -> Result<Op> {
    message::validate_text(text)?;
    Ok(Op::Ask {
        from: from.into(),
        to: name.into(),
        text: text.into(),
        timeout_secs: wait_secs(timeout)?,
        wait,
        progress,
        chain: chain.to_vec(),
    })
}

/// A wait's timeout in whole seconds, as a request carries it.
fn wait_secs(timeout: Duration) -> Result<u64, Error> {
    let secs = timeout.as_secs().max(1);
    if secs > MAX_WAIT_SECS {
        return Err(Error::BadInput(format!(
            "a wait of {secs}s is too long: at most {} days",
            MAX_WAIT_SECS / 86_400
        )));
    }
    Ok(secs)
}

/// Queues a question to `name` on `host` without waiting: its id, as `ID@HOST`.
pub fn ask_no_wait(
    host: &str,
    name: &str,
    (from, chain): (&str, &[String]),
    text: &str,
    timeout: Duration,
) -> Result<String> {
    let op = ask_op(name, (from, chain), text, timeout, false, false)?;
    let mut call = Call::start(host, op)?;
    match call.next(Instant::now() + SLACK)? {
        Reply::Id(id) => Ok(format!("{id}@{host}")),
        other => Err(call.unexpected(other)),
    }
}

/// Waits for the answer to question `id` on `host`, as `peer wait` does locally.
pub fn wait(
    host: &str,
    id: &str,
    timeout: Duration,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<String> {
    let op = Op::Wait {
        id: id.into(),
        timeout_secs: wait_secs(timeout)?,
        progress: progress.is_some(),
    };
    Call::start(host, op)?.stream(Some(id), timeout, None, progress)
}

/// The answer to question `id` on `host` if it has come, else where it stands, without
/// waiting: [`ask::check`] there, with the peer named `NAME@HOST`.
pub fn check(host: &str, id: &str) -> Result<Checked> {
    let mut call = Call::start(host, Op::Get { id: id.into() })?;
    match call.next(Instant::now() + SLACK)? {
        Reply::Answer(text) => Ok(Checked::Answered(text)),
        Reply::Pending { to, stage } => Ok(Checked::Open {
            to: format!("{to}@{host}"),
            stage,
        }),
        other => Err(call.unexpected(other)),
    }
}

/// Notifies `name` on `host`; the result names the message and the peer with `@HOST`.
pub fn notify(host: &str, name: &str, from: &str, text: &str) -> Result<Notified> {
    message::validate_text(text)?;
    let op = Op::Notify {
        from: from.into(),
        to: name.into(),
        text: text.into(),
    };
    let mut call = Call::start(host, op)?;
    match call.next(Instant::now() + SLACK)? {
        Reply::Notified { id, to, status } => Ok(Notified {
            id: format!("{id}@{host}"),
            to: format!("{to}@{host}"),
            status,
        }),
        other => Err(call.unexpected(other)),
    }
}

/// Broadcasts to the online peers of every host at once; per host, the peers reached now and
/// later (named `NAME@HOST`), or why it failed.
pub fn broadcast(
    hosts: &[String],
    from: &str,
    text: &str,
) -> Vec<(String, Result<ask::Broadcast>)> {
    let op = || Op::Broadcast {
        from: from.into(),
        text: text.into(),
    };
    fan_out(hosts, op, BROADCAST_BOUND)
        .into_iter()
        .map(|(host, reply)| {
            let sent = reply.and_then(|r| match r {
                Reply::Broadcast { now, later } => {
                    let at =
                        |v: Vec<String>| v.into_iter().map(|n| format!("{n}@{host}")).collect();
                    Ok(ask::Broadcast {
                        now: at(now),
                        later: at(later),
                        // The other host reports only what it sent.
                        failed: Vec::new(),
                    })
                }
                other => Err(unexpected_reply(&host, &other)),
            });
            (host, sent)
        })
        .collect()
}

/// The peers of every host, asked at once; a host that does not answer within [`LIST_BOUND`]
/// is reported as unreachable.
pub fn list(hosts: &[String]) -> Vec<HostPeers> {
    fan_out(hosts, || Op::List, LIST_BOUND)
        .into_iter()
        .map(|(host, reply)| {
            let peers = match reply {
                // Shown to agents: what another host calls a description must be one.
                Ok(Reply::Peers(mut p)) => {
                    for peer in &mut p {
                        peer.description = peer
                            .description
                            .take()
                            .and_then(|d| crate::describe::check(&d).ok());
                    }
                    Ok(p)
                }
                Ok(other) => Err(format!("{:#}", unexpected_reply(&host, &other))),
                Err(e) => Err(format!("{e:#}")),
            };
            HostPeers { host, peers }
        })
        .collect()
}

/// Runs `op` on every host at once and collects each final reply, giving up on those still
/// running after `bound`.
fn fan_out(hosts: &[String], op: impl Fn() -> Op, bound: Duration) -> Vec<(String, Result<Reply>)> {
    let until = Instant::now() + bound;
    let calls: Vec<(String, Result<Call>)> = hosts
        .iter()
        .map(|h| {
            (
                h.clone(),
                host::validate(h)
                    .map_err(Into::into)
                    .and_then(|_| Call::start(h, op())),
            )
        })
        .collect();
    calls
        .into_iter()
        .map(|(host, call)| (host, call.and_then(|mut c| c.next(until))))
        .collect()
}

fn unexpected_reply(host: &str, r: &Reply) -> anyhow::Error {
    Error::Remote {
        code: EXIT_REMOTE,
        why: format!(
            "repowire on {host} replied {r:?}, which this repowire ({VERSION}) does not expect: install the same version on both hosts"
        ),
    }
    .into()
}

/// `ssh HOST repowire remote`, or the same through `$REPOWIRE_SSH`, which is run by `sh` with
/// the arguments appended, as git runs `GIT_SSH_COMMAND`.
fn ssh_command(host: &str) -> Command {
    let mut cmd = match std::env::var("REPOWIRE_SSH") {
        Ok(s) if !s.trim().is_empty() => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("{s} \"$@\"")).arg("ssh");
            c
        }
        _ => Command::new("ssh"),
    };
    cmd.args(["-T", "-o", "BatchMode=yes", "-o"])
        .arg(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"))
        .arg(host)
        .arg("repowire remote");
    cmd
}

/// One running `ssh HOST repowire remote`.
struct Call {
    host: String,
    child: Child,
    /// Open while the remote waits, to cancel it; closed (dropped) to say we are gone.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    /// The first line that was not a reply (a login script's output, say), for the error.
    junk: Option<String>,
    started: Instant,
    /// A final reply came: the remote has nothing left to say.
    done: bool,
}

impl Call {
    fn start(host: &str, op: Op) -> Result<Call> {
        let mut child = ssh_command(host)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Remote {
                code: EXIT_REMOTE,
                why: format!(
                    "cannot run ssh to reach {host}: {e}; install the OpenSSH client, or set REPOWIRE_SSH to your ssh command"
                ),
            })?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stderr_pipe).take(MAX_STDERR).read_to_end(&mut buf);
            // Drain the rest, so that ssh never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr_pipe, &mut std::io::sink());
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        let mut stdin = child.stdin.take();
        let request = serde_json::to_string(&Request {
            protocol: PROTOCOL,
            op,
        })?;
        if let Some(s) = stdin.as_mut() {
            // A remote that cannot take it (no repowire there, an ssh that failed at once) is
            // diagnosed from its exit.
            let _ = process::write_to_child(s, format!("{request}\n").as_bytes());
        }
        Ok(Call {
            host: host.to_string(),
            child,
            stdin,
            lines,
            stderr,
            junk: None,
            started: Instant::now(),
            done: false,
        })
    }

    /// The next reply line, waiting until `until`. An error reply, the end of the output, or
    /// no reply in time become the error to report.
    fn next(&mut self, until: Instant) -> Result<Reply> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match serde_json::from_str::<Reply>(&line) {
                    Ok(Reply::Error { code, message, .. }) => {
                        self.done = true;
                        return Err(Error::Remote {
                            code,
                            why: format!("on {}: {}", self.host, message::neutralize(&message)),
                        }
                        .into());
                    }
                    Ok(r) => {
                        self.done = true;
                        return Ok(r);
                    }
                    Err(_) => {
                        self.junk.get_or_insert(line);
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::Remote {
                        code: EXIT_REMOTE,
                        why: format!(
                            "{} did not reply within {}s",
                            self.host,
                            self.started.elapsed().as_secs_f64().round()
                        ),
                    }
                    .into());
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.failure(None).into()),
            }
        }
    }

    /// Reads the progress and then the answer of an ask or a wait, for question `id` (known
    /// up front for a wait, from the first reply for an ask).
    fn stream(
        mut self,
        id: Option<&str>,
        timeout: Duration,
        cancelled: Option<&dyn Fn() -> bool>,
        mut progress: Option<&mut dyn FnMut(Progress)>,
    ) -> Result<String> {
        let mut id = id.map(str::to_string);
        let until = Instant::now() + timeout + SLACK;
        let mut cancel_sent: Option<Instant> = None;
        let tick = match cancelled {
            Some(_) => CANCEL_TICK,
            None => Duration::from_secs(1),
        };
        loop {
            if cancel_sent.is_none() && cancelled.is_some_and(|c| c()) {
                if let Some(s) = self.stdin.as_mut() {
                    let _ = process::write_to_child(s, b"cancel\n");
                }
                cancel_sent = Some(Instant::now());
            }
            let line = match self.lines.recv_timeout(tick) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if cancel_sent.is_some_and(|t| now >= t + CANCEL_GRACE) {
                        return Err(Error::Cancelled {
                            id: self.at(id.as_deref().unwrap_or("(none yet)")),
                            peer: self.host.clone(),
                            what: format!("{} did not confirm it in time", self.host),
                        }
                        .into());
                    }
                    if now >= until {
                        return Err(self.lost(id.as_deref(), "no reply in time").into());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.failure(id.as_deref()).into());
                }
            };
            let Ok(reply) = serde_json::from_str::<Reply>(&line) else {
                self.junk.get_or_insert(line);
                continue;
            };
            match reply {
                Reply::Id(i) => id = Some(i),
                Reply::Progress(p) => {
                    if let Some(show) = progress.as_mut() {
                        show(p);
                    }
                }
                Reply::Answer(text) => {
                    self.done = true;
                    return Ok(text);
                }
                Reply::Error {
                    code: 5,
                    peer: Some(peer),
                    pending,
                    ..
                } if id.is_some() => {
                    self.done = true;
                    let id = self.at(id.as_deref().unwrap_or_default());
                    let what = if pending {
                        format!(
                            "the peer has the question; its answer will be stored when it comes: `repowire peer wait {id}`"
                        )
                    } else {
                        "it was never delivered (the peer stayed busy) and has been withdrawn"
                            .to_string()
                    };
                    return Err(Error::Timeout {
                        peer: self.at(&peer),
                        secs: timeout.as_secs(),
                        id,
                        what,
                        pending,
                    }
                    .into());
                }
                Reply::Error { code, message, .. } => {
                    self.done = true;
                    return Err(Error::Remote {
                        code,
                        why: format!("on {}: {}", self.host, message::neutralize(&message)),
                    }
                    .into());
                }
                other => return Err(self.unexpected(other)),
            }
        }
    }

    /// ssh's exit status, killing it if it has not exited within `grace`.
    fn exit_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = self.child.kill();
                    return self.child.wait().ok();
                }
                Err(_) => return None,
            }
        }
    }

    /// `x@HOST`.
    fn at(&self, x: &str) -> String {
        format!("{x}@{}", self.host)
    }

    fn unexpected(&self, r: Reply) -> anyhow::Error {
        unexpected_reply(&self.host, &r)
    }

    /// The error for a connection that ended while question `id` was waiting.
    fn lost(&self, id: Option<&str>, how: &str) -> Error {
        let host = &self.host;
        let why = match id {
            Some(id) => format!(
                "the connection to {host} ended while waiting for the answer to query {id}@{host} ({how}); the question stays there: fetch its answer later with `repowire peer wait {id}@{host}` (or the MCP tool get_answer)"
            ),
            None => format!("the connection to {host} ended ({how})"),
        };
        Error::Remote {
            code: EXIT_REMOTE,
            why,
        }
    }

    /// Why the remote's output ended without a final reply: from ssh's exit status and its
    /// stderr.
    fn failure(&mut self, id: Option<&str>) -> Error {
        self.stdin = None;
        let status = self.exit_within(EXIT_GRACE);
        // Bounded: a process ssh left behind (a ProxyCommand) may hold its stderr open.
        let stderr = self.stderr.recv_timeout(EXIT_GRACE).unwrap_or_default();
        let said = last_words(&stderr)
            .or_else(|| last_words(self.junk.as_deref()?))
            .unwrap_or_else(|| describe(status));
        let host = &self.host;
        let code = status.and_then(|s| s.code());
        let why = match code {
            Some(255) if id.is_none() && stderr.contains("Host key verification failed") => {
                format!(
                    "the host key of {host} could not be verified ({said}): connect once with `ssh {host}` to check and accept it"
                )
            }
            Some(255) if id.is_none() && is_auth_failure(&stderr) => format!(
                "authentication to {host} failed ({said}); `ssh {host}` must log in without a prompt: repowire runs ssh in batch mode, so use a key (with ssh-agent for a passphrase)"
            ),
            Some(255) if id.is_none() => {
                format!("cannot reach {host} ({said}); check that `ssh {host}` works")
            }
            Some(127) => format!(
                "repowire is not installed on {host}, or not on the PATH of commands run there through ssh ({said}): install repowire {VERSION} there; `ssh {host} repowire --version` must work"
            ),
            Some(2) if stderr.contains("unrecognized subcommand") => format!(
                "repowire on {host} is too old to be used from another host ({said}): install repowire {VERSION} there"
            ),
            _ if id.is_some() => return self.lost(id, &said),
            _ => format!("repowire on {host} failed ({}): {said}", describe(status)),
        };
        Error::Remote {
            code: EXIT_REMOTE,
            why,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Closing stdin tells a remote that still waits that we are gone; one that sent its
        // final reply exits by itself, and is given a moment to.
        self.stdin = None;
        let grace = if self.done {
            EXIT_GRACE
        } else {
            Duration::ZERO
        };
        self.exit_within(grace);
    }
}

fn is_auth_failure(stderr: &str) -> bool {
    [
        "Permission denied",
        "Too many authentication failures",
        "No more authentication methods",
    ]
    .iter()
    .any(|s| stderr.contains(s))
}

/// The last line of ssh's stderr that says something (not a known-hosts warning).
fn last_words(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .map(|l| message::neutralize(l).chars().take(300).collect())
}

fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match s.code() {
            Some(c) => format!("exit status {c}"),
            None => format!("{s}"),
        },
        None => "no exit status".into(),
    }
}
