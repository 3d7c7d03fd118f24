//! Editing the agents' files, the same for every agent: each change is planned on the file as
//! read, all files are read and checked before any is written, a file is replaced atomically
//! and only if it still holds what was read, the first change keeps a backup, and removing
//! repowire restores the original bytes. Also the JSON shapes the agents share: hook lists
//! (Claude Code, Codex and Gemini CLI write them alike) and `mcpServers` entries.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use serde_json::{Map, Value, json};
use toml_edit::DocumentMut;

use super::{Agent, Event};

/// The MCP server's name in every agent's files; Claude Code's tools are `mcp__repowire__*`.
pub(crate) const MCP_NAME: &str = "repowire";

/// The user's home directory, where most agents keep their files.
pub(crate) fn home_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set, so the agents' files cannot be found"))
}

/// A JSON file's top-level object.
pub(crate) type Object = Map<String, Value>;

pub(crate) const BACKUP_SUFFIX: &str = ".repowire-backup";

/// How often a file that keeps changing under us is read and changed again.
pub(crate) const ATTEMPTS: usize = 5;

/// What repowire puts into the agents' files: commands running this binary.
pub struct Ours {
    pub(crate) exe: String,
}

impl Ours {
    pub(crate) fn current() -> Result<Ours> {
        let exe = std::env::current_exe().context("cannot find the path of this binary")?;
        let exe = exe.into_os_string().into_string().map_err(|p| {
            anyhow!(
                "the path of this binary ({}) is not UTF-8, which Claude Code's JSON files cannot hold; install repowire elsewhere",
                Path::new(&p).display()
            )
        })?;
        Ok(Ours { exe })
    }

    pub(crate) fn exe(&self) -> &str {
        &self.exe
    }

    /// The hook command for `event` of `agent`: the agents run it with `sh -c`.
    pub(crate) fn hook_command(&self, event: Event, agent: Agent) -> String {
        let name = event
            .to_possible_value()
            .expect("hook events are not hidden");
        let cmd = format!("{} hook {}", sh_quote(&self.exe), name.get_name());
        // `--agent` defaults to the default agent.
        if agent == Agent::default() {
            cmd
        } else {
            format!("{cmd} --agent {}", agent.name())
        }
    }

    /// What `claude mcp add -s user repowire -- /abs/repowire mcp` writes.
    pub(crate) fn mcp_server(&self) -> Value {
        json!({"type": "stdio", "command": self.exe, "args": ["mcp"], "env": {}})
    }
}

