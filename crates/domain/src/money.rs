//! Money: an amount in the currency's minor unit (cents, or yen for JPY) and an ISO 4217
//! code. Fees are `tariff × slots`, computed with checked arithmetic.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// A value that is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("currency must be a three-letter ISO 4217 code such as EUR or JPY, got {0:?}")]
pub struct CurrencyError(pub String);

impl Currency {
    /// Parses a code such as `EUR`; lower case is accepted and upper-cased.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CurrencyError(code.to_owned()));
        }
        let mut out = [0u8; 3];
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = b.to_ascii_uppercase();
        }
        Ok(Self(out))
    }

    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("always ASCII")
    }

    /// Number of decimal places of the minor unit (0 for JPY, KRW, …; 2 otherwise).
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "PYG" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit.
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

/// A fee too large to represent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("fee overflows: {tariff} × {slots} slots")]
pub struct FeeOverflow {
    /// The tariff per slot.
    pub tariff: Money,
    /// The number of slots.
    pub slots: u32,
}

impl Money {
    /// Creates an amount.
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// The fee of a booking: `tariff × slots`.
    pub fn fee(tariff: Money, slots: u32) -> Result<Money, FeeOverflow> {
        tariff
            .minor
            .checked_mul(i64::from(slots))
            .map(|minor| Money::new(minor, tariff.currency))
            .ok_or(FeeOverflow { tariff, slots })
    }

    /// The amount as a decimal string in major units, e.g. `"12.50"` for 1250 EUR cents.
    pub fn decimal(&self) -> String {
        let exp = self.currency.exponent();
        if exp == 0 {
            return self.minor.to_string();
        }
        let div = 10i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let div = div.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = exp as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("E1R").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn fee_is_tariff_times_slots_and_overflow_is_an_error() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(
            Money::fee(Money::new(300, jpy), 4).unwrap(),
            Money::new(1200, jpy)
        );
        assert!(Money::fee(Money::new(i64::MAX, jpy), 2).is_err());
    }

    #[test]
    fn decimal_rendering() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(1250, eur).decimal(), "12.50");
        assert_eq!(Money::new(-5, eur).decimal(), "-0.05");
        assert_eq!(
            Money::new(800, Currency::parse("JPY").unwrap()).to_string(),
            "800 JPY"
        );
    }
}
