//! Pi through repowire's extension, against the real Pi from the npm registry on the
//! project's fake model API (tests/agents.rs has it in the five agents' team): outside tmux
//! through the extension's inbox, typed into where no inbox opened, answering by fork while
//! busy without changing anything, and its headless runs leaving a pane's peer alone.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::agents::{PI_PINNED, START_TIMEOUT, Team, ask_tool};
use crate::util::{self, HOSTILE_QUESTION, HOSTILE_QUESTION_RECEIVED, eventually, need_agent};
use crate::util::{run_for, text};

#[test]
fn pi_outside_tmux_is_a_full_peer_through_its_extensions_inbox() {
    let Some(pi) = need_agent("pi", PI_PINNED) else {
        return;
    };
    reached_through_its_extensions_inbox(&pi);
}

/// A stand-in in tmux session `helper`, for Pi to ask and to ask Pi; its pane.
fn start_helper(team: &Team) -> String {
    let helper = team.root.join("helper");
    std::fs::create_dir_all(&helper).unwrap();
    team.tmux.new_session(
        "helper",
        &helper,
        &[
            "env".into(),
            format!("REPOWIRE_HOME={}", team.spool.display()),
            format!(
                "REPOWIRE_STANDIN_DIR={}",
                team.root.join("standin").display()
            ),
            util::bin().display().to_string(),
            "standin".into(),
        ],
    );
    assert!(eventually(START_TIMEOUT, || team
        .peers()
        .iter()
        .any(|p| p["name"] == "helper" && p["status"] == "online")));
    text(
        &team
            .tmux
            .run(["display-message", "-p", "-t", "helper", "#{pane_id}"])
            .stdout,
    )
    .trim()
    .to_string()
}

/// repowire as run in `pane` (as any peer's command or tool would be).
fn rw_in_pane(team: &Team, pane: &str, args: &[&str]) -> std::process::Output {
    let mut c = util::rw(&team.spool);
    c.env("TMUX", format!("{},1,0", team.tmux.socket.display()))
        .env("TMUX_PANE", pane)
        .args(args);
    run_for(c, Duration::from_secs(120))
}

pub(crate) fn reached_through_its_extensions_inbox(pi: &Path) {
    let team = Team::prepare();
    let pane = start_helper(&team);
    team.start_pi(pi, false);
    // A full peer at once: Pi has a session from its start.
    assert!(
        eventually(START_TIMEOUT, || team
            .peers()
            .iter()
            .any(|p| p["name"] == "pi" && p["status"] == "online")),
        "{:?}",
        team.peers()
    );
    let p = team.peer("pi");
    assert_eq!(
        (&p["transport"], &p["pane"], &p["agent"]),
        (&"inbox".into(), &"".into(), &"pi".into()),
        "{p}"
    );

    // Asked from a terminal; the question reaches its model exactly, hostile text inert.
    let (answer, took) = team.ask("pi", "What is 6*7?\nREPLY forty-two, from Pi");
    eprintln!("pi inbox: ask round trip {took:.2?}");
    assert_eq!(answer, "forty-two, from Pi");
    let id = team.last_sent("user", "pi");
    assert_eq!(team.event_names(&id), ["sent", "delivered", "answered"]);
    let (answer, _) = team.ask("pi", HOSTILE_QUESTION);
    let id = team.last_sent("user", "pi");
    assert!(
        answer.starts_with(&format!("ECHO: [repowire] Question from user (query {id})")),
        "{answer}"
    );
    assert!(
        answer.ends_with(&format!("\n{HOSTILE_QUESTION_RECEIVED}")),
        "Pi saw something else: {answer:?}"
    );
    assert!(!team.root.join("pi/pwned").exists(), "a '!' line ran");

    // A notification is a turn of its own.
    let out = team.rw_ok(&["peer", "notify", "pi", "REPLY noted"]);
    let nid = out.split_whitespace().nth(1).unwrap().to_string();
    assert!(eventually(Duration::from_secs(60), || {
        team.event_names(&nid) == ["sent", "delivered", "received"]
    }));
    team.assert_online("pi");

    // Its model asks the stand-in through repowire's tool: sent as its peer, with progress.
    let call = format!(
        "CALL_TOOL {} {}",
        ask_tool("pi"),
        json!({"peer_name": "helper", "query": "REPLY pong from the helper"})
    );
    let (answer, _) = team.ask("pi", &call);
    assert_eq!(answer, "TOOL_RESULT: pong from the helper");
    team.last_sent("pi", "helper");
    let (answer, _) = team.ask("pi", "CALL_TOOL list_peers {}");
    assert!(
        answer.contains("pi: busy, pi, inbox") && answer.contains("(you)"),
        "{answer}"
    );
    // A tool's error is the tool's error, as from the MCP server.
    let (answer, _) = team.ask(
        "pi",
        &format!(
            "CALL_TOOL ask_peer {}",
            json!({"peer_name": "nobody", "query": "hi"})
        ),
    );
    assert!(answer.contains("unknown peer 'nobody'"), "{answer}");

    // And the stand-in's pane asks it back.
    let out = rw_in_pane(&team, &pane, &["peer", "ask", "pi", "REPLY pong from Pi"]);
    assert_eq!(text(&out.stdout), "pong from Pi\n", "{}", text(&out.stderr));
    team.last_sent("helper", "pi");

    // /quit ends the session: the peer goes offline.
    team.tmux.paste("pi", "/quit");
    std::thread::sleep(Duration::from_millis(500));
    team.tmux.keys("pi", &["Enter"]);
    assert!(eventually(
        Duration::from_secs(60),
        || team.peer("pi")["status"] == "offline"
    ));
}

