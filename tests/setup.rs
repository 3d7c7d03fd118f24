//! `repowire setup`, `uninstall`, `hooks` and `status` against temporary homes holding
//! realistic Claude Code files: the user's hooks, MCP servers, permissions and unknown keys
//! survive in their order, a second setup changes no byte, uninstall gives the user's files
//! back byte for byte, and a file that is not JSON is refused with nothing changed anywhere.
//! Last, end to end: `repowire setup` into the home of two real Claude Code sessions, which
//! then register, list each other over MCP and answer an ask.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::claude_code::{Claude, ClaudeCode, NAMES, PINNED, need_claude, repowire_mcp};
use crate::util::{bin, run_for, rw_command, text};

/// A user's `~/.claude/settings.json`, formatted by hand (four-space indents, inline lists),
/// so a restore that re-formats instead of giving the bytes back shows.
const SETTINGS: &str = r#"{
    "$schema": "https://json.schemastore.org/claude-code-settings.json",
    "model": "opus",
    "env": { "EDITOR": "vim", "GREETING": "Grüß Gott — 日本語 ✓" },
    "permissions": {
        "allow": ["Bash(npm run test:*)", "Read(~/.zshrc)"],
        "deny": ["Read(./.env)"],
        "defaultMode": "acceptEdits"
    },
    "hooks": {
        "PreToolUse": [
            {
                "matcher": "Bash",
                "hooks": [{ "type": "command", "command": "~/.claude/hooks/check-bash.sh", "timeout": 10 }]
            }
        ],
        "Stop": [
            { "hooks": [{ "type": "command", "command": "notify-send 'Claude ist fertig ✓'" }] }
        ]
    },
    "statusLine": { "type": "command", "command": "~/.claude/statusline.sh" },
    "zebra": { "z": 1, "a": [3, 2, 1], "m": null },
    "includeCoAuthoredBy": false,
    "cleanupPeriodDays": 30,
    "alpha": true
}
"#;

/// A user's `~/.claude.json` as Claude Code writes it (two-space indents, no final newline),
/// with other MCP servers, projects and many keys repowire knows nothing about.
const STATE: &str = r##"{
  "numStartups": 42,
  "installMethod": "native",
  "autoUpdates": false,
  "tipsHistory": {
    "new-user-warmup": 7,
    "memory-command": 12
  },
  "userID": "5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee",
  "firstStartTime": "2026-10-01T08:00:00.000Z",
  "projects": {
    "/home/you/src/backend": {
      "allowedTools": [],
      "mcpServers": {},
      "hasTrustDialogAccepted": true,
      "lastCost": 0.1234,
      "lastDuration": 81234
    }
  },
  "mcpServers": {
    "github": {
      "type": "stdio",
      "command": "npx",
      "args": [
        "-y",
        "@modelcontextprotocol/server-github"
      ],
      "env": {
        "GITHUB_TOKEN": "ghp_not_a_real_token"
      }
    },
    "docs": {
      "type": "http",
      "url": "https://example.com/mcp"
    }
  },
  "hasCompletedOnboarding": true,
  "lastOnboardingVersion": "2.1.330",
  "oauthAccount": {
    "emailAddress": "you@example.com",
    "displayName": "Jörg Müller"
  },
  "cachedChangelog": "# Changelog\n\n## 2.1.330\n- Fixes …"
}"##;

