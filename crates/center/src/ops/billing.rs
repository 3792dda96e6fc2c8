//! Billing: a member's (or, for the operator, everyone's) invoice for a month. A charge
//! belongs to the month (service time zone) in which its program starts.

use crate::error::{ApiError, ApiResult};
use crate::state::Center;
use slotcast_domain::charge::ChargeState;
use slotcast_domain::{MemberId, Money, MonthKey};
use slotcast_store::ChargeLine;
use std::collections::BTreeMap;

/// The month `month` names (`YYYY-MM`), this month when `None`.
pub fn month(c: &Center, month: Option<&str>) -> ApiResult<MonthKey> {
    match month {
        None => Ok(MonthKey::of(c.clock.now(), &c.settings.policy.time_zone)),
        Some(s) => MonthKey::parse(s).map_err(|e| ApiError::field("month", e.to_string())),
    }
}

/// The charges of a month with their sums.
#[derive(Debug, Clone)]
pub struct Invoice {
    /// The month.
    pub month: MonthKey,
    /// Every charge of programs starting that month.
    pub lines: Vec<ChargeLine>,
    /// Sum of final charges, per currency.
    pub due: Vec<Money>,
    /// Sum of charges still pending (programs not yet over), per currency.
    pub pending: Vec<Money>,
}

/// Sums of the `state` lines, per currency.
pub fn totals(lines: &[ChargeLine], state: ChargeState) -> Vec<Money> {
    let mut by: BTreeMap<String, Money> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.charge.state == state) {
        let a = l.charge.amount;
        by.entry(a.currency.to_string())
            .and_modify(|m| m.minor += a.minor)
            .or_insert(a);
    }
    by.into_values().collect()
}

/// The invoice of `member` (everyone's when `None`) for `month`.
pub async fn invoice(c: &Center, member: Option<MemberId>, month: MonthKey) -> ApiResult<Invoice> {
    let (from, to) = month.bounds(&c.settings.policy.time_zone);
    let lines = c.store.charges_between(member, from, to).await?;
    Ok(Invoice {
        month,
        due: totals(&lines, ChargeState::Final),
        pending: totals(&lines, ChargeState::Pending),
        lines,
    })
}
