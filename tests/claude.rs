//! End to end against the real Claude Code CLI: two interactive sessions in tmux, driven by
//! `tests/util/claude_code.rs`, talking to the scripted fake model (nothing leaves 127.0.0.1), with
//! repowire's four hooks in their `~/.claude/settings.json`.
//!
//! The fake "model" answers `REPLY <text>` with that text, `CALL_TOOL Bash {...}` with a Bash
//! tool call (and then `TOOL_RESULT: <output>`), and anything else with `ECHO: <prompt>`; so
//! the answers below are exactly what Claude Code's turns produced from what repowire typed.
//!
//! The flows are functions of the release, so that tests/versions.rs runs them against the
//! oldest and newest releases too; the tests here run them against the pinned one.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::claude_code::{
    self as claude_code, ASK_TIMEOUT, Claude, ClaudeCode, PINNED, need_claude, repowire_hooks,
};
use crate::util::{HOSTILE_QUESTION, HOSTILE_QUESTION_RECEIVED, eventually, rw_command, sh_quote};

/// A person asks beta, twice: a `REPLY` answer, then an echo of a hostile multi-line question
/// that must arrive byte-exact and inert; then notifies alpha.
#[test]
fn claude_code_answers_asks_and_gets_notifications() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    answers_asks_and_gets_notifications(&claude);
}

pub(crate) fn answers_asks_and_gets_notifications(claude: &ClaudeCode) {
    let cc = Claude::start(claude, json!({}), json!({}));
    // Posted to its inbox from 2.1.248, typed into its pane before.
    let via = if claude_code::has_inbox(&claude.version) {
        "inbox"
    } else {
        "tmux"
    };
    for name in claude_code::NAMES {
        assert_eq!(cc.peer(name)["transport"], via, "{name}");
    }

    // 1. A question whose answer the model scripts.
    let (answer, took) = cc.ask(
        "beta",
        "What is 6*7?\nREPLY forty-two, says beta's Claude Code",
    );
    let id = cc.last_sent("user", "beta");
    eprintln!(
        "claude: ask beta (REPLY) round trip {took:.2?}; delivered → UserPromptSubmit {}",
        cc.delivery_latency("beta", &id)
    );
    assert_eq!(answer, "forty-two, says beta's Claude Code");
    cc.assert_online("beta");
    let events = cc.events_of(&id);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["sent", "delivered", "answered"], "{events:?}");
    assert_eq!(events[2].1["text"], answer);
    assert_eq!(events[2].1["from"], "user");
    assert_eq!(events[2].1["to"], "beta");
    // (Claude Code writes its transcript a moment after the Stop hook ran.)
    let recorded = eventually(Duration::from_secs(10), || {
        cc.replies("beta").last() == Some(&answer)
    });
    assert!(recorded, "{:?}", cc.replies("beta"));
    // 2.0.x's Stop payload has no last_assistant_message (repowire reads the transcript).
    // (The hook logger runs beside repowire's Stop hook: it may write a moment later.)
    assert!(eventually(Duration::from_secs(10), || {
        !cc.hooks("beta", "Stop").is_empty()
    }));
    let stop = cc.hooks("beta", "Stop").pop().unwrap().1;
    if let Some(sent) = stop.get("last_assistant_message") {
        assert_eq!(sent, answer.as_str());
    }

    // 2. Text that would be a slash command, a shell escape, a cancel or a paste end if it
    //    were typed raw comes back exactly as the model saw it.
    let question = HOSTILE_QUESTION;
    let (answer, took) = cc.ask("beta", question);
    let id = cc.last_sent("user", "beta");
    eprintln!(
        "claude: ask beta (ECHO, {} bytes) round trip {took:.2?}; delivered → UserPromptSubmit {}",
        question.len(),
        cc.delivery_latency("beta", &id)
    );
    let Some((_, submitted)) = cc.prompt_of("beta", &id) else {
        panic!("beta's UserPromptSubmit for {id} is missing");
    };
    let prompt = submitted["prompt"].as_str().unwrap();
    let (header, body) = prompt.split_once('\n').unwrap();
    assert!(
        header.starts_with(&format!("[repowire] Question from user (query {id})")),
        "{header}"
    );
    assert_eq!(body, HOSTILE_QUESTION_RECEIVED);
    assert_eq!(answer, format!("ECHO: {prompt}"));
    assert!(
        !cc.session("beta").work.join("pwned").exists(),
        "a '!' line ran a command"
    );
    assert_eq!(
        cc.hooks("beta", "SessionStart").len(),
        1,
        "a '/clear' line cleared the session"
    );
    cc.assert_online("beta");
    assert_eq!(cc.event_names(&id), ["sent", "delivered", "answered"]);

    // 2b. A `;` ending a piece of typed text is no end of a tmux command (it was dropped).
    for text in ["run ls;".to_string(), ";".repeat(450), "a;".repeat(120)] {
        cc.ask("beta", &text);
        let id = cc.last_sent("user", "beta");
        let Some((_, submitted)) = cc.prompt_of("beta", &id) else {
            panic!("beta's UserPromptSubmit for {id} is missing");
        };
        let prompt = submitted["prompt"].as_str().unwrap();
        assert_eq!(prompt.split_once('\n').unwrap().1, text);
    }

    // 3. A notification reaches alpha's conversation as its own turn.
    let note = "Heads up: the API moves to /v2 on Friday.\nNo need to answer.";
    let out = cc.rw_ok(&["peer", "notify", "alpha", note]);
    let t = Instant::now();
    let nid = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected notify output {out:?}"))
        .to_string();
    assert_eq!(out, format!("sent {nid} to alpha (delivered now)\n"));
    let mut last = String::new();
    let answered = eventually(ASK_TIMEOUT, || {
        last = cc.replies("alpha").pop().unwrap_or_default();
        last.contains(&nid)
    });
    assert!(answered, "alpha's turn never saw notification {nid}");
    eprintln!(
        "claude: notify alpha → its reply {:.2?}; delivered → UserPromptSubmit {}",
        t.elapsed(),
        cc.delivery_latency("alpha", &nid)
    );
    assert!(
        last.starts_with(&format!(
            "ECHO: [repowire] Notification from user (message {nid})"
        )),
        "{last}"
    );
    assert!(last.ends_with(&format!("\n{note}")), "{last}");
    // It is in alpha's transcript as a prompt of its own (Claude Code writes the transcript
    // a moment after the Stop hook ran).
    let in_transcript = eventually(Duration::from_secs(10), || {
        cc.typed_prompts("alpha")
            .iter()
            .any(|c| c.contains(&nid) && c.contains(&format!("\n{note}")))
    });
    assert!(
        in_transcript,
        "not in alpha's transcript: {:?}",
        cc.typed_prompts("alpha")
    );
    let got = eventually(Duration::from_secs(10), || {
        cc.event_names(&nid) == ["sent", "delivered", "received"]
    });
    assert!(got, "history of {nid}: {:?}", cc.events_of(&nid));
    cc.assert_online("alpha");
    for p in cc.peers() {
        assert_eq!(p["queued"], 0, "{p}");
    }
}