/// A temporary HOME, and `repowire` run with it (never the real home: `CLAUDE_CONFIG_DIR` and
/// `REPOWIRE_HOME` are removed, so the spool is `HOME/.repowire`).
struct Home {
    _dir: tempfile::TempDir,
    home: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("rwsetup")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        Home { _dir: dir, home }
    }

    /// A home holding the user's [`SETTINGS`] and [`STATE`].
    fn realistic() -> Home {
        let h = Home::new();
        std::fs::write(h.settings(), SETTINGS).unwrap();
        std::fs::write(h.state(), STATE).unwrap();
        h
    }

    fn settings(&self) -> PathBuf {
        self.home.join(".claude/settings.json")
    }

    fn state(&self) -> PathBuf {
        self.home.join(".claude.json")
    }

    fn spool(&self) -> PathBuf {
        self.home.join(".repowire")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("HOME", &self.home)
            .env("PATH", path_without_agents())
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("CODEX_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("REPOWIRE_HOME")
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs repowire; its stdout, failing the test if it failed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "repowire {args:?} failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs repowire expecting exit status 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "repowire {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    fn json(&self, path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Every file under the home (the spool's directories as entries too), with its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    out.insert(p.clone(), Vec::new());
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.home, &mut out);
        out
    }

    fn status_json(&self) -> (Option<i32>, Value) {
        let out = self.run(&["status", "--json"]);
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    }
}

/// `$PATH` without the directories that hold claude, codex, gemini or opencode: `setup` without
/// `--agent` sets up every agent it finds, and the tests decide which ones are there.
fn path_without_agents() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|d| {
        !["claude", "codex", "gemini", "opencode"]
            .iter()
            .any(|a| d.join(a).exists())
    });
    std::env::join_paths(dirs).unwrap()
}

/// The command of repowire's hook for `event`.
fn hook_command(event: &str) -> String {
    format!("{} hook {event}", rw_command())
}

/// The hook group setup adds.
fn our_group(event: &str) -> Value {
    json!({"hooks": [{"type": "command", "command": hook_command(event)}]})
}

fn backup(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.repowire-backup", path.display()))
}

/// JSON text with keys in their order: equal only if the order is too.
fn ordered(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

#[test]
fn setup_merges_next_to_the_users_settings_and_uninstall_gives_them_back_byte_for_byte() {
    let h = Home::realistic();
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
    let h = Home::realistic();
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
        let h = Home::realistic();
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
    let h = Home::new();
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
    let h = Home::new();
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
    let h = Home::new();
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
    let h = Home::new();
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
    let h = Home::new();
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
    let h = Home::new();
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
    let h = Home::realistic();
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
        let mut c = Command::new(bin());
        c.args(args)
            .env("HOME", &home)
            .env("REPOWIRE_HOME", &spool)
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
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
                .any(|l| l.trim_start().starts_with(peer) && l.ends_with("online")),
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
            && listed.contains(&format!("alpha: busy, claude, {} (you)", work("alpha")))
            && listed.contains(&format!("beta: online, claude, {}", work("beta"))),
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

/// A user's `~/.codex/config.toml`: comments, a `[features]` table of theirs, another MCP
/// server, a project. setup must add to it without touching a byte of the rest.
const CODEX_CONFIG: &str = r#"# Codex, my way
model = "gpt-5.1-codex"    # the default model
approval_policy = "on-request"

[features]
# keep web search on
web_search_request = true

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]   # docs server
env = { DOCS_TOKEN_FILE = "~/.docs" }

[projects."/home/you/src/api"]
trust_level = "trusted"
"#;

/// What Codex appends to config.toml when the user picks "Trust all and continue" for
/// repowire's hooks (its format, as recorded with Codex 0.169.0).
const CODEX_TRUST: &str = r#"
[hooks.state]

[hooks.state."HOME/.codex/hooks.json:stop:1:0"]
trusted_hash = "sha256:d3171a0580f088b2c3223201dcf3d42cf9c606016b2a8cfd7f7c8a0b51873aa0"
"#;

const CODEX_HOOKS: &str = r#"{
  "hooks": {
    "Stop": [
      { "hooks": [{ "type": "command", "command": "notify-send 'codex done'", "timeout": 5 }] }
    ]
  }
}
"#;

const GEMINI_SETTINGS: &str = r#"{
  "ui": { "theme": "GitHub" },
  "security": { "auth": { "selectedType": "gemini-api-key" } },
  "mcpServers": { "docs": { "command": "npx", "args": ["-y", "docs-mcp"] } },
  "hooks": {
    "AfterAgent": [ { "hooks": [ { "type": "command", "name": "bell", "command": "printf '\\a'" } ] } ]
  }
}
"#;

fn agent_hook(event: &str, agent: &str) -> Value {
    let mut hook = json!({"type": "command",
        "command": format!("{} --agent {agent}", hook_command(event))});
    if agent == "gemini" {
        hook["name"] = json!(format!("repowire-{event}"));
    }
    json!({ "hooks": [hook] })
}

