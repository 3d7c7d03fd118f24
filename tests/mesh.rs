//! The local mesh end to end: real tmux on a private socket, stand-in agents that call the
//! real hooks, and the real CLI.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Mesh, body, spawn_piped, text};

const T: Duration = Duration::from_secs(20);

/// The question text an ask carried, as the answering agent received it.
fn answer_body(stdout: &str) -> &str {
    body(stdout.strip_prefix("ECHO: ").expect("an echo answer")).trim_end_matches('\n')
}

#[test]
fn ask_prints_the_peers_answer_and_logs_it() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let b = m.agent("beta", &[]);
    let out = m.ok(["peer", "ask", "beta", "what is the users API schema?"]);
    assert!(
        out.starts_with("ECHO: [repowire] Question from user (query "),
        "{out}"
    );
    assert_eq!(answer_body(&out), "what is the users API schema?");
    assert_eq!(b.prompts().len(), 1);

    let id = out.split("(query ").nth(1).unwrap()[..26].to_string();
    let events = || -> Vec<String> {
        m.history()
            .iter()
            .filter(|e| e["id"] == id.as_str())
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    };
    // The hook logs the answer right after storing it, which woke the asker: maybe a moment
    // after the asker printed it.
    assert!(
        m.eventually(T, || events() == ["sent", "delivered", "answered"]),
        "{:?}",
        events()
    );
    let resp: serde_json::Value = serde_json::from_slice(
        &std::fs::read(m.home.join(format!("responses/{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(resp["from"], "beta");
    assert_eq!(resp["to"], "user");
    assert!(m.eventually(T, || m.status("beta") == "online"));
}

#[test]
fn list_shows_each_peer_with_status_pane_and_path() {
    need_tmux!();
    let m = Mesh::new();
    let a = m.agent("alpha", &[]);
    let _b = m.agent("beta", &[]);
    let peers = m.peers();
    assert_eq!(peers.len(), 2);
    let alpha = &peers[0];
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["status"], "online");
    assert_eq!(alpha["pane"], m.pane("alpha").as_str());
    assert_eq!(
        alpha["path"].as_str().unwrap(),
        a.work.canonicalize().unwrap().to_str().unwrap()
    );
    let table = m.ok(["peer", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("beta") && table.contains("online"),
        "{table}"
    );

    // Busy while a turn runs.
    m.ok(["peer", "ask", "beta", "SLEEP 3", "--no-wait"]);
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    // Offline as soon as its agent is gone, without any hook: killed outright...
    let pid = text(
        &m.tmux(["display-message", "-p", "-t", "alpha", "#{pane_pid}"])
            .stdout,
    );
    // Its SessionStart hook recorded the agent's process (the stand-in is the pane's process).
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.home.join("peers/alpha.json")).unwrap()).unwrap();
    assert_eq!(record["agent_process"]["pid"].to_string(), pid.trim());
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(m.eventually(T, || m.status("alpha") == "offline"));
    assert_eq!(m.status("beta"), "busy");
    // ... or with its whole tmux server.
    m.tmux(["kill-server"]);
    assert!(m.eventually(T, || m.status("beta") == "offline"));
}

#[test]
fn concurrent_asks_queue_in_order_and_each_asker_gets_its_own_answer() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent("beta", &[]);
    let askers: Vec<_> = (0..6)
        .map(|i| {
            spawn_piped(
                m.cmd()
                    .args(["peer", "ask", "beta", &format!("question number {i}")]),
            )
        })
        .collect();
    for (i, child) in askers.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "asker {i}: {}", text(&out.stderr));
        assert_eq!(
            answer_body(&text(&out.stdout)),
            format!("question number {i}")
        );
    }
    // Served in the order they were queued: the order of their ids.
    let sent: Vec<String> = m
        .history()
        .iter()
        .filter(|e| e["event"] == "sent")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    let received: Vec<String> = b.prompts().iter().map(|p| body(p).to_string()).collect();
    assert_eq!(received, sent);
    assert_eq!(received.len(), 6);
}