/// The agents ask each other: a person asks alpha, whose turn runs `repowire peer ask beta`
/// in its Bash tool and answers with beta's answer; then beta's turn tries to ask alpha back
/// while alpha waits on it, which is refused at once as a deadlock.
#[test]
fn claude_code_sessions_ask_each_other_and_deadlock_is_refused() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    let rw = rw_command();
    let cc = Claude::start(
        &claude,
        json!({"permissions": {"allow": [format!("Bash({rw} peer ask:*)")]}}),
        json!({}),
    );
    let bash = |command: String| {
        format!(
            "CALL_TOOL Bash {}",
            json!({"command": command, "description": "ask a peer"})
        )
    };

    // 1. user → alpha → beta and back.
    let question = bash(format!(
        "{rw} peer ask beta {} --timeout 60s",
        sh_quote("REPLY pong from beta")
    ));
    let (answer, took) = cc.ask("alpha", &question);
    let outer = cc.last_sent("user", "alpha");
    let inner = cc.last_sent("alpha", "beta");
    eprintln!(
        "claude: user → alpha → beta round trip {took:.2?}; delivered → UserPromptSubmit: alpha {}, beta {}",
        cc.delivery_latency("alpha", &outer),
        cc.delivery_latency("beta", &inner)
    );
    assert_eq!(answer, "TOOL_RESULT: pong from beta");
    assert_eq!(cc.event_names(&inner), ["sent", "delivered", "answered"]);
    cc.assert_online("alpha");
    cc.assert_online("beta");

    // 2. beta asks alpha back while alpha waits for beta: refused, not a hang.
    let back = bash(format!(
        "{rw} peer ask alpha {} --timeout 60s",
        sh_quote("REPLY never")
    ));
    let question = bash(format!(
        "{rw} peer ask beta {} --timeout 60s",
        sh_quote(&back)
    ));
    let (answer, took) = cc.ask("alpha", &question);
    let outer = cc.last_sent("user", "alpha");
    let inner = cc.last_sent("alpha", "beta");
    eprintln!(
        "claude: deadlock refused, round trip {took:.2?}; delivered → UserPromptSubmit: alpha {}, beta {}",
        cc.delivery_latency("alpha", &outer),
        cc.delivery_latency("beta", &inner)
    );
    let refused = format!(
        "deadlock refused: beta would wait for alpha, alpha is waiting for beta (query {inner})"
    );
    assert!(
        answer.starts_with("TOOL_RESULT: TOOL_RESULT: Exit code 6\n") && answer.contains(&refused),
        "{answer}"
    );
    assert!(
        took < Duration::from_secs(50),
        "the refusal waited: {took:?}"
    );
    assert!(
        !cc.history()
            .iter()
            .any(|e| e["from"] == "beta" && e["to"] == "alpha"),
        "beta's question to alpha was queued"
    );
    cc.assert_online("alpha");
    cc.assert_online("beta");
}