/// `command args...` of an MCP server entry, for people (OpenCode's `command` is one list of
/// program and arguments).
pub(crate) fn mcp_command_line(entry: &Value) -> String {
    if let Some(words) = entry["command"].as_array() {
        return words
            .iter()
            .map(|w| w.as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut words = vec![entry["command"].as_str().unwrap_or("?").to_string()];
    if let Some(args) = entry["args"].as_array() {
        words.extend(args.iter().map(|a| a.as_str().unwrap_or("?").to_string()));
    }
    words.join(" ")
}

/// One line of what a command changed (or would change) in a file.
pub(crate) struct Change {
    pub(crate) verb: Verb,
    pub(crate) what: String,
}

#[derive(Clone, Copy)]
pub(crate) enum Verb {
    Add,
    Update,
    Remove,
}

impl Change {
    pub(crate) fn new(verb: Verb, what: impl Into<String>) -> Change {
        Change {
            verb,
            what: what.into(),
        }
    }

    pub(crate) fn show(&self, dry_run: bool) -> String {
        let verb = match (self.verb, dry_run) {
            (Verb::Add, false) => "added",
            (Verb::Update, false) => "updated",
            (Verb::Remove, false) => "removed",
            (Verb::Add, true) => "would add",
            (Verb::Update, true) => "would update",
            (Verb::Remove, true) => "would remove",
        };
        format!("{verb} {}", self.what)
    }
}

/// Puts repowire's MCP server `want` into `config[key]` (`mcpServers`; OpenCode's `mcp`):
/// added when missing; when there, its `keys` (what runs) are set and the rest of the entry
/// (an `env` of the user's, say) stays. Says what it changed.
pub(crate) fn set_mcp_server(
    config: &mut Object,
    key: &str,
    want: Value,
    keys: &[&str],
) -> Result<Vec<Change>> {
    let servers = object_at(config, key, key)?;
    let line = mcp_command_line(&want);
    let Some(entry) = servers.get_mut(MCP_NAME) else {
        servers.insert(MCP_NAME.into(), want);
        return Ok(vec![Change::new(
            Verb::Add,
            format!("MCP server {MCP_NAME}: {line}"),
        )]);
    };
    let Some(field) = keys.iter().find(|k| entry.get(**k) != want.get(**k)) else {
        return Ok(Vec::new());
    };
    let old = mcp_command_line(entry);
    match entry.as_object_mut() {
        Some(e) => {
            for k in keys {
                e.insert((*k).into(), want[*k].clone());
            }
        }
        None => *entry = want,
    }
    let what = if old == line {
        format!("MCP server {MCP_NAME}: its {field}")
    } else {
        format!("MCP server {MCP_NAME}: {old} → {line}")
    };
    Ok(vec![Change::new(Verb::Update, what)])
}

/// Removes repowire's MCP server from `state[key]` (`mcpServers`; OpenCode's `mcp`).
pub(crate) fn unregister_mcp(
    state: &mut Object,
    key: &str,
    before: Option<&Object>,
) -> Result<Vec<Change>> {
    let Some(servers) = state.get_mut(key).and_then(Value::as_object_mut) else {
        return Ok(Vec::new());
    };
    let Some(entry) = servers.shift_remove(MCP_NAME) else {
        return Ok(Vec::new());
    };
    prune(state, key, before);
    Ok(vec![Change::new(
        Verb::Remove,
        format!("MCP server {MCP_NAME}: {}", mcp_command_line(&entry)),
    )])
}

/// Removes `map[key]` if it is an empty list or object that `before` (the file as it was
/// before setup first changed it) did not have: a container setup created, now emptied.
pub(crate) fn prune(map: &mut Object, key: &str, before: Option<&Object>) {
    let empty = match map.get(key) {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    if empty && !before.is_some_and(|b| b.contains_key(key)) {
        map.shift_remove(key);
    }
}

/// `map[key]` as an object, created if missing; an error naming `path` if it is not one.
pub(crate) fn object_at<'a>(map: &'a mut Object, key: &str, path: &str) -> Result<&'a mut Object> {
    let v = map.entry(key).or_insert_with(|| json!({}));
    let kind = kind_of(v);
    v.as_object_mut()
        .ok_or_else(|| anyhow!("`{path}` is {kind}, where the agent expects an object"))
}

/// `map[key]` as a list, created if missing; an error naming `path` if it is not one.
pub(crate) fn array_at<'a>(
    map: &'a mut Object,
    key: &str,
    path: &str,
) -> Result<&'a mut Vec<Value>> {
    let v = map.entry(key).or_insert_with(|| json!([]));
    let kind = kind_of(v);
    v.as_array_mut()
        .ok_or_else(|| anyhow!("`{path}` is {kind}, where the agent expects a list"))
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What an edit does to a file's top-level object, given the file as it was before setup
/// first changed it (its backup), if known: it says what it changed.
pub(crate) type Apply<'a> = dyn Fn(&mut Object, Option<&Object>) -> Result<Vec<Change>> + 'a;
/// The same for a TOML file (Codex's `config.toml`).
pub(crate) type ApplyToml<'a> =
    dyn Fn(&mut DocumentMut, Option<&DocumentMut>) -> Result<Vec<Change>> + 'a;

