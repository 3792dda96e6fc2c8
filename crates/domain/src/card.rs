//! The payment card a premium member registers: checked for shape (12 to 19 digits, the
//! Luhn check digit), expiry (not before the current month in the service's time zone)
//! and holder, and reduced to what is kept on file — brand, last four digits, expiry and
//! holder. The full number never leaves [`validate`]: it is not in the result and not in
//! any `Debug` output, so it cannot reach a log or the database by accident.

use crate::quota::MonthKey;
use crate::request::{FieldErrors, text};
use std::fmt;

/// Longest card holder name, in characters.
pub const HOLDER_MAX: usize = 80;

/// A card as the client sent it (decoded, not yet trusted).
#[derive(Clone, PartialEq, Eq)]
pub struct CardDraft {
    /// The card number: digits, optionally grouped with spaces or dashes.
    pub number: String,
    /// Expiry month, 1–12.
    pub exp_month: u8,
    /// Expiry year, four digits.
    pub exp_year: u16,
    /// Name on the card.
    pub holder: String,
}

impl fmt::Debug for CardDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardDraft")
            .field("number", &"<redacted>")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("holder", &self.holder)
            .finish()
    }
}

/// What is kept of a card: enough to recognise it and to know when it lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardOnFile {
    /// `visa`, `mastercard`, `amex`, `discover`, `jcb`, or `card` when the prefix is not
    /// one of those.
    pub brand: &'static str,
    /// The last four digits.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
    /// Name on the card, trimmed.
    pub holder: String,
}

/// Card brand from the number's prefix (the issuer identification ranges).
fn brand(digits: &str) -> &'static str {
    let p = |n: usize| {
        digits
            .get(..n)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    match () {
        _ if digits.starts_with('4') => "visa",
        _ if (51..=55).contains(&p(2)) || (2221..=2720).contains(&p(4)) => "mastercard",
        _ if p(2) == 34 || p(2) == 37 => "amex",
        _ if p(4) == 6011 || p(2) == 65 => "discover",
        _ if (3528..=3589).contains(&p(4)) => "jcb",
        _ => "card",
    }
}

