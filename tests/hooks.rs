//! The hooks as Claude Code runs them: JSON on stdin, `TMUX`/`TMUX_PANE` in the environment.
//! They must exit 0, quickly and silently, on any input, and keep the turn bookkeeping right in
//! the orders Claude Code really fires them.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::fake_agent::{FakeAgent, ask_delivered, header, hook};
use crate::util::{Mesh, spawn_piped, text};

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
    let a = FakeAgent::ready(&m, "svc");
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
    let a = FakeAgent::ready(&m, "svc");
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
    let a = FakeAgent::ready(&m, "svc");
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

/// A Codex daemon runs every session's hooks with the environment of the session that started
/// it, so `$TMUX_PANE` can name another agent's pane. A Codex hook only trusts the pane when
/// the pane's process is its ancestor, and otherwise finds its peer by session id alone.
#[test]
fn a_codex_hook_from_another_panes_environment_neither_registers_nor_misroutes() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    // This test process is no descendant of svc's pane, as a daemon's hook would not be.
    let (out, _) = hook(
        &mut m.cmd_in(&a.pane),
        "session-start --agent codex",
        json!({"session_id": "cx1", "cwd": a.cwd})
            .to_string()
            .as_bytes(),
    );
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("is not the pane this Codex session runs in"),
        "{}",
        text(&out.stderr)
    );
    assert!(m.peers().is_empty(), "registered the wrong pane");

    // The pane's own agent is a peer, busy with a turn.
    a.hook(
        "session-start",
        json!({"session_id": "s1", "source": "startup"}),
    );
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P1", "prompt": "work"}),
    );
    assert_eq!(a.peer()["status"], "busy");
    // Another Codex session's Stop, carrying svc's pane: not svc's turn that ended.
    let (out, _) = hook(
        &mut m.cmd_in(&a.pane),
        "stop --agent codex",
        json!({"session_id": "cx1", "turn_id": "T1", "last_assistant_message": "x"})
            .to_string()
            .as_bytes(),
    );
    assert!(out.status.success());
    assert_eq!(
        a.peer()["status"],
        "busy",
        "another session's Stop ended svc's turn"
    );
}

/// The payloads of repowire's OpenCode plugin: the plugin's load registers the pane before
/// there is a session, session.created adds the session's id, chat.message starts the turn, session.idle's reply is the answer, and a
/// MessageAbortedError (Esc) fails the question as interrupted.
#[test]
fn opencode_plugin_payloads_answer_and_an_interrupted_turn_is_no_answer() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    let opencode = |event: &str, payload: Value| {
        let (out, _) = hook(
            &mut m.cmd_in(&a.pane),
            &format!("{event} --agent opencode"),
            payload.to_string().as_bytes(),
        );
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            text(&out.stderr)
        );
    };
    opencode("session-start", json!({"cwd": a.cwd}));
    let p = a.peer();
    assert_eq!(
        (&p["agent"], &p["status"]),
        (&json!("opencode"), &json!("online")),
        "{p}"
    );
    // OpenCode creates the session with the first prompt.
    opencode(
        "session-start",
        json!({"session_id": "ses_1", "cwd": a.cwd}),
    );
    let id = ask_delivered(&m, "svc", "the question");
    opencode(
        "prompt",
        json!({"session_id": "ses_1", "cwd": a.cwd, "prompt": header(&id)}),
    );
    assert_eq!(a.peer()["status"], "busy");
    assert_eq!(a.peer()["session_id"], "ses_1");
    opencode(
        "stop",
        json!({"session_id": "ses_1", "last_assistant_message": "opencode's answer"}),
    );
    assert_eq!(
        m.ok(["peer", "wait", &id, "--timeout", "5s"]),
        "opencode's answer\n"
    );
    assert_eq!(a.peer()["status"], "online");

    let id = ask_delivered(&m, "svc", "SLEEP 60");
    opencode(
        "prompt",
        json!({"session_id": "ses_1", "cwd": a.cwd, "prompt": header(&id)}),
    );
    opencode("interrupt", json!({"session_id": "ses_1"}));
    let err = m.fails(["peer", "wait", &id, "--timeout", "5s"], 7);
    assert!(err.contains("interrupted (Esc)"), "{}", err);
    assert_eq!(a.peer()["status"], "online");
}