/// The same for a file repowire writes whole (OpenCode's plugin): given the file's text (`None`:
/// no such file), the text it must hold (`None`: no file) and what that changes.
pub(crate) type ApplyWhole<'a> = dyn Fn(Option<&str>) -> Result<(Option<String>, Vec<Change>)> + 'a;

/// A change to one file.
pub struct Edit<'a> {
    pub(crate) path: PathBuf,
    pub(crate) apply: Applier<'a>,
    /// What setup tells the user when this edit changes the file.
    pub(crate) note: Option<&'static str>,
}

pub(crate) enum Applier<'a> {
    Json(Box<Apply<'a>>),
    Toml(Box<ApplyToml<'a>>),
    /// A file of repowire's own: written whole, no backup kept.
    Whole(Box<ApplyWhole<'a>>),
}

impl<'a> Edit<'a> {
    pub(crate) fn new(
        path: PathBuf,
        apply: impl Fn(&mut Object, Option<&Object>) -> Result<Vec<Change>> + 'a,
    ) -> Edit<'a> {
        Edit {
            path,
            apply: Applier::Json(Box::new(apply)),
            note: None,
        }
    }

    pub(crate) fn toml(
        path: PathBuf,
        apply: impl Fn(&mut DocumentMut, Option<&DocumentMut>) -> Result<Vec<Change>> + 'a,
    ) -> Edit<'a> {
        Edit {
            path,
            apply: Applier::Toml(Box::new(apply)),
            note: None,
        }
    }

    pub(crate) fn whole(
        path: PathBuf,
        apply: impl Fn(Option<&str>) -> Result<(Option<String>, Vec<Change>)> + 'a,
    ) -> Edit<'a> {
        Edit {
            path,
            apply: Applier::Whole(Box::new(apply)),
            note: None,
        }
    }

    /// Tells the user `note` when this edit changes the file.
    pub(crate) fn note(self, note: &'static str) -> Edit<'a> {
        Edit {
            note: Some(note),
            ..self
        }
    }
}

/// An edit worked out on the file as read, not yet written.
pub(crate) struct Plan {
    /// The file actually written: the path, or where it links to.
    pub(crate) target: PathBuf,
    /// The file's bytes as read (`None`: no such file).
    pub(crate) before: Option<Vec<u8>>,
    /// The bytes to write (`None`: delete the file).
    pub(crate) after: Option<Vec<u8>>,
    pub(crate) changes: Vec<Change>,
    /// `after` is the backup, which then goes.
    pub(crate) restores_backup: bool,
    /// The file is the user's: its first change keeps the original (not so for a file
    /// repowire writes whole).
    pub(crate) keeps_backup: bool,
}

pub(crate) fn backup_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(BACKUP_SUFFIX);
    PathBuf::from(p)
}

/// Reads every file and works out every edit, so that nothing is written unless all of them
/// can be done.
pub(crate) fn plan_all(edits: &[Edit]) -> Result<Vec<Plan>> {
    edits
        .iter()
        .map(|e| {
            plan(e).map_err(|err| {
                err.context("nothing was changed; fix that and run the command again")
            })
        })
        .collect()
}

