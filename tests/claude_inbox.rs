//! Claude Code's own inbox (2.1.248 and later), with the real CLI on the project's fake model:
//! sessions outside tmux are full peers, sessions in tmux are posted to and never typed into,
//! and a session that refuses messages from other sessions fails the question with the
//! setting that fixes it. (Every test of the releases with an inbox goes through it; the
//! releases before 2.1.248 are typed into: tests/versions.rs.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::claude_code::{
    Claude, ClaudeCode, NAMES, PINNED, need_claude, prompt_box, repowire_hooks, repowire_mcp,
};
use crate::util::{
    HOSTILE_QUESTION, HOSTILE_QUESTION_RECEIVED, TmuxLog, eventually, spawn_piped, text,
};

/// Alpha and beta with repowire's hooks and MCP server (its tools allowed), `settings` merged
/// in, messaging on, in tmux or (`in_tmux` false) in terminals with no sign of tmux.
fn sessions(claude: &ClaudeCode, in_tmux: bool, settings: Value, tmux: Option<&TmuxLog>) -> Claude {
    let mut all = json!({
        "hooks": repowire_hooks(),
        "permissions": {"allow": ["mcp__repowire"]},
    });
    for (k, v) in settings.as_object().cloned().unwrap_or_default() {
        all[k] = v;
    }
    let mut cc = Claude::prepare(claude, all, json!({"repowire": repowire_mcp()}));
    if !in_tmux {
        cc.env.extend(["TMUX=".into(), "TMUX_PANE=".into()]);
    }
    // `claude` on the sessions' PATH, as where a person starts it (a fork runs with it).
    let path = tmux.map_or_else(
        || std::env::var("PATH").unwrap_or_default(),
        |t| t.path.clone(),
    );
    cc.env.push(format!(
        "PATH={}:{path}",
        claude.bin.parent().unwrap().display()
    ));
    if let Some(t) = tmux {
        cc.person.path = Some(t.path.clone());
    }
    cc.launch();
    for name in NAMES {
        let p = cc.peer(name);
        let record = std::fs::read_to_string(cc.spool.join(format!("peers/{name}.json")));
        assert_eq!(p["transport"], "inbox", "{name}: {record:?}");
        assert_eq!(p["pane"] == "", !in_tmux, "{name}: {p}");
    }
    cc
}

