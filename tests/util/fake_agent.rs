//! A pane running `cat` standing for an agent, whose hooks the test runs itself with the
//! payloads the agent would send.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Mesh, spawn_piped, text};

/// Runs `repowire hook EVENT` (`event` may carry more words: `stop --agent codex`).
pub(crate) fn hook(cmd: &mut Command, event: &str, stdin: &[u8]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = spawn_piped(
        cmd.arg("hook")
            .args(event.split_whitespace())
            .stdin(Stdio::piped()),
    );
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The hook may stop reading early; a broken pipe here is fine.
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (out, start.elapsed())
}

/// A pane running `cat` stands for an agent; the test plays Claude Code by calling the hooks.
pub(crate) struct FakeAgent<'a> {
    pub m: &'a Mesh,
    pub pane: String,
    pub cwd: std::path::PathBuf,
}

impl FakeAgent<'_> {
    pub fn start<'a>(m: &'a Mesh, dir: &str) -> FakeAgent<'a> {
        let cwd = m.dir.path().join(dir);
        std::fs::create_dir_all(&cwd).unwrap();
        let out = m.tmux([
            "new-session",
            "-d",
            "-s",
            dir,
            "-c",
            cwd.to_str().unwrap(),
            "cat",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let pane = m.pane(dir);
        // Until the shell tmux starts it with has become `cat`, the pane shows another command,
        // which the SessionStart hook would record as the agent's.
        let shows_cat = || {
            text(
                &m.tmux([
                    "display-message",
                    "-p",
                    "-t",
                    &pane,
                    "#{pane_current_command}",
                ])
                .stdout,
            )
            .trim()
                == "cat"
        };
        assert!(m.eventually(Duration::from_secs(10), shows_cat));
        FakeAgent { m, pane, cwd }
    }

    /// [`FakeAgent::start`], then its SessionStart (session `s1`), then the startup grace
    /// after which repowire types into a new session.
    pub fn ready<'a>(m: &'a Mesh, dir: &str) -> FakeAgent<'a> {
        let a = FakeAgent::start(m, dir);
        a.hook(
            "session-start",
            json!({"session_id": "s1", "source": "startup"}),
        );
        std::thread::sleep(Duration::from_millis(1600));
        a
    }

    pub fn hook(&self, event: &str, payload: Value) {
        let mut p = payload;
        p["cwd"] = json!(self.cwd);
        let (out, _) = hook(
            &mut self.m.cmd_in(&self.pane),
            event,
            p.to_string().as_bytes(),
        );
        assert!(out.status.success());
        assert!(out.stderr.is_empty(), "{event}: {}", text(&out.stderr));
    }

    pub fn peer(&self) -> Value {
        let peers = self.m.peers();
        peers
            .into_iter()
            .find(|p| p["pane"] == self.pane.as_str())
            .expect("registered")
    }
}

/// The first line repowire typed for query `id` (all the prompt hook looks at).
pub(crate) fn header(id: &str) -> String {
    format!("[repowire] Question from user (query {id}). Answer it in your reply.\nthe question")
}

/// Sends an ask without waiting and returns its id once the deliverer has typed it.
pub(crate) fn ask_delivered(m: &Mesh, to: &str, text: &str) -> String {
    let id = m
        .ok(["peer", "ask", to, text, "--no-wait"])
        .trim()
        .to_string();
    let path = m.home.join(format!("queue/{id}.json"));
    // (Into a pane without a prompt box, Codex or Gemini CLI peers are typed after a pause.)
    assert!(m.eventually(Duration::from_secs(20), || {
        std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v["state"] == "delivered")
    }));
    id
}
