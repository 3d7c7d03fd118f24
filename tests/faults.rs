//! Faults: processes killed with SIGKILL at every stage of a question, an agent that dies
//! while it has a question (inotify exhausted and a full disk: tests/linux_faults.rs). Whatever dies, the answer still
//! lands in the spool and the history, no lock stays held, and the next question to that peer
//! goes through at once; whatever fails, it says so and damages nothing already stored.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::fake_agent::{FakeAgent, ask_delivered, header};
use crate::util::mcp::Mcp;
use crate::util::spool::check_spool;
use crate::util::{Agent, Mesh, bin, body, spawn_piped, text};

const T: Duration = Duration::from_secs(30);

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Every lock file of the spool that some process holds.
fn held_locks(home: &Path) -> Vec<PathBuf> {
    let mut held = Vec::new();
    for dir in ["peers", "queue", "log"] {
        for e in std::fs::read_dir(home.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "lock") {
                continue;
            }
            let f = std::fs::File::open(&p).unwrap();
            if fs2::FileExt::try_lock_shared(&f).is_err() {
                held.push(p);
            }
        }
    }
    held
}

/// The message record (open or finished) of question `text`, once there is one.
fn message_with(m: &Mesh, text: &str) -> Value {
    let mut found = None;
    assert!(
        m.eventually(T, || {
            found = ["queue", "done"].iter().find_map(|d| {
                std::fs::read_dir(m.home.join(d)).ok()?.find_map(|e| {
                    let p = e.ok()?.path();
                    let v: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
                    (v["text"] == text).then_some(v)
                })
            });
            found.is_some()
        }),
        "no message {text:?}"
    );
    found.unwrap()
}

fn state(m: &Mesh, id: &str) -> String {
    message_with_id(m, id)["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn message_with_id(m: &Mesh, id: &str) -> Value {
    for d in ["done", "queue"] {
        if let Ok(b) = std::fs::read(m.home.join(format!("{d}/{id}.json"))) {
            return serde_json::from_slice(&b).unwrap();
        }
    }
    Value::Null
}

/// After its asker died: the answer to `id` lands in the spool and the history, every lock is
/// free, and the next question to `peer` is answered.
fn assert_answer_lands(m: &Mesh, id: &str, question: &str, peer: &str) {
    let resp = m.home.join(format!("responses/{id}.json"));
    assert!(
        m.eventually(T, || resp.exists()),
        "no answer stored for {id}"
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&resp).unwrap()).unwrap();
    assert_eq!(
        body(r["text"].as_str().unwrap().strip_prefix("ECHO: ").unwrap()),
        question
    );
    let events: Vec<String> = m
        .history()
        .iter()
        .filter(|e| e["id"] == id)
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["sent", "delivered", "answered"]);
    assert!(
        m.eventually(T, || held_locks(&m.home).is_empty()),
        "locks still held: {:?}",
        held_locks(&m.home)
    );
    let out = m.ok(["peer", "ask", peer, "the next question"]);
    assert!(out.ends_with("the next question\n"), "{out}");
    // Fetching the answer later works too.
    assert_eq!(
        m.ok(["peer", "wait", id]).trim_end(),
        r["text"].as_str().unwrap().trim_end()
    );
}

#[test]
fn an_asker_killed_before_delivery_still_gets_its_answer_stored() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "SLEEP 2", "--no-wait"]);
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let mut asker = spawn_piped(
        m.cmd()
            .args(["peer", "ask", "beta", "queued then orphaned"]),
    );
    let id = message_with(&m, "queued then orphaned")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state(&m, &id), "queued");
    kill9(&mut asker);
    assert_answer_lands(&m, &id, "queued then orphaned", "beta");
}

#[test]
fn an_asker_killed_after_delivery_still_gets_its_answer_stored() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let q = "SLEEP 2\ndelivered then orphaned";
    let mut asker = spawn_piped(m.cmd().args(["peer", "ask", "beta", q]));
    let id = message_with(&m, q)["id"].as_str().unwrap().to_string();
    assert!(m.eventually(T, || state(&m, &id) == "delivered"));
    kill9(&mut asker);
    assert_answer_lands(&m, &id, q, "beta");
}

