//! `repowire setup`, `uninstall`, `hooks` and `status` against temporary homes holding
//! realistic Claude Code files: the user's hooks, MCP servers, permissions and unknown keys
//! survive in their order, a second setup changes no byte, uninstall gives the user's files
//! back byte for byte, and a file that is not JSON is refused with nothing changed anywhere.
//! Last, end to end: `repowire setup` into the home of two real Claude Code sessions, which
//! then register, list each other over MCP and answer an ask.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::claude_code::{Claude, ClaudeCode, NAMES, PINNED, need_claude, repowire_mcp};
use crate::util::files::{Files, SETTINGS, STATE, backup, hook_command, ordered};
use crate::util::{bin, run_for, text};

/// The hook group setup adds.
fn our_group(event: &str) -> Value {
    json!({"hooks": [{"type": "command", "command": hook_command(event)}]})
}

#[test]
fn setup_merges_next_to_the_users_settings_and_uninstall_gives_them_back_byte_for_byte() {
    let h = Files::realistic();
    let pristine = h.snapshot();

    // A dry run says what it would do and writes nothing, not even the spool.
    let out = h.ok(&["setup", "--dry-run", "--allow-tools"]);
    assert!(out.contains("would add hook Stop"), "{out}");
    assert!(out.contains("would add MCP server repowire"), "{out}");
    assert!(out.contains("would add permission mcp__repowire"), "{out}");
    assert_eq!(h.snapshot(), pristine, "a dry run wrote something");

    let t = Instant::now();
    let out = h.ok(&["setup", "--allow-tools"]);
    eprintln!("setup: first run {:.0?}", t.elapsed());
    assert!(out.contains("repowire status"), "no next step: {out}");
    assert!(h.spool().join("peers").is_dir());

    // settings.json: ours appended, the user's untouched and in their order.
    let mut want: Value = serde_json::from_str(SETTINGS).unwrap();
    want["hooks"]["Stop"]
        .as_array_mut()
        .unwrap()
        .push(our_group("stop"));
    let hooks = want["hooks"].as_object_mut().unwrap();
    hooks.insert("SessionStart".into(), json!([our_group("session-start")]));
    hooks.insert("UserPromptSubmit".into(), json!([our_group("prompt")]));
    hooks.insert("SessionEnd".into(), json!([our_group("session-end")]));
    want["permissions"]["allow"]
        .as_array_mut()
        .unwrap()
        .push(json!("mcp__repowire"));
    assert_eq!(ordered(&h.json(&h.settings())), ordered(&want));

    // .claude.json: exactly what `claude mcp add -s user` writes, after the user's servers.
    let mut want: Value = serde_json::from_str(STATE).unwrap();
    want["mcpServers"].as_object_mut().unwrap().insert(
        "repowire".into(),
        json!({"type": "stdio", "command": bin(), "args": ["mcp"], "env": {}}),
    );
    let state = std::fs::read_to_string(h.state()).unwrap();
    assert_eq!(
        ordered(&serde_json::from_str(&state).unwrap()),
        ordered(&want)
    );
    assert!(
        state.contains("\n  \"numStartups\": 42,\n") && !state.ends_with('\n'),
        "not written as Claude Code writes it:\n{state}"
    );

    // The originals are backed up, byte for byte.
    assert_eq!(
        std::fs::read_to_string(backup(&h.settings())).unwrap(),
        SETTINGS
    );
    assert_eq!(std::fs::read_to_string(backup(&h.state())).unwrap(), STATE);

    // Again: not a byte changes, and it says so.
    let set_up = h.snapshot();
    let t = Instant::now();
    let out = h.ok(&["setup", "--allow-tools"]);
    eprintln!("setup: second run {:.0?}", t.elapsed());
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(h.snapshot(), set_up, "a second setup changed files");

    // Uninstall: a dry run changes nothing; then the user's files come back byte for byte,
    // the backups go, the spool stays.
    let out = h.ok(&["uninstall", "--dry-run"]);
    assert!(out.contains("would remove hook SessionEnd"), "{out}");
    assert_eq!(h.snapshot(), set_up, "a dry run wrote something");
    let out = h.ok(&["uninstall"]);
    assert!(out.contains("restored byte for byte"), "{out}");
    assert_eq!(std::fs::read_to_string(h.settings()).unwrap(), SETTINGS);
    assert_eq!(std::fs::read_to_string(h.state()).unwrap(), STATE);
    assert!(!backup(&h.settings()).exists() && !backup(&h.state()).exists());
    assert!(h.spool().is_dir());

    h.ok(&["uninstall", "--purge"]);
    assert_eq!(h.snapshot(), pristine);
}

