//! JSON bodies for the answers hyper writes itself.
//!
//! A request hyper cannot parse as HTTP/1.1 (a malformed request line or header, a bad
//! `Content-Length`, too many headers, a URI over 64 KiB) never reaches the router: hyper
//! answers it on its own with an empty-bodied `400`, `414` or `431` and closes the connection.
//! [`JsonErrors`] sits between hyper and the socket and rewrites exactly those answers into
//! the API's error shape, `{"error": {"code", "message"}}` with the same status, so a client
//! gets one kind of error body whatever refused its request.
//!
//! How an answer is known to be hyper's own: it is written while no request of the
//! connection is in the router (the router's answers are written while their request counts
//! as in flight, see `serve.rs`), its status is a `4xx`, and its head has no `content-type`
//! (every answer of the router to an error has one).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::json_errors::code_of;

/// A connection's socket, with hyper's own error answers rewritten as JSON.
pub(crate) struct JsonErrors<S> {
    inner: S,
    /// Requests of this connection in the router (their answer not yet done).
    in_flight: Arc<AtomicUsize>,
    /// A rewritten answer still to send, and how much of it has gone out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrors<S> {
    /// Wrap `inner`; `in_flight` counts the connection's requests in the router.
    pub(crate) fn new(inner: S, in_flight: Arc<AtomicUsize>) -> Self {
        JsonErrors {
            inner,
            in_flight,
            pending: None,
        }
    }
}

/// The JSON answer replacing `head` if it is one of hyper's own error answers.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let status = StatusCode::from_u16(status).ok()?;
    if !status.is_client_error() || !text.ends_with("\r\n\r\n") {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("\r\ncontent-type:") || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let body = serde_json::json!({
        "error": { "code": code_of(status), "message": message_of(status) }
    })
    .to_string();
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

/// What a client should do about one of hyper's refusals.
fn message_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::URI_TOO_LONG => {
            "the request URI is too long (at most 64 KiB); send long data in the body"
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request has too many headers or too large a header block \
             (at most 100 headers, about 400 KiB); send fewer"
        }
        _ => {
            "the request is not valid HTTP/1.1 (a malformed request line, header or \
             Content-Length); check what the client sends"
        }
    }
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Send what is left of a rewritten answer; `Ready(Ok)` once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = self.pending.as_mut() {
            if *sent == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if self.in_flight.load(Ordering::Acquire) == 0 {
            if let Some(json) = rewrite(buf) {
                self.pending = Some((json, 0));
                // hyper's answer counts as written; the JSON one goes out in its place.
                let _ = self.drain(cx);
                return Poll::Ready(Ok(buf.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_error_answers_become_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 06:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(head).expect("rewritten")).expect("utf-8");
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let (_, body) = out.split_once("\r\n\r\n").expect("head and body");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["code"], "headers_too_large");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[test]
    fn answers_with_a_content_type_or_a_body_are_left_alone() {
        let typed =
            b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(typed).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n";
        assert!(rewrite(with_body).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ok).is_none());
        assert!(
            rewrite(b"HTTP/1.1 400 Bad").is_none(),
            "a head cut short is not touched"
        );
    }
}
