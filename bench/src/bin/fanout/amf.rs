//! The few AMF0 values RTMP commands need: encoding of command arguments and a decoder
//! for the server's answers (`_result`, `onStatus`).

/// An AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf {
    Number(f64),
    Bool(bool),
    Str(String),
    /// An object or an ECMA array: key/value pairs in order.
    Object(Vec<(String, Amf)>),
    Null,
    Undefined,
    Array(Vec<Amf>),
}

impl Amf {
    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Amf::Number(n) => {
                out.push(0x00);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Amf::Bool(b) => out.extend_from_slice(&[0x01, u8::from(*b)]),
            Amf::Str(s) => {
                out.push(0x02);
                put_key(out, s);
            }
            Amf::Object(fields) => {
                out.push(0x03);
                for (k, v) in fields {
                    put_key(out, k);
                    v.encode(out);
                }
                out.extend_from_slice(&[0, 0, 0x09]);
            }
            Amf::Null => out.push(0x05),
            Amf::Undefined => out.push(0x06),
            Amf::Array(items) => {
                out.push(0x0A);
                out.extend_from_slice(&(items.len() as u32).to_be_bytes());
                for v in items {
                    v.encode(out);
                }
            }
        }
    }

    /// A string's text, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Amf> {
        match self {
            Amf::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

fn put_key(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// Encodes a command or data message body: the values one after the other.
pub fn encode_all(values: &[Amf]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        v.encode(&mut out);
    }
    out
}

/// Decodes every value of a message body (stops quietly at anything it does not know).
pub fn decode_all(mut b: &[u8]) -> Vec<Amf> {
    let mut out = Vec::new();
    while !b.is_empty() {
        match decode(&mut b, 0) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

fn key(b: &mut &[u8]) -> Option<String> {
    let n = take(b, 2)?;
    let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
    Some(String::from_utf8_lossy(take(b, n)?).into_owned())
}

fn fields(b: &mut &[u8], depth: u32) -> Option<Vec<(String, Amf)>> {
    let mut out = Vec::new();
    loop {
        let k = key(b)?;
        if k.is_empty() && b.first() == Some(&0x09) {
            *b = &b[1..];
            return Some(out);
        }
        let v = decode(b, depth + 1)?;
        out.push((k, v));
    }
}

fn decode(b: &mut &[u8], depth: u32) -> Option<Amf> {
    if depth > 16 {
        return None;
    }
    let marker = take(b, 1)?[0];
    Some(match marker {
        0x00 => Amf::Number(f64::from_be_bytes(take(b, 8)?.try_into().ok()?)),
        0x01 => Amf::Bool(take(b, 1)?[0] != 0),
        0x02 => Amf::Str(key(b)?),
        0x03 => Amf::Object(fields(b, depth)?),
        0x05 => Amf::Null,
        0x06 => Amf::Undefined,
        0x08 => {
            take(b, 4)?;
            Amf::Object(fields(b, depth)?)
        }
        0x0A => {
            let n = u32::from_be_bytes(take(b, 4)?.try_into().ok()?);
            let mut items = Vec::new();
            for _ in 0..n.min(4096) {
                items.push(decode(b, depth + 1)?);
            }
            Amf::Array(items)
        }
        0x0B => {
            take(b, 10)?;
            Amf::Number(0.0)
        }
        0x0C => {
            let n = u32::from_be_bytes(take(b, 4)?.try_into().ok()?) as usize;
            Amf::Str(String::from_utf8_lossy(take(b, n)?).into_owned())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = vec![
            Amf::Str("connect".into()),
            Amf::Number(1.0),
            Amf::Object(vec![
                ("app".into(), Amf::Str("live".into())),
                ("fpad".into(), Amf::Bool(false)),
                ("inner".into(), Amf::Object(vec![("x".into(), Amf::Null)])),
            ]),
            Amf::Null,
            Amf::Array(vec![Amf::Number(2.5)]),
        ];
        assert_eq!(decode_all(&encode_all(&v)), v);
        assert_eq!(v[2].get("app").and_then(Amf::as_str), Some("live"));
    }
}