#[test]
fn the_first_change_is_backed_up_once_and_later_user_edits_survive_uninstall() {
    let h = Files::realistic();
    h.ok(&["setup"]);
    // The user edits their settings while repowire is set up.
    let mut edited = h.json(&h.settings());
    edited["theme"] = json!("dark");
    std::fs::write(h.settings(), ordered(&edited)).unwrap();
    h.ok(&["hooks", "uninstall"]);
    h.ok(&["hooks", "install"]);
    assert_eq!(
        std::fs::read_to_string(backup(&h.settings())).unwrap(),
        SETTINGS,
        "the backup is not the file before the first change"
    );

    let out = h.ok(&["uninstall"]);
    let settings_line = format!("{}:", h.settings().display());
    assert!(out.lines().any(|l| l == settings_line), "{out}");
    let mut want: Value = serde_json::from_str(SETTINGS).unwrap();
    want["theme"] = json!("dark");
    assert_eq!(ordered(&h.json(&h.settings())), ordered(&want));
    assert!(backup(&h.settings()).exists(), "the original was not kept");
    // .claude.json was not edited: it comes back as it was.
    assert_eq!(std::fs::read_to_string(h.state()).unwrap(), STATE);
}

#[test]
fn an_unparsable_file_is_refused_and_nothing_at_all_changes() {
    let broken = "{\n  \"model\": \"opus\",\n  \"hooks\": {\n    \"Stop\": [\n  }\n";
    for (which, line) in [("settings.json", 5), (".claude.json", 5)] {
        let h = Files::realistic();
        let path = if which == "settings.json" {
            h.settings()
        } else {
            h.state()
        };
        std::fs::write(&path, broken).unwrap();
        let before = h.snapshot();
        for args in [&["setup"][..], &["uninstall"], &["setup", "--dry-run"]] {
            let err = h.fails(args);
            let at = format!("{}:{line}:", path.display());
            assert!(err.contains(&at), "{args:?} did not name {at}: {err}");
            assert!(err.contains("nothing was changed"), "{err}");
            assert_eq!(h.snapshot(), before, "{args:?} with a broken {which}");
        }
        assert!(!h.spool().exists());
    }
}