/// Gemini CLI's payloads: BeforeAgent starts the turn, AfterAgent's `prompt_response` is the
/// answer; an AfterAgent without a reply after "Request cancelled." in its chat file (Esc)
/// fails the question as interrupted, as Codex's Interrupt event does.
#[test]
fn gemini_payloads_answer_and_an_interrupted_turn_is_no_answer() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    let gemini = |event: &str, payload: Value| a.hook(&format!("{event} --agent gemini"), payload);
    gemini(
        "session-start",
        json!({"session_id": "g1", "source": "startup"}),
    );
    assert_eq!(a.peer()["agent"], "gemini");
    let id = ask_delivered(&m, "svc", "the question");
    gemini("prompt", json!({"session_id": "g1", "prompt": header(&id)}));
    assert_eq!(a.peer()["status"], "busy");
    gemini(
        "stop",
        json!({"session_id": "g1", "prompt": header(&id), "prompt_response": "gemini's answer"}),
    );
    assert_eq!(
        m.ok(["peer", "wait", &id, "--timeout", "5s"]),
        "gemini's answer\n"
    );

    // Esc: the chat file ends with Gemini's note, the reply is its placeholder.
    let chat = m.dir.path().join("chat.jsonl");
    std::fs::write(
        &chat,
        "{\"id\":\"u\",\"type\":\"user\",\"content\":[{\"text\":\"q\"}]}\n{\"$set\":{\"lastUpdated\":\"x\"}}\n\
         {\"id\":\"i\",\"type\":\"info\",\"content\":\"Request cancelled.\"}\n{\"$set\":{\"lastUpdated\":\"y\"}}\n",
    )
    .unwrap();
    let id = ask_delivered(&m, "svc", "SLEEP 60");
    gemini("prompt", json!({"session_id": "g1", "prompt": header(&id)}));
    gemini(
        "stop",
        json!({"session_id": "g1", "prompt_response": "[no response text]", "transcript_path": chat}),
    );
    let err = m.fails(["peer", "wait", &id, "--timeout", "5s"], 7);
    assert!(err.contains("interrupted (Esc)"), "{}", err);
    assert_eq!(a.peer()["status"], "online");

    // Codex reports it with an Interrupt event (found here by its session id).
    let id = ask_delivered(&m, "svc", "SLEEP 60");
    gemini("prompt", json!({"session_id": "g1", "prompt": header(&id)}));
    let (out, _) = hook(
        &mut m.cmd_in("%999"),
        "interrupt --agent codex",
        json!({"session_id": "g1", "turn_id": "T"})
            .to_string()
            .as_bytes(),
    );
    assert!(out.status.success());
    m.fails(["peer", "wait", &id, "--timeout", "5s"], 7);
    assert_eq!(a.peer()["status"], "online");
}

/// An agent that never closes the hook's stdin (or anything else that stalls it) does not
/// hang the hook: its watchdog ends it, with status 0, after 10 s.
#[test]
fn a_hook_whose_stdin_never_ends_gives_up_with_status_zero() {
    let m = Mesh::new();
    let start = Instant::now();
    let mut child = spawn_piped(m.cmd().args(["hook", "stop"]).stdin(Stdio::piped()));
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

/// Claude Code runs no Stop hook for a turn cancelled with Esc: when the next turn starts
/// (a new prompt id), the question the cancelled one carried fails as interrupted, and is
/// never answered by that next turn.
#[test]
fn a_claude_turn_cancelled_without_a_stop_fails_its_question_when_the_next_starts() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::ready(&m, "svc");
    let id = ask_delivered(&m, "svc", "the question");
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P1", "prompt": header(&id)}),
    );
    // Esc: no Stop. The person types something else.
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "P2", "prompt": "something else"}),
    );
    let err = m.fails(["peer", "wait", &id, "--timeout", "5s"], 7);
    assert!(err.contains("interrupted with Esc"), "{}", err);
    a.hook(
        "stop",
        json!({"session_id": "s1", "prompt_id": "P2", "last_assistant_message": "not for it"}),
    );
    assert!(
        message_response(&m, &id).is_none(),
        "answered by the next turn"
    );
    assert_eq!(a.peer()["status"], "online");
}

