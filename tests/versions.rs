//! The client-version matrix. The whole suite runs against the pinned releases (Claude Code
//! `claude_code::PINNED`, Codex `agents::CODEX_PINNED`, Gemini CLI `agents::GEMINI_PINNED`,
//! OpenCode `agents::OPENCODE_PINNED`);
//! here the core flows (ask, notify, the MCP ask, setup, fork answers) run against the oldest and the newest
//! release that `repowire status` names as tested (`Agent::tested`), so that claim is checked
//! on every run. Each release is installed from the npm registry on first use.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use repowire::agents::Agent;
use serde_json::{Value, json};

use crate::util::agents::{self, GEMINI_PINNED, Team};
use crate::util::claude_code::{self, Claude, ClaudeCode, need_claude};
use crate::util::{eventually, text};

/// The agent repowire calls `name`.
fn agent(name: &str) -> Agent {
    Agent::named(name).expect("a known agent")
}

/// What every tested Claude Code release must do.
fn claude_core_flows(claude: &ClaudeCode) {
    let t = Instant::now();
    crate::claude::answers_asks_and_gets_notifications(claude);
    crate::mcp::asks_a_peer_through_the_mcp_tool(claude);
    crate::setup::needs_nothing_but_repowire_setup(claude);
    crate::fork::forks_answer_and_change_nothing(claude);
    eprintln!(
        "versions: Claude Code {}'s core flows took {:.1?}",
        claude.version,
        t.elapsed()
    );
}

#[test]
fn claude_code_oldest_tested_release_passes_the_core_flows() {
    let Some(claude) = need_claude(agent("claude").tested().0) else {
        return;
    };
    claude_core_flows(&claude);
}

#[test]
fn claude_code_newest_tested_release_passes_the_core_flows() {
    let Some(claude) = need_claude(agent("claude").tested().1) else {
        return;
    };
    claude_core_flows(&claude);
}

/// The last release without an inbox is typed into, as before: asked, notified, hostile
/// text inert (the flows of the pinned release's typing test).
#[test]
fn claude_code_last_release_without_an_inbox_is_typed_into() {
    let Some(claude) = need_claude(claude_code::LAST_WITHOUT_AN_INBOX) else {
        return;
    };
    crate::claude::answers_asks_and_gets_notifications(&claude);
}

/// The oldest and the newest release repowire posts to: the inbox's core outside tmux, and in
/// tmux nothing typed.
#[test]
fn claude_code_oldest_release_with_an_inbox_is_posted_to_in_and_outside_tmux() {
    let Some(claude) = need_claude(claude_code::FIRST_WITH_AN_INBOX) else {
        return;
    };
    crate::claude_inbox::reached_through_its_inbox(&claude, false);
    crate::claude_inbox::posted_to_in_tmux(&claude);
}

#[test]
fn claude_code_newest_tested_release_is_posted_to_in_and_outside_tmux() {
    let Some(claude) = need_claude(agent("claude").tested().1) else {
        return;
    };
    crate::claude_inbox::reached_through_its_inbox(&claude, false);
    crate::claude_inbox::posted_to_in_tmux(&claude);
}

/// Claude Code 2.0.x sends no `last_assistant_message` in its Stop payload, so the answer
/// comes from its transcript. Only the first ask of a session was answered; every later one
/// said the turn ended without a text reply. Ten in a row, each with its own answer.
#[test]
fn claude_code_2_0_answers_every_ask_not_only_the_first() {
    let Some(claude) = need_claude(agent("claude").tested().0) else {
        return;
    };
    let cc = Claude::start(&claude, json!({}), json!({}));
    let mut took = Vec::new();
    for i in 1..=10 {
        let (answer, t) = cc.ask(
            "beta",
            &format!("Question {i}?\nREPLY answer {i} from beta"),
        );
        assert_eq!(answer, format!("answer {i} from beta"), "ask {i}");
        took.push(t.as_secs_f64());
    }
    // (The hook logger runs beside repowire's Stop hook: it may write a moment later.)
    eventually(Duration::from_secs(10), || {
        cc.hooks("beta", "Stop").len() >= 10
    });
    let stops = cc.hooks("beta", "Stop");
    assert!(stops.len() >= 10, "{} Stop hooks logged", stops.len());
    assert!(
        stops
            .iter()
            .all(|(_, p)| p.get("last_assistant_message").is_none()),
        "this release now sends last_assistant_message: the transcript path is not tested here"
    );
    eprintln!(
        "versions: Claude Code {} answered 10 asks: {took:.2?} s",
        claude.version
    );
}

/// The core flows of the four agents' team on `clis`, then `fork`, the fork flow of the
/// release under test; `what` names it in the time they took.
fn team_flows(clis: &agents::Clis, what: &str, more: impl FnOnce()) {
    let t = Instant::now();
    let team = Team::start(clis);
    crate::agents::core_flows(&team);
    drop(team);
    more();
    eprintln!("versions: {what}'s core flows took {:.1?}", t.elapsed());
}

#[test]
fn codex_newest_tested_release_passes_the_core_flows() {
    let (oldest, newest) = agent("codex").tested();
    assert_eq!(
        oldest,
        agents::CODEX_PINNED,
        "the pinned Codex is the oldest tested; else run the core flows on the oldest here too"
    );
    let Some(clis) = agents::need_agents(
        claude_code::PINNED,
        newest,
        GEMINI_PINNED,
        agents::OPENCODE_PINNED,
        agents::PI_PINNED,
    ) else {
        return;
    };
    team_flows(&clis, &format!("Codex {newest}"), || {
        crate::agents::codex_fork_flow(&clis.codex)
    });
}

