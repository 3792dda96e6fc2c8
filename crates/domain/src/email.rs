//! E-mail addresses, checked for the shape mail servers accept (a pragmatic subset of
//! RFC 5321: dot-atom local part, dotted host name) and normalised to lower case, so the
//! same person is one member and one invitee however they typed it.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// A syntactically valid, lower-cased e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a text is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct EmailError(&'static str);

impl EmailAddress {
    /// Parses and normalises an address (surrounding spaces are ignored).
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EmailError("is empty"));
        }
        if s.len() > 254 {
            return Err(EmailError("is longer than 254 characters"));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or(EmailError("needs an @ between name and domain"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(EmailError(
                "needs a name of 1 to 64 characters before the @",
            ));
        }
        let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        if !local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atom))
        {
            return Err(EmailError(
                "has characters or dots not allowed before the @",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailError("needs a domain such as example.org after the @"));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            EmailAddress::parse(" Ann.Lee+tv@Example.ORG ")
                .unwrap()
                .as_str(),
            "ann.lee+tv@example.org"
        );
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "plain",
            "@x.org",
            "a@",
            "a@b",
            "a..b@x.org",
            ".a@x.org",
            "a@-x.org",
            "a b@x.org",
            "a@x_y.org",
            "a@x..org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@x.org", "a".repeat(65))).is_err());
    }
}