/// `peer wait` on an earlier question (the asker of `--no-wait`, or a second waiter) killed
/// while it waits.
#[test]
fn a_waiter_killed_while_waiting_leaves_the_answer_to_be_fetched() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let q = "SLEEP 2\nwaited on";
    let id = m
        .ok(["peer", "ask", "beta", q, "--no-wait"])
        .trim()
        .to_string();
    let mut waiter = spawn_piped(m.cmd().args(["peer", "wait", &id]));
    // It waits holding the question's waiter lock (so the deadlock check sees it).
    let lock = m.home.join(format!("queue/{id}.lock"));
    assert!(m.eventually(T, || held_locks(&m.home).contains(&lock)));
    kill9(&mut waiter);
    assert_answer_lands(&m, &id, q, "beta");
}

/// The MCP server of an agent session killed (SIGKILL, so it cannot withdraw anything) while
/// its ask_peer call waits: the question is still delivered and answered.
#[test]
fn an_mcp_server_killed_mid_ask_leaves_a_question_that_is_still_answered() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "SLEEP 2", "--no-wait"]);
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let mut mcp = Mcp::start(&m, m.cmd());
    let call = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "asked over mcp"}),
    );
    mcp.wait_progress(call, "queued behind 1");
    kill9(&mut mcp.child);
    let id = message_with(&m, "asked over mcp")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_answer_lands(&m, &id, "asked over mcp", "beta");
}

/// A Stop hook killed at any moment of its work (stopped with SIGSTOP at a point swept across
/// its run, then SIGKILLed): no lock stays held, no record or history line is left half
/// written, an answer is either stored whole or not at all, and the agent's next turn end
/// stores its answer as usual.
#[test]
fn a_stop_hook_killed_mid_write_leaves_nothing_half_written() {
    need_tmux!();
    let m = Mesh::new();
    let a = FakeAgent::ready(&m, "svc");
    let run_stop = |pid: &str, answer: &str| -> Child {
        let payload = json!({"session_id": "s1", "prompt_id": pid, "cwd": a.cwd,
                             "hook_event_name": "Stop", "last_assistant_message": answer});
        let mut cmd = m.cmd_in(&a.pane);
        cmd.args(["hook", "stop"])
            .stdin(std::process::Stdio::piped());
        let mut child = spawn_piped(&mut cmd);
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.to_string().as_bytes())
            .unwrap();
        child
    };
    // A long answer (900 KiB) keeps the hook writing for most of its run (the staged answer, the
    // history line), so the kills land inside its writes.
    let long = "z".repeat(900 << 10); // within the hook's payload limit (1 MiB)
    // How long a whole Stop hook takes here, to sweep the kill across it.
    let id = ask_delivered(&m, "svc", "timing");
    a.hook(
        "prompt",
        json!({"session_id": "s1", "prompt_id": "T", "prompt": header(&id)}),
    );
    let t = Instant::now();
    assert!(run_stop("T", &long).wait().unwrap().success());
    let whole = t.elapsed();
    let steps = 16;
    let (mut stored, mut cut_lines) = (0, 0);
    for i in 0..steps {
        let id = ask_delivered(&m, "svc", &format!("question {i}"));
        let pid = format!("P{i}");
        a.hook(
            "prompt",
            json!({"session_id": "s1", "prompt_id": pid, "prompt": header(&id)}),
        );
        let answer = format!("answer {i} {long}");
        let mut hook_proc = run_stop(&pid, &answer);
        std::thread::sleep(whole * i / steps);
        // Stopped first, it dies between system calls; killed outright, it can die inside a
        // write, leaving part of it.
        if i % 2 == 0 {
            signal(hook_proc.id(), libc::SIGSTOP);
        }
        kill9(&mut hook_proc);
        assert!(
            m.eventually(T, || held_locks(&m.home).is_empty()),
            "step {i}: locks held after the kill: {:?}",
            held_locks(&m.home)
        );
        // Leftover staging files are what a killed writer may leave (gc removes them);
        // everything a reader can see must be whole.
        for e in std::fs::read_dir(m.home.join("tmp")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        // A history line cut by the kill is not shown by readers, and is cut off before the
        // next line is written (checked below).
        check_spool(&m.home, true).unwrap_or_else(|e| panic!("step {i}: {e}"));
        if check_spool(&m.home, false).is_err() {
            cut_lines += 1;
        }
        let resp = m.home.join(format!("responses/{id}.json"));
        if resp.exists() {
            stored += 1;
            let r: Value = serde_json::from_slice(&std::fs::read(&resp).unwrap()).unwrap();
            let text = r["text"].as_str().unwrap_or_default();
            assert!(
                text == answer,
                "step {i}: a different answer was stored: {}…",
                &text[..text.len().min(80)]
            );
        }
        // The agent goes on: its next turn (a person's prompt) ends with a Stop hook that
        // runs to completion, which leaves the peer idle with its answer delivered.
        let next = format!("N{i}");
        a.hook(
            "prompt",
            json!({"session_id": "s1", "prompt_id": next, "prompt": "a person's prompt"}),
        );
        a.hook(
            "stop",
            json!({"session_id": "s1", "prompt_id": next, "last_assistant_message": "ok"}),
        );
        assert!(
            m.eventually(T, || a.peer()["status"] == "online"),
            "step {i}"
        );
        if !resp.exists() {
            // Killed before it stored the answer (Claude Code does not run a hook again): when
            // the next turn starts, the question fails as a turn that ended without an answer,
            // as one cancelled with Esc does. The next question (the next step) is delivered
            // and answered as usual.
            assert_eq!(state(&m, &id), "failed", "step {i}");
            let why = message_with_id(&m, &id)["error"].to_string();
            assert!(why.contains("ended without an answer"), "step {i}: {why}");
        }
    }
    m.ok(["peer", "notify", "svc", "the history goes on"]);
    check_spool(&m.home, false).unwrap();
    assert!(
        m.history()
            .iter()
            .any(|e| e["text"] == "the history goes on")
    );
    eprintln!(
        "stop hook killed at {steps} points over {whole:?}: {stored} had stored the answer, {cut_lines} left a history line cut short"
    );
}