/// A file of another agent's that holds the wrong shape is not blamed on Claude Code.
#[test]
fn a_wrong_shape_in_another_agents_file_names_that_agent_not_claude_code() {
    let h = Files::new();
    let gemini = h.home.join(".gemini/settings.json");
    std::fs::create_dir_all(gemini.parent().unwrap()).unwrap();
    std::fs::write(&gemini, r#"{"hooks": ["not", "an", "object"]}"#).unwrap();
    let err = h.fails(&["setup", "--agent", "gemini"]);
    assert!(
        err.contains("`hooks` is a list, where the agent expects an object"),
        "{err}"
    );
    assert!(err.contains(&gemini.display().to_string()), "{err}");
    assert!(!err.contains("Claude Code"), "{err}");
    std::fs::write(&gemini, "[1]").unwrap();
    let err = h.fails(&["setup", "--agent", "gemini"]);
    assert!(
        err.contains("not a JSON object as the agent expects"),
        "{err}"
    );
    assert!(!err.contains("Claude Code"), "{err}");
}

#[test]
fn a_hook_or_server_of_another_repowire_binary_is_pointed_at_this_one() {
    let h = Files::new();
    // The user put the old hook in a group of their own, next to another hook.
    std::fs::write(
        h.settings(),
        ordered(&json!({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "/usr/bin/logger done"},
            {"type": "command", "command": "'/old place/bin/repowire' hook stop"},
        ]}]}})),
    )
    .unwrap();
    std::fs::write(
        h.state(),
        ordered(&json!({"mcpServers": {"repowire": {
            "type": "stdio", "command": "/old/repowire", "args": ["mcp"],
            "env": {"REPOWIRE_HOME": "/srv/spool"}}}})),
    )
    .unwrap();

    let err = h.fails(&["hooks", "status"]);
    assert!(err.contains("repowire hooks install"), "{err}");
    let out = h.run(&["hooks", "status"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("runs '/old place/bin/repowire' hook stop, not this binary"),
        "{shown}"
    );
    assert!(shown.contains("SessionStart      missing"), "{shown}");

    let out = h.ok(&["setup"]);
    assert!(
        out.contains("updated hook Stop: '/old place/bin/repowire' hook stop → "),
        "{out}"
    );
    assert!(
        out.contains("updated MCP server repowire: /old/repowire mcp → "),
        "{out}"
    );
    let settings = h.json(&h.settings());
    assert_eq!(
        settings["hooks"]["Stop"],
        json!([{"hooks": [
            {"type": "command", "command": "/usr/bin/logger done"},
            {"type": "command", "command": hook_command("stop")},
        ]}])
    );
    // The user's env for the server stays.
    assert_eq!(
        h.json(&h.state())["mcpServers"]["repowire"],
        json!({"type": "stdio", "command": bin(), "args": ["mcp"],
               "env": {"REPOWIRE_HOME": "/srv/spool"}})
    );
    h.ok(&["hooks", "status"]);

    // Uninstall takes ours out of the user's group and leaves the group.
    h.ok(&["uninstall"]);
    assert_eq!(
        h.json(&h.settings()),
        json!({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "/usr/bin/logger done"},
        ]}]}})
    );
    assert_eq!(h.json(&h.state()), json!({"mcpServers": {}}));
}

#[test]
fn hooks_install_status_and_uninstall_round_trip_in_an_empty_home() {
    let h = Files::new();
    let err = h.fails(&["hooks", "status"]);
    assert!(err.contains("repowire hooks install"), "{err}");

    let out = h.ok(&["hooks", "install", "--dry-run"]);
    assert!(out.contains("would add hook UserPromptSubmit"), "{out}");
    assert!(!h.settings().exists());

    h.ok(&["hooks", "install"]);
    let out = h.ok(&["hooks", "status"]);
    assert_eq!(out.matches("installed").count(), 4, "{out}");
    assert!(!h.state().exists(), "hooks install touched .claude.json");
    assert!(!h.spool().exists(), "hooks install made the spool");

    // Setup made the file, so removing its hooks removes the file.
    let out = h.ok(&["hooks", "uninstall"]);
    assert!(out.contains("deleted: nothing else is in it"), "{out}");
    assert!(!h.settings().exists());
    let out = h.ok(&["hooks", "uninstall"]);
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn claude_config_dir_holds_both_files_when_set() {
    let h = Files::new();
    let config = h.home.join("elsewhere");
    let out = h
        .cmd()
        .env("CLAUDE_CONFIG_DIR", &config)
        .arg("setup")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        h.json(&config.join(".claude.json"))["mcpServers"]["repowire"]["args"],
        json!(["mcp"])
    );
    assert!(h.json(&config.join("settings.json"))["hooks"]["Stop"].is_array());
    assert!(!h.settings().exists() && !h.state().exists());
}

