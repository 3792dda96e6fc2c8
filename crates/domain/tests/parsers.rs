//! Every parser of the domain takes arbitrary input without panicking, and what it
//! accepts round-trips. (Coverage-guided fuzz targets for the media parsers come with the
//! stream node.)

use proptest::prelude::*;
use slotcast_domain::key::KEY_BYTES;
use slotcast_domain::request::ReservationDraft;
use slotcast_domain::{
    Currency, EmailAddress, KeyHash, MonthKey, Policy, ReservationKey, Timestamp, Visibility,
};

fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn email_addresses(s in "\\PC{0,300}") {
        if let Ok(e) = EmailAddress::parse(&s) {
            prop_assert_eq!(EmailAddress::parse(e.as_str()).unwrap(), e.clone());
            prop_assert!(e.as_str().len() <= 254 && e.as_str().contains('@'));
        }
    }

    #[test]
    fn reservation_keys(s in "\\PC{0,80}", bytes in proptest::array::uniform20(any::<u8>())) {
        let _ = ReservationKey::parse(&s);
        let k = ReservationKey::from_entropy(bytes);
        prop_assert_eq!(KEY_BYTES, 20);
        prop_assert_eq!(ReservationKey::parse(k.expose()).unwrap(), k.clone());
        prop_assert!(k.hash().verify(k.expose()));
        prop_assert!(!k.hash().verify(&s) || s.trim().eq_ignore_ascii_case(k.expose()));
    }

    #[test]
    fn key_hashes_months_currencies_visibility(s in "\\PC{0,100}") {
        if let Some(h) = KeyHash::from_hex(&s) {
            prop_assert_eq!(h.to_hex(), s.to_ascii_lowercase());
        }
        if let Ok(m) = MonthKey::parse(&s) {
            prop_assert_eq!(m.to_string(), s.clone());
        }
        if let Ok(c) = Currency::parse(&s) {
            prop_assert_eq!(c.as_str(), s.to_ascii_uppercase());
        }
        if let Ok(v) = s.parse::<Visibility>() {
            prop_assert_eq!(v.as_str(), s.as_str());
        }
    }

    #[test]
    fn reservation_requests(
        start in "\\PC{0,40}", slots in any::<i64>(), visibility in "\\PC{0,10}", title in "\\PC{0,80}",
        genre in proptest::option::of("\\PC{0,50}"), outline in proptest::option::of("\\PC{0,100}"),
        web_url in proptest::option::of("\\PC{0,100}"), password in proptest::option::of("\\PC{0,80}"),
        invitees in proptest::collection::vec("\\PC{0,40}", 0..60),
    ) {
        let d = ReservationDraft { start, slots, visibility, title, genre, outline, detail: None, show_email: false, web_url, viewer_password: password, invitees };
        match d.validate(&Policy::default(), now()) {
            Ok(v) => {
                prop_assert!(v.range.start() > now());
                prop_assert!(v.program.title.chars().count() <= 60);
                prop_assert!(v.invitees.len() <= 50);
                prop_assert_eq!(v.viewer_password.is_some(), v.visibility.needs_password());
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn valid_requests_are_accepted(slot in 1i64..5000, slots in 1i64..=36, title in "[a-zA-Z0-9 ]{1,60}") {
        let start = now() + slotcast_domain::jiff::SignedDuration::from_mins(10 * slot + 24 * 60);
        let d = ReservationDraft { start: start.to_string(), slots, visibility: "public".into(), title: title.clone(), ..ReservationDraft::default() };
        let ok = d.validate(&Policy::default(), now());
        prop_assert_eq!(ok.is_ok(), !title.trim().is_empty(), "{:?}", ok.err());
    }
}