/// The prompt the UserPromptSubmit hook of `name` saw for message `id`.
fn prompt_of(cc: &Claude, name: &str, id: &str) -> String {
    let found = eventually(Duration::from_secs(10), || cc.prompt_of(name, id).is_some());
    assert!(found, "{name}'s UserPromptSubmit for {id} is missing");
    cc.prompt_of(name, id).unwrap().1["prompt"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The core of the inbox transport against one release: a CLI ask and a notification, the
/// hook seeing the text exactly, hostile text inert, both sessions asking each other through
/// their MCP tools, a deadlock refused, a killed asker losing nothing and a person's draft
/// left as it is.
pub(crate) fn reached_through_its_inbox(claude: &ClaudeCode, in_tmux: bool) {
    let cc = sessions(claude, in_tmux, json!({}), None);
    let v = &claude.version;

    // 1. A CLI ask: the prompt hook sees exactly what was posted, the Stop hook answers.
    let (answer, took) = cc.ask("beta", "What is 6*7?\nREPLY forty-two, through the inbox");
    let id = cc.last_sent("user", "beta");
    eprintln!(
        "claude {v} inbox: ask beta round trip {took:.2?}; delivered → UserPromptSubmit {}",
        cc.delivery_latency("beta", &id)
    );
    assert_eq!(answer, "forty-two, through the inbox");
    assert_eq!(
        prompt_of(&cc, "beta", &id),
        format!(
            "[repowire] Question from user (query {id}). Answer it in this turn's reply text, not with a tool or a message: that reply is sent back to user automatically.\nWhat is 6*7?\nREPLY forty-two, through the inbox"
        )
    );
    assert_eq!(cc.event_names(&id), ["sent", "delivered", "answered"]);

    // 2. Hostile text arrives inert.
    cc.ask("beta", HOSTILE_QUESTION);
    let id = cc.last_sent("user", "beta");
    let prompt = prompt_of(&cc, "beta", &id);
    assert_eq!(
        prompt.split_once('\n').unwrap().1,
        HOSTILE_QUESTION_RECEIVED
    );
    assert!(!cc.session("beta").work.join("pwned").exists());
    assert_eq!(
        cc.hooks("beta", "SessionStart").len(),
        1,
        "a /clear line ran"
    );

    // 3. A notification is a turn of its own.
    let out = cc.rw_ok(&["peer", "notify", "alpha", "the API moves to /v2"]);
    let nid = out.split_whitespace().nth(1).unwrap().to_string();
    assert!(eventually(Duration::from_secs(60), || {
        cc.event_names(&nid) == ["sent", "delivered", "received"]
    }));
    assert!(prompt_of(&cc, "alpha", &nid).ends_with("\nthe API moves to /v2"));

    // 4. Through their MCP tools, both ways: a person asks beta, whose turn asks alpha.
    let call = |to: &str, query: &str| {
        format!(
            "CALL_TOOL mcp__repowire__ask_peer {}",
            json!({"peer_name": to, "query": query})
        )
    };
    let (answer, took) = cc.ask("beta", &call("alpha", "REPLY pong from alpha"));
    eprintln!("claude {v} inbox: user → beta → alpha (MCP) round trip {took:.2?}");
    assert_eq!(answer, "TOOL_RESULT: pong from alpha");
    let inner = cc.last_sent("beta", "alpha");
    assert_eq!(cc.event_names(&inner), ["sent", "delivered", "answered"]);
    let (answer, _) = cc.ask("alpha", &call("beta", "REPLY pong from beta"));
    assert_eq!(answer, "TOOL_RESULT: pong from beta");
    cc.last_sent("alpha", "beta");

    // 5. Beta asks alpha back while alpha waits for beta: refused at once.
    let t = Instant::now();
    let (answer, _) = cc.ask("alpha", &call("beta", &call("alpha", "REPLY never")));
    let inner = cc.last_sent("alpha", "beta");
    assert!(
        answer.contains(&format!(
            "deadlock refused: beta would wait for alpha, alpha is waiting for beta (query {inner})"
        )),
        "{answer}"
    );
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    cc.assert_online("alpha");
    cc.assert_online("beta");

    // 6. An asker killed while beta answers loses nothing.
    let mut asker = spawn_piped(crate::util::rw(&cc.spool).args([
        "peer",
        "ask",
        "beta",
        "SLEEP 3\nREPLY kept for later",
    ]));
    let mut id = String::new();
    assert!(eventually(Duration::from_secs(60), || {
        let sent = cc
            .history()
            .into_iter()
            .find(|e| e["event"] == "sent" && e["text"] == "SLEEP 3\nREPLY kept for later");
        id = sent.map_or(String::new(), |e| e["id"].as_str().unwrap().to_string());
        !id.is_empty() && cc.event_names(&id).iter().any(|e| e == "delivered")
    }));
    asker.kill().unwrap();
    asker.wait().unwrap();
    assert_eq!(
        cc.rw_ok(&["peer", "wait", &id, "--timeout", "120s"]),
        "kept for later\n"
    );

    // 7. A fork of a live session runs in the session's environment (its HOME, its API):
    //    the person asking has neither, nor `claude` on PATH.
    let out = cc.rw(&[
        "peer",
        "ask",
        "alpha",
        "--fork",
        "REPLY from a fork of alpha",
    ]);
    assert_eq!(
        text(&out.stdout),
        "from a fork of alpha\n",
        "{}",
        text(&out.stderr)
    );
    // 8. A person's half-typed draft stays in the box; the question is answered all the same.
    cc.tmux.type_text("beta", "a half-typed draft");
    assert!(eventually(Duration::from_secs(20), || {
        prompt_box(&cc.tmux.screen("beta", false)).as_deref() == Some("a half-typed draft")
    }));
    let (answer, _) = cc.ask("beta", "REPLY answered around the draft");
    assert_eq!(answer, "answered around the draft");
    let screen = cc.tmux.screen("beta", false);
    assert_eq!(
        prompt_box(&screen).as_deref(),
        Some("a half-typed draft"),
        "{screen}"
    );
    for p in cc.peers() {
        assert_eq!(p["queued"], 0, "{p}");
    }
}

#[test]
fn claude_code_outside_tmux_is_a_full_peer_through_its_inbox() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    reached_through_its_inbox(&claude, false);
}

/// In tmux with messaging on, a question is posted, never typed: tmux is wrapped on the PATH
/// of the asker and of the sessions (so of their hooks and of the deliverers they start).
#[test]
fn claude_code_in_tmux_is_posted_to_never_typed_into() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    posted_to_in_tmux(&claude);
}

pub(crate) fn posted_to_in_tmux(claude: &ClaudeCode) {
    let dir = tempfile::tempdir().unwrap();
    let tmux = TmuxLog::new(dir.path());
    let cc = sessions(claude, true, json!({}), Some(&tmux));
    let (answer, _) = cc.ask("beta", "REPLY posted, not typed");
    assert_eq!(answer, "posted, not typed");
    let out = cc.rw_ok(&["peer", "notify", "alpha", "REPLY noted"]);
    let nid = out.split_whitespace().nth(1).unwrap().to_string();
    assert!(eventually(Duration::from_secs(60), || {
        cc.event_names(&nid) == ["sent", "delivered", "received"]
    }));
    let calls = tmux.calls();
    assert!(calls.contains(" lsp "), "the wrapper was not used: {calls}");
    for name in NAMES {
        let pane = text(
            &cc.tmux
                .run(["display-message", "-p", "-t", name, "#{pane_id}"])
                .stdout,
        );
        let typed = tmux.typed_into(pane.trim());
        assert!(typed.is_empty(), "typed into {name}: {typed:?}");
    }
}

/// A session that refuses messages from other sessions never starts a turn for the question:
/// it fails, naming the setting and the fix, instead of waiting out its timeout.
#[test]
fn claude_code_refusing_inbound_messages_fails_the_question_clearly() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    let cc = sessions(
        &claude,
        false,
        json!({"crossSessionInbound": "refuse"}),
        None,
    );
    let t = Instant::now();
    let out = cc.rw(&["peer", "ask", "beta", "REPLY never", "--timeout", "300s"]);
    let err = text(&out.stderr);
    eprintln!(
        "claude: refused inbox message failed after {:.1?}: {err}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("crossSessionInbound"), "{err}");
    assert!(err.contains("\"accept\""), "{err}");
    assert!(cc.hooks("beta", "UserPromptSubmit").is_empty());
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
}