#[test]
fn a_symlinked_settings_file_stays_a_link() {
    let h = Files::new();
    let dotfiles = h.home.join("dotfiles/claude-settings.json");
    std::fs::create_dir_all(dotfiles.parent().unwrap()).unwrap();
    std::fs::write(&dotfiles, SETTINGS).unwrap();
    std::os::unix::fs::symlink(&dotfiles, h.settings()).unwrap();
    h.ok(&["setup"]);
    assert!(h.settings().symlink_metadata().unwrap().is_symlink());
    assert!(h.json(&dotfiles)["hooks"]["SessionEnd"].is_array());
    h.ok(&["uninstall"]);
    assert_eq!(std::fs::read_to_string(&dotfiles).unwrap(), SETTINGS);
}

#[test]
fn purge_deletes_only_a_spool() {
    let h = Files::new();
    let not_a_spool = h.home.join("src");
    std::fs::create_dir_all(&not_a_spool).unwrap();
    std::fs::write(not_a_spool.join("main.rs"), "fn main() {}").unwrap();
    let out = h
        .cmd()
        .env("REPOWIRE_HOME", &not_a_spool)
        .args(["uninstall", "--purge"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not look like a repowire spool"),
        "{}",
        text(&out.stderr)
    );
    assert!(not_a_spool.join("main.rs").exists());
}

#[test]
fn status_names_each_problem_with_its_fix_and_is_all_ok_after_setup() {
    need_tmux!();
    let h = Files::realistic();
    let (code, report) = h.status_json();
    assert_eq!(code, Some(1));
    let check = |report: &Value, name: &str| -> Value {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {report}"))
            .clone()
    };
    for (name, fix) in [
        ("spool", "repowire setup"),
        ("hooks", "repowire hooks install"),
        ("mcp", "repowire setup"),
    ] {
        let c = check(&report, name);
        assert_eq!(
            (c["ok"].clone(), c["fix"].clone()),
            (json!(false), json!(fix)),
            "{c}"
        );
    }
    assert!(!h.spool().exists(), "status created the spool");

    h.ok(&["setup"]);
    let (code, report) = h.status_json();
    // The machine's inotify limits may warrant a warning, never a failure.
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert!(
        check(&report, "tmux")["detail"]
            .as_str()
            .unwrap()
            .starts_with("tmux ")
    );
    let text_report = h.ok(&["status"]);
    assert!(!text_report.contains("PROBLEM"), "{text_report}");

    // One hook gone: a problem naming it, with the fix; exit status 1.
    let mut settings = h.json(&h.settings());
    settings["hooks"]
        .as_object_mut()
        .unwrap()
        .shift_remove("SessionEnd");
    std::fs::write(h.settings(), ordered(&settings)).unwrap();
    let out = h.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("PROBLEM  hooks    SessionEnd missing from"),
        "{shown}"
    );
    assert!(shown.contains("fix: repowire hooks install"), "{shown}");
    assert!(
        text(&out.stderr).contains("1 problem found"),
        "{}",
        text(&out.stderr)
    );
}

/// End to end with the real Claude Code CLI: `repowire setup --allow-tools` into the HOME of
/// two sessions is all they need. Both register themselves through setup's hooks, alpha's
/// model lists the peers through setup's MCP server (pre-allowed, so no permission prompt),
/// and a question to beta is answered. The HOME starts with no repowire hook and no MCP
/// server; the driver's hook logger stays, as a user's own hook beside repowire's.
#[test]
fn claude_code_needs_nothing_but_repowire_setup() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    needs_nothing_but_repowire_setup(&claude);
}