#[test]
fn notify_to_a_busy_peer_arrives_once_after_its_turn() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "SLEEP 1.5", "--no-wait"]);
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let out = m.ok(["peer", "notify", "beta", "the build is green"]);
    assert!(out.contains("when its turn ends"), "{out}");
    assert!(
        b.wait_event(T, |e| e["type"] == "answer"
            && e["text"].as_str().unwrap().contains("green"))
            .is_some()
    );
    let kinds: Vec<String> = b
        .events()
        .iter()
        .filter(|e| e["type"] == "prompt" || e["type"] == "answer")
        .map(|e| {
            format!(
                "{}:{}",
                e["type"].as_str().unwrap(),
                body(e["text"].as_str().unwrap())
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "prompt:SLEEP 1.5",
            "answer:SLEEP 1.5",
            "prompt:the build is green",
            "answer:the build is green"
        ]
    );
    let prompt = &b.prompts()[1];
    assert!(
        prompt.starts_with("[repowire] Notification from user (message "),
        "{prompt}"
    );
    // Exactly once: once the deliverers are done, nothing more arrives.
    m.helpers_done();
    assert_eq!(b.prompts().len(), 2);
}

#[test]
fn notify_to_an_offline_peer_waits_until_it_comes_back() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    m.tmux(["send-keys", "-t", "beta", "-l", "--", "/exit"]);
    m.tmux(["send-keys", "-t", "beta", "Enter"]);
    assert!(m.eventually(T, || m.status("beta") == "offline"));
    let out = m.ok(["peer", "notify", "beta", "first"]);
    assert!(out.contains("when it comes back online"), "{out}");
    m.ok(["peer", "notify", "beta", "second"]);
    // An ask to an offline peer is refused at once instead.
    let ask = m.run(["peer", "ask", "beta", "are you there?"]);
    assert_eq!(ask.status.code(), Some(4), "{}", text(&ask.stderr));

    // The agent starts again in the same repository (a new pane): same name, both messages.
    std::fs::remove_file(m.dir.path().join("beta.events")).unwrap();
    let b = m.agent("beta", &[]);
    assert_eq!(m.peers().len(), 1);
    assert!(m.eventually(T, || b.prompts().len() == 2));
    let bodies: Vec<String> = b.prompts().iter().map(|p| body(p).to_string()).collect();
    assert_eq!(bodies, ["first", "second"]);
}

#[test]
fn broadcast_reaches_every_online_peer_but_the_sender() {
    need_tmux!();
    let m = Mesh::new();
    let a = m.agent("alpha", &[]);
    let b = m.agent("beta", &[]);
    let c = m.agent("gamma", &[]);
    let out = m
        .cmd_in(&m.pane("alpha"))
        .args(["peer", "broadcast", "deploy at noon"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("beta") && text(&out.stdout).contains("gamma"));
    for agent in [&b, &c] {
        assert!(
            agent.wait_event(T, |e| e["type"] == "answer").is_some(),
            "{}",
            agent.name
        );
        let p = agent.prompts();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("[repowire] Broadcast from alpha"),
            "{}",
            p[0]
        );
        assert_eq!(body(&p[0]), "deploy at noon");
    }
    assert!(a.prompts().is_empty());
}

