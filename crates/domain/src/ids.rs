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
