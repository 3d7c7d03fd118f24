//! Reading the answer of a turn from a Claude Code transcript, from its end; and reading any
//! agent's JSON-lines file backwards ([`backwards`]).
//!
//! Used when a Stop payload lacks `last_assistant_message` (Claude Code 2.0.x), and when a
//! question's turn ended without its Stop hook storing the answer. A transcript is JSON lines;
//! an assistant message is written one content block per line, all with the same
//! `message.id`. The reader walks lines backwards in blocks, so its cost does not grow with the
//! file, and it stops at the turn's prompt or after [`MAX_SCAN`] bytes: a hook must stay small
//! (see GUIDE.md's figures), so a longer answer is not read at all rather than read in part.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The most of a transcript read from its end.
pub const MAX_SCAN: u64 = 1024 * 1024;
const BLOCK: usize = 64 * 1024;

/// The text of the last assistant message of the last turn, if the transcript has one,
/// waiting up to `patience` for a reply still to be written: Claude Code 2.0.x may run its
/// Stop hook before it appends the turn's reply to the transcript
/// (seen with 2.0.77: the transcript ended with the turn's prompt when the hook read it, and
/// held the reply a few milliseconds later). Only a transcript whose newest conversation line
/// is the person's or a tool's (the reply is due) is waited for.
pub fn reply_of_turn(path: &Path, patience: Duration) -> Option<String> {
    let end = Instant::now() + patience;
    loop {
        match scan(path) {
            Scan::Reply(text) => return Some(text),
            Scan::Nothing => return None,
            Scan::NotYet if Instant::now() >= end => return None,
            Scan::NotYet => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The reply of the turn whose prompt `is_question` picks (the newest such prompt within the
/// last [`MAX_SCAN`] bytes): the text of its last assistant message before the next typed
/// prompt. `None` when there is no such prompt, the turn has no text reply yet, or it was
/// interrupted (Claude Code writes "[Request interrupted by user]" after a turn cut short).
/// For a question whose Stop hook never stored the answer (killed, say), read when the
/// session's next hook runs.
pub fn reply_to(path: &Path, is_question: impl Fn(&str) -> bool) -> Option<String> {
    let mut lines = backwards(path)?;
    // The lines after the question's prompt, newest first.
    let mut after: Vec<Value> = Vec::new();
    loop {
        let v = match serde_json::from_slice::<Value>(&lines.next_line()?) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if v.get("type").and_then(Value::as_str) == Some("user")
            && user_texts(&v).iter().any(|t| is_question(t))
        {
            break;
        }
        after.push(v);
    }
    let mut reply: Option<(Option<String>, Vec<String>)> = None;
    for v in after.iter().rev() {
        match v.get("type").and_then(Value::as_str) {
            Some("user") => {
                if user_texts(v)
                    .iter()
                    .any(|t| t.starts_with("[Request interrupted by user"))
                {
                    return None;
                }
                if v.pointer("/message/content").is_some_and(Value::is_string) {
                    break; // the next typed prompt: the turn is over
                }
            }
            Some("assistant") => {
                let (id, texts) = assistant(v);
                if texts.is_empty() {
                    continue;
                }
                match &mut reply {
                    Some((last, parts)) if *last == id => parts.extend(texts),
                    _ => reply = Some((id, texts)),
                }
            }
            _ => {}
        }
    }
    reply.map(|(_, parts)| parts.join("\n\n"))
}

/// The texts of a user line: its string content, or its text blocks.
fn user_texts(v: &Value) -> Vec<String> {
    text_blocks(v.pointer("/message/content"))
}

/// An assistant line's message id and text blocks.
fn assistant(v: &Value) -> (Option<String>, Vec<String>) {
    let msg = v.get("message");
    let id = msg
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    (id, text_blocks(msg.and_then(|m| m.get("content"))))
}

/// The lines of the file at `path`, newest first; `None` unless it is a regular file. Opened
/// without blocking: opening a FIFO would hang the hook.
pub(super) fn backwards(path: &Path) -> Option<LinesBackwards> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
    LinesBackwards::new(file)
}

/// What the end of a transcript holds.
enum Scan {
    /// The last turn's reply.
    Reply(String),
    /// The newest conversation line is a user line (a prompt, or a tool's result): the reply
    /// has not been written yet.
    NotYet,
    /// Neither (no transcript, no reply within reach, nothing readable).
    Nothing,
}

fn scan(path: &Path) -> Scan {
    let Some(mut lines) = backwards(path) else {
        return Scan::Nothing;
    };
    let mut message_id: Option<String> = None;
    let mut parts: Vec<String> = Vec::new();
    // Whether the message was seen whole: something before it, or the start of the file.
    let mut whole = false;
    while let Some(line) = lines.next_line() {
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            continue; // a line cut by a crash, or not JSON: skip it
        };
        match v.get("type").and_then(Value::as_str) {
            Some("assistant") => {
                let (id, texts) = assistant(&v);
                if message_id.is_some() && id != message_id {
                    whole = true; // an earlier message: the last one is complete
                    break;
                }
                if texts.is_empty() && message_id.is_none() {
                    continue; // e.g. a trailing tool_use block without text
                }
                message_id = id.or(Some(String::new()));
                parts.extend(texts.into_iter().rev());
            }
            // The person's or a tool's line newer than any reply: the reply is still due.
            Some("user") if parts.is_empty() => return Scan::NotYet,
            // A typed prompt (string content) opens the turn: nothing before it belongs to it.
            Some("user") if v.pointer("/message/content").is_some_and(Value::is_string) => {
                whole = true;
                break;
            }
            _ => {}
        }
    }
    if parts.is_empty() || !(whole || lines.at_start()) {
        return Scan::Nothing;
    }
    parts.reverse();
    Scan::Reply(parts.join("\n\n"))
}

fn text_blocks(content: Option<&Value>) -> Vec<String> {
    match content {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Lines of a file from the last to the first, reading at most [`MAX_SCAN`] bytes.
pub(super) struct LinesBackwards {
    file: File,
    /// File offset of `buf[0]`.
    pos: u64,
    /// Bytes not yet returned, a suffix of which may be a partial line.
    buf: Vec<u8>,
    /// How many bytes at the end of `buf` are known to hold no newline: each byte is searched
    /// once, so a file with no line breaks costs a linear scan, not a quadratic one.
    clean: usize,
    floor: u64,
}

impl LinesBackwards {
    fn new(mut file: File) -> Option<Self> {
        let len = file.seek(SeekFrom::End(0)).ok()?;
        Some(LinesBackwards {
            file,
            pos: len,
            buf: Vec::new(),
            clean: 0,
            floor: len.saturating_sub(MAX_SCAN),
        })
    }

    /// Whether every line up to the start of the file was returned.
    fn at_start(&self) -> bool {
        self.pos == 0 && self.buf.is_empty()
    }

    pub(super) fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            // Drop a trailing newline, then split off the last line if its start is known.
            while self.buf.last() == Some(&b'\n') {
                self.buf.pop();
            }
            let unsearched = self.buf.len().saturating_sub(self.clean);
            if let Some(nl) = self.buf[..unsearched].iter().rposition(|&b| b == b'\n') {
                let line = self.buf.split_off(nl + 1);
                self.buf.pop();
                self.clean = 0;
                return Some(line);
            }
            self.clean = self.buf.len();
            if self.pos <= self.floor {
                // Start of the file (or of what we allow ourselves to read): the rest is a
                // whole line only if we reached the real start.
                if self.pos == 0 && !self.buf.is_empty() {
                    return Some(std::mem::take(&mut self.buf));
                }
                return None;
            }
            let n = (self.pos - self.floor).min(BLOCK as u64) as usize;
            let start = self.pos - n as u64;
            let mut chunk = vec![0; n];
            self.file.seek(SeekFrom::Start(start)).ok()?;
            self.file.read_exact(&mut chunk).ok()?;
            chunk.extend_from_slice(&self.buf);
            self.buf = chunk;
            self.pos = start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The reply of the last turn, not waiting for one that is due.
    fn last_assistant_text(path: &Path) -> Option<String> {
        reply_of_turn(path, Duration::ZERO)
    }

    fn transcript(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        f
    }

    #[test]
    fn a_reply_still_due_is_waited_for_a_while_and_no_longer() {
        let mut f = transcript(&[
            r#"{"type":"user","message":{"role":"user","content":"q1"}}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"a1"}]}}"#,
            r#"{"type":"user","message":{"role":"user","content":"q2"}}"#,
        ]);
        // Not an old turn's reply: none yet, and after the patience, none.
        assert_eq!(last_assistant_text(f.path()), None);
        let t = Instant::now();
        assert_eq!(reply_of_turn(f.path(), Duration::from_millis(100)), None);
        assert!(t.elapsed() >= Duration::from_millis(100));
        // Written while the hook waits: that reply.
        let path = f.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writeln!(
                f,
                r#"{{"type":"assistant","message":{{"id":"m2","content":[{{"type":"text","text":"a2"}}]}}}}"#
            )
            .unwrap();
            f
        });
        assert_eq!(
            reply_of_turn(&path, Duration::from_secs(5)).as_deref(),
            Some("a2")
        );
        let f = writer.join().unwrap();
        // A transcript that holds no turn at all is not waited for.
        let empty = transcript(&[r#"{"type":"system"}"#]);
        let t = Instant::now();
        assert_eq!(reply_of_turn(empty.path(), Duration::from_secs(5)), None);
        assert!(t.elapsed() < Duration::from_secs(1));
        drop(f);
    }

    #[test]
    fn the_reply_to_a_question_is_its_turns_last_message() {
        let f = transcript(&[
            r#"{"type":"user","message":{"role":"user","content":"[q] Q1"}}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"a1"}]}}"#,
            r#"{"type":"user","message":{"role":"user","content":"[q] Q2\nbody"}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"let me look"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"tool_use","id":"t"}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"x"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m3","content":[{"type":"text","text":"part 1"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m3","content":[{"type":"text","text":"part 2"}]}}"#,
            r#"{"type":"system","subtype":"stop_hook_summary"}"#,
            r#"{"type":"user","message":{"role":"user","content":"a person's prompt"}}"#,
            r#"{"type":"assistant","message":{"id":"m4","content":[{"type":"text","text":"not it"}]}}"#,
            r#"{"type":"user","message":{"role":"user","content":"[q] Q3"}}"#,
            r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user]"}]}}"#,
        ]);
        let q = |id: &'static str| move |t: &str| t.starts_with(&format!("[q] {id}"));
        assert_eq!(reply_to(f.path(), q("Q1")).as_deref(), Some("a1"));
        assert_eq!(
            reply_to(f.path(), q("Q2")).as_deref(),
            Some("part 1\n\npart 2")
        );
        assert_eq!(reply_to(f.path(), q("Q3")), None, "interrupted");
        assert_eq!(reply_to(f.path(), q("Q9")), None, "no such prompt");
        assert_eq!(reply_to(Path::new("/nonexistent"), q("Q1")), None);
        let pending =
            transcript(&[r#"{"type":"user","message":{"role":"user","content":"[q] Q1"}}"#]);
        assert_eq!(reply_to(pending.path(), q("Q1")), None, "no reply yet");
    }

    #[test]
    fn joins_the_blocks_of_the_last_message() {
        let f = transcript(&[
            r#"{"type":"user","message":{"role":"user","content":"q"}}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"old"}]}}"#,
            r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"x"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"first"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"second"}]}}"#,
            r#"{"type":"system","subtype":"turn_duration"}"#,
        ]);
        assert_eq!(
            last_assistant_text(f.path()).as_deref(),
            Some("first\n\nsecond")
        );
    }

    #[test]
    fn stops_at_the_prompt_and_survives_a_cut_line() {
        let f = transcript(&[
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"previous turn"}]}}"#,
            r#"{"type":"user","message":{"role":"user","content":"new prompt"}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"te"#,
        ]);
        assert_eq!(last_assistant_text(f.path()), None);
        assert_eq!(last_assistant_text(Path::new("/nonexistent/t.jsonl")), None);
    }

    #[test]
    fn an_answer_longer_than_the_scan_is_not_read_in_part() {
        let block = |i: usize| {
            format!(
                r#"{{"type":"assistant","message":{{"id":"m","content":[{{"type":"text","text":"{i}{}"}}]}}}}"#,
                "z".repeat(100_000)
            )
        };
        let lines: Vec<String> = (0..(MAX_SCAN as usize / 100_000 + 2)).map(block).collect();
        let mut all = vec![r#"{"type":"user","message":{"content":"q"}}"#];
        all.extend(lines.iter().map(String::as_str));
        assert_eq!(last_assistant_text(transcript(&all).path()), None);
        // Within the scan, the same message is read whole.
        all.truncate(4);
        let text = last_assistant_text(transcript(&all).path()).unwrap();
        assert!(
            text.starts_with("0z") && text.contains("\n\n2z"),
            "{}",
            &text[..20]
        );
    }

    #[test]
    fn reads_past_block_boundaries() {
        let big = "y".repeat(BLOCK * 2 + 17);
        let line = format!(
            r#"{{"type":"assistant","message":{{"id":"m","content":[{{"type":"text","text":"{big}"}}]}}}}"#
        );
        let f = transcript(&[r#"{"type":"user","message":{"content":"q"}}"#, &line]);
        assert_eq!(last_assistant_text(f.path()), Some(big));
    }

    use proptest::prelude::*;

    /// One line of a generated transcript.
    #[derive(Debug, Clone)]
    enum Entry {
        /// A typed prompt: opens a turn.
        Prompt,
        /// A tool result (a user line whose content is not a string).
        ToolResult,
        /// One content block of assistant message `id`: its text, if it is a text block.
        Assistant(u8, Option<String>),
        /// A line that is not JSON (cut by a crash, or garbage).
        Garbage(String),
        /// Some other record (system, summary).
        Other,
    }

    fn entry() -> impl Strategy<Value = Entry> {
        let text = prop_oneof![
            4 => any::<String>(),
            1 => (0..3 * BLOCK).prop_map(|n| "y".repeat(n)),
        ];
        prop_oneof![
            1 => Just(Entry::Prompt),
            1 => Just(Entry::ToolResult),
            6 => (0..4u8, prop::option::weighted(0.8, text)).prop_map(|(i, t)| Entry::Assistant(i, t)),
            1 => "[^\n]{0,40}".prop_map(|g| Entry::Garbage(format!("{{{g}"))),
            1 => Just(Entry::Other),
        ]
    }

    fn line(e: &Entry) -> String {
        match e {
            Entry::Prompt => r#"{"type":"user","message":{"role":"user","content":"q"}}"#.into(),
            Entry::ToolResult => {
                r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"r"}]}}"#
                    .into()
            }
            Entry::Assistant(id, Some(t)) => serde_json::json!({"type": "assistant",
                "message": {"id": format!("m{id}"), "content": [{"type": "text", "text": t}]}})
            .to_string(),
            Entry::Assistant(id, None) => serde_json::json!({"type": "assistant",
                "message": {"id": format!("m{id}"), "content": [{"type": "tool_use", "id": "t"}]}})
            .to_string(),
            Entry::Garbage(g) => g.clone(),
            Entry::Other => r#"{"type":"system","subtype":"turn_duration"}"#.into(),
        }
    }

    /// What the reader must return, computed forwards: nothing while the newest line is the
    /// person's or a tool's; else in the last turn (after the last typed prompt), the last
    /// assistant message with text, all of its text blocks that come after the previous
    /// message's.
    fn model(entries: &[Entry]) -> Option<String> {
        // The newest conversation line (past tool calls without text) is a user line: the
        // reply is still due, and nothing older is it.
        let newest = entries.iter().rev().find(|e| {
            matches!(
                e,
                Entry::Prompt | Entry::ToolResult | Entry::Assistant(_, Some(_))
            )
        });
        if matches!(newest, Some(Entry::Prompt | Entry::ToolResult)) {
            return None;
        }
        let start = entries
            .iter()
            .rposition(|e| matches!(e, Entry::Prompt))
            .map_or(0, |i| i + 1);
        let turn: Vec<(u8, &Option<String>)> = entries[start..]
            .iter()
            .filter_map(|e| match e {
                Entry::Assistant(id, t) => Some((*id, t)),
                _ => None,
            })
            .collect();
        let last = turn.iter().rposition(|(_, t)| t.is_some())?;
        let id = turn[last].0;
        let first = turn[..=last]
            .iter()
            .rposition(|(i, _)| *i != id)
            .map_or(0, |i| i + 1);
        let parts: Vec<&str> = turn[first..=last]
            .iter()
            .filter_map(|(_, t)| t.as_deref())
            .collect();
        Some(parts.join("\n\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None,
                                            ..ProptestConfig::default() })]

        #[test]
        fn reads_the_last_answer_of_any_transcript(
            entries in prop::collection::vec(entry(), 0..24),
            cut in prop::option::of(0usize..200),
        ) {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            for e in &entries {
                writeln!(f, "{}", line(e)).unwrap();
            }
            // A crash may leave the last line half written: it is skipped.
            if let Some(n) = cut {
                let l = line(&Entry::Assistant(9, Some("never whole".into())));
                f.write_all(&l.as_bytes()[..n.min(l.len() - 1)]).unwrap();
            }
            let got = last_assistant_text(f.path());
            if f.as_file().metadata().unwrap().len() <= MAX_SCAN {
                prop_assert_eq!(got, model(&entries));
            } else {
                // Beyond the scan, it may give up, but never returns a wrong or partial answer.
                prop_assert!(got.is_none() || got == model(&entries));
            }
        }

        #[test]
        fn any_bytes_are_read_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&bytes).unwrap();
            let _ = last_assistant_text(f.path());
        }
    }
}