#[test]
fn deadlock_cycles_of_two_and_three_are_refused_at_once() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let _b = m.agent("beta", &[]);
    let _c = m.agent("gamma", &[]);
    let (pa, pb, pc) = (m.pane("alpha"), m.pane("beta"), m.pane("gamma"));
    // alpha waits on beta, which takes its time.
    let mut a_waits = spawn_piped(m.cmd_in(&pa).args(["peer", "ask", "beta", "SLEEP 6"]));
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let out = m
        .cmd_in(&pb)
        .args(["peer", "ask", "alpha", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("deadlock") && err.contains("alpha is waiting for beta"),
        "{err}"
    );

    // beta waits on gamma (busy too): then gamma asking alpha closes alpha→beta→gamma→alpha.
    let mut b_waits = spawn_piped(m.cmd_in(&pb).args(["peer", "ask", "gamma", "SLEEP 4"]));
    assert!(m.eventually(T, || m.status("gamma") == "busy"));
    let out = m
        .cmd_in(&pc)
        .args(["peer", "ask", "alpha", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("alpha is waiting for beta") && err.contains("beta is waiting for gamma"),
        "{err}"
    );
    assert!(a_waits.wait().unwrap().success());
    assert!(b_waits.wait().unwrap().success());
    // Once nobody waits, the same question is fine.
    let out = m
        .cmd_in(&pc)
        .args(["peer", "ask", "alpha", "hi"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_timed_out_answer_can_still_be_fetched() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.warm_agent("beta");
    let out = m.run([
        "peer",
        "ask",
        "beta",
        "SLEEP 2\nslow question",
        "--timeout",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let id = err
        .split("peer wait ")
        .nth(1)
        .expect("the hint names the query")[..26]
        .to_string();
    let answer = m.ok(["peer", "wait", &id, "--timeout", "20s"]);
    assert_eq!(answer_body(&answer), "SLEEP 2\nslow question");
    // And at once when it is already there.
    assert_eq!(m.ok(["peer", "wait", &id]), answer);
}

#[test]
fn a_question_never_delivered_before_its_timeout_is_withdrawn() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "SLEEP 2", "--no-wait"]);
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let err = m.fails(["peer", "ask", "beta", "too late", "--timeout", "500ms"], 5);
    assert!(err.contains("withdrawn"), "{}", err);
    assert!(b.wait_event(T, |e| e["type"] == "answer").is_some());
    // The turn's end started a deliverer if anything was left to deliver.
    m.helpers_done();
    assert_eq!(b.prompts().len(), 1, "the withdrawn question was typed");
}

#[test]
fn unknown_and_offline_peers_are_distinct_errors() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let out = m.run(["peer", "ask", "betta", "hi"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("did you mean 'beta'"),
        "{}",
        text(&out.stderr)
    );
    m.tmux(["kill-session", "-t", "beta"]);
    let err = m.fails(["peer", "ask", "beta", "hi"], 4);
    assert!(err.contains("offline"), "{}", err);
}

#[test]
fn the_answer_is_read_from_the_transcript_when_the_payload_lacks_it() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &["--no-last-message"]);
    let out = m.ok(["peer", "ask", "beta", "REPLY from the transcript"]);
    assert_eq!(out, "from the transcript\n");
}

#[test]
fn a_peer_that_dies_mid_question_fails_the_asker_promptly() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let asker = spawn_piped(
        m.cmd()
            .args(["peer", "ask", "beta", "SLEEP 30", "--timeout", "60s"]),
    );
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    m.tmux(["kill-pane", "-t", "beta"]);
    let out = asker.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

