//! The stand-in's inbox (`repowire standin --inbox`), as Claude Code 2.1.330 serves one: a Unix
//! stream socket `PID.sock` in the stand-in's folder; its hooks get
//! `CLAUDE_CODE_MESSAGING_SOCKET`, `CLAUDE_CODE_MESSAGING_TOKEN`, `CLAUDE_CODE_SESSION_ID` and
//! `CLAUDE_PID`; `sessions/PID.json` in `$CLAUDE_CONFIG_DIR` (else `~/.claude`) names the
//! socket, the release and `peerProtocol` 1 while it runs. A writer sends
//! `{"type":"auth","token":T}` and `{"type":"user","session_id":S,"message":{"role":"user",
//! "content":TEXT}}`, one line each; the socket answers nothing. A message with the wrong
//! token or session is dropped.

use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// The release the stand-in speaks for, and its inbox protocol.
const VERSION: &str = "2.1.330";
const PROTOCOL: u64 = 1;
/// A writer that sends nothing for this long is dropped.
const READ_LIMIT: Duration = Duration::from_secs(2);
/// Claude Code takes about 1 MiB a line.
const MAX_LINE: u64 = 1024 * 1024 + 1024;

pub(super) struct Inbox {
    listener: UnixListener,
    socket: PathBuf,
    token: String,
    session_id: String,
    session_file: PathBuf,
}

/// What arrived at the inbox.
pub(super) enum Arrived {
    Message(String),
    /// Dropped, and why.
    Refused(String),
}

impl Inbox {
    /// Opens the inbox of session `session_id` in `dir` (a private folder).
    pub(super) fn open(dir: &Path, session_id: &str, cwd: &str) -> Result<Inbox> {
        let pid = std::process::id();
        let socket = dir.join(format!("{pid}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("creating the inbox {}", socket.display()))?;
        listener.set_nonblocking(true)?;
        let config = match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".claude")
            }
        };
        let sessions = config.join("sessions");
        std::fs::create_dir_all(&sessions)
            .with_context(|| format!("creating {}", sessions.display()))?;
        let session_file = sessions.join(format!("{pid}.json"));
        let info = json!({
            "pid": pid,
            "sessionId": session_id,
            "cwd": cwd,
            "version": VERSION,
            "peerProtocol": PROTOCOL,
            "kind": "interactive",
            "messagingSocketPath": socket,
            "status": "idle",
        });
        std::fs::write(&session_file, info.to_string())
            .with_context(|| format!("writing {}", session_file.display()))?;
        Ok(Inbox {
            listener,
            socket,
            token: token()?,
            session_id: session_id.to_string(),
            session_file,
        })
    }

    /// What its hooks are given.
    pub(super) fn env(&self) -> [(&'static str, String); 4] {
        [
            (
                "CLAUDE_CODE_MESSAGING_SOCKET",
                self.socket.display().to_string(),
            ),
            ("CLAUDE_CODE_MESSAGING_TOKEN", self.token.clone()),
            ("CLAUDE_CODE_SESSION_ID", self.session_id.clone()),
            ("CLAUDE_PID", std::process::id().to_string()),
        ]
    }

    pub(super) fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Takes every writer waiting to be accepted, one message each.
    pub(super) fn take(&self) -> Vec<Arrived> {
        let mut out = Vec::new();
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(READ_LIMIT));
            let mut lines = BufReader::new(stream.take(2 * MAX_LINE)).lines();
            let mut line = || -> Value {
                lines
                    .next()
                    .and_then(io::Result::ok)
                    .and_then(|l| serde_json::from_str(&l).ok())
                    .unwrap_or(Value::Null)
            };
            let auth = line();
            if auth["type"] != "auth" || auth["token"] != self.token.as_str() {
                out.push(Arrived::Refused("no auth line with the token".into()));
                continue;
            }
            let msg = line();
            let content = msg["message"]["content"].as_str();
            match content {
                Some(text)
                    if msg["type"] == "user" && msg["session_id"] == self.session_id.as_str() =>
                {
                    out.push(Arrived::Message(text.to_string()));
                }
                _ => out.push(Arrived::Refused(format!(
                    "not a message to this session: {msg}"
                ))),
            }
        }
        out
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.session_file);
    }
}

/// 32 hex characters from the system's random source.
fn token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
