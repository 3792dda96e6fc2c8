//! Newtype ids, so a member id can never be passed where a channel id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A member (viewer, broadcaster or operator).
    MemberId
);
id!(
    /// A channel of a stream node.
    ChannelId
);
id!(
    /// A reservation (booking of consecutive slots on one channel).
    ReservationId
);

/// The unguessable public name of a program, as it stands in URLs (`/programs/<slug>`):
/// 1 to 64 lowercase ASCII letters, digits, `-` or `_` (the center mints 26 base32
/// characters). Anything else — a NUL byte, a slash, a space, non-ASCII — is no slug, and
/// is refused before it reaches a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

/// Why a text is not a slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a program slug (1 to 64 of a-z, 0-9, - and _)")]
pub struct NotASlug;

impl Slug {
    /// The longest slug accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Slug, NotASlug> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Slug(s.to_owned()))
        } else {
            Err(NotASlug)
        }
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_checked_before_any_query() {
        for ok in [
            "abcdefghijklmnopqrstuvwxyz",
            "p00000000000000000001",
            "a-b_c",
            "7",
        ] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "\0",
            "abc\0def",
            "ABC",
            "a b",
            "a/b",
            "é",
            "a%00",
            long.as_str(),
        ] {
            assert_eq!(Slug::parse(bad), Err(NotASlug), "{bad:?}");
        }
    }
}