pub(crate) fn plan(edit: &Edit) -> Result<Plan> {
    let path = edit.path.as_path();
    let target = resolve(path)?;
    let before = read_opt(&target)?;
    let backup_bytes = read_opt(&backup_path(path))?;
    // A backup that no longer parses is no guide to what the user had: ignore it.
    let (changes, after, restores_backup) = match &edit.apply {
        Applier::Json(apply) => {
            let mut value = parse_object(path, before.as_deref())?;
            let backup =
                backup_bytes.and_then(|b| parse_object(path, Some(&b)).ok().map(|v| (b, v)));
            let changes = apply(&mut value, backup.as_ref().map(|(_, v)| v))
                .with_context(|| format!("cannot change {}", path.display()))?;
            match backup {
                _ if changes.is_empty() => (changes, before.clone(), false),
                Some((bytes, old)) if old == value => (changes, Some(bytes), true),
                // Nothing but repowire's entries was in it, and no backup says the user had
                // the file before: it goes, as it was before setup.
                None if value.is_empty() => (changes, None, false),
                _ => {
                    let after = render(&value, before.as_deref());
                    (changes, Some(after), false)
                }
            }
        }
        Applier::Toml(apply) => {
            let mut doc = parse_toml(path, before.as_deref())?;
            let backup = backup_bytes.and_then(|b| parse_toml(path, Some(&b)).ok().map(|d| (b, d)));
            let changes = apply(&mut doc, backup.as_ref().map(|(_, d)| d))
                .with_context(|| format!("cannot change {}", path.display()))?;
            let text = doc.to_string();
            match backup {
                _ if changes.is_empty() => (changes, before.clone(), false),
                Some((bytes, old)) if old.to_string() == text => (changes, Some(bytes), true),
                None if text.trim().is_empty() => (changes, None, false),
                _ => (changes, Some(text.into_bytes()), false),
            }
        }
        Applier::Whole(apply) => {
            let text = before
                .as_deref()
                .map(|b| {
                    std::str::from_utf8(b).map_err(|_| {
                        anyhow!("{} is not UTF-8 text; fix or remove it", path.display())
                    })
                })
                .transpose()?;
            let (after, changes) =
                apply(text).with_context(|| format!("cannot change {}", path.display()))?;
            (changes, after.map(String::into_bytes), false)
        }
    };
    Ok(Plan {
        target,
        before,
        after,
        changes,
        restores_backup,
        keeps_backup: !matches!(edit.apply, Applier::Whole(_)),
    })
}

/// Parses a TOML file (`bytes`, `None`: missing) keeping its formatting; an error names the
/// file and the line.
pub(crate) fn parse_toml(path: &Path, bytes: Option<&[u8]>) -> Result<DocumentMut> {
    let Some(bytes) = bytes else {
        return Ok(DocumentMut::new());
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow!("{} is not UTF-8 text; fix or remove it", path.display()))?;
    text.parse::<DocumentMut>().map_err(|e| {
        let msg = e.to_string();
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(0);
        anyhow!(
            "{}:{line}: not valid TOML; Codex cannot read it either. Fix it at line {line}:\n{}",
            path.display(),
            msg.trim_end()
        )
    })
}

/// As Claude Code writes its files: pretty-printed with two-space indents (the original's
/// final newline kept, or its absence).
pub(crate) fn render(value: &Object, before: Option<&[u8]>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    if before.is_none_or(|b| b.ends_with(b"\n")) {
        bytes.push(b'\n');
    }
    bytes
}

/// Writes every plan (or, for a dry run, only says what it would change). Returns whether
/// any file changed.
pub(crate) fn commit_all(edits: &[Edit], plans: Vec<Plan>, dry_run: bool) -> Result<bool> {
    let mut changed = false;
    for (edit, plan) in edits.iter().zip(plans) {
        let (plan, backup) = if dry_run {
            (plan, None)
        } else {
            commit(edit, plan)?
        };
        report(&edit.path, &plan, backup.as_deref(), dry_run);
        changed |= !plan.changes.is_empty();
    }
    Ok(changed)
}

pub(crate) fn report(path: &Path, plan: &Plan, backup: Option<&Path>, dry_run: bool) {
    if plan.changes.is_empty() {
        println!("{}: up to date", path.display());
        return;
    }
    let (restore, delete) = match dry_run {
        false => ("restored", "deleted"),
        true => ("to be restored", "to be deleted"),
    };
    let note = match (plan.restores_backup, plan.after.is_none(), backup) {
        (true, _, _) => format!(
            ", {restore} byte for byte from {}",
            backup_path(path).display()
        ),
        (_, true, _) => format!(", {delete}: nothing else is in it"),
        (_, _, Some(b)) => format!(", the original kept in {}", b.display()),
        _ => String::new(),
    };
    println!("{}{note}:", path.display());
    for c in &plan.changes {
        println!("  {}", c.show(dry_run));
    }
}