/// Where the extension cannot open its inbox (here: a temporary directory whose path is too
/// long for a socket), Pi in tmux is typed into, and `status` says why.
#[test]
fn pi_without_an_inbox_is_typed_into() {
    let Some(pi) = need_agent("pi", PI_PINNED) else {
        return;
    };
    let team = Team::prepare();
    let deep = team.root.join("t".repeat(110));
    std::fs::create_dir_all(&deep).unwrap();
    team.start_pi_with(&pi, true, &[format!("TMPDIR={}", deep.display())]);
    assert!(eventually(START_TIMEOUT, || team
        .peers()
        .iter()
        .any(|p| p["name"] == "pi" && p["status"] == "online")));
    let p = team.peer("pi");
    assert_eq!(p["transport"], "tmux", "{p}");
    // (Its exit status tells about this machine's own agents' setup.)
    let out = text(&team.rw(&["status"]).stdout);
    assert!(
        out.contains(
            "via tmux (its inbox is not used: repowire's extension gave its hooks no inbox"
        ),
        "status does not say why: {out}"
    );
    let (answer, took) = team.ask("pi", "REPLY typed into Pi");
    eprintln!("pi typed: ask round trip {took:.2?}");
    assert_eq!(answer, "typed into Pi");
    let (answer, _) = team.ask("pi", HOSTILE_QUESTION);
    assert!(
        answer.ends_with(&format!("\n{HOSTILE_QUESTION_RECEIVED}")),
        "Pi saw something else: {answer:?}"
    );
    assert!(!team.root.join("pi/pwned").exists(), "a '!' line ran");
    team.assert_online("pi");
}

/// `pi -p` and `pi --mode json` run in a peer's pane (by a script, or by the peer's own shell
/// tool) are no peers: the pane's peer stays what it was, and their turns are not its turns.
#[test]
fn headless_pi_runs_leave_the_panes_peer_alone() {
    let Some(pi) = need_agent("pi", PI_PINNED) else {
        return;
    };
    let team = Team::prepare();
    let pane = start_helper(&team);
    let before = team.peer("helper");
    for args in [&["-p"][..], &["--mode", "json"]] {
        let mut c = Command::new(&pi);
        c.args(args)
            .arg("REPLY headless")
            .current_dir(team.root.join("pi"))
            .env("TMUX", format!("{},1,0", team.tmux.socket.display()))
            .env("TMUX_PANE", &pane)
            .env_remove("PI_CODING_AGENT_DIR");
        for kv in team.pi_env() {
            let (k, v) = kv.split_once('=').unwrap();
            c.env(k, v);
        }
        let out = run_for(c, Duration::from_secs(120));
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("headless"), "{args:?}");
    }
    util::helpers_done(&team.spool);
    let after = team.peer("helper");
    for field in ["agent", "session_id", "status", "transport"] {
        assert_eq!(before[field], after[field], "{field}: {after}");
    }
    assert_eq!(team.peers().len(), 1, "{:?}", team.peers());
}

#[test]
fn pi_fork_answers_while_busy_and_changes_nothing() {
    let Some(pi) = need_agent("pi", PI_PINNED) else {
        return;
    };
    fork_flow(&pi);
}

/// A fork of a busy Pi session answers at once from what the session was told (the fake API
/// sees it in the fork's request), posts nothing to the session, is offered no tool but read,
/// grep, find and ls (none of repowire's), writes no file when told to, and leaves no session
/// file and no new peer.
pub(crate) fn fork_flow(pi: &Path) {
    let team = Team::prepare();
    team.start_pi(pi, true);
    let (fact, mut long) = team.busy_after_a_fact("pi", 120);
    let sessions_dir = team.root.join("pih/.pi/agent/sessions");
    let sessions = || {
        util::files::walk(&sessions_dir)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
            .count()
    };
    let before = sessions();
    assert_eq!(
        before,
        1,
        "Pi's session is not in {}",
        sessions_dir.display()
    );
    let path = util::path_with(pi.parent().unwrap());
    let fork = |question: &str| {
        let mut c = util::rw(&team.spool);
        c.args(["peer", "ask", "pi", "--fork", question])
            .env("PATH", &path);
        run_for(c, Duration::from_secs(120))
    };
    let t = Instant::now();
    let out = fork("REPLY it is 8086");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "it is 8086\n");
    eprintln!("pi: a fork of busy Pi answered in {:.2?}", t.elapsed());
    let requests = team.fork_requests(fact);
    for r in &requests {
        let tools: Vec<&str> = r["body"]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            tools
                .iter()
                .all(|t| ["read", "grep", "find", "ls"].contains(t)),
            "a fork was offered {tools:?}"
        );
    }
    let target = team.root.join("pi/written-by-a-fork.txt");
    for call in [
        format!(
            "CALL_TOOL write {}",
            json!({"path": target.display().to_string(), "content": "x"})
        ),
        format!(
            "CALL_TOOL bash {}",
            json!({"command": format!("touch {}", target.display())})
        ),
    ] {
        let out = fork(&call);
        eprintln!(
            "pi: fork told to {}: {}{}",
            &call[10..15],
            text(&out.stdout).trim(),
            text(&out.stderr).trim()
        );
        assert!(!target.exists(), "a fork wrote a file");
    }
    util::helpers_done(&team.spool);
    assert_eq!(team.peer("pi")["status"], "busy", "the fork disturbed it");
    assert_eq!(sessions(), before, "a fork left a session file");
    assert_eq!(team.peers().len(), 1, "{:?}", team.peers());
    let _ = long.kill();
    let _ = long.wait();
}