fn message_response(m: &Mesh, id: &str) -> Option<Value> {
    std::fs::read(m.home.join(format!("responses/{id}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// A Codex app-server daemon is the child of the TUI that started it, so the hooks it runs
/// for every other TUI descend from that first TUI's pane too. A Codex hook with a `codex
/// app-server` among its ancestors trusts no pane; the same hook run by the TUI itself does.
#[test]
fn a_codex_hook_run_by_the_shared_daemon_registers_no_pane() {
    need_tmux!();
    let m = Mesh::new();
    let payload = m.dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"session_id": "cx1", "source": "startup"}"#).unwrap();
    let rw = crate::util::bin().display().to_string();
    let start = |name: &str, argv0_args: &str| {
        let work = m.dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        // The pane's process is named .../codex, and with `app-server` among its arguments
        // it looks like the daemon; the hook runs as its child.
        let script = format!(
            "exec -a {}/codex bash -c '\"$1\" hook session-start --agent codex < \"$2\" 2>\"$3\"; exec sleep 60' {argv0_args}",
            m.dir.path().display()
        );
        let out = m.tmux([
            "new-session",
            "-d",
            "-s",
            name,
            "-c",
            work.to_str().unwrap(),
            "-e",
            &format!("REPOWIRE_HOME={}", m.home.display()),
            "bash",
            "-c",
            &script,
            "bash",
            &rw,
            payload.to_str().unwrap(),
            m.dir.path().join(format!("{name}.err")).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    start("daemon", "app-server \"$1\" \"$2\" \"$3\"");
    start("tui", "tui \"$1\" \"$2\" \"$3\"");
    assert!(
        m.eventually(Duration::from_secs(20), || m.peers().len() == 1),
        "{:?}",
        m.peers()
    );
    // The daemon's hook has decided, and said so.
    let daemon_err =
        || std::fs::read_to_string(m.dir.path().join("daemon.err")).unwrap_or_default();
    assert!(
        m.eventually(Duration::from_secs(20), || daemon_err()
            .contains("is not the pane this Codex session runs in")),
        "{}",
        daemon_err()
    );
    m.helpers_done();
    let peers = m.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["name"], "tui");
}

/// Claude Code 2.0.x's Stop payload has no `last_assistant_message` (nor `prompt_id`), and it
/// may run the hook before the reply is in the transcript: seen with 2.0.77, whose every ask
/// but the first then came back "(the peer's turn ended without a text reply)". The hook
/// waits for a reply that is due; here it is written 300 ms after the hook starts.
#[test]
fn claude_code_2_0_stop_hook_before_its_reply_is_in_the_transcript() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    let transcript = m.dir.path().join("t.jsonl");
    let session = json!({"session_id": "s1", "transcript_path": transcript});
    let mut start = session.clone();
    start["source"] = json!("startup");
    a.hook("session-start", start);
    for round in 1..=3 {
        let id = ask_delivered(&m, "svc", "the question");
        let mut prompt = session.clone();
        prompt["prompt"] = json!(header(&id));
        a.hook("prompt", prompt.clone());
        let mut lines = std::fs::read_to_string(&transcript).unwrap_or_default();
        lines += &format!(
            "{}\n",
            json!({"type": "user", "message": {"role": "user", "content": header(&id)}})
        );
        std::fs::write(&transcript, &lines).unwrap();
        let reply = format!("answer {round}");
        let writer = {
            let (transcript, reply) = (transcript.clone(), reply.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let line = json!({"type": "assistant", "message": {"id": format!("m{round}"),
                    "content": [{"type": "text", "text": reply}]}});
                // Appended, as Claude Code writes its transcript: a rewrite would show the
                // hook an empty file for a moment.
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&transcript)
                    .unwrap();
                std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap();
            })
        };
        a.hook("stop", session.clone());
        writer.join().unwrap();
        assert_eq!(
            m.ok(["peer", "wait", &id, "--timeout", "5s"]),
            format!("{reply}\n"),
            "round {round}"
        );
        assert_eq!(a.peer()["status"], "online");
    }
}

/// A hook run by an agent working for a script (`claude -p`, `opencode run`, ...), also one
/// run as a tool inside a peer's pane, leaves that pane's peer alone: its prompt does not make
/// the peer busy. The same hook run by the interactive agent does.
#[test]
fn a_headless_agents_hooks_leave_the_panes_peer_alone() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "svc");
    a.hook(
        "session-start",
        json!({"session_id": "s1", "source": "startup"}),
    );
    // The agent is the hook's parent: a program whose arguments (after `-`, its script on
    // stdin) say how it runs.
    let by = |agent: &str, args: &[&str]| {
        let hook = m.cmd_in(&a.pane);
        let mut parent = Command::new("python3");
        parent.arg("-").args(args);
        for (k, v) in hook.get_envs() {
            match v {
                Some(v) => parent.env(k, v),
                None => parent.env_remove(k),
            };
        }
        let argv = json!([
            hook.get_program().to_str().unwrap(),
            "hook",
            "prompt",
            "--agent",
            agent
        ]);
        let payload = json!({"session_id": "s2", "prompt": "work", "cwd": a.cwd});
        let out = parent
            .env("HOOK_ARGV", argv.to_string())
            .env("HOOK_PAYLOAD", payload.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(
                    b"import json, os, subprocess, sys\n\
                      r = subprocess.run(json.loads(os.environ['HOOK_ARGV']), input=os.environ['HOOK_PAYLOAD'].encode())\n\
                      sys.exit(r.returncode)\n",
                )?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    for (agent, args) in [
        ("claude", &["-p", "work"][..]),
        ("opencode", &["run", "work"][..]),
        ("codex", &["exec", "work"][..]),
        ("gemini", &["--prompt", "work"][..]),
    ] {
        by(agent, args);
        assert_eq!(
            a.peer()["status"],
            "online",
            "{agent} {args:?} made the peer busy"
        );
    }
    by("claude", &[]);
    assert_eq!(a.peer()["status"], "busy");
}

/// In a fork answering a question (REPOWIRE_FORK set), repowire's hooks do nothing at all:
/// a SessionStart registers no peer, a prompt marks none busy.
#[test]
fn hooks_in_a_fork_do_nothing() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::start(&m, "forked");
    let payload = json!({"session_id": "s9", "source": "startup", "cwd": a.cwd}).to_string();
    let mut cmd = m.cmd_in(&a.pane);
    cmd.env("REPOWIRE_FORK", "1");
    let (out, _) = hook(&mut cmd, "session-start", payload.as_bytes());
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out.stderr)
    );
    assert!(m.peers().is_empty(), "{:?}", m.peers());
    // Without it, the same call registers the pane.
    a.hook(
        "session-start",
        json!({"session_id": "s9", "source": "startup"}),
    );
    assert_eq!(a.peer()["status"], "online");
    let mut cmd = m.cmd_in(&a.pane);
    cmd.env("REPOWIRE_FORK", "1");
    let prompt = json!({"session_id": "s9", "prompt": "x", "cwd": a.cwd}).to_string();
    hook(&mut cmd, "prompt", prompt.as_bytes());
    assert_eq!(
        a.peer()["status"],
        "online",
        "a fork's prompt marked the peer busy"
    );
}