/// A Stop hook SIGKILLed before it stored the answer (its shell is killed before it runs
/// repowire): Claude Code never runs it again, but its transcript holds the reply. When a
/// person starts the next turn, the prompt hook answers the question from the transcript.
#[test]
fn claude_code_answer_of_a_killed_stop_hook_comes_from_the_transcript_at_the_next_turn() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    let flags = tempfile::tempdir().unwrap();
    let flag = flags.path().join("kill-the-next-stop-hook");
    let flag_word = sh_quote(&flag.display().to_string());
    let mut hooks = repowire_hooks();
    hooks["Stop"] = json!([{"hooks": [{"type": "command", "command": format!(
        "[ -e {flag_word} ] && rm -f {flag_word} && kill -KILL $$; exec {} hook stop",
        rw_command()
    )}]}]);
    let cc = Claude::start(&claude, json!({"hooks": hooks}), json!({}));
    std::fs::write(&flag, "").unwrap();
    let id = cc
        .rw_ok(&[
            "peer",
            "ask",
            "beta",
            "REPLY recovered from the transcript",
            "--no-wait",
        ])
        .trim()
        .to_string();
    let stopped = eventually(ASK_TIMEOUT, || {
        !flag.exists() && !cc.hooks("beta", "Stop").is_empty()
    });
    assert!(stopped, "beta's turn did not end");
    crate::util::helpers_done(&cc.spool);
    assert_eq!(
        cc.event_names(&id),
        ["sent", "delivered"],
        "the killed hook stored it"
    );
    let recorded = eventually(Duration::from_secs(10), || {
        cc.replies("beta").last().map(String::as_str) == Some("recovered from the transcript")
    });
    assert!(recorded, "{:?}", cc.replies("beta"));

    let reply = cc.turn("beta", "REPLY the person's own turn");
    assert_eq!(reply, "the person's own turn");
    let out = cc.rw_ok(&["peer", "wait", &id, "--timeout", "30s"]);
    assert_eq!(out, "recovered from the transcript\n");
    assert_eq!(cc.event_names(&id), ["sent", "delivered", "answered"]);
    cc.assert_online("beta");
}

/// A fan-out from a terminal to both real sessions returns both answers, each under its
/// peer's name; then alpha's model calls `ask_peers` for beta and a peer that does not exist,
/// and its tool result holds beta's answer and that peer's error.
#[test]
fn claude_code_sessions_answer_a_fan_out_and_ask_peers() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    let cc = Claude::start(
        &claude,
        json!({"permissions": {"allow": ["mcp__repowire"]}}),
        json!({"repowire": crate::util::claude_code::repowire_mcp()}),
    );
    let t = Instant::now();
    let out = cc.person.rw(&[
        "peer",
        "ask",
        "alpha",
        "beta",
        "REPLY here, and now",
        "--timeout",
        "60s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "claude: fan-out to alpha and beta answered in {:.2?}",
        t.elapsed()
    );
    let mut blocks: Vec<&str> = stdout.trim_end().split("\n\n").collect();
    blocks.sort_unstable();
    assert_eq!(
        blocks,
        [
            "==> alpha <==\nhere, and now",
            "==> beta <==\nhere, and now"
        ],
        "{stdout}"
    );

    let call = format!(
        "CALL_TOOL mcp__repowire__ask_peers {}",
        json!({"peer_names": ["beta", "nobody"], "query": "REPLY beta's part"})
    );
    let t = Instant::now();
    let reply = cc.turn("alpha", &call);
    eprintln!(
        "claude: alpha's turn calling ask_peers(beta, nobody) took {:.2?}",
        t.elapsed()
    );
    // In the order they came: the unknown peer's error at once, beta's answer after its turn.
    assert!(
        reply.starts_with("TOOL_RESULT: ==> nobody (no answer) <==\nunknown peer 'nobody'"),
        "{reply}"
    );
    assert!(reply.contains("\n==> beta <==\nbeta's part\n"), "{reply}");
    let sent: Vec<_> = cc
        .history()
        .into_iter()
        .filter(|e| e["event"] == "sent" && e["text"] == "REPLY beta's part")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (&sent[0]["from"], &sent[0]["to"]),
        (&json!("alpha"), &json!("beta"))
    );
}