#[test]
fn register_names_a_pane_and_the_name_is_kept() {
    need_tmux!();
    let m = Mesh::new();
    let a = m.agent("alpha", &[]);
    let dir = a.work.display().to_string();
    let out = m
        .cmd_in("%99")
        .args(["peer", "register", "frontend", "-t", "alpha", "-p", &dir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<String> = m
        .peers()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["frontend"]);
    let answer = m.ok(["peer", "ask", "frontend", "who are you?"]);
    assert_eq!(answer_body(&answer), "who are you?");
    // A bad target is a clear error.
    let out = m
        .cmd_in("%99")
        .args(["peer", "register", "x", "-t", "nosuch", "-p", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot find tmux target 'nosuch'"),
        "{}",
        text(&out.stderr)
    );
    m.ok(["peer", "unregister", "frontend"]);
    assert!(m.peers().is_empty());
}

#[test]
fn gc_prunes_finished_messages_and_keeps_open_ones() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "one"]);
    // An offline peer's notification stays open.
    m.tmux(["kill-session", "-t", "beta"]);
    m.ok(["peer", "notify", "beta", "later"]);
    std::fs::write(m.home.join("tmp/leftover.tmp"), b"x").unwrap();
    let out = m.ok(["gc", "--older-than", "1ms"]);
    assert!(
        out.contains("removed 1 finished messages, 1 answers"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(m.home.join("done")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(m.home.join("responses")).unwrap().count(),
        0
    );
    let open: Vec<_> = std::fs::read_dir(m.home.join("queue"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert_eq!(open.len(), 1);
    // The history is kept.
    assert!(m.history().len() >= 4);
}

#[test]
fn log_follow_prints_new_entries_as_they_come() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let mut follow = m
        .cmd()
        .args(["log", "--follow", "--peer", "beta"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    m.ok(["peer", "ask", "beta", "followed"]);
    let stdout = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(3)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let lines = {
        let end = std::time::Instant::now() + T;
        while !reader.is_finished() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        follow.kill().unwrap();
        follow.wait().unwrap();
        reader.join().unwrap()
    };
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].contains("ask") && lines[0].contains("user → beta: followed"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("answered") && lines[2].contains("beta → user"),
        "{lines:?}"
    );
}

#[test]
fn on_a_terminal_ask_shows_what_it_waits_for_and_how_long() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let out = m.tmux([
        "new-session",
        "-d",
        "-s",
        "asker",
        "-x",
        "120",
        "-y",
        "10",
        "-e",
        &format!("REPOWIRE_HOME={}", m.home.display()),
        "sh",
        "-c",
        &format!(
            "{} peer ask beta 'SLEEP 3'; sleep 30",
            crate::util::bin().display()
        ),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let screen = || text(&m.tmux(["capture-pane", "-p", "-t", "asker"]).stdout);
    assert!(
        m.eventually(T, || screen().contains("beta: answering (2s)")),
        "{}",
        screen()
    );
    // The progress line is cleared before the answer is printed.
    assert!(
        m.eventually(T, || screen().contains("ECHO: [repowire]")),
        "{}",
        screen()
    );
    assert!(!screen().contains("answering"), "{}", screen());
}

/// Text is never typed after a person's unsent draft; the message waits for the draft's turn.
#[test]
fn a_draft_in_the_prompt_box_is_never_typed_into() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "warm up"]);
    m.tmux(["send-keys", "-t", "beta", "-l", "--", "my own draft"]);
    assert!(m.eventually(T, || {
        text(&m.tmux(["capture-pane", "-p", "-t", "beta"]).stdout).contains("❯ my own draft")
    }));
    m.ok(["peer", "notify", "beta", "after the draft"]);
    // The deliverer the notification started looked at the box and left.
    m.helpers_done();
    assert_eq!(
        b.prompts().len(),
        1,
        "typed into a draft: {:?}",
        b.prompts()
    );
    m.tmux(["send-keys", "-t", "beta", "Enter"]);
    assert!(
        m.eventually(T, || b.prompts().len() == 3),
        "{:?}",
        b.prompts()
    );
    let prompts = b.prompts();
    assert_eq!(prompts[1], "my own draft");
    assert_eq!(body(&prompts[2]), "after the draft");
}

/// tmux without a UTF-8 locale prints `_` for the tab separators of its output, which made
/// every peer look offline to a client that starts servers with a bare environment.
#[test]
fn status_is_right_without_a_utf8_locale() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let out = m
        .cmd()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("REPOWIRE_HOME", &m.home)
        .args(["peer", "list", "--json"])
        .output()
        .unwrap();
    let peers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(peers[0]["status"], "online", "{}", text(&out.stderr));
}