/// Writes one plan, working it out again if the file changed since it was read. Returns the
/// plan written and the backup made now, if any.
pub(crate) fn commit(edit: &Edit, first: Plan) -> Result<(Plan, Option<PathBuf>)> {
    let mut p = first;
    for _ in 0..ATTEMPTS {
        if p.after == p.before {
            return Ok((p, None));
        }
        match write(&edit.path, &p)? {
            Written::Done(backup) => return Ok((p, backup)),
            Written::Raced => p = plan(edit)?,
        }
    }
    bail!(
        "{} kept changing while repowire tried to update it; quit the agent and run the command again",
        edit.path.display()
    )
}

/// What [`write`] did.
#[derive(Debug, PartialEq)]
pub(crate) enum Written {
    /// Nothing: the file changed since the plan was made.
    Raced,
    /// Replaced the file; the backup made now, if any.
    Done(Option<PathBuf>),
}

/// Replaces the file atomically, if it still holds what the plan was made from.
pub(crate) fn write(path: &Path, plan: &Plan) -> Result<Written> {
    let dir = plan.target.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let staged = match &plan.after {
        Some(bytes) => Some(stage(&plan.target, bytes)?),
        None => None,
    };
    // The staging took a while; Claude Code may have rewritten the file meanwhile, and
    // renaming over that would lose its change. (The window left is the rename itself.)
    if read_opt(&plan.target)? != plan.before {
        return Ok(Written::Raced);
    }
    let backup = backup_path(path);
    let made = match &plan.before {
        // (A file deleted held nothing but repowire's entries: nothing to keep.)
        Some(original) if plan.keeps_backup && !plan.restores_backup && plan.after.is_some() => {
            write_backup(&backup, original)?.then_some(backup.clone())
        }
        _ => None,
    };
    let what = || format!("cannot write {}", plan.target.display());
    match staged {
        Some(tmp) => {
            tmp.persist(&plan.target)
                .map_err(|e| e.error)
                .with_context(what)?;
        }
        None => fs::remove_file(&plan.target).with_context(what)?,
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(what)?;
    if plan.restores_backup {
        fs::remove_file(&backup).with_context(|| format!("cannot remove {}", backup.display()))?;
    }
    Ok(Written::Done(made))
}

/// A temporary file beside `target` holding `bytes`, fsynced, with `target`'s permissions
/// (0600 for a new file).
pub(crate) fn stage(target: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let what = || format!("cannot write a temporary file in {}", dir.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".repowire-")
        .tempfile_in(dir)
        .with_context(what)?;
    if let Ok(md) = fs::metadata(target) {
        tmp.as_file()
            .set_permissions(md.permissions())
            .with_context(what)?;
    }
    tmp.write_all(bytes).with_context(what)?;
    tmp.as_file().sync_all().with_context(what)?;
    Ok(tmp)
}

/// Saves `original` as the backup unless there is one already (only the first change is
/// backed up). Returns whether it made one.
pub(crate) fn write_backup(backup: &Path, original: &[u8]) -> Result<bool> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(backup);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", backup.display())),
    };
    file.write_all(original)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", backup.display()))?;
    Ok(true)
}

