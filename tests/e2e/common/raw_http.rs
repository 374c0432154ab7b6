//! Requests written by hand on a raw TCP connection, for what an HTTP client library
//! would not send or would not show (a body the server refuses half-way).

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;

/// POSTs `body` over a raw connection, writing it while reading the answer. A server
/// refusing a too-large body answers and closes before the body has all been sent, so an
/// ordinary client fails with a broken pipe instead of showing the answer. Returns the
/// status and the response body. `chunked` sends the body without a Content-Length.
pub async fn raw_post(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    chunked: bool,
) -> (StatusCode, String) {
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut reader = std::net::TcpStream::connect(&addr).unwrap();
        reader
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut writer = reader.try_clone().unwrap();
        // Write errors (the server hung up) are expected; the answer tells what happened.
        std::thread::spawn(move || -> std::io::Result<()> {
            writer.write_all(head.as_bytes())?;
            if chunked {
                for chunk in body.chunks(64 * 1024) {
                    writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                    writer.write_all(chunk)?;
                    writer.write_all(b"\r\n")?;
                }
                writer.write_all(b"0\r\n\r\n")?;
            } else {
                writer.write_all(&body)?;
            }
            writer.flush()
        });
        let mut response = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
            if let Some(end) = complete_response(&response) {
                response.truncate(end);
                break;
            }
        }
        let _ = reader.shutdown(std::net::Shutdown::Both);
        response
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete response: {text:?}"));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    (StatusCode::from_u16(status).unwrap(), body.to_owned())
}

/// The length of a complete response with a Content-Length in `bytes`, if there is one.
fn complete_response(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    (bytes.len() >= head_end + length).then_some(head_end + length)
}
