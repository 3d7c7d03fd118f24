//! A peer's one-line description: what a person wrote for it (the team file, `peer describe`,
//! `register_peer`), checked here, or by default the first line of prose of its repository's
//! CLAUDE.md, AGENTS.md or README.md. Agents read it in `list_peers` to choose whom to ask, so
//! it is one short line of plain text, whatever the file holds.

use std::io::Read;
use std::path::Path;

/// The longest description, in characters. One made from a file is cut at a word to this.
pub const MAX_CHARS: usize = 100;

/// The files a description is taken from, first found first.
const FILES: [&str; 3] = ["CLAUDE.md", "AGENTS.md", "README.md"];

/// How much of a file is read: the first prose line is near the top.
const READ_AT_MOST: u64 = 64 * 1024;

/// Checks a description a person gave: one line, no control characters, at most
/// [`MAX_CHARS`]. Surrounding blanks are dropped. The error says what to change.
pub fn check(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err(
            "a description is one line of text: no line breaks, tabs or control characters".into(),
        );
    }
    let n = text.chars().count();
    if n > MAX_CHARS {
        return Err(format!(
            "the description is {n} characters; keep it to {MAX_CHARS} (one line that says what the peer knows)"
        ));
    }
    Ok(text.to_string())
}

/// The first line of prose of the first of CLAUDE.md, AGENTS.md and README.md in `dir` that
/// has one: headings, badges, HTML, tables, code blocks and front matter are skipped, Markdown
/// markup is removed, and it is cut to [`MAX_CHARS`].
pub fn of_repository(dir: &Path) -> Option<String> {
    FILES.iter().find_map(|f| {
        let mut text = String::new();
        let file = std::fs::File::open(dir.join(f)).ok()?;
        // Not valid UTF-8 (or cut inside a character): what was read up to there still counts.
        let mut bytes = Vec::new();
        file.take(READ_AT_MOST).read_to_end(&mut bytes).ok()?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        first_prose(&text)
    })
}

/// The first line of prose in Markdown `text`, cleaned and cut; `None` if there is none.
fn first_prose(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    // YAML front matter.
    if lines.first().is_some_and(|l| l.trim() == "---") {
        i = lines[1..]
            .iter()
            .position(|l| l.trim() == "---")
            .map_or(lines.len(), |end| end + 2);
    }
    let mut fence: Option<&str> = None;
    let mut in_html_comment = false;
    while i < lines.len() {
        let line = lines[i].trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        i += 1;
        if let Some(f) = fence {
            if line.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if in_html_comment {
            in_html_comment = !line.contains("-->");
            continue;
        }
        if line.starts_with("```") || line.starts_with("~~~") {
            fence = Some(&line[..3]);
            continue;
        }
        if line.starts_with("<!--") {
            in_html_comment = !line.contains("-->");
            continue;
        }
        // A setext heading: the line above its row of = or -.
        let underline =
            |l: &str| !l.is_empty() && (l.chars().all(|c| c == '=') || l.chars().all(|c| c == '-'));
        if underline(next) {
            i += 1;
            continue;
        }
        let skip = line.is_empty()
            || line.starts_with('#')
            || line.starts_with('<')
            || line.starts_with('|')
            || line.starts_with("![")
            || line.starts_with("[![")
            || underline(line);
        if skip {
            continue;
        }
        let cleaned = clean(line.trim_start_matches(['>', ' ']));
        if cleaned.chars().any(char::is_alphanumeric) {
            return Some(cut(&cleaned));
        }
    }
    None
}

/// `line` without Markdown markup (links keep their text) and without control characters.
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        // [text](url) → text
        if c == '['
            && let Some(close) = rest.find("](")
            && let Some(end) = rest[close..].find(')')
        {
            out.push_str(&clean(&rest[1..close]));
            rest = &rest[close + end + 1..];
            continue;
        }
        if !matches!(c, '*' | '`') {
            out.push(if c.is_control() { ' ' } else { c });
        }
        rest = &rest[c.len_utf8()..];
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to [`MAX_CHARS`] at a word, marked with `…` when cut.
fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_CHARS - 1).collect();
    let at = head
        .rfind(' ')
        .filter(|&i| i > MAX_CHARS / 2)
        .unwrap_or(head.len());
    format!("{}…", head[..at].trim_end_matches([' ', ',', ';', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_prose_line_of_a_readme() {
        let readme = "---\ntitle: x\n---\n# backend\n\n[![CI](https://ci/badge.svg)](https://ci)\n<p align=\"center\"><img src=\"x\"></p>\n<!-- a\ncomment -->\n```sh\nmake run\n```\n\nThe **users** and `orders` API, see [the docs](https://docs).\nMore.\n";
        assert_eq!(
            first_prose(readme).as_deref(),
            Some("The users and orders API, see the docs.")
        );
        assert_eq!(
            first_prose("Backend\n=======\n\n> Serves snake_case ids.\n").as_deref(),
            Some("Serves snake_case ids.")
        );
        assert_eq!(first_prose("# only\n\n## headings\n| a | b |\n"), None);
        assert_eq!(first_prose(""), None);
    }

    #[test]
    fn long_lines_are_cut_at_a_word_and_controls_go() {
        let long = "word ".repeat(40);
        let d = first_prose(&long).unwrap();
        assert!(d.chars().count() <= MAX_CHARS, "{d}");
        assert!(d.ends_with("word…"), "{d}");
        assert_eq!(clean("a\u{1b}[31mb\u{7}c"), "a [31mb c");
    }

    #[test]
    fn files_in_their_order() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(of_repository(t.path()), None);
        std::fs::write(t.path().join("README.md"), "# r\nFrom the README.\n").unwrap();
        assert_eq!(of_repository(t.path()).as_deref(), Some("From the README."));
        std::fs::write(t.path().join("AGENTS.md"), "# a\n\n").unwrap();
        assert_eq!(of_repository(t.path()).as_deref(), Some("From the README."));
        std::fs::write(t.path().join("CLAUDE.md"), "From CLAUDE.md.\n").unwrap();
        assert_eq!(of_repository(t.path()).as_deref(), Some("From CLAUDE.md."));
        std::fs::write(t.path().join("CLAUDE.md"), b"Bytes \xff ok.\n").unwrap();
        assert_eq!(
            of_repository(t.path()).as_deref(),
            Some("Bytes \u{fffd} ok.")
        );
    }

    #[test]
    fn given_descriptions_are_checked() {
        assert_eq!(check("  users API ").unwrap(), "users API");
        assert!(check("a\nb").is_err());
        assert!(check(&"x".repeat(MAX_CHARS + 1)).is_err());
        assert_eq!(check("").unwrap(), "");
    }
}
