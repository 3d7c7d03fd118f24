//! The lines between the client and rmcp. Every line the client sends is answered: one that is
//! no JSON at all (not UTF-8, a NUL byte, cut short) or one longer than [`MAX_LINE`] gets its
//! JSON-RPC error here, which rmcp would not send; every other line goes on to rmcp, which
//! answers requests it cannot take with `Invalid request` itself. Output is written whole
//! lines at a time, whoever writes them, so the two never interleave.

use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest line read: a request holds at most a question of 32 KiB (`MAX_TEXT`), with
/// room for escaping.
pub const MAX_LINE: usize = 1024 * 1024;

/// What rmcp reads: the client's lines that are JSON.
pub struct Input {
    lines: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    at: usize,
}

/// What rmcp writes, passed on a whole line at a time.
pub struct Output {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    partial: Vec<u8>,
}

/// The tasks that read stdin and write stdout for rmcp.
pub struct Pumps {
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

/// Starts reading stdin and writing stdout; `closing` is cancelled when stdin ends.
pub fn start(closing: CancellationToken) -> (Input, Output, Pumps) {
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let errors = out_tx.clone();
    let reader = tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            match read_line(&mut stdin, &mut line).await {
                Ok(Some(Line::Whole)) => {}
                Ok(Some(Line::TooLong)) => {
                    let _ = errors.send(error_line(
                        -32600,
                        &format!(
                            "Invalid request: a message of over {} bytes (the limit of one line); send a shorter one",
                            MAX_LINE
                        ),
                    ));
                    continue;
                }
                Ok(None) | Err(_) => break,
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // As a whole value: a string with a lone surrogate escape is no JSON rmcp can take.
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&line) {
                let why = if std::str::from_utf8(&line).is_err() {
                    "the line is not UTF-8 text".to_string()
                } else if line.contains(&0) {
                    "the line holds a NUL byte".to_string()
                } else {
                    format!("the line is not JSON ({e})")
                };
                let _ = errors.send(error_line(-32700, &format!("Parse error: {why}")));
                continue;
            }
            line.push(b'\n');
            if in_tx.send(std::mem::take(&mut line)).await.is_err() {
                break;
            }
        }
        // The end of stdin: calls still waiting end at once (rmcp would give them seconds to
        // answer a client that is gone).
        closing.cancel();
    });
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out_rx.recv().await {
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let input = Input {
        lines: in_rx,
        pending: Vec::new(),
        at: 0,
    };
    let output = Output {
        lines: out_tx,
        partial: Vec::new(),
    };
    (input, output, Pumps { reader, writer })
}

impl Pumps {
    /// Stops reading and writes out what is left to write (rmcp's last replies), giving up
    /// when stdout takes no more for a while.
    pub async fn finish(self) {
        self.reader.abort();
        let _ = self.reader.await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.writer).await;
    }
}

enum Line {
    Whole,
    /// Over [`MAX_LINE`]: read to its end and dropped.
    TooLong,
}

/// Reads the next line (without its `\n`) into `line`; `None` at the end of the input.
async fn read_line<R: AsyncBufReadExt + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<Option<Line>> {
    line.clear();
    let mut too_long = false;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Some(Line::TooLong),
                (false, true) => None,
                (false, false) => Some(Line::Whole),
            });
        }
        let (chunk, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long && line.len() + chunk.len() > MAX_LINE {
            too_long = true;
            line.clear();
        }
        if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = end.unwrap_or(buf.len());
        input.consume(used);
        if end.is_some() {
            return Ok(Some(if too_long { Line::TooLong } else { Line::Whole }));
        }
    }
}

/// A JSON-RPC error reply to a message whose id could not be read.
fn error_line(code: i64, message: &str) -> Vec<u8> {
    let mut line =
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
            .to_string()
            .into_bytes();
    line.push(b'\n');
    line
}

impl AsyncRead for Input {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at == self.pending.len() {
            match ready!(self.lines.poll_recv(cx)) {
                Some(line) => {
                    self.pending = line;
                    self.at = 0;
                }
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = buf.remaining().min(self.pending.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.pending[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Output {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.partial.extend_from_slice(buf);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            if self.lines.send(line).is_err() {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            let _ = self.lines.send(rest);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_whole_and_an_overlong_one_is_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let long = vec![b'x'; MAX_LINE + 10];
            let mut input: Vec<u8> = b"{\"a\":1}\n".to_vec();
            input.extend_from_slice(&long);
            input.extend_from_slice(b"\nlast");
            let mut r = BufReader::with_capacity(1000, &input[..]);
            let mut line = Vec::new();
            assert!(matches!(
                read_line(&mut r, &mut line).await,
                Ok(Some(Line::Whole))
            ));
            assert_eq!(line, b"{\"a\":1}");
            assert!(matches!(
                read_line(&mut r, &mut line).await,
                Ok(Some(Line::TooLong))
            ));
            assert!(matches!(
                read_line(&mut r, &mut line).await,
                Ok(Some(Line::Whole))
            ));
            assert_eq!(line, b"last");
            assert!(matches!(read_line(&mut r, &mut line).await, Ok(None)));
        });
    }
}
