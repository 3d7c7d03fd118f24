//! `config.yaml` in the spool: the few settings a user may want to change. Optional; every key
//! has a default. Unknown keys and bad values are errors that name the line, so a typo is
//! never silently ignored.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Deserializer};

use crate::spool::Spool;

/// The settings, with their defaults filled in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How long `peer ask` and `peer wait` wait for an answer when `--timeout` is not given.
    #[serde(deserialize_with = "duration")]
    pub ask_timeout: Duration,
    /// How long the MCP tool `ask_peer` waits when the agent gives no `timeout_seconds`.
    #[serde(deserialize_with = "duration")]
    pub mcp_ask_timeout: Duration,
    /// How a new peer is named: after its repository (the git top level's directory) or after
    /// the directory the agent started in.
    pub naming: Naming,
    /// Other hosts (ssh destinations) whose peers `peer list --all`, `list_peers` and
    /// `peer broadcast --all` include.
    #[serde(deserialize_with = "hosts")]
    pub remotes: Vec<String>,
    /// How long finished messages, their answers and the history are kept before the daily
    /// housekeeping removes them; zero keeps everything.
    #[serde(deserialize_with = "keep")]
    pub keep: Duration,
    /// What a question to a busy peer does: wait for its turn to end, or answer from a fork of
    /// its session at once.
    pub when_busy: Policy,
    /// What a question to an offline peer does: fail (`wait` for it to come back, by asking
    /// again), or answer from a fork of its last session.
    pub when_offline: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Wait,
    Fork,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::Wait => "wait",
            Policy::Fork => "fork",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    Repository,
    Directory,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            ask_timeout: Duration::from_secs(120),
            mcp_ask_timeout: Duration::from_secs(300),
            naming: Naming::Repository,
            remotes: Vec::new(),
            keep: Duration::from_secs(30 * 86_400),
            when_busy: Policy::Wait,
            when_offline: Policy::Wait,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    crate::time::parse_duration(&s).map_err(serde::de::Error::custom)
}

/// `keep`: a number of days (`30`; `0` keeps everything), or an age (`30d`, `12h`).
fn keep<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Keep {
        Days(u64),
        Age(String),
    }
    match Keep::deserialize(d)? {
        Keep::Days(n) => Ok(Duration::from_secs(n.saturating_mul(86_400))),
        Keep::Age(s) if s.trim() == "0" => Ok(Duration::ZERO),
        Keep::Age(s) => crate::time::parse_age(&s).map_err(serde::de::Error::custom),
    }
}

fn hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let hosts = Vec::<String>::deserialize(d)?;
    for h in &hosts {
        crate::host::validate(h).map_err(serde::de::Error::custom)?;
    }
    Ok(hosts)
}

impl Config {
    /// Reads `config.yaml` from the spool; the defaults when there is none.
    /// It is read as every file of the spool is (see `spool::open_private`): no symlink or
    /// FIFO is followed, and one that others could write is refused, each naming its fix.
    pub fn load(spool: &Spool) -> Result<Config> {
        let path = spool.path("config.yaml");
        let bytes = match crate::spool::read_nofollow(&path, MAX_SIZE) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) if crate::spool::unusable(&e) => return Err(e.into()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
        Config::parse(&text).with_context(|| {
            format!(
                "{} is not valid (`repowire config show` lists the keys and their defaults)",
                path.display()
            )
        })
    }

