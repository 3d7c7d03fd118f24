//! What is asked is what arrives. Text is typed into a stand-in agent (which takes it as
//! Claude Code does: key by key, in pieces of 200 bytes) and must reach its prompt byte for
//! byte, whatever sits at the end of a piece: a `;` that tmux would take for the end of a
//! command, a backslash, quotes, tmux key names, wide characters. (Control characters are
//! neutralized first, as GUIDE.md documents: tests/hostile.rs checks that part.)

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::util::{Mesh, body};

/// The text the agent received for a question, from its echo of the prompt (which, as Claude
/// Code does, drops trailing white space).
fn received(m: &Mesh, to: &str, text: &str) -> String {
    let answer = m.rw().args(["peer", "ask", to, "-"]).stdin_text(text).ok();
    let echo = answer
        .strip_prefix("ECHO: ")
        .unwrap_or_else(|| panic!("not an echo: {answer:?}"));
    body(echo).trim_end().to_string()
}

/// `peer ask backend 'run ls;'` arrived as `run ls`: tmux took the `;` ending a piece of
/// typed text for the end of its command. 400 repetitions of `a;` arrived 795 characters long.
#[test]
fn a_text_ending_in_a_semicolon_arrives_whole() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.warm_agent("beta");
    for text in [
        "run ls;".to_string(),
        ";".to_string(),
        "a;".repeat(400),
        // A `;` at the end of every piece, whatever the header's length.
        ";".repeat(1000),
        r"ends in a backslash and a semicolon \;".to_string(),
        r"two \\;".to_string(),
    ] {
        assert_eq!(received(&m, "beta", &text), text, "{} bytes", text.len());
    }
}

/// Random text of the characters that mean something to tmux or a shell, at every position
/// of a piece.
#[test]
fn any_text_arrives_byte_for_byte_at_every_piece_boundary() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.warm_agent("beta");
    let piece = prop_oneof![
        Just(";"),
        Just("\\"),
        Just("\""),
        Just("'"),
        Just(" "),
        Just("a"),
        Just("漢"),
        Just("🙂"),
        Just("Enter"),
        Just("C-c"),
        Just("#{pane_id}"),
        Just("$(x)"),
        Just("\n"),
    ];
    let texts = prop::collection::vec(piece, 1..500)
        .prop_map(|p| p.concat())
        .prop_filter("not blank", |t| !t.trim().is_empty());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&texts, |text| {
            let got = received(&m, "beta", &text);
            if got != text.trim_end() {
                return Err(TestCaseError::fail(format!(
                    "sent {text:?}, received {got:?}"
                )));
            }
            Ok(())
        })
        .unwrap();
}