#[test]
fn codex_and_gemini_setup_merges_into_their_files_and_uninstall_gives_them_back() {
    let h = Home::new();
    let codex = h.home.join(".codex");
    let gemini = h.home.join(".gemini");
    std::fs::create_dir_all(&codex).unwrap();
    std::fs::create_dir_all(&gemini).unwrap();
    let (config, hooks, settings) = (
        codex.join("config.toml"),
        codex.join("hooks.json"),
        gemini.join("settings.json"),
    );
    std::fs::write(&config, CODEX_CONFIG).unwrap();
    std::fs::write(&hooks, CODEX_HOOKS).unwrap();
    std::fs::write(&settings, GEMINI_SETTINGS).unwrap();
    let pristine = h.snapshot();
    let args = ["setup", "--agent", "codex", "--agent", "gemini"];

    let out = h.ok(&[&args[..], &["--dry-run"]].concat());
    assert!(out.contains("would add hook Interrupt"), "{out}");
    assert_eq!(h.snapshot(), pristine, "a dry run wrote something");

    let out = h.ok(&args);
    // The user is told to approve the hooks in Codex; setup never trusts them itself.
    assert!(out.contains("Hooks need review"), "{out}");
    assert!(
        !h.home.join(".claude/settings.json").exists(),
        "claude was set up"
    );

    // config.toml: the user's bytes, comments included, with ours added.
    let rw = bin().display().to_string();
    let want = CODEX_CONFIG
        .replace(
            "web_search_request = true\n",
            "web_search_request = true\ndaemon_auto_start = false\n",
        )
        .replace(
            "env = { DOCS_TOKEN_FILE = \"~/.docs\" }\n",
            &format!(
                "env = {{ DOCS_TOKEN_FILE = \"~/.docs\" }}\n\n[mcp_servers.repowire]\ncommand = \"{rw}\"\nargs = [\"mcp\", \"--agent\", \"codex\"]\nenv_vars = [\"TMUX\", \"TMUX_PANE\", \"REPOWIRE_HOME\"]\ntool_timeout_sec = 600\n"
            ),
        );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), want);

    // hooks.json: the five hooks, the user's first.
    let mut want: Value = serde_json::from_str(CODEX_HOOKS).unwrap();
    want["hooks"]["Stop"]
        .as_array_mut()
        .unwrap()
        .push(agent_hook("stop", "codex"));
    for (event, ours) in [
        ("SessionStart", "session-start"),
        ("UserPromptSubmit", "prompt"),
        ("Interrupt", "interrupt"),
        ("SessionEnd", "session-end"),
    ] {
        want["hooks"][event] = json!([agent_hook(ours, "codex")]);
    }
    assert_eq!(ordered(&h.json(&hooks)), ordered(&want));

    // Gemini's settings.json: its four hooks and the MCP server.
    let mut want: Value = serde_json::from_str(GEMINI_SETTINGS).unwrap();
    want["mcpServers"]["repowire"] = json!({"command": rw, "args": ["mcp", "--agent", "gemini"]});
    want["hooks"]["AfterAgent"]
        .as_array_mut()
        .unwrap()
        .push(agent_hook("stop", "gemini"));
    for (event, ours) in [
        ("SessionStart", "session-start"),
        ("BeforeAgent", "prompt"),
        ("SessionEnd", "session-end"),
    ] {
        want["hooks"][event] = json!([agent_hook(ours, "gemini")]);
    }
    assert_eq!(ordered(&h.json(&settings)), ordered(&want));

    // `status` finds both set up.
    let (_, status) = h.status_json();
    for agent in ["codex", "gemini"] {
        let check = status["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == agent)
            .unwrap_or_else(|| panic!("no {agent} check: {status}"));
        assert_eq!(check["ok"], true, "{check}");
    }

    // Again: not a byte changes.
    let set_up = h.snapshot();
    assert!(h.ok(&args).contains("nothing changed"));
    assert_eq!(h.snapshot(), set_up, "a second setup changed files");

    // The user trusts the hooks in Codex, which records that in config.toml. Uninstall takes
    // out only what setup added: the user's text and Codex's records stay as they are.
    let trust = CODEX_TRUST.replace("HOME", &h.home.display().to_string());
    let mut trusted = std::fs::read_to_string(&config).unwrap();
    trusted.push_str(&trust);
    std::fs::write(&config, &trusted).unwrap();
    let out = h.ok(&["uninstall"]);
    assert!(out.contains("removed features.daemon_auto_start"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!("{CODEX_CONFIG}{trust}")
    );
    assert_eq!(std::fs::read_to_string(&hooks).unwrap(), CODEX_HOOKS);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), GEMINI_SETTINGS);
    // Without Codex's records the rest is as it was, byte for byte.
    std::fs::write(&config, CODEX_CONFIG).unwrap();
    h.ok(&["uninstall", "--purge"]);
    let mut now = h.snapshot();
    now.remove(&backup(&config));
    assert_eq!(now, pristine);
}

