//! The real-client rows: asks to a real Claude Code session (the pinned release, driven by the
//! tests' own driver, `tests/util/claude_code.rs`) on the fake model API, and how much of each
//! round trip is Claude Code's own turn (its UserPromptSubmit to its Stop hook, as the
//! sessions' hook logger timed them) and how much is repowire's.

use std::time::Duration;

use serde_json::json;

use super::claude_code::{Claude, ClaudeCode, LAST_WITHOUT_AN_INBOX, PINNED, need_claude};
use super::util::{eventually, unix_now};
use super::{Bench, Samples};

pub fn claude_figures(b: &mut Bench) {
    // The pinned release is posted to through its inbox; the last one without an inbox is
    // typed into.
    for (version, via, target) in [
        (PINNED, "inbox", "≤ 30 ms median"),
        (LAST_WITHOUT_AN_INBOX, "tmux", "≤ 100 ms median"),
    ] {
        if let Some(claude) = need_claude(version) {
            turn_figures(b, &claude, via, target);
        }
    }
}

fn turn_figures(b: &mut Bench, claude: &ClaudeCode, via: &str, target: &str) {
    let cc = Claude::start(claude, json!({}), json!({}));
    assert_eq!(cc.peer("beta")["transport"], via);
    cc.ask("beta", "REPLY warm");
    let (mut trips, mut turns, mut ours, mut handed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..b.n(20).max(6) {
        let t0 = unix_now();
        let (answer, took) = cc.ask("beta", &format!("REPLY answer {i}"));
        assert_eq!(answer, format!("answer {i}"));
        // The hook logger writes a moment after repowire's own hook.
        let after = |event: &str, t: f64| {
            cc.hooks("beta", event)
                .into_iter()
                .map(|(ts, _)| ts)
                .find(|ts| *ts > t)
        };
        eventually(Duration::from_secs(10), || {
            after("UserPromptSubmit", t0).is_some_and(|u| after("Stop", u).is_some())
        });
        let submitted = after("UserPromptSubmit", t0).expect("a UserPromptSubmit hook ran");
        let stopped = after("Stop", submitted).expect("a Stop hook ran");
        let trip = took.as_secs_f64() * 1e3;
        let turn = (stopped - submitted) * 1e3;
        let id = cc.last_sent("user", "beta");
        let delivered = cc
            .events_of(&id)
            .into_iter()
            .find(|(e, _)| e == "delivered")
            .and_then(|(_, e)| e["ts_ms"].as_f64())
            .expect("a delivered entry");
        handed.push(submitted * 1e3 - delivered);
        trips.push(trip);
        turns.push(turn);
        ours.push(trip - turn);
    }
    let (trips, turns, ours, handed) = (
        Samples(trips),
        Samples(turns),
        Samples(ours),
        Samples(handed),
    );
    let v = &claude.version;
    b.row(
        &format!("`peer ask` to a real Claude Code {v} session ({via}, fake API), round trip"),
        "(explains the line below)",
        format!("{:.0} ms median", trips.median()),
        trips.spread("ms"),
    );
    b.row(
        "of which Claude Code's own turn (UserPromptSubmit hook to Stop hook)",
        "(explains the line below)",
        format!("{:.0} ms median", turns.median()),
        turns.spread("ms"),
    );
    b.row(
        &format!(
            "of what follows, from `delivered` to its UserPromptSubmit hook ({})",
            if via == "inbox" {
                "the post, then Claude Code starting the turn"
            } else {
                "repowire typing, then Claude Code reading it"
            }
        ),
        "(explains the line below)",
        format!("{:.0} ms median", handed.median()),
        handed.spread("ms"),
    );
    b.row(
        &format!(
            "what repowire adds to a real Claude Code turn through {via} (round trip − its turn)"
        ),
        target,
        format!("{:.0} ms median", ours.median()),
        ours.spread("ms"),
    );
}