/// Housekeeping: a session start, at most once a day, removes in the background what is
/// older than `keep` (finished messages, their answers, days of history) and keeps what is
/// newer and any answer nobody has received; `keep: 0` keeps everything.
#[test]
fn housekeeping_removes_only_what_is_older_than_keep_and_runs_once_a_day() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.warm_agent("beta");
    let ask = |text: &str| -> String {
        let id = m.ok(["peer", "ask", "beta", text, "--no-wait"]);
        let id = id.trim().to_string();
        assert!(m.eventually(T, || m.home.join(format!("done/{id}.json")).exists()));
        id
    };
    let old_read = ask("REPLY old and received");
    assert_eq!(m.ok(["peer", "wait", &old_read]), "old and received\n");
    let old_unread = ask("REPLY old and never received");
    let fresh = ask("REPLY fresh");
    assert_eq!(m.ok(["peer", "wait", &fresh]), "fresh\n");
    let days_ago = |d: u64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        now - d * 86_400_000
    };
    let age = |id: &str, days: u64| {
        let path = m.home.join(format!("done/{id}.json"));
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["finished_ms"] = json!(days_ago(days));
        std::fs::write(&path, v.to_string()).unwrap();
    };
    age(&old_read, 40);
    age(&old_unread, 40);
    age(&fresh, 20);
    let old_day = m.home.join("log/2020-01-01.jsonl");
    std::fs::write(&old_day, "{}\n").unwrap();
    std::fs::set_permissions(&old_day, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stamp = m.home.join(".housekeeping");
    assert!(stamp.exists(), "beta's session start ran no housekeeping");
    let backdate = |path: &std::path::Path, hours: u64| {
        let t = std::time::SystemTime::now() - Duration::from_secs(hours * 3600);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    let done = |id: &str| m.home.join(format!("done/{id}.json")).exists();
    let answer = |id: &str| m.home.join(format!("responses/{id}.json")).exists();

    // Ran today (beta's start): another session start does nothing.
    let _c = m.agent("gamma", &[]);
    // Its session start (done: the stand-in has started) would have started housekeeping.
    m.helpers_done();
    assert!(done(&old_read) && old_day.exists(), "it ran twice in a day");

    // A day later, the next session start does it.
    backdate(&stamp, 25);
    let _d = m.agent("delta", &[]);
    assert!(m.eventually(T, || !done(&old_read)), "nothing was removed");
    assert!(
        m.eventually(T, || !old_day.exists()),
        "the old history day stayed"
    );
    assert!(!answer(&old_read));
    assert!(!m.home.join(format!("responses/{old_read}.read")).exists());
    assert!(
        done(&old_unread) && answer(&old_unread),
        "an unread answer went"
    );
    assert!(done(&fresh) && answer(&fresh), "a newer message went");
    assert!(
        m.history().iter().any(|e| e["id"] == fresh.as_str()),
        "today's history went"
    );
    assert_eq!(
        m.ok(["peer", "wait", &old_unread]),
        "old and never received\n"
    );

    // keep: 0 keeps everything, and leaves the stamp alone.
    std::fs::write(m.home.join("config.yaml"), "keep: 0\n").unwrap();
    age(&fresh, 400);
    backdate(&m.home.join(format!("done/{fresh}.json")), 400 * 24);
    backdate(&stamp, 25);
    let before = std::fs::metadata(&stamp).unwrap().modified().unwrap();
    let _e = m.agent("epsilon", &[]);
    m.helpers_done();
    assert!(done(&fresh), "keep: 0 removed something");
    assert_eq!(
        std::fs::metadata(&stamp).unwrap().modified().unwrap(),
        before
    );
    // (status in a HOME of its own: it reads the agents' files there.)
    let status = m
        .cmd()
        .env("HOME", m.dir.path())
        .env_remove("CLAUDE_CONFIG_DIR")
        .args(["status", "--json"])
        .output()
        .unwrap();
    let size = serde_json::from_slice::<Value>(&status.stdout).unwrap()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "size")
        .cloned()
        .unwrap();
    let detail = size["detail"].as_str().unwrap();
    assert!(
        detail.contains(" MB in ")
            && detail.contains("oldest record from 400d ago")
            && detail.contains("keeps everything"),
        "{detail}"
    );
}
