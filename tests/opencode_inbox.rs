//! OpenCode through repowire's plugin's inbox (the plugin posts to its session with
//! `session.promptAsync`), outside tmux: once its first prompt has made a session, it is a
//! full peer: asked, notified, and asking others through its MCP tool.

use std::path::Path;
use std::time::Duration;

use crate::util::agents::{OPENCODE_PINNED, START_TIMEOUT, Team, ask_tool};
use crate::util::{self, eventually, need_agent, text};

#[test]
fn opencode_outside_tmux_is_a_full_peer_through_its_plugins_inbox() {
    let Some(opencode) = need_agent("opencode", OPENCODE_PINNED) else {
        return;
    };
    reached_through_its_plugins_inbox(&opencode);
}

pub(crate) fn reached_through_its_plugins_inbox(opencode: &Path) {
    let team = Team::prepare();
    team.start_opencode_with(opencode, false);
    // A stand-in in tmux, for OpenCode to ask.
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
    // No session before its first prompt: nothing to post to, and no pane, so no peer yet.
    assert!(eventually(START_TIMEOUT, || {
        team.tmux.screen("opencode", false).contains("Build")
    }));
    assert!(!team.peers().iter().any(|p| p["name"] == "opencode"));
    team.tmux
        .paste("opencode", "REPLY the person's first prompt");
    // Input pacing, as a person types: Enter right after a paste is part of it.
    std::thread::sleep(Duration::from_millis(500));
    team.tmux.keys("opencode", &["Enter"]);
    assert!(
        eventually(START_TIMEOUT, || team
            .peers()
            .iter()
            .any(|p| p["name"] == "opencode" && p["status"] == "online")),
        "{:?}",
        team.peers()
    );
    let p = team.peer("opencode");
    assert_eq!(
        (&p["transport"], &p["pane"]),
        (&"inbox".into(), &"".into()),
        "{p}"
    );

    // Asked from a terminal: the plugin's chat.message sees the text exactly.
    let (answer, took) = team.ask("opencode", "What is 6*7?\nREPLY forty-two, from OpenCode");
    eprintln!("opencode inbox: ask round trip {took:.2?}");
    assert_eq!(answer, "forty-two, from OpenCode");
    let id = team.last_sent("user", "opencode");
    assert_eq!(team.event_names(&id), ["sent", "delivered", "answered"]);

    // A notification is a turn of its own.
    let out = team.rw_ok(&["peer", "notify", "opencode", "REPLY noted"]);
    let nid = out.split_whitespace().nth(1).unwrap().to_string();
    assert!(eventually(Duration::from_secs(60), || {
        team.event_names(&nid) == ["sent", "delivered", "received"]
    }));
    team.assert_online("opencode");

    // Its model asks the stand-in through its MCP tool: sent as its peer.
    let call = format!(
        "CALL_TOOL {} {}",
        ask_tool("opencode"),
        serde_json::json!({"peer_name": "helper", "query": "REPLY pong from the helper"})
    );
    let (answer, _) = team.ask("opencode", &call);
    assert_eq!(answer, "TOOL_RESULT: pong from the helper");
    team.last_sent("opencode", "helper");

    // And the stand-in's pane asks it back (as any peer's command or MCP server would).
    let pane = text(
        &team
            .tmux
            .run(["display-message", "-p", "-t", "helper", "#{pane_id}"])
            .stdout,
    );
    let mut c = util::rw(&team.spool);
    c.env("TMUX", format!("{},1,0", team.tmux.socket.display()))
        .env("TMUX_PANE", pane.trim())
        .args(["peer", "ask", "opencode", "REPLY pong from OpenCode"]);
    let out = util::run_for(c, Duration::from_secs(120));
    assert_eq!(
        text(&out.stdout),
        "pong from OpenCode\n",
        "{}",
        text(&out.stderr)
    );
    team.last_sent("helper", "opencode");
}
