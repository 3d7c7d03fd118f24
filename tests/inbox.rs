//! The inbox transport with the stand-in agent (`repowire standin --inbox`, which serves an
//! inbox as Claude Code 2.1.330 does): peers outside tmux are full peers, nothing is typed
//! into a pane that has an inbox, a person's draft is left alone, and a message that cannot
//! be posted, or is not taken, fails with the reason. The same against the real Claude Code
//! is in `claude_inbox.rs`.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    HOSTILE_QUESTION, HOSTILE_QUESTION_RECEIVED, Mesh, TmuxLog, body, spawn_piped, text,
};

const T: Duration = Duration::from_secs(20);

fn peer(m: &Mesh, name: &str) -> Value {
    m.peers()
        .into_iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no peer {name}: {:?}", m.peers()))
}

/// The texts posted to the stand-in's inbox, as it received them.
fn posted(a: &crate::util::Agent) -> Vec<String> {
    a.of_type("inbox")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_session_outside_tmux_with_an_inbox_is_asked_notified_and_broadcast_to() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent_outside_tmux("beta", &["--inbox"]);
    let p = peer(&m, "beta");
    assert_eq!(
        (&p["transport"], &p["pane"]),
        (&"inbox".into(), &"".into()),
        "{p}"
    );
    assert!(p.get("fork_only").is_none(), "{p}");
    // The token is a secret: in a private file of its own, never in what is printed.
    let listing = m.ok(["peer", "list", "--json"]) + &m.ok(["peer", "list"]);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(m.home.join("peers/beta.inbox")).unwrap()).unwrap();
    let token = saved["token"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    assert!(!listing.contains(token));
    let mode = std::fs::metadata(m.home.join("peers/beta.inbox"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    assert!(
        m.ok(["peer", "list"])
            .lines()
            .any(|l| l.starts_with("beta") && l.contains(" inbox ")),
        "{}",
        m.ok(["peer", "list"])
    );

    let out = m.ok(["peer", "ask", "beta", HOSTILE_QUESTION]);
    let answer = out.strip_prefix("ECHO: ").expect("an echo answer");
    assert_eq!(
        body(answer).trim_end_matches('\n'),
        HOSTILE_QUESTION_RECEIVED
    );
    // The prompt hook saw exactly what was posted; nothing of it ran.
    assert_eq!(b.prompts(), posted(&b));
    assert!(!b.work.join("pwned").exists());
    assert!(b.of_type("bang").is_empty() && b.of_type("slash").is_empty());

    m.ok(["peer", "notify", "beta", "the build is green"]);
    let _a = m.agent("alpha", &[]);
    let sent = m.ok(["peer", "broadcast", "deploy at noon"]);
    assert!(sent.contains("beta"), "{sent}");
    assert!(
        m.eventually(T, || b.prompts().len() == 3),
        "{:?}",
        b.prompts()
    );
    assert_eq!(body(&b.prompts()[1]), "the build is green");
    assert_eq!(body(&b.prompts()[2]), "deploy at noon");
    assert_eq!(posted(&b), b.prompts());
}

/// Inside tmux a peer with an inbox is posted to: no tmux command types into its pane (tmux is
/// wrapped on PATH, and every call is written down), and a draft in its box stays as it is.
#[test]
fn a_pane_with_an_inbox_is_never_typed_into_and_its_draft_stays() {
    need_tmux!();
    let m = Mesh::new();
    let tmux = TmuxLog::new(m.dir.path());
    let path = tmux.path.clone();
    let b = m.agent_with("beta", &["--inbox"], true, &[&format!("PATH={path}")]);
    assert_eq!(peer(&m, "beta")["transport"], "inbox");
    m.tmux(["send-keys", "-t", "beta", "-l", "--", "my own draft"]);
    assert!(m.eventually(T, || {
        text(&m.tmux(["capture-pane", "-p", "-t", "beta"]).stdout).contains("❯ my own draft")
    }));
    let out = m
        .rw()
        .env("PATH", &path)
        .args(["peer", "ask", "beta", "REPLY posted"])
        .ok();
    assert_eq!(out, "posted\n");
    m.rw()
        .env("PATH", &path)
        .args(["peer", "notify", "beta", "and this"])
        .ok();
    assert!(m.eventually(T, || b.prompts().len() == 2));
    m.helpers_done();
    // A peer without an inbox beside it is typed into, through the same wrapper.
    let a = m.agent_with("alpha", &[], true, &[&format!("PATH={path}")]);
    let out = m
        .rw()
        .env("PATH", &path)
        .args(["peer", "ask", "alpha", "REPLY typed"])
        .ok();
    assert_eq!(out, "typed\n");
    assert!(posted(&a).is_empty());
    m.helpers_done();
    let calls = tmux.calls();
    // The wrapper is the tmux repowire runs (its hooks look the pane up).
    assert!(calls.contains(" lsp "), "{calls}");
    assert!(!tmux.typed_into(&m.pane("alpha")).is_empty(), "{calls}");
    let typed = tmux.typed_into(&m.pane("beta"));
    assert!(typed.is_empty(), "typed into beta's pane: {typed:?}");
    assert!(
        text(&m.tmux(["capture-pane", "-p", "-t", "beta"]).stdout).contains("❯ my own draft"),
        "{}",
        text(&m.tmux(["capture-pane", "-p", "-t", "beta"]).stdout)
    );
    // The draft is the person's to send, after.
    m.tmux(["send-keys", "-t", "beta", "Enter"]);
    assert!(m.eventually(T, || b.prompts().len() == 3));
    assert_eq!(b.prompts()[2], "my own draft");
}

/// A question posted while the peer works waits for its turn to end, then runs as its own.
#[test]
fn a_question_to_a_busy_inbox_peer_waits_for_its_turn() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent_outside_tmux("beta", &["--inbox"]);
    let first = spawn_piped(
        m.cmd()
            .args(["peer", "ask", "beta", "SLEEP 2\nREPLY first"]),
    );
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    let second = m.ok(["peer", "ask", "beta", "REPLY second"]);
    assert_eq!(second, "second\n");
    let first = first.wait_with_output().unwrap();
    assert_eq!(text(&first.stdout), "first\n");
    assert_eq!(b.of_type("answer").len(), 2);
    assert_eq!(b.of_type("answer")[0]["text"], "first");
}

/// An asker killed while the inbox peer works loses nothing: `peer wait` fetches the answer.
#[test]
fn a_killed_asker_loses_nothing() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent_outside_tmux("beta", &["--inbox"]);
    let mut asker = spawn_piped(m.cmd().args(["peer", "ask", "beta", "SLEEP 1\nREPLY kept"]));
    assert!(m.eventually(T, || m.status("beta") == "busy"));
    asker.kill().unwrap();
    asker.wait().unwrap();
    let id = m
        .history()
        .into_iter()
        .find(|e| e["event"] == "delivered")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(m.ok(["peer", "wait", &id]), "kept\n");
}