    fn parse(text: &str) -> Result<Config> {
        // An empty file (or only comments) is an empty mapping, not an error.
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(Config::default());
        }
        // The YAML parser takes quadratic time over deep nesting (100,000 levels: over 20 s),
        // and no setting nests more than two.
        if let Some(line) = nested_deeper_than(text, MAX_DEPTH) {
            bail!("line {line}: it nests more than {MAX_DEPTH} levels deep; no setting does");
        }
        serde_yaml::from_str(text).map_err(|e| located(&e, text))
    }

    /// The settings as commented YAML: every key, what it does, its value and its default.
    /// Valid as a `config.yaml` itself.
    pub fn show(&self) -> String {
        let d = Config::default();
        let naming = |n: Naming| match n {
            Naming::Repository => "repository",
            Naming::Directory => "directory",
        };
        let keys = [
            (
                "How long `repowire peer ask` and `peer wait` wait for an answer without --timeout.",
                "ask_timeout",
                show(self.ask_timeout),
                show(d.ask_timeout),
            ),
            (
                "How long the MCP tool ask_peer waits when the agent gives no timeout_seconds.",
                "mcp_ask_timeout",
                show(self.mcp_ask_timeout),
                show(d.mcp_ask_timeout),
            ),
            (
                "How a new peer is named: repository (the git top level's directory name) or\n# directory (the name of the directory the agent started in).",
                "naming",
                naming(self.naming).to_string(),
                naming(d.naming).to_string(),
            ),
            (
                "Other hosts (ssh destinations, e.g. devbox or me@devbox.example.com) whose peers\n# `peer list --all`, list_peers and `peer broadcast --all` include.",
                "remotes",
                serde_json::to_string(&self.remotes).expect("strings serialize"),
                serde_json::to_string(&d.remotes).expect("strings serialize"),
            ),
            (
                "How long finished messages, their answers and the history are kept (e.g. 30d);\n# the daily housekeeping removes what is older, never an answer nobody has read yet.\n# 0 keeps everything.",
                "keep",
                show_age(self.keep),
                show_age(d.keep),
            ),
            (
                "A question to a busy peer: wait until its turn ends, or fork (answered at once by a\n# read-only fork of its session; costs the tokens of re-reading the session).",
                "when_busy",
                self.when_busy.as_str().to_string(),
                d.when_busy.as_str().to_string(),
            ),
            (
                "A question to an offline peer: wait (refused until it is back), or fork (answered by a\n# read-only fork of its last session).",
                "when_offline",
                self.when_offline.as_str().to_string(),
                d.when_offline.as_str().to_string(),
            ),
        ];
        let mut out = String::new();
        for (doc, key, value, default) in keys {
            out.push_str(&format!("# {doc}\n{key}: {value}"));
            if value != default {
                out.push_str(&format!("  # default: {default}"));
            }
            out.push('\n');
        }
        out
    }
}

/// The error with the line it is about, always: serde_yaml leaves the location out for an
/// error at the very start and for errors of a custom parser (a bad duration).
fn located(e: &serde_yaml::Error, text: &str) -> anyhow::Error {
    let msg = e.to_string();
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    let line = e
        .location()
        .filter(|l| l.index() > 0)
        .map(|l| l.line())
        .or_else(|| {
            // The quoted word of the message (a key or a value) on the line that holds it.
            let word = msg.split(['`', '\'']).nth(1)?;
            Some(text.lines().position(|l| l.contains(word))? + 1)
        })
        .unwrap_or(1);
    anyhow::anyhow!("line {line}: {msg}")
}

fn show_age(d: Duration) -> String {
    if d.is_zero() {
        return "0".into();
    }
    match d.as_secs() {
        s if d.subsec_nanos() == 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ => show(d),
    }
}

/// The largest `config.yaml` read; every setting fits in a few hundred bytes.
const MAX_SIZE: u64 = 64 * 1024;
/// How deep `config.yaml` may nest.
const MAX_DEPTH: usize = 16;

/// The line where `text` first nests deeper than `max` levels, by flow brackets (`[`, `{`)
/// or by indentation, if it does. Quoted strings and comments are skipped.
fn nested_deeper_than(text: &str, max: usize) -> Option<usize> {
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if flow == 0 && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') if prev.is_whitespace() => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow + indents.len() > max {
                        return Some(n + 1);
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
        if flow + indents.len() > max {
            return Some(n + 1);
        }
    }
    None
}

fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_show_keeps_a_keep_of_1ms_not_0() {
        let c = Config::parse("keep: 1ms\n").unwrap();
        assert_eq!(c.keep, Duration::from_millis(1));
        assert!(c.show().contains("\nkeep: 1ms"), "{}", c.show());
        assert_eq!(
            Config::parse(&c.show()).unwrap().keep,
            Duration::from_millis(1)
        );
        let c = Config::parse("keep: 86400001ms\n").unwrap();
        assert_eq!(Config::parse(&c.show()).unwrap().keep, c.keep);
    }

    #[test]
    fn very_deep_yaml_nesting_is_refused_at_once() {
        for deep in [
            format!("remotes: {}{}\n", "[".repeat(30_000), "]".repeat(30_000)),
            format!("keep: {}1{}\n", "{a: ".repeat(20), "}".repeat(20)),
            (0..40)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect(),
        ] {
            let e = format!("{:#}", Config::parse(&deep).unwrap_err());
            assert!(e.contains("nests more than 16 levels"), "{e}");
        }
        // Brackets in a comment are no nesting.
        let c = Config::parse(&format!(
            "remotes: [a, 'b']  # {}\nkeep: 2d\n",
            "[".repeat(40)
        ))
        .unwrap();
        assert_eq!(c.remotes, ["a", "b"]);
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::parse("# nothing\n").unwrap(), Config::default());
        let c = Config::parse("ask_timeout: 5m\nnaming: directory\n").unwrap();
        assert_eq!(c.ask_timeout, Duration::from_secs(300));
        assert_eq!(c.naming, Naming::Directory);
        assert_eq!(c.mcp_ask_timeout, Duration::from_secs(300));
        // What `config show` prints parses back to the same settings.
        assert_eq!(
            Config::parse(&Config::default().show()).unwrap(),
            Config::default()
        );
        assert_eq!(Config::parse(&c.show()).unwrap(), c);
        assert_eq!(Config::default().keep, Duration::from_secs(30 * 86_400));
        assert_eq!(Config::parse("keep: 0\n").unwrap().keep, Duration::ZERO);
        assert_eq!(
            Config::parse("keep: 7\n").unwrap().keep,
            Duration::from_secs(7 * 86_400)
        );
        assert!(format!("{:#}", Config::parse("keep: soon\n").unwrap_err()).contains("line 1"));
        let k = Config::parse("keep: 90d\n").unwrap();
        assert_eq!(k.keep, Duration::from_secs(90 * 86_400));
        assert_eq!(Config::parse(&k.show()).unwrap(), k);
        assert_eq!(
            Config::parse(&Config::parse("keep: 0\n").unwrap().show())
                .unwrap()
                .keep,
            Duration::ZERO
        );
        let r = Config::parse("remotes: [devbox, me@gpu.example.com]\n").unwrap();
        assert_eq!(r.remotes, ["devbox", "me@gpu.example.com"]);
        assert_eq!(Config::parse(&r.show()).unwrap(), r);
        assert!(
            c.show()
                .contains("naming: directory  # default: repository")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = format!(
            "{:#}",
            Config::parse("naming: repository\nask_timout: 5s\n").unwrap_err()
        );
        assert!(
            e.contains("unknown field `ask_timout`") && e.contains("line 2"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            Config::parse("\n\nask_timeout: soon\n").unwrap_err()
        );
        assert!(e.contains("not a duration") && e.contains("line 3"), "{e}");
        let e = format!("{:#}", Config::parse("naming: random\n").unwrap_err());
        assert!(e.contains("line 1"), "{e}");
        let e = format!(
            "{:#}",
            Config::parse("naming: directory\nremotes: [devbox, -oProxyCommand=x]\n").unwrap_err()
        );
        assert!(e.contains("invalid host") && e.contains("line 2"), "{e}");
    }
}