/// An agent that dies without its SessionEnd hook (SIGKILL) while it answers, its pane going
/// back to the shell it was started from: the asker learns it at once, not at its timeout.
#[test]
fn an_agent_that_dies_mid_question_back_to_its_shell_fails_the_asker_promptly() {
    need_tmux!();
    let m = Mesh::new();
    let work = m.dir.path().join("beta");
    std::fs::create_dir_all(&work).unwrap();
    let events = m.dir.path().join("beta.events");
    // With job control, as in an interactive shell: the agent is the pane's foreground
    // command while it runs, and the shell is again once it is gone.
    let script = format!(
        "set -m; '{}' standin --events '{}'; exec sh",
        bin().display(),
        events.display()
    );
    let out = m.tmux([
        "new-session",
        "-d",
        "-s",
        "beta",
        "-x",
        "160",
        "-y",
        "40",
        "-c",
        work.to_str().unwrap(),
        "-e",
        &format!("REPOWIRE_HOME={}", m.home.display()),
        "-e",
        &format!(
            "REPOWIRE_STANDIN_DIR={}",
            m.dir.path().join("transcripts").display()
        ),
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(m.eventually(T, || {
        crate::util::read_jsonl(&events)
            .iter()
            .any(|e| e["type"] == "start")
    }));
    let asker = spawn_piped(
        m.cmd()
            .args(["peer", "ask", "beta", "SLEEP 60", "--timeout", "90s"]),
    );
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let o = m.tmux(["list-panes", "-t", "beta", "-F", "#{pane_pid}"]);
    let pid = text(&o.stdout).trim().to_string();
    // The stand-in is the shell's child; kill it, not the shell.
    let standin = crate::util::procs::children(pid.parse().unwrap())[0];
    signal(standin, libc::SIGKILL);
    let out = asker.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("its agent exited"), "{err}");
}

/// An agent that exits normally (its SessionEnd hook runs) while it answers.
#[test]
fn an_agent_that_exits_mid_question_fails_the_asker_promptly() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let asker = spawn_piped(
        m.cmd()
            .args(["peer", "ask", "beta", "SLEEP 60", "--timeout", "90s"]),
    );
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let o = m.tmux(["list-panes", "-t", "beta", "-F", "#{pane_pid}"]);
    let pid: u32 = text(&o.stdout).trim().parse().unwrap();
    signal(pid, libc::SIGTERM);
    let out = asker.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(4 | 7)), "{err}");
    assert!(
        err.contains("session ended") || err.contains("offline"),
        "{err}"
    );
}