/// A message the session drops (here: a token that is not its own) fails, after the peer
/// stayed idle, with what holds it back and the setting that fixes it.
#[test]
fn a_message_the_session_does_not_take_fails_with_the_setting_that_fixes_it() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent_outside_tmux("beta", &["--inbox"]);
    let path = m.home.join("peers/beta.inbox");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    saved["token"] = "0".repeat(32).into();
    std::fs::write(&path, saved.to_string()).unwrap();
    let err = m.fails(["peer", "ask", "beta", "anyone there?"], 7);
    assert!(err.contains("crossSessionInbound"), "{err}");
    assert!(err.contains("posted to its inbox"), "{err}");
    assert_eq!(b.of_type("inbox-refused").len(), 1);
    assert!(b.prompts().is_empty());
}

/// An inbox that is gone: inside tmux the message is typed instead; outside, it fails with why.
#[test]
fn an_inbox_that_is_gone_is_typed_into_in_tmux_and_fails_outside() {
    need_tmux!();
    let m = Mesh::new();
    let a = m.agent("alpha", &["--inbox"]);
    let b = m.agent_outside_tmux("beta", &["--inbox"]);
    for name in ["alpha", "beta"] {
        let saved: Value = serde_json::from_slice(
            &std::fs::read(m.home.join(format!("peers/{name}.inbox"))).unwrap(),
        )
        .unwrap();
        std::fs::remove_file(saved["socket"].as_str().unwrap()).unwrap();
    }
    assert_eq!(m.ok(["peer", "ask", "alpha", "REPLY typed"]), "typed\n");
    assert!(posted(&a).is_empty());
    assert_eq!(a.prompts().len(), 1);
    let err = m.fails(["peer", "ask", "beta", "REPLY lost"], 7);
    assert!(err.contains("cannot connect to its inbox"), "{err}");
    assert!(b.prompts().is_empty());
}

/// Outside tmux, a command the agent runs (here through the stand-in's `!`) sends as its peer.
#[test]
fn a_command_run_by_an_agent_outside_tmux_sends_as_its_peer() {
    need_tmux!();
    let m = Mesh::new();
    let a = m.agent_outside_tmux("alpha", &["--inbox"]);
    let b = m.agent_outside_tmux("beta", &["--inbox"]);
    let out = m.dir.path().join("out");
    let bang = format!(
        "!{} peer ask beta 'REPLY hi alpha' > {}",
        crate::util::sh_quote(&crate::util::bin().display().to_string()),
        crate::util::sh_quote(&out.display().to_string())
    );
    m.tmux(["send-keys", "-t", "alpha", "-l", "--", &bang]);
    m.tmux(["send-keys", "-t", "alpha", "Enter"]);
    assert!(a.wait_event(T, |e| e["type"] == "bang").is_some());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hi alpha\n");
    assert!(
        b.prompts()[0].starts_with("[repowire] Question from alpha (query "),
        "{:?}",
        b.prompts()
    );
}

/// A session outside tmux without an inbox answers by fork only; before its first turn there
/// is nothing to fork, and it is refused at once with why.
#[test]
fn a_fork_only_peer_without_a_turn_yet_is_refused_at_once() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent_outside_tmux("beta", &[]);
    let p = peer(&m, "beta");
    assert_eq!(
        (&p["transport"], &p["fork_only"]),
        (&"fork".into(), &true.into()),
        "{p}"
    );
    let err = m.fails(["peer", "ask", "beta", "what changed?"], 2);
    assert!(err.contains("has had no turn yet"), "{err}");
    let err = m.fails(["peer", "notify", "beta", "hello"], 2);
    assert!(err.contains("no inbox"), "{err}");
    assert!(m.history().is_empty(), "{:?}", m.history());
}