/// The Luhn checksum over ASCII digits; catches every single-digit typo.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The error key of `name` under `prefix` (`payment` → `payment.card_number`).
fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks `draft` in the month `now_month` (the current month in the service's time zone:
/// a card is good through the last day of its expiry month) and records every problem in
/// `errs` under `field_prefix` (`"payment"` gives `payment.card_number`,
/// `payment.exp_month`, `payment.exp_year`, `payment.holder`; `""` gives the bare names).
/// Returns what is kept on file, or `None` if anything was wrong.
pub fn validate(
    draft: &CardDraft,
    now_month: MonthKey,
    errs: &mut FieldErrors,
    field_prefix: &str,
) -> Option<CardOnFile> {
    let digits: String = draft
        .number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let mut ok = true;
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        errs.add(key(field_prefix, "card_number"), "must be 12 to 19 digits");
        ok = false;
    } else if !luhn(&digits) {
        errs.add(
            key(field_prefix, "card_number"),
            "is not a valid card number (check digit)",
        );
        ok = false;
    }
    // The year is judged only with a real month, and expiry only with both: one message
    // per problem, on the field to correct.
    if !(1..=12).contains(&draft.exp_month) {
        errs.add(key(field_prefix, "exp_month"), "must be 1 to 12");
        ok = false;
    } else if !(2000..=2200).contains(&draft.exp_year) {
        errs.add(key(field_prefix, "exp_year"), "must be a four-digit year");
        ok = false;
    } else if (i32::from(draft.exp_year), i32::from(draft.exp_month))
        < (i32::from(now_month.year), i32::from(now_month.month))
    {
        errs.add(key(field_prefix, "exp_year"), "the card has expired");
        ok = false;
    }
    let holder = text(
        errs,
        &key(field_prefix, "holder"),
        Some(&draft.holder),
        HOLDER_MAX,
        false,
        true,
    );
    let holder = holder.filter(|_| ok)?;
    Some(CardOnFile {
        brand: brand(&digits),
        // ASCII digits only (checked above), so this slices on a character boundary.
        last4: digits[digits.len() - 4..].to_owned(),
        exp_month: draft.exp_month,
        exp_year: draft.exp_year,
        holder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn month(s: &str) -> MonthKey {
        MonthKey::parse(s).unwrap()
    }

    fn visa() -> CardDraft {
        CardDraft {
            number: "4242 4242 4242 4242".into(),
            exp_month: 6,
            exp_year: 2026,
            holder: "Ann Lee".into(),
        }
    }

    #[test]
    fn luhn_and_brands() {
        assert!(luhn("4242424242424242"));
        assert!(!luhn("4242424242424241"));
        assert!(luhn("5555555555554444"));
        assert!(luhn("378282246310005"));
        assert_eq!(brand("4242424242424242"), "visa");
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("2223003122003222"), "mastercard");
        assert_eq!(brand("378282246310005"), "amex");
        assert_eq!(brand("6011111111111117"), "discover");
        assert_eq!(brand("3530111333300000"), "jcb");
        assert_eq!(brand("9000000000000000"), "card");
    }

    #[test]
    fn cards_keep_only_brand_last4_expiry() {
        let m = month("2026-06");
        let mut errs = FieldErrors::default();
        let p = visa();
        let c = validate(&p, m, &mut errs, "payment").unwrap();
        assert_eq!(
            (c.brand, c.last4.as_str(), c.exp_month, c.exp_year),
            ("visa", "4242", 6, 2026)
        );
        assert_eq!(c.holder, "Ann Lee");
        assert!(errs.is_empty());
        assert_eq!(
            format!("{p:?}"),
            r#"CardDraft { number: "<redacted>", exp_month: 6, exp_year: 2026, holder: "Ann Lee" }"#
        );
        let expired = CardDraft { exp_month: 5, ..p };
        assert!(validate(&expired, m, &mut errs, "payment").is_none());
        assert_eq!(errs.0["payment.exp_year"], "the card has expired");
    }

    #[test]
    fn a_card_is_good_through_its_expiry_month() {
        let dec = CardDraft {
            exp_month: 12,
            exp_year: 2026,
            ..visa()
        };
        let mut errs = FieldErrors::default();
        assert!(validate(&dec, month("2026-12"), &mut errs, "payment").is_some());
        assert!(validate(&dec, month("2026-01"), &mut errs, "payment").is_some());
        assert!(errs.is_empty(), "{errs}");
        assert!(validate(&dec, month("2027-01"), &mut errs, "payment").is_none());
        assert_eq!(errs.0["payment.exp_year"], "the card has expired");
        // Last month's card is expired this month; a later year's earlier month is not.
        let mut errs = FieldErrors::default();
        let may = CardDraft {
            exp_month: 5,
            ..visa()
        };
        assert!(validate(&may, month("2026-06"), &mut errs, "payment").is_none());
        let may_next_year = CardDraft {
            exp_year: 2027,
            ..may
        };
        assert!(validate(&may_next_year, month("2026-06"), &mut errs, "").is_some());
    }

    #[test]
    fn numbers_are_digits_with_spaces_or_dashes_and_a_check_digit() {
        let m = month("2026-06");
        let check = |number: &str| {
            let mut errs = FieldErrors::default();
            let got = validate(
                &CardDraft {
                    number: number.into(),
                    ..visa()
                },
                m,
                &mut errs,
                "payment",
            );
            (
                got.map(|c| c.last4),
                errs.0.get("payment.card_number").cloned(),
            )
        };
        assert_eq!(check("4242-4242-4242-4242"), (Some("4242".into()), None));
        assert_eq!(check("378282246310005"), (Some("0005".into()), None));
        let short = Some("must be 12 to 19 digits".to_owned());
        assert_eq!(check("42424242424"), (None, short.clone()));
        assert_eq!(check("42424242424242424242"), (None, short.clone()));
        assert_eq!(check("4242.4242.4242.4242"), (None, short.clone()));
        assert_eq!(check("４２４２４２４２４２４２４２４２"), (None, short));
        assert_eq!(
            check("4242 4242 4242 4241"),
            (
                None,
                Some("is not a valid card number (check digit)".to_owned())
            )
        );
        // 12 and 19 digits are both accepted lengths.
        assert!(check("000000000000").0.is_some());
        assert!(check("0000000000000000000").0.is_some());
    }

    #[test]
    fn expiry_and_holder_rules() {
        let m = month("2026-06");
        let errs_of = |d: CardDraft, prefix: &str| {
            let mut errs = FieldErrors::default();
            assert!(validate(&d, m, &mut errs, prefix).is_none());
            errs.0
        };
        let e = errs_of(
            CardDraft {
                exp_month: 13,
                exp_year: 1999,
                ..visa()
            },
            "payment",
        );
        assert_eq!(e["payment.exp_month"], "must be 1 to 12");
        assert!(!e.contains_key("payment.exp_year"), "month first");
        let e = errs_of(
            CardDraft {
                exp_month: 0,
                ..visa()
            },
            "payment",
        );
        assert_eq!(e["payment.exp_month"], "must be 1 to 12");
        for year in [1999, 2201, 26] {
            let e = errs_of(
                CardDraft {
                    exp_year: year,
                    ..visa()
                },
                "payment",
            );
            assert_eq!(e["payment.exp_year"], "must be a four-digit year", "{year}");
        }
        let e = errs_of(
            CardDraft {
                holder: "  ".into(),
                ..visa()
            },
            "",
        );
        assert_eq!(e["holder"], "is required");
        let e = errs_of(
            CardDraft {
                holder: "x".repeat(81),
                ..visa()
            },
            "payment",
        );
        assert_eq!(e["payment.holder"], "is too long (max 80 characters)");
        let mut errs = FieldErrors::default();
        let long = CardDraft {
            holder: "x".repeat(80),
            ..visa()
        };
        assert!(validate(&long, m, &mut errs, "payment").is_some());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut errs = FieldErrors::default();
        let d = CardDraft {
            number: "1234".into(),
            exp_month: 14,
            exp_year: 2026,
            holder: String::new(),
        };
        assert!(validate(&d, month("2026-06"), &mut errs, "payment").is_none());
        assert_eq!(
            errs.0.keys().map(String::as_str).collect::<Vec<_>>(),
            ["payment.card_number", "payment.exp_month", "payment.holder"]
        );
    }

    /// Numbers that pass the check: 11–18 random digits and the Luhn check digit, grouped
    /// or not.
    fn valid_number() -> impl Strategy<Value = (String, String)> {
        (
            proptest::collection::vec(0u8..10, 11..=18),
            prop_oneof![Just(""), Just(" "), Just("-")],
        )
            .prop_map(|(body, sep)| {
                let mut digits: String = body.iter().map(|d| char::from(b'0' + d)).collect();
                let check = (0..10u8)
                    .map(|c| char::from(b'0' + c))
                    .find(|c| luhn(&format!("{digits}{c}")))
                    .expect("one check digit fits");
                digits.push(check);
                let grouped = digits
                    .as_bytes()
                    .chunks(4)
                    .map(|g| std::str::from_utf8(g).expect("ASCII"))
                    .collect::<Vec<_>>()
                    .join(sep);
                (digits, grouped)
            })
    }

    proptest! {
        #[test]
        fn the_full_number_is_never_kept_or_shown((digits, typed) in valid_number()) {
            let draft = CardDraft { number: typed.clone(), ..visa() };
            let mut errs = FieldErrors::default();
            let card = validate(&draft, month("2026-06"), &mut errs, "payment");
            prop_assert!(errs.is_empty(), "{}", errs);
            let card = card.expect("a valid card");
            prop_assert_eq!(&card.last4, &digits[digits.len() - 4..]);
            for shown in [format!("{card:?}"), format!("{draft:?}"), format!("{errs:?}")] {
                prop_assert!(!shown.contains(&digits), "{}", shown);
                prop_assert!(!shown.contains(&typed), "{}", shown);
            }
            for kept in [card.brand, card.last4.as_str(), card.holder.as_str()] {
                prop_assert!(!kept.contains(&digits));
            }
        }

        #[test]
        fn a_refused_number_is_not_echoed(number in "[0-9 -]{0,30}") {
            let draft = CardDraft { number: number.clone(), ..visa() };
            let mut errs = FieldErrors::default();
            let _ = validate(&draft, month("2026-06"), &mut errs, "payment");
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 12 {
                prop_assert!(!errs.to_string().contains(&digits));
                let shown = format!("{draft:?}");
                prop_assert!(!shown.contains(&digits));
            }
        }
    }
}