/// Asks the stand-in `b` (warmed up: one answer so far) for `reply` with its Stop hook killed
/// at the end of the turn; returns the query id once the turn is over, still delivered.
fn ask_and_kill_its_stop_hook(m: &Mesh, b: &Agent, reply: &str) -> String {
    let question = format!("KILL_STOP_HOOK\nREPLY {reply}");
    let id = m.ok(["peer", "ask", &b.name, &question, "--no-wait"]);
    let id = id.trim().to_string();
    assert!(
        m.eventually(T, || b.of_type("answer").len() == 2),
        "the turn did not end"
    );
    m.helpers_done();
    assert_eq!(state(m, &id), "delivered", "the killed hook stored it");
    id
}

/// Types `text` into session `name`'s pane and presses Enter, as a person would.
fn submit(m: &Mesh, name: &str, text: &str) {
    m.tmux(["send-keys", "-t", name, "-l", text]);
    m.tmux(["send-keys", "-t", name, "Enter"]);
}

/// A Stop hook SIGKILLed before it stored the answer: the agent never runs it again, but the
/// answer is in its transcript. When the session's next turn starts (a person types), its
/// prompt hook finds the question delivered and unanswered and answers it from there; a
/// turn cut short with Esc, whose transcript holds no reply, still fails.
#[test]
fn an_answer_whose_stop_hook_was_killed_comes_from_the_transcript_at_the_next_turn() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.warm_agent("beta");
    let id = ask_and_kill_its_stop_hook(&m, &b, "the answer the hook never stored");
    assert_eq!(m.status("beta"), "busy");

    // A person's prompt starts the next turn.
    submit(&m, "beta", "REPLY a person's own question");
    let out = m.ok(["peer", "wait", &id, "--timeout", "20s"]);
    assert_eq!(out, "the answer the hook never stored\n");
    assert_eq!(
        m.history()
            .iter()
            .filter(|e| e["id"] == id.as_str())
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        ["sent", "delivered", "answered"]
    );
    assert!(m.eventually(T, || m.status("beta") == "online"));

    // Esc: no reply in the transcript, so the question fails when the next turn starts.
    let id = m
        .ok(["peer", "ask", "beta", "SLEEP 30\nREPLY never", "--no-wait"])
        .trim()
        .to_string();
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    m.tmux(["send-keys", "-t", "beta", "Escape"]);
    assert!(m.eventually(T, || !b.of_type("interrupted").is_empty()));
    submit(&m, "beta", "REPLY next");
    assert!(m.eventually(T, || state(&m, &id) == "failed"));
    let err = m.run(["peer", "wait", &id, "--timeout", "5s"]);
    assert_eq!(err.status.code(), Some(7), "{}", text(&err.stderr));
}

/// The same when the session ends instead: its SessionEnd hook answers from the transcript.
#[test]
fn an_answer_whose_stop_hook_was_killed_comes_from_the_transcript_at_session_end() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.warm_agent("beta");
    let id = ask_and_kill_its_stop_hook(&m, &b, "stored at the end");
    submit(&m, "beta", "/exit");
    let out = m.ok(["peer", "wait", &id, "--timeout", "20s"]);
    assert_eq!(out, "stored at the end\n");
}