/// OpenCode's oldest tested release (the pinned one is the newest) joins the other agents'
/// pinned releases for the core flows.
#[test]
fn opencode_oldest_tested_release_passes_the_core_flows() {
    let (oldest, newest) = agent("opencode").tested();
    assert_eq!(
        newest,
        agents::OPENCODE_PINNED,
        "the pinned OpenCode is the newest tested; else run the core flows on the newest here too"
    );
    let Some(clis) = agents::need_agents(
        claude_code::PINNED,
        agents::CODEX_PINNED,
        GEMINI_PINNED,
        oldest,
        agents::PI_PINNED,
    ) else {
        return;
    };
    team_flows(&clis, &format!("OpenCode {oldest}"), || {
        crate::agents::opencode_fork_flow(&clis.opencode);
        crate::opencode_inbox::reached_through_its_plugins_inbox(&clis.opencode);
    });
}

/// Pi's oldest tested release (the pinned one is the newest, and the latest on the registry
/// when this was written) joins the other agents' pinned releases for the core flows, the
/// fork and the inbox outside tmux.
#[test]
fn pi_oldest_tested_release_passes_the_core_flows() {
    let (oldest, newest) = agent("pi").tested();
    assert_eq!(
        newest,
        agents::PI_PINNED,
        "the pinned Pi is the newest tested; else run the core flows on the newest here too"
    );
    let Some(clis) = agents::need_agents(
        claude_code::PINNED,
        agents::CODEX_PINNED,
        GEMINI_PINNED,
        agents::OPENCODE_PINNED,
        oldest,
    ) else {
        return;
    };
    team_flows(&clis, &format!("Pi {oldest}"), || {
        crate::pi::fork_flow(&clis.pi);
        crate::pi::reached_through_its_extensions_inbox(&clis.pi);
    });
}

/// The pinned releases lie within what `repowire status` calls tested, and Gemini CLI's only
/// tested release is the pinned one.
#[test]
fn the_pinned_releases_are_within_the_tested_range() {
    let within = |agent: Agent, v: &str| {
        let (oldest, newest) = agent.tested();
        let n = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
        n(oldest) <= n(v) && n(v) <= n(newest)
    };
    assert!(within(agent("claude"), claude_code::PINNED));
    assert!(within(agent("codex"), agents::CODEX_PINNED));
    assert_eq!(agent("gemini").tested(), (GEMINI_PINNED, GEMINI_PINNED));
    assert!(within(agent("opencode"), agents::OPENCODE_PINNED));
    assert!(within(agent("pi"), agents::PI_PINNED));
}

/// `repowire status` reads each agent's `--version`: older than the oldest tested is a
/// problem with the upgrade command, newer than the newest a note, in range fine; one that
/// hangs is not waited for.
#[test]
fn status_compares_each_installed_agent_with_the_tested_releases() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let fake = |name: &str, script: &str| {
        let p = bin_dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let (claude_oldest, _) = agent("claude").tested();
    let (_, codex_newest) = agent("codex").tested();
    let status = || -> (Option<i32>, Value) {
        let out = crate::util::rw(&dir.path().join("spool"))
            .args(["status", "--json"])
            .env("HOME", dir.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("CODEX_HOME")
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
        (out.status.code(), report)
    };
    let versions = |report: &Value| -> Vec<Value> {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["check"] == "version")
            .cloned()
            .collect()
    };

    fake("claude", "echo '2.0.10 (Claude Code)'");
    fake("codex", "echo 'codex-cli 9.0.0'");
    fake("gemini", "sleep 60");
    let t = Instant::now();
    let (code, report) = status();
    assert!(
        t.elapsed().as_secs() < 30,
        "status waited for a hung --version"
    );
    let found = versions(&report);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["level"], "problem", "{found:?}");
    assert_eq!(
        found[0]["detail"],
        format!(
            "Claude Code 2.0.10 (tested: {claude_oldest} to {}): older than any release repowire is tested with",
            agent("claude").tested().1
        )
    );
    assert_eq!(
        found[0]["fix"],
        "npm install -g @anthropic-ai/claude-code@latest"
    );
    assert_eq!(found[1]["level"], "note", "{found:?}");
    assert_eq!(found[1]["ok"], true);
    assert!(
        found[1]["detail"].as_str().unwrap().starts_with(&format!(
            "Codex 9.0.0 (tested: 0.169.0 to {codex_newest}): newer"
        )),
        "{found:?}"
    );
    assert_eq!(code, Some(1), "an old agent is a problem");

    fake("claude", &format!("echo '{claude_oldest} (Claude Code)'"));
    fake("codex", &format!("echo 'codex-cli {codex_newest}'"));
    // Pi prints its release on stderr.
    fake("pi", &format!("echo {} >&2", agent("pi").tested().0));
    let (_, report) = status();
    let found = versions(&report);
    assert_eq!(found.len(), 3, "one check per agent on PATH: {found:?}");
    assert!(
        found.iter().all(|c| c["level"] == "ok"),
        "tested releases: {found:?}"
    );
}

/// The README's table of supported versions names, for each agent, the oldest and the newest
/// release `repowire status` knows as tested (`Kind::tested`).
#[test]
fn the_readmes_supported_versions_are_the_ones_status_knows() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let table = readme
        .split("## Supported versions")
        .nth(1)
        .expect("README.md has a Supported versions section");
    for a in Agent::ALL {
        let title = a.title();
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| {title} ")))
            .unwrap_or_else(|| panic!("no row for {title} in README.md's Supported versions"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (oldest, newest) = a.tested();
        assert_eq!((cells[2], cells[4]), (oldest, newest), "{row}");
    }
}