pub(crate) fn needs_nothing_but_repowire_setup(claude: &ClaudeCode) {
    let mut cc = Claude::prepare(claude, json!({}), json!({}));
    let (home, spool) = (cc.home.dir.clone(), cc.spool.clone());
    let setup = |args: &[&str]| {
        let mut c = crate::util::rw(&spool);
        c.args(args)
            .env("HOME", &home)
            .env_remove("CLAUDE_CONFIG_DIR");
        run_for(c, Duration::from_secs(30))
    };
    let out = setup(&["setup", "--agent", "claude", "--allow-tools"]);
    let log = text(&out.stdout);
    assert!(out.status.success(), "{log}{}", text(&out.stderr));
    for added in [
        "added hook Stop",
        "added MCP server repowire",
        "added permission",
    ] {
        assert!(log.contains(added), "{added} missing from {log}");
    }
    cc.launch();

    // What setup wrote sits beside what the driver and Claude Code keep there.
    let state: Value =
        serde_json::from_slice(&std::fs::read(home.join(".claude.json")).unwrap()).unwrap();
    assert_eq!(state["mcpServers"], json!({"repowire": repowire_mcp()}));
    assert_eq!(state["hasCompletedOnboarding"], true);
    let settings: Value =
        serde_json::from_slice(&std::fs::read(home.join(".claude/settings.json")).unwrap())
            .unwrap();
    let stop = settings["hooks"]["Stop"].as_array().unwrap();
    assert_eq!(stop.len(), 2, "the driver's logger and repowire: {stop:?}");
    assert_eq!(stop[1], our_group("stop"));

    // `repowire status` in that home: all well, both peers online.
    let out = setup(&["status"]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    for peer in NAMES {
        assert!(
            report
                .lines()
                .any(|l| l.trim_start().starts_with(peer) && l.contains("  online  via ")),
            "{report}"
        );
    }

    // alpha's model lists the peers through the MCP server setup registered.
    let t = Instant::now();
    let listed = cc.turn("alpha", "CALL_TOOL mcp__repowire__list_peers {}");
    eprintln!(
        "setup (claude {}): alpha's list_peers turn took {:.2?}",
        claude.version,
        t.elapsed()
    );
    let work = |name: &str| cc.session(name).work.display().to_string();
    assert!(
        listed.starts_with("TOOL_RESULT: ")
            // (How each is reached, between agent and path, depends on the release.)
            && listed.contains("alpha: busy, claude, ")
            && listed.contains(&format!(", {} (you)", work("alpha")))
            && listed.contains("beta: online, claude, ")
            && listed.contains(&format!(", {}\n", work("beta"))),
        "{listed}"
    );

    // And a question goes through.
    let (answer, took) = cc.ask(
        "beta",
        "Are you there?\nREPLY yes, set up by repowire setup",
    );
    eprintln!("setup: ask beta round trip {took:.2?}");
    assert_eq!(answer, "yes, set up by repowire setup");
}

/// `repowire status` reports what keeps questions from Claude Code's inbox: a
/// `crossSessionInbound` that holds or refuses them is a problem with its fix; a variable
/// documented to turn messaging off is said, not failed; by default all is well.
#[test]
fn status_reports_what_keeps_questions_from_claude_codes_inbox() {
    need_tmux!();
    let h = Files::new();
    h.ok(&["setup"]);
    let inbox = |h: &Files| -> (Option<i32>, Value) {
        let (code, report) = h.status_json();
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "inbox")
            .unwrap_or_else(|| panic!("no inbox check: {report:#}"))
            .clone();
        (code, check)
    };
    let (code, c) = inbox(&h);
    assert_eq!((code, &c["ok"]), (Some(0), &json!(true)), "{c}");
    assert!(c["detail"].as_str().unwrap().contains("accept"), "{c}");

    let mut settings: Value =
        serde_json::from_slice(&std::fs::read(h.settings()).unwrap()).unwrap();
    settings["env"] = json!({"DISABLE_TELEMETRY": "1"});
    std::fs::write(h.settings(), settings.to_string()).unwrap();
    let (code, c) = inbox(&h);
    assert_eq!((code, &c["ok"]), (Some(0), &json!(true)), "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("DISABLE_TELEMETRY"),
        "{c}"
    );

    for how in ["hold", "refuse"] {
        settings["crossSessionInbound"] = json!(how);
        std::fs::write(h.settings(), settings.to_string()).unwrap();
        let (code, c) = inbox(&h);
        assert_eq!((code, &c["ok"]), (Some(1), &json!(false)), "{c}");
        assert!(
            c["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{how}\"")),
            "{c}"
        );
        assert!(
            c["fix"]
                .as_str()
                .unwrap()
                .contains("\"crossSessionInbound\": \"accept\""),
            "{c}"
        );
    }
}
