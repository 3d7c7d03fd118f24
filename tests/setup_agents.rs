//! `repowire setup` and `uninstall` for Codex, Gemini CLI and OpenCode, against temporary homes
//! holding their files as a user keeps them: the user's entries and formatting survive, a
//! file that cannot be parsed is refused with nothing changed, and uninstall gives the files
//! back.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::util::files::{Files, backup, hook_command, ordered};
use crate::util::{bin, text};

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
    let h = Files::new();
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
    let h = Files::new();
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
    let h = Files::new();
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
    let h = Files::new();
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
    let h = Files::new();
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
    let h = Files::new();
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
