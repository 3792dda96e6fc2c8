//! Who sees a program where, and who may play it.
//!
//! `public` programs are listed and open to anyone within capacity; `password` programs are
//! listed but need the viewer password to play; `secret` programs are never listed, counted
//! or searchable anywhere — only people who hold the unguessable slug (the broadcaster and
//! the invitees) learn of them — and they need the password too.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The open level of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed, open within capacity.
    Public,
    /// Listed, password needed.
    Password,
    /// Unlisted, password needed, only invitees learn of it.
    Secret,
}

/// Not one of `public`, `password`, `secret`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("visibility must be public, password or secret")]
pub struct VisibilityError;

impl Visibility {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Password => "password",
            Visibility::Secret => "secret",
        }
    }

    /// Whether the program may appear in any listing, count, feed or search result.
    pub fn is_listed(self) -> bool {
        !matches!(self, Visibility::Secret)
    }

    /// Whether playing needs the viewer password.
    pub fn needs_password(self) -> bool {
        !matches!(self, Visibility::Public)
    }
}

impl FromStr for Visibility {
    type Err = VisibilityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Visibility::Public),
            "password" => Ok(Visibility::Password),
            "secret" => Ok(Visibility::Secret),
            _ => Err(VisibilityError),
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The broadcaster who owns the reservation.
    Owner,
    /// Anyone else (member or anonymous).
    Other,
}

/// The answer to a play request, before capacity admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayAccess {
    /// May play.
    Granted,
    /// A password is needed and none was given.
    PasswordRequired,
    /// A password was given and it is wrong.
    WrongPassword,
}

/// Decides whether `viewer` may play a program of `visibility`. `password_ok` is the
/// result of the constant-time password check, `None` when no password was given.
pub fn play_access(
    visibility: Visibility,
    viewer: Viewer,
    password_ok: Option<bool>,
) -> PlayAccess {
    if viewer == Viewer::Owner || !visibility.needs_password() {
        return PlayAccess::Granted;
    }
    match password_ok {
        None => PlayAccess::PasswordRequired,
        Some(true) => PlayAccess::Granted,
        Some(false) => PlayAccess::WrongPassword,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_and_password_rules() {
        assert!(Visibility::Public.is_listed() && Visibility::Password.is_listed());
        assert!(!Visibility::Secret.is_listed());
        assert!(!Visibility::Public.needs_password());
        assert_eq!("secret".parse::<Visibility>(), Ok(Visibility::Secret));
        assert!("Secret".parse::<Visibility>().is_err());
    }

    #[test]
    fn play_decisions() {
        use PlayAccess::*;
        assert_eq!(
            play_access(Visibility::Public, Viewer::Other, None),
            Granted
        );
        assert_eq!(
            play_access(Visibility::Password, Viewer::Other, None),
            PasswordRequired
        );
        assert_eq!(
            play_access(Visibility::Secret, Viewer::Other, Some(false)),
            WrongPassword
        );
        assert_eq!(
            play_access(Visibility::Secret, Viewer::Other, Some(true)),
            Granted
        );
        assert_eq!(
            play_access(Visibility::Secret, Viewer::Owner, None),
            Granted
        );
    }
}
