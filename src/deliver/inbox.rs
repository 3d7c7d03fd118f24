//! The inbox transport: a message posted to the session's own inbox, a Unix stream socket
//! (Claude Code's cross-session messaging, protocol 1; the stand-in agent serves the same).
//! Two lines of JSON: `{"type":"auth","token":T}`, then the message as a user turn
//! `{"type":"user","session_id":S,"message":{"role":"user","content":TEXT}}`. The socket
//! answers nothing: the prompt hook that claims the message is the only receipt.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::json;

use crate::agents::Inbox;
use crate::process;

/// A post that takes longer than this is given up (the session is stuck, not reading).
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Claude Code takes at most about 1 MiB a line.
const MAX_LINE: usize = 1024 * 1024;

/// How a post failed.
#[derive(Debug)]
pub(super) enum Failed {
    /// Before a byte was written: nothing reached the session, another way may be tried.
    NotSent(String),
    /// After: the session may have the message, so it must not be sent again.
    Unsure(String),
}

/// The two lines that post `text` to `inbox`.
pub(super) fn frames(inbox: &Inbox, text: &str) -> Vec<u8> {
    let mut out = json!({"type": "auth", "token": inbox.token}).to_string();
    out.push('\n');
    out += &json!({
        "type": "user",
        "session_id": inbox.session_id,
        "message": {"role": "user", "content": text},
    })
    .to_string();
    out.push('\n');
    out.into_bytes()
}

/// Posts `text` to the session's inbox.
pub(super) fn post(inbox: &Inbox, text: &str) -> Result<(), Failed> {
    let bytes = frames(inbox, text);
    if bytes.len() > MAX_LINE {
        return Err(Failed::NotSent(format!(
            "the message is over the {MAX_LINE} bytes the inbox takes"
        )));
    }
    let shown = inbox.socket.display();
    let mut stream = UnixStream::connect(&inbox.socket)
        .map_err(|e| Failed::NotSent(format!("cannot connect to its inbox {shown}: {e}")))?;
    stream
        .set_write_timeout(Some(POST_TIMEOUT))
        .map_err(|e| Failed::NotSent(format!("cannot use its inbox {shown}: {e}")))?;
    // A write that failed part way may have delivered part or all of it.
    process::write_to_child(&mut stream, &bytes)
        .map_err(|e| Failed::Unsure(format!("posting to its inbox {shown} failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_an_auth_line_then_a_user_turn_with_the_text_as_it_is() {
        let inbox = Inbox {
            socket: "/s.sock".into(),
            token: "0123abcd".into(),
            session_id: "sid".into(),
        };
        let text = "line one\n\"quoted\" \u{241b}[201~ ;";
        let bytes = frames(&inbox, text);
        let lines: Vec<serde_json::Value> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], json!({"type": "auth", "token": "0123abcd"}));
        assert_eq!(lines[1]["type"], "user");
        assert_eq!(lines[1]["session_id"], "sid");
        assert_eq!(lines[1]["message"]["role"], "user");
        assert_eq!(lines[1]["message"]["content"], text);
    }
}
