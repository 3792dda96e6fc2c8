//! An SMTP sink for tests: a real SMTP server (mailin-embedded, in-process on loopback)
//! that keeps every message it receives, and just enough MIME to read them back.

#![allow(dead_code)]

use base64::Engine as _;
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use slotcast_center::mail::{SmtpSettings, SmtpTls, Transport};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------
// An SMTP server that keeps what it receives.

/// One received e-mail: envelope sender, envelope recipients, message data.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as it came after `DATA`.
    pub data: Vec<u8>,
}

impl Received {
    /// The message, parsed.
    pub fn mail(&self) -> Mail {
        Mail::parse(&self.data)
    }
}

/// What a server started with [`start_smtp`] has received so far, in order.
pub type Inbox = Arc<Mutex<Vec<Received>>>;

#[derive(Clone)]
struct Collect {
    inbox: Inbox,
    current: Received,
}

impl Handler for Collect {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: Vec::new(),
        };
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = std::mem::take(&mut self.current);
        self.inbox.lock().unwrap().push(mail);
        response::OK
    }
}

/// Serves SMTP on `listener` in a background thread (for the rest of the test process).
pub fn start_smtp(listener: TcpListener) -> Inbox {
    let inbox = Inbox::default();
    let mut server = Server::new(Collect {
        inbox: inbox.clone(),
        current: Received::default(),
    });
    server
        .with_name("mx.test")
        .with_ssl(SslConfig::None)
        .expect("no TLS")
        .with_num_threads(2)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    inbox
}

/// Plain SMTP (no TLS, no login) to `127.0.0.1:port`.
pub fn smtp_to(port: u16) -> Transport {
    Transport::Smtp(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
    })
}

// ---------------------------------------------------------------------------------------
// Just enough MIME to read the messages back.

/// A leaf part (or the whole message's header block): headers, decoded body.
#[derive(Debug)]
pub struct Part {
    /// Its headers, unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// Its body, transfer encoding undone.
    pub body: Vec<u8>,
}

impl Part {
    /// The first header `name` (any case), raw.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The content type, lower case (`text/plain` when none is given).
    pub fn content_type(&self) -> String {
        self.header("Content-Type")
            .unwrap_or("text/plain")
            .to_ascii_lowercase()
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 part")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a header block from its body and unfolds the headers.
fn split(raw: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => (raw, &raw[raw.len()..]),
    };
    let head = String::from_utf8(head.to_vec()).expect("ASCII headers");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

/// A parameter of a header value, e.g. `boundary` of a Content-Type.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_body(encoding: &str, body: &[u8]) -> Vec<u8> {
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .expect("base64 body")
        }
        "quoted-printable" => {
            let mut out = Vec::new();
            let mut i = 0;
            while i < body.len() {
                if body[i] == b'=' {
                    if body[i + 1..].starts_with(b"\r\n") {
                        i += 3;
                    } else {
                        let hex = std::str::from_utf8(&body[i + 1..i + 3]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).expect("QP hex"));
                        i += 3;
                    }
                } else {
                    out.push(body[i]);
                    i += 1;
                }
            }
            out
        }
        _ => body.to_vec(),
    }
}

/// Every leaf part of a MIME entity, depth first, bodies decoded.
fn leaves(raw: &[u8]) -> Vec<Part> {
    let (headers, body) = split(raw);
    let part = Part {
        headers,
        body: Vec::new(),
    };
    let ct = part.content_type();
    if ct.starts_with("multipart/") {
        let boundary = param(part.header("Content-Type").unwrap(), "boundary").expect("boundary");
        let delim = format!("--{boundary}");
        let text = body;
        let mut out = Vec::new();
        let mut rest = text;
        // Skip the preamble.
        let Some(start) = find(rest, delim.as_bytes()) else {
            return out;
        };
        rest = &rest[start + delim.len()..];
        loop {
            if rest.starts_with(b"--") {
                break;
            }
            let rest_after_crlf = rest.strip_prefix(b"\r\n").unwrap_or(rest);
            let end = find(rest_after_crlf, format!("\r\n{delim}").as_bytes())
                .expect("closing delimiter");
            out.extend(leaves(&rest_after_crlf[..end]));
            rest = &rest_after_crlf[end + 2 + delim.len()..];
        }
        out
    } else {
        let cte = part
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_owned();
        vec![Part {
            body: decode_body(&cte, body),
            ..part
        }]
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value;
/// the space between two adjacent encoded words is not part of the text.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut last_was_word = false;
    for token in value.split([' ', '\t']).filter(|t| !t.is_empty()) {
        let word = token
            .strip_prefix("=?")
            .and_then(|t| t.strip_suffix("?="))
            .and_then(|t| {
                let mut it = t.splitn(3, '?');
                Some((it.next()?, it.next()?, it.next()?))
            });
        let (text, is_word) = match word {
            Some((_charset, enc, data)) => {
                let bytes = if enc.eq_ignore_ascii_case("b") {
                    base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .expect("b word")
                } else {
                    decode_body("quoted-printable", data.replace('_', " ").as_bytes())
                };
                (String::from_utf8(bytes).expect("UTF-8 word"), true)
            }
            None => (token.to_owned(), false),
        };
        let joined = last_was_word && is_word;
        if !out.is_empty() && !joined {
            out.push(' ');
        }
        out.push_str(&text);
        last_was_word = is_word;
    }
    out
}

/// A received e-mail, parsed.
pub struct Mail {
    /// The top-level headers, unfolded, in order.
    pub top: Vec<(String, String)>,
    /// Every leaf part, depth first.
    pub parts: Vec<Part>,
}

impl Mail {
    /// Parses a whole message.
    pub fn parse(raw: &[u8]) -> Self {
        let (top, _) = split(raw);
        Self {
            top,
            parts: leaves(raw),
        }
    }

    /// The first top-level header `name` (any case), encoded words decoded; empty if
    /// absent.
    pub fn header(&self, name: &str) -> String {
        let v = self
            .top
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        decode_words(&v)
    }

    /// The first leaf part whose content type starts with `content_type`.
    pub fn part(&self, content_type: &str) -> Option<&Part> {
        self.parts
            .iter()
            .find(|p| p.content_type().starts_with(content_type))
    }

    /// The `text/plain` part.
    pub fn plain(&self) -> String {
        self.part("text/plain").expect("text part").text()
    }

    /// The `text/html` part.
    pub fn html(&self) -> String {
        self.part("text/html").expect("html part").text()
    }
}

/// A port on loopback with nothing listening on it (bound once, then released).
pub fn unused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("local address").port()
}

/// Serves SMTP on a fresh loopback port; returns the port and what arrives there.
pub fn start_smtp_on_loopback() -> (u16, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    (port, start_smtp(listener))
}
