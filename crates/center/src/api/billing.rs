//! Billing: a member's monthly invoice and the operator's CSV export. A charge belongs to
//! the month (service time zone) in which its program starts.

use super::views::{ErrorBody, MoneyView, ts};
use crate::auth::{Authed, Operator};
use crate::error::ApiResult;
use crate::ops::billing;
use crate::state::{AppState, Center};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use slotcast_domain::{Money, MonthKey, Timestamp};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `?month=YYYY-MM` (default: this month).
#[derive(Debug, Deserialize, IntoParams)]
pub struct MonthQuery {
    /// The month, in the service's zone (`YYYY-MM`, years 1000–9998; this month by default).
    #[param(pattern = r"^([1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
}

fn month_bounds(st: &Center, q: &MonthQuery) -> ApiResult<(MonthKey, Timestamp, Timestamp)> {
    let m = billing::month(st, q.month.as_deref())?;
    let (from, to) = m.bounds(&st.settings.policy.time_zone);
    Ok((m, from, to))
}

/// One line of an invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceLine {
    /// Reservation id.
    pub reservation: i64,
    /// Program title.
    pub title: String,
    /// Channel id.
    pub channel: i64,
    /// Program start.
    pub start: String,
    /// Slots billed.
    pub slots: u32,
    /// Amount.
    pub amount: MoneyView,
    /// `pending`, `final`, `waived` or `voided`.
    pub state: String,
}

/// A member's invoice for a month.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    /// `YYYY-MM`.
    pub month: String,
    /// Every charge of programs starting that month.
    pub lines: Vec<InvoiceLine>,
    /// Sum of final charges, per currency.
    pub total_due: Vec<MoneyView>,
    /// Sum of charges still pending (programs not yet over), per currency.
    pub total_pending: Vec<MoneyView>,
}

/// My invoice for a month.
#[utoipa::path(get, path = "/api/v1/members/me/invoices", tag = "billing", security(("bearer" = []), ("cookie" = [])), params(MonthQuery),
    responses((status = 200, body = InvoiceView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn invoices(
    State(st): State<AppState>,
    Authed(m): Authed,
    Query(q): Query<MonthQuery>,
) -> ApiResult<Json<InvoiceView>> {
    let inv = billing::invoice(&st, Some(m.id), billing::month(&st, q.month.as_deref())?).await?;
    let money = |v: Vec<Money>| v.into_iter().map(MoneyView::from).collect();
    Ok(Json(InvoiceView {
        month: inv.month.to_string(),
        total_due: money(inv.due),
        total_pending: money(inv.pending),
        lines: inv
            .lines
            .iter()
            .map(|l| InvoiceLine {
                reservation: l.charge.reservation.0,
                title: l.title.clone(),
                channel: l.channel.0,
                start: ts(l.start),
                slots: l.slots,
                amount: l.charge.amount.into(),
                state: l.charge.state.to_string(),
            })
            .collect(),
    }))
}

/// A CSV cell: quoted, quotes doubled, and formula-looking text defused for spreadsheets.
fn cell(s: &str) -> String {
    let defused = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// Every charge of a month as CSV (operators).
#[utoipa::path(get, path = "/api/v1/billing/export.csv", tag = "billing", security(("bearer" = []), ("cookie" = [])), params(MonthQuery),
    responses((status = 200, content_type = "text/csv"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export_csv(
    State(st): State<AppState>,
    _op: Operator,
    Query(q): Query<MonthQuery>,
) -> ApiResult<impl IntoResponse> {
    let (month, from, to) = month_bounds(&st, &q)?;
    let lines = st.store.charges_between(None, from, to).await?;
    let mut out = String::from(
        "reservation,member,member_email,channel,start,slots,amount,currency,state,title\r\n",
    );
    let mut emails = BTreeMap::new();
    for l in &lines {
        if let std::collections::btree_map::Entry::Vacant(e) = emails.entry(l.charge.member) {
            e.insert(st.store.member(l.charge.member).await?.email.to_string());
        }
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\r\n",
            l.charge.reservation,
            l.charge.member,
            cell(&emails[&l.charge.member]),
            l.channel,
            ts(l.start),
            l.slots,
            l.charge.amount.decimal(),
            l.charge.amount.currency,
            l.charge.state,
            cell(&l.title)
        ));
    }
    let disposition = format!("attachment; filename=\"slotcast-charges-{month}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(cell("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("plain"), "\"plain\"");
    }
}
