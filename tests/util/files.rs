//! A temporary HOME holding an agent's files as a user keeps them, and `repowire` run with
//! it (never the real home), for the tests of `setup`, `uninstall`, `hooks` and `status`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{bin, rw_command, text};

/// A user's `~/.claude/settings.json`, formatted by hand (four-space indents, inline lists),
/// so a restore that re-formats instead of giving the bytes back shows.
pub const SETTINGS: &str = r#"{
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
pub const STATE: &str = r##"{
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
pub struct Files {
    pub _dir: tempfile::TempDir,
    pub home: PathBuf,
}

impl Files {
    pub fn new() -> Files {
        let dir = tempfile::Builder::new()
            .prefix("rwsetup")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        Files { _dir: dir, home }
    }

    /// A home holding the user's [`SETTINGS`] and [`STATE`].
    pub fn realistic() -> Files {
        let h = Files::new();
        std::fs::write(h.settings(), SETTINGS).unwrap();
        std::fs::write(h.state(), STATE).unwrap();
        h
    }

    pub fn settings(&self) -> PathBuf {
        self.home.join(".claude/settings.json")
    }

    pub fn state(&self) -> PathBuf {
        self.home.join(".claude.json")
    }

    pub fn spool(&self) -> PathBuf {
        self.home.join(".repowire")
    }

    pub fn cmd(&self) -> Command {
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

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs repowire; its stdout, failing the test if it failed.
    pub fn ok(&self, args: &[&str]) -> String {
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
    pub fn fails(&self, args: &[&str]) -> String {
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

    pub fn json(&self, path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Every file under the home (the spool's directories as entries too), with its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
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

    pub fn status_json(&self) -> (Option<i32>, Value) {
        let out = self.run(&["status", "--json"]);
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    }
}

/// `$PATH` without the directories that hold claude, codex, gemini or opencode: `setup` without
/// `--agent` sets up every agent it finds, and the tests decide which ones are there. tmux
/// stays: a directory of its own holds a link to it, for when it sits beside an agent (npm's
/// global bin is `/usr/bin` on some systems).
pub fn path_without_agents() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let tools = super::target_dir().join("tmp/tools-without-agents");
    let tmux = std::env::split_paths(&path)
        .map(|d| d.join("tmux"))
        .find(|t| t.is_file());
    if let Some(tmux) = tmux
        && !tools.join("tmux").exists()
    {
        std::fs::create_dir_all(&tools).unwrap();
        // Another test may have made it meanwhile.
        let _ = std::os::unix::fs::symlink(tmux, tools.join("tmux"));
    }
    let dirs = std::env::split_paths(&path).filter(|d| {
        !["claude", "codex", "gemini", "opencode"]
            .iter()
            .any(|a| d.join(a).exists())
    });
    std::env::join_paths(std::iter::once(tools).chain(dirs)).unwrap()
}

pub fn backup(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.repowire-backup", path.display()))
}

/// JSON text with keys in their order: equal only if the order is too.
pub fn ordered(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// The command of repowire's hook for `event`.
pub fn hook_command(event: &str) -> String {
    format!("{} hook {event}", rw_command())
}

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