#[test]
fn codex_setup_in_an_empty_home_creates_its_files_and_uninstall_removes_them() {
    let h = Home::new();
    let codex = h.home.join("elsewhere");
    let mut setup = h.cmd();
    setup
        .env("CODEX_HOME", &codex)
        .args(["setup", "--agent", "codex"]);
    let out = setup.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = std::fs::read_to_string(codex.join("config.toml")).unwrap();
    assert!(
        config.contains("\n[features]\ndaemon_auto_start = false\n"),
        "{config}"
    );
    assert!(config.starts_with("[mcp_servers.repowire]\n"), "{config}");
    assert!(codex.join("hooks.json").is_file());
    let mut uninstall = h.cmd();
    uninstall.env("CODEX_HOME", &codex).arg("uninstall");
    assert!(uninstall.output().unwrap().status.success());
    assert_eq!(std::fs::read_dir(&codex).unwrap().count(), 0, "files left");
}

#[test]
fn a_codex_setting_of_the_users_own_survives_uninstall() {
    let h = Home::new();
    let codex = h.home.join(".codex");
    std::fs::create_dir_all(&codex).unwrap();
    let config = codex.join("config.toml");
    // The user had the daemon switched off already: uninstall must leave it so.
    let mine = "[features]\ndaemon_auto_start = false # no daemon for me\n";
    std::fs::write(&config, mine).unwrap();
    h.ok(&["setup", "--agent", "codex"]);
    std::fs::write(
        &config,
        format!(
            "{}\n# a later note of the user\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    h.ok(&["uninstall"]);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!("{mine}\n# a later note of the user\n")
    );
}

#[test]
fn an_unparsable_codex_config_is_refused_and_nothing_changes() {
    let h = Home::new();
    std::fs::create_dir_all(h.home.join(".codex")).unwrap();
    std::fs::create_dir_all(h.home.join(".gemini")).unwrap();
    std::fs::write(
        h.home.join(".codex/config.toml"),
        "model = \"x\"\n[features\nweb_search_request = true\n",
    )
    .unwrap();
    std::fs::write(h.home.join(".gemini/settings.json"), GEMINI_SETTINGS).unwrap();
    let before = h.snapshot();
    let err = h.fails(&["setup", "--agent", "gemini", "--agent", "codex"]);
    assert!(err.contains("config.toml:2: not valid TOML"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(h.snapshot(), before);
}

/// A user's `opencode.json`, formatted by hand, with an MCP server and keys of their own.
const OPENCODE_CONFIG: &str = r#"{
    "$schema": "https://opencode.ai/config.json",
    "theme": "tokyonight",
    "mcp": {
        "docs": { "type": "remote", "url": "https://docs.example.com/mcp" }
    },
    "model": "anthropic/claude-sonnet-4-5",
    "autoupdate": false
}
"#;

#[test]
fn opencode_setup_writes_its_plugin_and_server_and_uninstall_gives_the_files_back() {
    let h = Home::new();
    let dir = h.home.join(".config/opencode");
    std::fs::create_dir_all(dir.join("plugin")).unwrap();
    let (config, plugin) = (dir.join("opencode.json"), dir.join("plugin/repowire.js"));
    std::fs::write(&config, OPENCODE_CONFIG).unwrap();
    // A plugin of the user's own, beside where repowire's goes.
    let theirs = dir.join("plugin/notify.js");
    std::fs::write(&theirs, "export const Notify = async () => ({})\n").unwrap();
    let pristine = h.snapshot();

    let out = h.ok(&["setup", "--agent", "opencode", "--dry-run"]);
    assert!(out.contains("would add plugin"), "{out}");
    assert_eq!(h.snapshot(), pristine, "a dry run wrote something");

    let out = h.ok(&["setup", "--agent", "opencode"]);
    assert!(
        out.contains("added MCP server repowire") && out.contains("added plugin"),
        "{out}"
    );
    let rw = bin().display().to_string();
    let mut want: Value = serde_json::from_str(OPENCODE_CONFIG).unwrap();
    want["mcp"]["repowire"] = json!({"type": "local", "command": [rw, "mcp", "--agent", "opencode"], "enabled": true, "timeout": 600000});
    assert_eq!(ordered(&h.json(&config)), ordered(&want));
    let js = std::fs::read_to_string(&plugin).unwrap();
    assert!(
        js.contains(&format!(
            "const REPOWIRE = {}",
            serde_json::to_string(&rw).unwrap()
        )),
        "{js}"
    );
    assert!(
        js.contains("\"hook\", event, \"--agent\", \"opencode\""),
        "{js}"
    );
    assert!(
        !backup(&plugin).exists(),
        "a file of repowire's own needs no backup"
    );
    let (_, status) = h.status_json();
    let check = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "opencode")
        .unwrap_or_else(|| panic!("no opencode check: {status}"));
    assert_eq!(check["ok"], true, "{check}");

    // Again: not a byte changes.
    let set_up = h.snapshot();
    assert!(
        h.ok(&["setup", "--agent", "opencode"])
            .contains("nothing changed")
    );
    assert_eq!(h.snapshot(), set_up, "a second setup changed files");

    // A plugin of an older repowire is brought up to date; status said what was wrong.
    std::fs::write(&plugin, "// repowire's OpenCode plugin, an old one\n").unwrap();
    let (code, status) = h.status_json();
    assert_eq!(code, Some(1), "{status}");
    assert!(status.to_string().contains("repowire's plugin"), "{status}");
    let out = h.ok(&["setup", "--agent", "opencode"]);
    assert!(out.contains("updated plugin"), "{out}");
    assert_eq!(std::fs::read_to_string(&plugin).unwrap(), js);

    // Uninstall: the plugin goes, the user's plugin and opencode.json are as they were.
    let out = h.ok(&["uninstall", "--purge"]);
    assert!(out.contains("removed repowire's plugin"), "{out}");
    let mut now = h.snapshot();
    assert!(now.remove(&dir.join("plugin")).is_some());
    assert_eq!(
        now.into_iter()
            .filter(|(p, _)| p.starts_with(&dir))
            .collect::<BTreeMap<_, _>>(),
        pristine
            .into_iter()
            .filter(|(p, _)| p.starts_with(&dir) && *p != dir.join("plugin"))
            .collect::<BTreeMap<_, _>>()
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), OPENCODE_CONFIG);
}

#[test]
fn a_file_in_the_plugins_place_that_is_not_repowires_is_refused_and_nothing_changes() {
    let h = Home::new();
    // OpenCode's directory under XDG_CONFIG_HOME, when that is set.
    let dir = h.home.join("xdg/opencode");
    std::fs::create_dir_all(dir.join("plugin")).unwrap();
    std::fs::write(dir.join("plugin/repowire.js"), "export const Mine = 1\n").unwrap();
    let pristine = h.snapshot();
    let out = h
        .cmd()
        .env("XDG_CONFIG_HOME", h.home.join("xdg"))
        .args(["setup", "--agent", "opencode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("is not repowire's plugin; move it away")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(h.snapshot(), pristine);
    // Nor does uninstall take it.
    let out = h
        .cmd()
        .env("XDG_CONFIG_HOME", h.home.join("xdg"))
        .arg("uninstall")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(h.snapshot(), pristine);
}
