//! The LL-HLS request parsers: `parse_resource` (the last path component) and
//! `parse_blocking_request` (the `_HLS_msn` / `_HLS_part` / `_HLS_skip` directives).
//!
//! - `parse_resource` accepts exactly the names the packager writes: whatever it accepts
//!   is given back unchanged by `Resource::name`, and every resource's name parses back.
//! - `parse_blocking_request` agrees with a plain model of the documented rules, on
//!   arbitrary query strings and on queries assembled from valid and invalid pieces.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slotcast_media::hls::{BlockingRequest, Resource, parse_blocking_request, parse_resource};

#[derive(Arbitrary, Debug)]
enum AnyResource {
    Entry,
    Playlist,
    Init(u32),
    Part { msn: u64, part: u32 },
    Segment(u64),
}

impl AnyResource {
    fn resource(&self) -> Resource {
        match *self {
            AnyResource::Entry => Resource::Entry,
            AnyResource::Playlist => Resource::Playlist,
            AnyResource::Init(n) => Resource::Init(n),
            AnyResource::Part { msn, part } => Resource::Part { msn, part },
            AnyResource::Segment(msn) => Resource::Segment(msn),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Piece<'a> {
    Msn(u64),
    MsnText(&'a str),
    Part(u32),
    PartText(&'a str),
    Skip(bool),
    SkipText(&'a str),
    /// Another parameter (the play token, …) or any text.
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    name: &'a str,
    query: &'a str,
    resource: AnyResource,
    pieces: Vec<Piece<'a>>,
}

/// A decimal-integer of the delivery directives: 1 to 20 digits (leading zeros allowed)
/// that fit the type.
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The rules of `parse_blocking_request`, as its documentation states them.
fn model(query: &str) -> Result<Option<BlockingRequest>, ()> {
    let (mut msn, mut part, mut skip) = (None, None, false);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" if msn.is_none() => msn = Some(decimal::<u64>(value).ok_or(())?),
            "_HLS_part" if part.is_none() => part = Some(decimal::<u32>(value).ok_or(())?),
            "_HLS_skip" if !skip && (value == "YES" || value == "v2") => skip = true,
            k if k.starts_with("_HLS_") => return Err(()),
            _ => {}
        }
    }
    match (msn, part) {
        (Some(msn), part) => Ok(Some(BlockingRequest { msn, part })),
        (None, Some(_)) => Err(()),
        (None, None) => Ok(None),
    }
}

fn check_query(query: &str) {
    let got = parse_blocking_request(query);
    assert_eq!(got.clone().map_err(|_| ()), model(query), "query {query:?}");
    if let Ok(Some(req)) = got {
        let mut again = format!("_HLS_msn={}", req.msn);
        if let Some(p) = req.part {
            again.push_str(&format!("&_HLS_part={p}"));
        }
        assert_eq!(parse_blocking_request(&again), Ok(Some(req)));
    }
}

fn run(input: Input<'_>) {
    // Resource names.
    if let Some(r) = parse_resource(input.name) {
        assert_eq!(r.name(), input.name, "accepted a name the packager does not write");
    }
    let r = input.resource.resource();
    assert_eq!(parse_resource(&r.name()), Some(r), "{}", r.name());
    let with_query = format!("{}?x", r.name());
    assert_eq!(parse_resource(&with_query), None);

    // Blocking requests.
    check_query(input.query);
    let query = input
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Msn(n) => format!("_HLS_msn={n}"),
            Piece::MsnText(s) => format!("_HLS_msn={s}"),
            Piece::Part(n) => format!("_HLS_part={n}"),
            Piece::PartText(s) => format!("_HLS_part={s}"),
            Piece::Skip(yes) => format!("_HLS_skip={}", if *yes { "YES" } else { "v2" }),
            Piece::SkipText(s) => format!("_HLS_skip={s}"),
            Piece::Other(s) => (*s).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    check_query(&query);
}

fuzz_target!(|input: Input<'_>| run(input));
