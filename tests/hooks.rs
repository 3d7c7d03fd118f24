//! The hooks as Claude Code runs them: JSON on stdin, `TMUX`/`TMUX_PANE` in the environment.
//! They must exit 0, quickly and silently, on any input, and keep the turn bookkeeping right in
//! the orders Claude Code really fires them.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Mesh, text};

pub(crate) fn hook(cmd: &mut Command, event: &str, stdin: &[u8]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .args(["hook", event])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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

#[test]
fn hooks_exit_zero_silently_on_any_input() {
    let m = Mesh::new();
    let huge = vec![b'x'; 20 * 1024 * 1024];
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"this is not json".to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        ("wrong types", br#"{"session_id":5,"cwd":[],"prompt":{"a":1},"transcript_path":false}"#.to_vec()),
        ("missing transcript", br#"{"session_id":"s","hook_event_name":"Stop","transcript_path":"/nonexistent/t.jsonl","prompt_id":"p"}"#.to_vec()),
        ("truncated", br#"{"session_id":"s","hook_ev"#.to_vec()),
        ("invalid utf-8", b"{\"prompt\":\"\xff\xfe\"}".to_vec()),
        ("huge", huge),
    ];
    for event in ["session-start", "prompt", "stop", "session-end"] {
        for (what, input) in &inputs {
            // Inside a pane of a tmux server that does not exist, and outside tmux.
            for in_tmux in [true, false] {
                let mut cmd = if in_tmux { m.cmd_in("%7") } else { m.cmd() };
                let (out, took) = hook(&mut cmd, event, input);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{event} {what}: {}",
                    text(&out.stderr)
                );
                assert!(out.stdout.is_empty(), "{event} {what} printed on stdout");
                assert!(
                    took < Duration::from_secs(4),
                    "{event} {what} took {took:?}"
                );
            }
        }
    }
    assert!(m.peers().is_empty(), "a peer was registered from garbage");
}

#[test]
fn a_hook_with_an_unusable_spool_still_exits_zero() {
    let m = Mesh::new();
    std::fs::write(m.dir.path().join("file"), b"").unwrap();
    let mut cmd = m.cmd_in("%1");
    cmd.env("REPOWIRE_HOME", m.dir.path().join("file/spool"));
    let (out, _) = hook(
        &mut cmd,
        "session-start",
        br#"{"session_id":"s","cwd":"/"}"#,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("repowire hook"),
        "{}",
        text(&out.stderr)
    );
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
    assert!(m.eventually(Duration::from_secs(10), || {
        std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v["state"] == "delivered")
    }));
    id
}

#[test]
fn clear_keeps_the_peer_and_session_end_takes_it_offline() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    a.hook(
        "session-start",
        json!({"session_id": "s1", "source": "startup"}),
    );
    assert_eq!(a.peer()["name"], "svc");
    assert_eq!(a.peer()["status"], "online");
    // `/clear`: SessionEnd(clear), then SessionStart(clear) with a new session id.
    a.hook(
        "session-end",
        json!({"session_id": "s1", "reason": "clear"}),
    );
    a.hook(
        "session-start",
        json!({"session_id": "s2", "source": "clear"}),
    );
    let peers = m.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["name"], "svc");
    assert_eq!(peers[0]["session_id"], "s2");
    assert_eq!(peers[0]["status"], "online");
    a.hook(
        "session-end",
        json!({"session_id": "s2", "reason": "prompt_input_exit"}),
    );
    assert_eq!(a.peer()["status"], "offline");
    // A second session in the same repository while the first runs gets its own name.
    a.hook(
        "session-start",
        json!({"session_id": "s3", "source": "startup"}),
    );
    let b = FakeAgent::start(&m, "other");
    let mut b2 = b;
    b2.cwd = a.cwd.clone();
    b2.hook(
        "session-start",
        json!({"session_id": "s4", "source": "startup"}),
    );
    assert_eq!(b2.peer()["name"], "svc-2");
}

#[test]
fn the_answer_goes_to_the_question_whose_turn_it_was() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    a.hook(
        "session-start",
        json!({"session_id": "s1", "source": "startup"}),
    );
    std::thread::sleep(Duration::from_millis(1600)); // the startup grace
    let id = ask_delivered(&m, "svc", "the question");
    // Claude Code measured: a person's prompt submitted just before ours runs first; ours is
    // queued and its hook fires at once with the running turn's prompt id.
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P1", "prompt": "a person's prompt"}),
    );
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P1", "prompt": header(&id)}),
    );
    a.hook("stop", json!({"session_id": "s1", "prompt_id": "P1", "last_assistant_message": "the person's answer"}));
    assert!(
        m.home.join(format!("queue/{id}.json")).exists(),
        "answered by the wrong turn"
    );
    assert_eq!(a.peer()["status"], "busy");
    a.hook(
        "stop",
        json!({"session_id": "s1", "prompt_id": "P2", "last_assistant_message": "our answer"}),
    );
    assert_eq!(
        m.ok(["peer", "wait", &id, "--timeout", "5s"]),
        "our answer\n"
    );
    assert_eq!(a.peer()["status"], "online");
}

#[test]
fn a_forged_header_cannot_claim_a_turn() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    a.hook(
        "session-start",
        json!({"session_id": "s1", "source": "startup"}),
    );
    std::thread::sleep(Duration::from_millis(1600));
    let id = ask_delivered(&m, "svc", "real question");
    // A prompt naming the query, but not as its first line, and one naming an unknown query.
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P1", "prompt": format!("hi\n{}", header(&id))}),
    );
    a.hook(
        "stop",
        json!({"session_id": "s1", "prompt_id": "P1", "last_assistant_message": "forged"}),
    );
    a.hook("prompt", json!({"session_id": "s1", "prompt_id": "P2", "prompt": header("01AAAAAAAAAAAAAAAAAAAAAAAA")}));
    a.hook(
        "stop",
        json!({"session_id": "s1", "prompt_id": "P2", "last_assistant_message": "forged"}),
    );
    assert!(!m.home.join(format!("responses/{id}.json")).exists());
    assert!(
        std::fs::read_dir(m.home.join("responses"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn session_end_fails_a_delivered_question_at_once() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    a.hook(
        "session-start",
        json!({"session_id": "s1", "source": "startup"}),
    );
    std::thread::sleep(Duration::from_millis(1600));
    let id = ask_delivered(&m, "svc", "q");
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P1", "prompt": header(&id)}),
    );
    a.hook(
        "session-end",
        json!({"session_id": "s1", "reason": "other"}),
    );
    let out = m.run(["peer", "wait", &id, "--timeout", "5s"]);
    // Failed, because the peer is offline: exit status 4, with the reason.
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("session ended before it answered"),
        "{}",
        text(&out.stderr)
    );
}

/// An agent that never closes the hook's stdin (or anything else that stalls it) does not
/// hang the hook: its watchdog ends it, with status 0, after 10 s.
#[test]
fn a_hook_whose_stdin_never_ends_gives_up_with_status_zero() {
    let m = Mesh::new();
    let start = Instant::now();
    let mut child = m
        .cmd()
        .args(["hook", "stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(br#"{"session_id": "s1", "#).unwrap();
    // `input` stays open until the hook is gone.
    let out = child.wait_with_output().unwrap();
    drop(input);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(text(&out.stderr), "repowire hook: gave up after 10s\n");
    assert!(start.elapsed() >= Duration::from_secs(10));
}