/// The file to read and replace for `path`: where it links to, if it is a symbolic link
/// (as with a dotfiles repository), so the link stays a link.
pub(crate) fn resolve(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => fs::canonicalize(path).with_context(|| {
            format!(
                "{} is a symbolic link to a file that does not exist; fix or remove the link",
                path.display()
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// A file's bytes; `None` if it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Reads an agent's JSON file's top-level object: empty if the file does not exist.
pub(crate) fn read_object(path: &Path) -> Result<Object> {
    parse_object(path, read_opt(&resolve(path)?)?.as_deref())
}

/// Parses an agent's JSON file (`bytes`, `None`: missing); an error names the file, the
/// line and the column.
pub(crate) fn parse_object(path: &Path, bytes: Option<&[u8]>) -> Result<Object> {
    let Some(bytes) = bytes.filter(|b| !b.trim_ascii().is_empty()) else {
        return Ok(Map::new());
    };
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(v) => bail!(
            "{} holds {}, not a JSON object as the agent expects; fix or remove it",
            path.display(),
            kind_of(&v)
        ),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            bail!(
                "{}:{}:{}: not valid JSON ({msg}); the agent cannot read it either. Fix it at line {}, column {}",
                path.display(),
                e.line(),
                e.column(),
                e.line(),
                e.column()
            )
        }
    }
}

/// A word for `sh`: quoted unless it is plainly safe.
pub(crate) fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@%,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The words of a simple `sh` command line: quotes and backslashes as `sh` reads them;
/// anything fancier (`$`, `;`) is taken literally, which is enough to tell a repowire hook.
pub(crate) fn sh_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => w.push(n),
                            Some(n) => w.extend(['\\', n]),
                            None => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_sh_only_where_needed() {
        for (word, quoted) in [
            ("/usr/bin/repowire", "/usr/bin/repowire"),
            ("a-b_c.d+e=f:g@h%i,j", "a-b_c.d+e=f:g@h%i,j"),
            ("", "''"),
            ("/opt/my tools/repowire", "'/opt/my tools/repowire'"),
            ("/it's", r"'/it'\''s'"),
            ("$x", "'$x'"),
            ("a;b", "'a;b'"),
            ("~/x", "'~/x'"),
        ] {
            assert_eq!(sh_quote(word), quoted, "{word:?}");
        }
    }

    #[test]
    fn shell_words_round_trip_quoting() {
        for path in [
            "/usr/bin/repowire",
            "/opt/my tools/repowire",
            "/it's/repowire",
            "/a\"b/$x/repowire",
        ] {
            let line = format!("{} hook stop", sh_quote(path));
            assert_eq!(sh_words(&line), [path, "hook", "stop"], "{line}");
        }
        assert_eq!(
            sh_words(r#"a\ b "c \"d\"" 'e''f'"#),
            ["a b", "c \"d\"", "ef"]
        );
    }

    #[test]
    fn a_file_rewritten_since_it_was_read_is_changed_again_not_overwritten() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(".claude.json");
        fs::write(&path, br#"{"numStartups": 1}"#).unwrap();
        let ours = Ours {
            exe: "/x/repowire".into(),
        };
        let edit = Edit::new(path.clone(), |m, _| {
            set_mcp_server(
                m,
                "mcpServers",
                ours.mcp_server(),
                &["type", "command", "args"],
            )
        });
        let first = plan(&edit).unwrap();
        // Claude Code rewrites the file between our read and our rename.
        fs::write(&path, br#"{"numStartups": 2}"#).unwrap();
        assert_eq!(write(&path, &first).unwrap(), Written::Raced);
        assert_eq!(fs::read(&path).unwrap(), br#"{"numStartups": 2}"#);

        let (_, backup) = commit(&edit, first).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["numStartups"], 2);
        assert_eq!(v["mcpServers"]["repowire"]["command"], "/x/repowire");
        assert_eq!(backup, Some(backup_path(&path)));
        assert_eq!(
            fs::read(backup_path(&path)).unwrap(),
            br#"{"numStartups": 2}"#
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2);
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let e = parse_object(Path::new("/h/settings.json"), Some(b"{\n  \"a\": 1,\n}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/h/settings.json:3:1: not valid JSON"), "{e}");
        assert!(e.contains("line 3, column 1"), "{e}");
        let e = parse_object(Path::new("/h/x.json"), Some(b"[]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds a list"), "{e}");
        assert!(
            parse_object(Path::new("/h/x.json"), Some(b" \n"))
                .unwrap()
                .is_empty()
        );
    }
}