/// `repowire up` starts real Claude Code sessions from a team file, in the default tmux server
/// of a private TMUX_TMPDIR: each registers under its name in the file (not its directory's)
/// and answers; `down` ends them, through their SessionEnd hook.
#[test]
fn claude_code_team_comes_up_answers_and_goes_down() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    let cc = Claude::prepare(&claude, json!({"hooks": repowire_hooks()}), json!({}));
    let tmux_tmpdir = cc.root.join("tt");
    std::fs::create_dir_all(&tmux_tmpdir).unwrap();
    // Ends the team's tmux server whatever happens.
    struct Server(std::path::PathBuf);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = std::process::Command::new("tmux")
                .env("TMUX_TMPDIR", &self.0)
                .arg("kill-server")
                .output();
        }
    }
    let _server = Server(tmux_tmpdir.clone());
    let command = |name: &str| {
        [
            format!("RW_TEST_SESSION={name}"),
            format!("HOME={}", cc.home.dir.display()),
            format!("ANTHROPIC_BASE_URL={}", cc.model.url()),
            "ANTHROPIC_AUTH_TOKEN=fake".into(),
            "DISABLE_TELEMETRY=1".into(),
            "DISABLE_AUTOUPDATER=1".into(),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1".into(),
            format!("exec {} --permission-mode default", claude.bin.display()),
        ]
        .join(" ")
    };
    let file = cc.root.join("repowire.yaml");
    std::fs::write(
        &file,
        format!(
            "tmux_session: team\npeers:\n  api: {{ path: alpha, command: \"{}\" }}\n  web: {{ path: beta, command: \"{}\", description: \"the shop's web front end\" }}\n",
            command("api"),
            command("web")
        ),
    )
    .unwrap();
    let rw = |args: &[&str]| {
        crate::util::Rw::new(&cc.spool)
            .args(args)
            .env("HOME", &cc.home.dir)
            .env("TMUX_TMPDIR", &tmux_tmpdir)
            .env_remove("CLAUDE_CONFIG_DIR")
            .output()
    };
    let t = Instant::now();
    let up = rw(&["up", "-f", file.to_str().unwrap(), "--timeout", "60s"]);
    let said = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        up.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    eprintln!(
        "claude: `repowire up` of two sessions took {:.2?}:\n{said}",
        t.elapsed()
    );
    for name in ["api", "web"] {
        let p = cc.peer(name);
        assert_eq!(
            (&p["status"], &p["agent"]),
            (&json!("online"), &json!("claude")),
            "{p}"
        );
    }
    assert_eq!(cc.peer("web")["description"], "the shop's web front end");
    assert!(
        !cc.peers()
            .iter()
            .any(|p| p["name"] == "alpha" || p["name"] == "beta"),
        "{:?}",
        cc.peers()
    );
    let (answer, took) = cc.ask("api", "REPLY api here");
    eprintln!("claude: ask to a session `up` started: {took:.2?}");
    assert_eq!(answer, "api here");

    let down = rw(&["down", "-f", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&down.stdout).into_owned();
    assert!(
        down.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&down.stderr)
    );
    for name in ["api", "web"] {
        assert_eq!(cc.peer(name)["status"], "offline");
        assert!(said.contains(&format!("{name}  stopped")), "{said}");
        let ended = eventually(Duration::from_secs(10), || {
            !cc.home.hooks(name, "SessionEnd").is_empty()
        });
        assert!(
            ended,
            "{name} ran no SessionEnd hook: {}",
            cc.home.hook_lines()
        );
    }
}
