//! The SQL both backends share, as a macro each backend crate instantiates for its own
//! pool type. The statements are written in the common dialect of SQLite ≥ 3.35 and
//! PostgreSQL ≥ 13 (`$n` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT millisecond
//! timestamps); what differs — connection options, migrations, the write-transaction
//! `BEGIN` and the row-locking clause of the outbox lease — is passed in.
//!
//! The macro expands in the backend crate, so it names `sqlx`, `slotcast_domain` and
//! `slotcast_store` by path; those crates must be dependencies of the caller.

/// Who opens the next write transaction. SQLite admits one writer at a time, and a writer
/// that finds the lock taken sleeps in its busy handler for longer and longer, so the
/// lock goes to whichever sleeper wakes first, not to the one that waited longest: under
/// load some bookings waited 50 times the typical one. The SQLite store therefore queues
/// its writers here, first come first served, and each begins only on its turn;
/// PostgreSQL runs writers together.
#[derive(Debug, Clone, Default)]
pub struct WriteTurns(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl WriteTurns {
    /// Writers take turns, in the order they asked.
    pub fn one_at_a_time() -> Self {
        Self(Some(Default::default()))
    }

    /// Writers do not wait for each other here (the database orders them).
    pub fn together() -> Self {
        Self(None)
    }

    /// Waits for this writer's turn.
    pub async fn take(&self) -> Turn {
        match &self.0 {
            Some(m) => Turn(Some(std::sync::Arc::clone(m).lock_owned().await)),
            None => Turn(None),
        }
    }
}

/// A writer's turn: the next writer's begins when this is dropped.
#[derive(Debug)]
pub struct Turn(
    #[expect(dead_code, reason = "held for its drop")] Option<tokio::sync::OwnedMutexGuard<()>>,
);

/// The condition of a reservation whose `due` job is due: its status is `status` (a
/// placeholder), the instant `due` names is at or before `now` (a placeholder), its notice
/// (if it is one) unsent, and nobody holds its work lease.
pub fn due_where(due: crate::DueField, status: &str, now: &str) -> String {
    let col = due.column();
    let unsent = match due {
        crate::DueField::Notice(n) => format!(" AND {} IS NULL", n.sent_column()),
        _ => String::new(),
    };
    format!("status = {status} AND {col} <= {now}{unsent} AND work_lease_until_ms <= {now}")
}

/// Implements every storage trait for `$store` (a struct with a `pool: sqlx::Pool<$db>`
/// and `turns: WriteTurns`, taken before each write transaction begins).
///
/// - `begin`: statement that opens a write transaction (`BEGIN IMMEDIATE` on SQLite so
///   writers queue on the busy timeout instead of failing on lock upgrade);
/// - `skip_locked`: row-lock clause for the outbox lease subquery;
/// - `migration_lock`: statement run first in the migration transaction so that two
///   processes starting at once do not both migrate (empty where `begin` already locks).
///
/// Also defines `sql_impl::migrate(pool, migrations)`, which applies the embedded
/// migrations not yet recorded in `slotcast_migrations`, in one transaction.
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, backend = $backend:literal, begin = $begin:literal, skip_locked = $skip:literal, migration_lock = $lock:literal, mail_hint = $mail_hint:literal) => {
        mod sql_impl {
            use super::*;
            use async_trait::async_trait;
            use slotcast_domain::charge::{ChargeAction, ChargeState};
            use slotcast_domain::request::ProgramInfo;
            use slotcast_domain::{
                ChannelId, Currency, EmailAddress, KeyHash, MemberId, Money, MonthKey, ReservationId, Schedule,
                Status, Timestamp,
            };
            use slotcast_store::*;
            use sqlx::Row as _;

            type DbRow = <$db as sqlx::Database>::Row;
            /// A write transaction, holding its writer's turn until it commits or is dropped.
            struct Tx {
                tx: sqlx::Transaction<'static, $db>,
                _turn: $crate::sql::Turn,
            }

            impl std::ops::Deref for Tx {
                type Target = <$db as sqlx::Database>::Connection;
                fn deref(&self) -> &Self::Target {
                    &self.tx
                }
            }

            impl std::ops::DerefMut for Tx {
                fn deref_mut(&mut self) -> &mut Self::Target {
                    &mut self.tx
                }
            }

            impl Tx {
                async fn commit(self) -> std::result::Result<(), sqlx::Error> {
                    self.tx.commit().await
                }
            }

            fn db_err(e: sqlx::Error) -> StorageError {
                // PostgreSQL's connection exceptions (08…) and operator intervention
                // (57P…: shutting down, terminating connections, starting up) mean the
                // server is going or gone, not that the statement is wrong.
                let server_going = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"));
                match e {
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                        StorageError::Unavailable(e.into())
                    }
                    _ if server_going => StorageError::Unavailable(e.into()),
                    sqlx::Error::RowNotFound => StorageError::not_found("record"),
                    other => StorageError::Backend(other.into()),
                }
            }

            fn is_unique_violation(e: &sqlx::Error) -> bool {
                e.as_database_error().is_some_and(|d| d.is_unique_violation())
            }

            fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
                StorageError::Corrupt(format!("{what}: {e}"))
            }

            fn get<'r, T>(row: &'r DbRow, col: &str) -> Result<T>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                row.try_get::<T, _>(col).map_err(|e| corrupt(col, e))
            }

            fn ts(row: &DbRow, col: &str) -> Result<Timestamp> {
                from_ms(get::<i64>(row, col)?)
            }

            /// The totals of a program from a row of `program_stats` or `node_totals`.
            fn stats_from(r: &DbRow) -> Result<ProgramStats> {
                let n = |c: &str| get::<i64>(r, c).map(|v| v.max(0) as u64);
                Ok(ProgramStats {
                    peak_viewers: n("peak_viewers")? as u32,
                    unique_viewers: n("unique_viewers")? as u32,
                    viewer_minutes: n("viewer_minutes")?,
                    bytes_out: n("bytes_out")?,
                    seconds_on_air: n("seconds_on_air")?,
                    curve: slotcast_domain::ViewerCurve::decode(&get::<String>(r, "viewer_curve")?)
                        .ok_or_else(|| corrupt("viewer_curve", "not step:points"))?,
                })
            }

            /// Writes a program's totals into `program_stats`, or into `node_totals` as
            /// handed over by `node` (replacing what that node handed over before).
            async fn insert_stats<'e, E>(ex: E, id: ReservationId, st: &ProgramStats, node: Option<&str>) -> Result<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                let sql = match node {
                    None => "INSERT INTO program_stats (reservation_id, peak_viewers, unique_viewers, viewer_minutes, bytes_out, seconds_on_air, viewer_curve) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    Some(_) => "INSERT INTO node_totals (reservation_id, peak_viewers, unique_viewers, viewer_minutes, bytes_out, seconds_on_air, viewer_curve, node) \
                                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                                ON CONFLICT (reservation_id, node) DO UPDATE SET peak_viewers = excluded.peak_viewers, \
                                unique_viewers = excluded.unique_viewers, viewer_minutes = excluded.viewer_minutes, \
                                bytes_out = excluded.bytes_out, seconds_on_air = excluded.seconds_on_air, viewer_curve = excluded.viewer_curve",
                };
                let mut q = sqlx::query(sql)
                    .bind(id.0)
                    .bind(i64::from(st.peak_viewers))
                    .bind(i64::from(st.unique_viewers))
                    .bind(n(st.viewer_minutes))
                    .bind(n(st.bytes_out))
                    .bind(n(st.seconds_on_air))
                    .bind(st.curve.encode());
                if let Some(node) = node {
                    q = q.bind(node);
                }
                q.execute(ex).await.map_err(db_err)?;
                Ok(())
            }

            fn parse<T: std::str::FromStr>(row: &DbRow, col: &str) -> Result<T>
            where
                T::Err: std::fmt::Display,
            {
                get::<String>(row, col)?.parse::<T>().map_err(|e| corrupt(col, e))
            }

            fn u32_of(row: &DbRow, col: &str) -> Result<u32> {
                u32::try_from(get::<i64>(row, col)?).map_err(|e| corrupt(col, e))
            }

            fn money(row: &DbRow, amount: &str, currency: &str) -> Result<Money> {
                let c = Currency::parse(&get::<String>(row, currency)?).map_err(|e| corrupt(currency, e))?;
                Ok(Money::new(get::<i64>(row, amount)?, c))
            }

            fn email(row: &DbRow, col: &str) -> Result<EmailAddress> {
                EmailAddress::parse(&get::<String>(row, col)?).map_err(|e| corrupt(col, e))
            }

            const MEMBER_COLS: &str = "m.id, m.email, m.password_hash, m.display_name, m.tier, m.role, m.show_email, m.created_at_ms, \
                p.brand, p.last4, p.exp_month, p.exp_year, p.holder";

            fn member_from(row: &DbRow) -> Result<Member> {
                let payment = match get::<Option<String>>(row, "brand")? {
                    None => None,
                    Some(brand) => Some(PaymentCard {
                        brand,
                        last4: get(row, "last4")?,
                        exp_month: u8::try_from(get::<i64>(row, "exp_month")?).map_err(|e| corrupt("exp_month", e))?,
                        exp_year: u16::try_from(get::<i64>(row, "exp_year")?).map_err(|e| corrupt("exp_year", e))?,
                        holder: get(row, "holder")?,
                    }),
                };
                Ok(Member {
                    id: MemberId(get(row, "id")?),
                    email: email(row, "email")?,
                    password_hash: get(row, "password_hash")?,
                    display_name: get(row, "display_name")?,
                    tier: parse(row, "tier")?,
                    role: parse(row, "role")?,
                    payment,
                    show_email: get(row, "show_email")?,
                    created_at: ts(row, "created_at_ms")?,
                })
            }

            fn channel_from(row: &DbRow) -> Result<Channel> {
                Ok(Channel {
                    id: ChannelId(get(row, "id")?),
                    name: get(row, "name")?,
                    capacity: u32_of(row, "capacity")?,
                    bitrate_kbps: u32_of(row, "bitrate_kbps")?,
                    tariff: money(row, "tariff_minor", "currency")?,
                    stream_node: get(row, "stream_node")?,
                })
            }

            const RES_COLS: &str = "id, member_id, channel_id, slots, status, start_ms, end_ms, confirm_by_ms, \
                confirm_reminder_at_ms, connect_from_ms, connect_to_ms, start_reminder_at_ms, extension_offer_at_ms, \
                visibility, title, genre, outline, detail, show_email, web_url, viewer_password, invitees, key_hash, \
                slug, fee_minor, currency, invited_at_acceptance, key_failures, key_locked_until_ms, created_at_ms, \
                updated_at_ms";

            fn reservation_from(row: &DbRow) -> Result<Reservation> {
                let invitees = get::<String>(row, "invitees")?
                    .lines()
                    .map(|l| EmailAddress::parse(l).map_err(|e| corrupt("invitees", e)))
                    .collect::<Result<Vec<_>>>()?;
                let key_hex = get::<String>(row, "key_hash")?;
                Ok(Reservation {
                    id: ReservationId(get(row, "id")?),
                    member: MemberId(get(row, "member_id")?),
                    channel: ChannelId(get(row, "channel_id")?),
                    slots: u32_of(row, "slots")?,
                    status: parse(row, "status")?,
                    schedule: Schedule {
                        start: ts(row, "start_ms")?,
                        end: ts(row, "end_ms")?,
                        confirm_by: ts(row, "confirm_by_ms")?,
                        confirm_reminder_at: get::<Option<i64>>(row, "confirm_reminder_at_ms")?.map(from_ms).transpose()?,
                        connect_from: ts(row, "connect_from_ms")?,
                        connect_to: ts(row, "connect_to_ms")?,
                        start_reminder_at: ts(row, "start_reminder_at_ms")?,
                        extension_offer_at: ts(row, "extension_offer_at_ms")?,
                    },
                    visibility: parse(row, "visibility")?,
                    program: ProgramInfo {
                        title: get(row, "title")?,
                        genre: get(row, "genre")?,
                        outline: get(row, "outline")?,
                        detail: get(row, "detail")?,
                        show_email: get(row, "show_email")?,
                        web_url: get(row, "web_url")?,
                    },
                    viewer_password: get(row, "viewer_password")?,
                    invitees,
                    key_hash: KeyHash::from_hex(&key_hex).ok_or_else(|| corrupt("key_hash", "not 64 hex digits"))?,
                    slug: get(row, "slug")?,
                    fee: money(row, "fee_minor", "currency")?,
                    invited_at_acceptance: get(row, "invited_at_acceptance")?,
                    key_failures: u32_of(row, "key_failures")?,
                    key_locked_until: get::<Option<i64>>(row, "key_locked_until_ms")?.map(from_ms).transpose()?,
                    created_at: ts(row, "created_at_ms")?,
                    updated_at: ts(row, "updated_at_ms")?,
                })
            }

            fn charge_from(row: &DbRow) -> Result<Charge> {
                Ok(Charge {
                    reservation: ReservationId(get(row, "reservation_id")?),
                    member: MemberId(get(row, "member_id")?),
                    amount: money(row, "amount_minor", "currency")?,
                    state: parse(row, "state")?,
                    created_at: ts(row, "created_at_ms")?,
                    updated_at: ts(row, "updated_at_ms")?,
                })
            }

            const OUTBOX_COLS: &str = "id, dedupe_key, recipient, subject, body_text, body_html, ics, reservation_id, \
                state, attempts, last_error, created_at_ms";

            fn message_from(row: &DbRow) -> Result<OutboxMessage> {
                Ok(OutboxMessage {
                    id: get(row, "id")?,
                    message: NewMessage {
                        dedupe_key: get(row, "dedupe_key")?,
                        to: email(row, "recipient")?,
                        subject: get(row, "subject")?,
                        text: get(row, "body_text")?,
                        html: get(row, "body_html")?,
                        ics: get(row, "ics")?,
                        reservation: get::<Option<i64>>(row, "reservation_id")?.map(ReservationId),
                    },
                    state: parse(row, "state")?,
                    attempts: u32_of(row, "attempts")?,
                    last_error: get(row, "last_error")?,
                    created_at: ts(row, "created_at_ms")?,
                })
            }

            /// Applies the migrations `(version, name, sql)` not yet applied, in one transaction.
            pub(crate) async fn migrate(pool: &sqlx::Pool<$db>, migrations: &[(i64, &str, &str)]) -> Result<()> {
                let mut tx = pool.begin_with($begin).await.map_err(db_err)?;
                if !$lock.is_empty() {
                    sqlx::raw_sql($lock).execute(&mut *tx).await.map_err(db_err)?;
                }
                sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS slotcast_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                     applied_at_ms BIGINT NOT NULL)",
                )
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM slotcast_migrations ORDER BY version")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let known = migrations.last().map_or(0, |m| m.0);
                if let Some(newer) = applied.iter().find(|v| **v > known) {
                    return Err(StorageError::Config(format!(
                        "the database schema is at version {newer}, newer than this slotcast knows ({known}); upgrade slotcast"
                    )));
                }
                for (version, name, sql) in migrations.iter().filter(|m| !applied.contains(&m.0)) {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| StorageError::Backend(format!("migration {version} ({name}): {e}").into()))?;
                    sqlx::query("INSERT INTO slotcast_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
                        .bind(*version)
                        .bind(*name)
                        .bind(to_ms(Timestamp::now()))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tracing::info!(version, name, "applied migration");
                }
                tx.commit().await.map_err(db_err)
            }

            async fn begin(s: &$store) -> Result<Tx> {
                let turn = s.turns.take().await;
                let tx = s.pool.begin_with($begin).await.map_err(db_err)?;
                Ok(Tx { tx, _turn: turn })
            }

            async fn insert_messages(tx: &mut Tx, msgs: &[NewMessage], at: Timestamp) -> Result<usize> {
                let mut n = 0;
                for m in msgs {
                    let r = sqlx::query(
                        "INSERT INTO outbox (dedupe_key, recipient, subject, body_text, body_html, ics, reservation_id, \
                         state, attempts, next_attempt_ms, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8) ON CONFLICT (dedupe_key) DO NOTHING",
                    )
                    .bind(&m.dedupe_key)
                    .bind(m.to.as_str())
                    .bind(&m.subject)
                    .bind(&m.text)
                    .bind(&m.html)
                    .bind(&m.ics)
                    .bind(m.reservation.map(|r| r.0))
                    .bind(to_ms(at))
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                    n += r.rows_affected() as usize;
                }
                // Sent when the transaction commits, so never for messages rolled back.
                if n > 0 && !$mail_hint.is_empty() {
                    sqlx::query($mail_hint)
                        .bind($crate::MAIL_TOPIC)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                Ok(n)
            }

            /// Claims every slot of `claims` for reservation `id` and takes the quota, or
            /// fails with the conflict (the caller's transaction is then dropped, undoing it).
            async fn claim(
                tx: &mut Tx,
                channel: ChannelId,
                member: MemberId,
                id: ReservationId,
                claims: &[Timestamp],
                quota: &[(MonthKey, u32)],
                quota_max: u32,
            ) -> Result<()> {
                // Claim every slot; a slot someone else holds is skipped and shows up as missing.
                let mut months = Vec::with_capacity(claims.len());
                for (m, n) in quota {
                    months.extend(std::iter::repeat_n(*m, *n as usize));
                }
                if months.len() != claims.len() {
                    return Err(StorageError::Backend("quota months do not cover the claimed slots".into()));
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO slot_claims (channel_id, slot_ms, reservation_id, member_id, month) ",
                );
                qb.push_values(claims.iter().zip(&months), |mut b, (slot, month)| {
                    b.push_bind(channel.0)
                        .push_bind(to_ms(*slot))
                        .push_bind(id.0)
                        .push_bind(member.0)
                        .push_bind(month.to_string());
                });
                qb.push(" ON CONFLICT DO NOTHING RETURNING slot_ms");
                let claimed: Vec<i64> = qb.build_query_scalar().fetch_all(&mut **tx).await.map_err(db_err)?;
                if claimed.len() != claims.len() {
                    let slot = claims
                        .iter()
                        .copied()
                        .find(|s| !claimed.contains(&to_ms(*s)))
                        .expect("one slot is missing");
                    return Err(Conflict::SlotTaken { channel, slot }.into());
                }

                // Take the quota with a conditional update per month: concurrent bookings of one
                // member serialize on the counter row and cannot both pass.
                for (month, n) in quota {
                    let key = month.to_string();
                    sqlx::query(
                        "INSERT INTO quota_usage (member_id, month, used) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
                    )
                    .bind(member.0)
                    .bind(&key)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                    let ok: Option<i64> = sqlx::query_scalar(
                        "UPDATE quota_usage SET used = used + $1 WHERE member_id = $2 AND month = $3 AND used + $1 <= $4 \
                         RETURNING used",
                    )
                    .bind(i64::from(*n))
                    .bind(member.0)
                    .bind(&key)
                    .bind(i64::from(quota_max))
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_err)?;
                    if ok.is_none() {
                        let used: i64 = sqlx::query_scalar("SELECT used FROM quota_usage WHERE member_id = $1 AND month = $2")
                            .bind(member.0)
                            .bind(&key)
                            .fetch_one(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        return Err(Conflict::QuotaExceeded(slotcast_domain::quota::QuotaExceeded {
                            month: *month,
                            used: u32::try_from(used).unwrap_or(u32::MAX),
                            requested: *n,
                            max: quota_max,
                        })
                        .into());
                    }
                }
                Ok(())
            }

            async fn log_transition(
                tx: &mut Tx,
                id: ReservationId,
                from: Option<Status>,
                to: Status,
                at: Timestamp,
                actor: Actor,
                reason: &str,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO transitions (reservation_id, from_status, to_status, at_ms, actor, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.0)
                .bind(from.map(Status::as_str))
                .bind(to.as_str())
                .bind(to_ms(at))
                .bind(actor.encode())
                .bind(reason)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn fetch_reservation<'e, E>(ex: E, id: ReservationId) -> Result<Reservation>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = sqlx::AssertSqlSafe(format!("SELECT {RES_COLS} FROM reservations WHERE id = $1"));
                let row = sqlx::query(sql).bind(id.0).fetch_optional(ex).await.map_err(db_err)?;
                reservation_from(&row.ok_or_else(|| StorageError::not_found(format!("reservation {id}")))?)
            }

            async fn fetch_member<'e, E>(ex: E, clause: &'static str, bind: impl FnOnce(sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>) -> sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>, what: String) -> Result<Member>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {MEMBER_COLS} FROM members m LEFT JOIN payment_methods p ON p.member_id = m.id WHERE {clause}"
                ));
                let row = bind(sqlx::query(sql)).fetch_optional(ex).await.map_err(db_err)?;
                member_from(&row.ok_or_else(|| StorageError::not_found(what))?)
            }

            /// Puts a member's card on file, replacing the one there.
            async fn put_card(tx: &mut Tx, id: i64, p: &PaymentCard, at: Timestamp) -> Result<()> {
                sqlx::query(
                    "INSERT INTO payment_methods (member_id, brand, last4, exp_month, exp_year, holder, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (member_id) DO UPDATE SET brand = excluded.brand, last4 = excluded.last4, \
                     exp_month = excluded.exp_month, exp_year = excluded.exp_year, holder = excluded.holder, \
                     created_at_ms = excluded.created_at_ms",
                )
                .bind(id)
                .bind(&p.brand)
                .bind(&p.last4)
                .bind(i64::from(p.exp_month))
                .bind(i64::from(p.exp_year))
                .bind(&p.holder)
                .bind(to_ms(at))
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            #[async_trait]
            impl MemberStore for $store {
                async fn create_member(&self, m: NewMember) -> Result<Member> {
                    let mut tx = begin(self).await?;
                    let id: i64 = match sqlx::query_scalar(
                        "INSERT INTO members (email, password_hash, display_name, tier, role, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(m.email.as_str())
                    .bind(&m.password_hash)
                    .bind(&m.display_name)
                    .bind(m.tier.as_str())
                    .bind(m.role.as_str())
                    .bind(to_ms(m.created_at))
                    .fetch_one(&mut *tx)
                    .await
                    {
                        Ok(id) => id,
                        Err(e) if is_unique_violation(&e) => return Err(Conflict::EmailTaken.into()),
                        Err(e) => return Err(db_err(e)),
                    };
                    if let Some(p) = &m.payment {
                        put_card(&mut tx, id, p, m.created_at).await?;
                    }
                    let member = fetch_member(&mut *tx, "m.id = $1", |q| q.bind(id), format!("member {id}")).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn member(&self, id: MemberId) -> Result<Member> {
                    fetch_member(&self.pool, "m.id = $1", |q| q.bind(id.0), format!("member {id}")).await
                }

                async fn member_by_email(&self, email: &EmailAddress) -> Result<Member> {
                    let e = email.as_str().to_owned();
                    fetch_member(&self.pool, "m.email = $1", |q| q.bind(e), format!("member {email}")).await
                }

                async fn set_password_hash(&self, id: MemberId, hash: &str) -> Result<()> {
                    let r = sqlx::query("UPDATE members SET password_hash = $1 WHERE id = $2")
                        .bind(hash)
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        return Err(StorageError::not_found(format!("member {id}")));
                    }
                    Ok(())
                }

                async fn update_member(&self, id: MemberId, display_name: &str, show_email: bool) -> Result<Member> {
                    let mut tx = begin(self).await?;
                    let r = sqlx::query("UPDATE members SET display_name = $1, show_email = $2 WHERE id = $3")
                        .bind(display_name)
                        .bind(show_email)
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        return Err(StorageError::not_found(format!("member {id}")));
                    }
                    let member = fetch_member(&mut *tx, "m.id = $1", |q| q.bind(id.0), format!("member {id}")).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn search_members(&self, text: &str, limit: u32) -> Result<Vec<Member>> {
                    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    let pattern = format!("%{escaped}%");
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {MEMBER_COLS} FROM members m LEFT JOIN payment_methods p ON p.member_id = m.id \
                         WHERE LOWER(m.email) LIKE $1 ESCAPE '\\' OR LOWER(m.display_name) LIKE $1 ESCAPE '\\' ORDER BY m.id LIMIT $2"
                    ));
                    let rows = sqlx::query(sql)
                        .bind(pattern)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(member_from).collect()
                }

                async fn set_payment_card(&self, id: MemberId, card: &PaymentCard, at: Timestamp) -> Result<Member> {
                    let mut tx = begin(self).await?;
                    let r = sqlx::query("UPDATE members SET tier = 'premium' WHERE id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        return Err(StorageError::not_found(format!("member {id}")));
                    }
                    put_card(&mut tx, id.0, card, at).await?;
                    let member = fetch_member(&mut *tx, "m.id = $1", |q| q.bind(id.0), format!("member {id}")).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }
            }

            #[async_trait]
            impl SessionStore for $store {
                async fn create_session(&self, s: NewSession) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO sessions (token_hash, member_id, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&s.token_hash[..])
                    .bind(s.member.0)
                    .bind(to_ms(s.created_at))
                    .bind(to_ms(s.expires_at))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn session_member(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Member> {
                    let hash = token_hash.to_vec();
                    fetch_member(
                        &self.pool,
                        "m.id = (SELECT member_id FROM sessions WHERE token_hash = $1 AND expires_at_ms > $2 AND revoked_at_ms IS NULL)",
                        |q| q.bind(hash).bind(to_ms(now)),
                        "session".to_owned(),
                    )
                    .await
                }

                async fn revoke_session(&self, token_hash: &[u8; 32], at: Timestamp) -> Result<()> {
                    sqlx::query("UPDATE sessions SET revoked_at_ms = $1 WHERE token_hash = $2 AND revoked_at_ms IS NULL")
                        .bind(to_ms(at))
                        .bind(&token_hash[..])
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn revoke_member_sessions(
                    &self,
                    member: MemberId,
                    keep: Option<&[u8; 32]>,
                    at: Timestamp,
                ) -> Result<u64> {
                    // An empty hash matches no session: "keep none".
                    let keep = keep.map_or_else(Vec::new, |k| k.to_vec());
                    let done = sqlx::query(
                        "UPDATE sessions SET revoked_at_ms = $1 \
                         WHERE member_id = $2 AND revoked_at_ms IS NULL AND token_hash <> $3",
                    )
                    .bind(to_ms(at))
                    .bind(member.0)
                    .bind(keep)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl ChannelStore for $store {
                async fn create_channel(&self, c: NewChannel) -> Result<Channel> {
                    let row = sqlx::query(
                        "INSERT INTO channels (name, capacity, bitrate_kbps, tariff_minor, currency, stream_node) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                    )
                    .bind(&c.name)
                    .bind(i64::from(c.capacity))
                    .bind(i64::from(c.bitrate_kbps))
                    .bind(c.tariff.minor)
                    .bind(c.tariff.currency.as_str())
                    .bind(&c.stream_node)
                    .fetch_one(&self.pool)
                    .await;
                    match row {
                        Ok(row) => channel_from(&row),
                        Err(e) if is_unique_violation(&e) => Err(Conflict::ChannelNameTaken(c.name).into()),
                        Err(e) => Err(db_err(e)),
                    }
                }

                async fn channels(&self) -> Result<Vec<Channel>> {
                    let rows = sqlx::query("SELECT * FROM channels ORDER BY id")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(channel_from).collect()
                }

                async fn update_channel(&self, id: ChannelId, c: NewChannel) -> Result<Channel> {
                    let row = sqlx::query(
                        "UPDATE channels SET name = $1, capacity = $2, bitrate_kbps = $3, tariff_minor = $4, currency = $5, \
                         stream_node = $6 WHERE id = $7 RETURNING *",
                    )
                    .bind(&c.name)
                    .bind(i64::from(c.capacity))
                    .bind(i64::from(c.bitrate_kbps))
                    .bind(c.tariff.minor)
                    .bind(c.tariff.currency.as_str())
                    .bind(&c.stream_node)
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await;
                    match row {
                        Ok(Some(row)) => channel_from(&row),
                        Ok(None) => Err(StorageError::not_found(format!("channel {id}"))),
                        Err(e) if is_unique_violation(&e) => Err(Conflict::ChannelNameTaken(c.name).into()),
                        Err(e) => Err(db_err(e)),
                    }
                }

                async fn channel(&self, id: ChannelId) -> Result<Channel> {
                    let row = sqlx::query("SELECT * FROM channels WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    channel_from(&row.ok_or_else(|| StorageError::not_found(format!("channel {id}")))?)
                }
            }

            #[async_trait]
            impl ReservationStore for $store {
                async fn create_reservation(&self, r: NewReservation) -> Result<Reservation> {
                    let mut tx = begin(self).await?;
                    let tier: Option<String> = sqlx::query_scalar("SELECT tier FROM members WHERE id = $1")
                        .bind(r.member.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    match tier.as_deref() {
                        None => return Err(StorageError::not_found(format!("member {}", r.member))),
                        Some("premium") => {}
                        Some(_) => return Err(Conflict::NotPremium.into()),
                    }
                    let s = &r.schedule;
                    let invitees: Vec<&str> = r.invitees.iter().map(EmailAddress::as_str).collect();
                    let inserted = sqlx::query_scalar::<_, i64>(
                        "INSERT INTO reservations (id, member_id, channel_id, slots, status, start_ms, end_ms, confirm_by_ms, \
                         confirm_reminder_at_ms, connect_from_ms, connect_to_ms, start_reminder_at_ms, extension_offer_at_ms, \
                         visibility, title, genre, outline, detail, show_email, web_url, viewer_password, invitees, key_hash, \
                         slug, fee_minor, currency, invited_at_acceptance, created_at_ms, updated_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
                         $22, $23, $24, $25, $26, $27, $28, $28) RETURNING id",
                    )
                    .bind(r.id.0)
                    .bind(r.member.0)
                    .bind(r.channel.0)
                    .bind(i64::from(r.slots))
                    .bind(Status::AwaitingConfirmation.as_str())
                    .bind(to_ms(s.start))
                    .bind(to_ms(s.end))
                    .bind(to_ms(s.confirm_by))
                    .bind(s.confirm_reminder_at.map(to_ms))
                    .bind(to_ms(s.connect_from))
                    .bind(to_ms(s.connect_to))
                    .bind(to_ms(s.start_reminder_at))
                    .bind(to_ms(s.extension_offer_at))
                    .bind(r.visibility.as_str())
                    .bind(&r.program.title)
                    .bind(&r.program.genre)
                    .bind(&r.program.outline)
                    .bind(&r.program.detail)
                    .bind(r.program.show_email)
                    .bind(&r.program.web_url)
                    .bind(&r.viewer_password)
                    .bind(invitees.join("\n"))
                    .bind(r.key_hash.to_hex())
                    .bind(&r.slug)
                    .bind(r.fee.minor)
                    .bind(r.fee.currency.as_str())
                    .bind(r.invited_at_acceptance)
                    .bind(to_ms(r.created_at))
                    .fetch_one(&mut *tx)
                    .await;
                    let id = match inserted {
                        Ok(id) => ReservationId(id),
                        Err(e) if is_unique_violation(&e) => return Err(Conflict::IdTaken.into()),
                        Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                            return Err(StorageError::not_found(format!("channel {}", r.channel)));
                        }
                        Err(e) => return Err(db_err(e)),
                    };

                    claim(&mut tx, r.channel, r.member, id, &r.claims, &r.quota, r.quota_max).await?;
                    log_transition(&mut tx, id, None, Status::AwaitingConfirmation, r.created_at, Actor::Member(r.member), "booked").await?;
                    insert_messages(&mut tx, &r.outbox, r.created_at).await?;
                    let out = fetch_reservation(&mut *tx, id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(out)
                }

                async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
                    fetch_reservation(&self.pool, id).await
                }

                async fn reservation_by_slug(&self, slug: &str) -> Result<Reservation> {
                    let sql = sqlx::AssertSqlSafe(format!("SELECT {RES_COLS} FROM reservations WHERE slug = $1"));
                    let row = sqlx::query(sql).bind(slug).fetch_optional(&self.pool).await.map_err(db_err)?;
                    reservation_from(&row.ok_or_else(|| StorageError::not_found("program"))?)
                }

                async fn reservation_by_key(&self, key: &slotcast_domain::KeyHash) -> Result<Reservation> {
                    let sql = sqlx::AssertSqlSafe(format!("SELECT {RES_COLS} FROM reservations WHERE key_hash = $1"));
                    let row = sqlx::query(sql).bind(key.to_hex()).fetch_optional(&self.pool).await.map_err(db_err)?;
                    reservation_from(&row.ok_or_else(|| StorageError::not_found("reservation"))?)
                }

                async fn program_stats(&self, id: ReservationId) -> Result<Option<ProgramStats>> {
                    let row = sqlx::query(
                        "SELECT peak_viewers, unique_viewers, viewer_minutes, bytes_out, seconds_on_air, viewer_curve \
                         FROM program_stats WHERE reservation_id = $1",
                    )
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(stats_from).transpose()
                }

                async fn set_pickup(&self, id: ReservationId, picked: bool, at: Timestamp) -> Result<()> {
                    let q = if picked {
                        sqlx::query(
                            "INSERT INTO pickups (reservation_id, picked_at_ms) VALUES ($1, $2) \
                             ON CONFLICT (reservation_id) DO NOTHING",
                        )
                        .bind(id.0)
                        .bind(to_ms(at))
                    } else {
                        sqlx::query("DELETE FROM pickups WHERE reservation_id = $1").bind(id.0)
                    };
                    q.execute(&self.pool).await.map_err(db_err)?;
                    Ok(())
                }

                async fn pickups(&self) -> Result<Vec<ReservationId>> {
                    let rows = sqlx::query("SELECT reservation_id FROM pickups ORDER BY picked_at_ms DESC, reservation_id")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(|r| get::<i64>(r, "reservation_id").map(ReservationId)).collect()
                }

                async fn reservations_of(&self, member: MemberId) -> Result<Vec<Reservation>> {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {RES_COLS} FROM reservations WHERE member_id = $1 ORDER BY start_ms DESC, id DESC"
                    ));
                    let rows = sqlx::query(sql).bind(member.0).fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(reservation_from).collect()
                }

                async fn transition(&self, cmd: TransitionCommand) -> Result<Reservation> {
                    let mut tx = begin(self).await?;
                    let id = cmd.reservation;
                    let deadline_guard = if cmd.before_confirm_deadline { " AND confirm_by_ms > $5" } else { "" };
                    let sql = sqlx::AssertSqlSafe(format!(
                        "UPDATE reservations SET status = $1, updated_at_ms = $2 WHERE id = $3 AND status = $4{deadline_guard} \
                         RETURNING member_id"
                    ));
                    let mut q = sqlx::query_scalar::<_, i64>(sql)
                        .bind(cmd.to.as_str())
                        .bind(to_ms(cmd.at))
                        .bind(id.0)
                        .bind(cmd.from.as_str());
                    if cmd.before_confirm_deadline {
                        q = q.bind(to_ms(cmd.at));
                    }
                    let Some(member) = q.fetch_optional(&mut *tx).await.map_err(db_err)? else {
                        let current = fetch_reservation(&mut *tx, id).await?;
                        return Err(if current.status != cmd.from {
                            Conflict::WrongState { current: current.status, expected: cmd.from }
                        } else {
                            Conflict::DeadlinePassed { confirm_by: current.schedule.confirm_by }
                        }
                        .into());
                    };
                    if cmd.release_slots {
                        sqlx::query(
                            "UPDATE quota_usage SET used = used - (SELECT COUNT(*) FROM slot_claims c \
                             WHERE c.reservation_id = $1 AND c.month = quota_usage.month) \
                             WHERE member_id = $2 AND month IN (SELECT month FROM slot_claims WHERE reservation_id = $1)",
                        )
                        .bind(id.0)
                        .bind(member)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        sqlx::query("DELETE FROM slot_claims WHERE reservation_id = $1")
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    match cmd.charge {
                        None => {}
                        Some(ChargeAction::Open) => {
                            sqlx::query(
                                "INSERT INTO charges (reservation_id, member_id, amount_minor, currency, state, created_at_ms, updated_at_ms) \
                                 SELECT id, member_id, fee_minor, currency, 'pending', $2, $2 FROM reservations WHERE id = $1",
                            )
                            .bind(id.0)
                            .bind(to_ms(cmd.at))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| {
                                if is_unique_violation(&e) {
                                    Conflict::Charge("a charge exists already".into()).into()
                                } else {
                                    db_err(e)
                                }
                            })?;
                        }
                        Some(action) => {
                            let new = ChargeState::apply(Some(ChargeState::Pending), action)
                                .map_err(|e| Conflict::Charge(e.to_string()))?;
                            let r = sqlx::query(
                                "UPDATE charges SET state = $1, updated_at_ms = $2 WHERE reservation_id = $3 AND state = 'pending'",
                            )
                            .bind(new.as_str())
                            .bind(to_ms(cmd.at))
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            if r.rows_affected() != 1 {
                                return Err(Conflict::Charge(format!("no pending charge to make {new}")).into());
                            }
                        }
                    }
                    log_transition(&mut tx, id, Some(cmd.from), cmd.to, cmd.at, cmd.actor, &cmd.reason).await?;
                    insert_messages(&mut tx, &cmd.outbox, cmd.at).await?;
                    if let Some(st) = cmd.stats {
                        insert_stats(&mut *tx, id, &st, None).await?;
                    }
                    let out = fetch_reservation(&mut *tx, id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(out)
                }

                async fn transitions(&self, id: ReservationId) -> Result<Vec<TransitionRecord>> {
                    let rows = sqlx::query(
                        "SELECT from_status, to_status, at_ms, actor, reason FROM transitions WHERE reservation_id = $1 ORDER BY id",
                    )
                    .bind(id.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(TransitionRecord {
                                from: get::<Option<String>>(row, "from_status")?
                                    .map(|s| s.parse::<Status>().map_err(|e| corrupt("from_status", e)))
                                    .transpose()?,
                                to: parse(row, "to_status")?,
                                at: ts(row, "at_ms")?,
                                actor: Actor::decode(&get::<String>(row, "actor")?)
                                    .ok_or_else(|| corrupt("actor", "unknown form"))?,
                                reason: get(row, "reason")?,
                            })
                        })
                        .collect()
                }

                async fn charge(&self, id: ReservationId) -> Result<Option<Charge>> {
                    let row = sqlx::query("SELECT * FROM charges WHERE reservation_id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(charge_from).transpose()
                }

                async fn waive_charge(&self, id: ReservationId, at: Timestamp, actor: Actor, reason: &str) -> Result<Charge> {
                    let mut tx = begin(self).await?;
                    let before: Option<String> = sqlx::query_scalar("SELECT state FROM charges WHERE reservation_id = $1")
                        .bind(id.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let r = sqlx::query(
                        "UPDATE charges SET state = 'waived', updated_at_ms = $1 WHERE reservation_id = $2 AND state IN ('pending', 'final')",
                    )
                    .bind(to_ms(at))
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if r.rows_affected() != 1 {
                        let what = before.map_or_else(|| "no charge".to_owned(), |s| format!("a {s} charge"));
                        return Err(Conflict::Charge(format!("reservation {id} has {what}, not one to waive")).into());
                    }
                    sqlx::query(
                        "INSERT INTO charge_events (reservation_id, at_ms, actor, from_state, to_state, reason) VALUES ($1, $2, $3, $4, 'waived', $5)",
                    )
                    .bind(id.0)
                    .bind(to_ms(at))
                    .bind(actor.encode())
                    .bind(before.unwrap_or_default())
                    .bind(reason)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let row = sqlx::query("SELECT * FROM charges WHERE reservation_id = $1")
                        .bind(id.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let charge = charge_from(&row)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(charge)
                }

                async fn quota_used(&self, member: MemberId, month: MonthKey) -> Result<u32> {
                    let used: Option<i64> = sqlx::query_scalar("SELECT used FROM quota_usage WHERE member_id = $1 AND month = $2")
                        .bind(member.0)
                        .bind(month.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    u32::try_from(used.unwrap_or(0)).map_err(|e| corrupt("quota_usage.used", e))
                }

                async fn due(&self, status: Status, due: DueField, now: Timestamp, limit: u32, lease_ms: i64) -> Result<Vec<Reservation>> {
                    let col = due.column();
                    let sql = sqlx::AssertSqlSafe(format!(
                        "UPDATE reservations SET work_lease_until_ms = $4 WHERE id IN (SELECT id FROM reservations \
                         WHERE {} ORDER BY {col}, id LIMIT $3{}) \
                         RETURNING {RES_COLS}",
                        $crate::sql::due_where(due, "$1", "$2"),
                        $skip
                    ));
                    let mut tx = begin(self).await?;
                    let rows = sqlx::query(sql)
                        .bind(status.as_str())
                        .bind(to_ms(now))
                        .bind(i64::from(limit))
                        .bind(to_ms(now).saturating_add(lease_ms))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    let mut out = rows.iter().map(reservation_from).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|r| r.id);
                    Ok(out)
                }

                async fn any_due(&self, jobs: &[(Status, DueField)], now: Timestamp) -> Result<bool> {
                    if jobs.is_empty() {
                        return Ok(false);
                    }
                    let any = jobs
                        .iter()
                        .enumerate()
                        .map(|(i, (_, due))| format!("({})", $crate::sql::due_where(*due, &format!("${}", i + 2), "$1")))
                        .collect::<Vec<_>>()
                        .join(" OR ");
                    let sql = sqlx::AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM reservations WHERE {any})"));
                    let mut q = sqlx::query_scalar::<_, bool>(sql).bind(to_ms(now));
                    for (status, _) in jobs {
                        q = q.bind(status.as_str());
                    }
                    q.fetch_one(&self.pool).await.map_err(db_err)
                }

                async fn release_work(&self, id: ReservationId) -> Result<()> {
                    sqlx::query("UPDATE reservations SET work_lease_until_ms = 0 WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn mark_notice(&self, id: ReservationId, notice: Notice, at: Timestamp, outbox: Vec<NewMessage>) -> Result<bool> {
                    let mut tx = begin(self).await?;
                    let sql = sqlx::AssertSqlSafe(format!(
                        "UPDATE reservations SET {col} = $1 WHERE id = $2 AND {col} IS NULL",
                        col = notice.sent_column()
                    ));
                    let r = sqlx::query(sql).bind(to_ms(at)).bind(id.0).execute(&mut *tx).await.map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        return Ok(false);
                    }
                    insert_messages(&mut tx, &outbox, at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(true)
                }

                async fn change_program(&self, cmd: ChangeCommand) -> Result<Reservation> {
                    let mut tx = begin(self).await?;
                    let invitees: Vec<&str> = cmd.invitees.iter().map(EmailAddress::as_str).collect();
                    let p = &cmd.program;
                    let r = sqlx::query(
                        "UPDATE reservations SET title = $1, genre = $2, outline = $3, detail = $4, show_email = $5, \
                         web_url = $6, viewer_password = $7, invitees = $8, updated_at_ms = $9 \
                         WHERE id = $10 AND status = $11 AND end_ms > $9",
                    )
                    .bind(&p.title)
                    .bind(&p.genre)
                    .bind(&p.outline)
                    .bind(&p.detail)
                    .bind(p.show_email)
                    .bind(&p.web_url)
                    .bind(&cmd.viewer_password)
                    .bind(invitees.join("\n"))
                    .bind(to_ms(cmd.at))
                    .bind(cmd.reservation.0)
                    .bind(cmd.expected.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        let current = fetch_reservation(&mut *tx, cmd.reservation).await?;
                        return Err(if current.status != cmd.expected {
                            Conflict::WrongState { current: current.status, expected: cmd.expected }
                        } else {
                            Conflict::Ended { end: current.schedule.end }
                        }
                        .into());
                    }
                    log_transition(&mut tx, cmd.reservation, Some(cmd.expected), cmd.expected, cmd.at, cmd.actor, &cmd.reason).await?;
                    insert_messages(&mut tx, &cmd.outbox, cmd.at).await?;
                    let out = fetch_reservation(&mut *tx, cmd.reservation).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(out)
                }

                async fn extend(&self, cmd: ExtendCommand) -> Result<Reservation> {
                    let mut tx = begin(self).await?;
                    let id = cmd.reservation;
                    let current = fetch_reservation(&mut *tx, id).await?;
                    let s = &cmd.schedule;
                    let r = sqlx::query(
                        "UPDATE reservations SET slots = $1, end_ms = $2, connect_to_ms = $3, extension_offer_at_ms = $4, \
                         fee_minor = $5, updated_at_ms = $6 WHERE id = $7 AND status = $8 AND end_ms = $9 AND end_ms > $6",
                    )
                    .bind(i64::from(cmd.slots))
                    .bind(to_ms(s.end))
                    .bind(to_ms(s.connect_to))
                    .bind(to_ms(s.extension_offer_at))
                    .bind(cmd.fee.minor)
                    .bind(to_ms(cmd.at))
                    .bind(id.0)
                    .bind(cmd.expected.as_str())
                    .bind(to_ms(current.schedule.end))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        return Err(if current.status != cmd.expected {
                            Conflict::WrongState { current: current.status, expected: cmd.expected }
                        } else {
                            Conflict::Ended { end: current.schedule.end }
                        }
                        .into());
                    }
                    claim(&mut tx, current.channel, current.member, id, &cmd.claims, &cmd.quota, cmd.quota_max).await?;
                    sqlx::query("UPDATE charges SET amount_minor = $1, updated_at_ms = $2 WHERE reservation_id = $3 AND state = 'pending'")
                        .bind(cmd.fee.minor)
                        .bind(to_ms(cmd.at))
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let reason = format!("extended to {} slots, until {}", cmd.slots, s.end);
                    log_transition(&mut tx, id, Some(cmd.expected), cmd.expected, cmd.at, cmd.actor, &reason).await?;
                    insert_messages(&mut tx, &cmd.outbox, cmd.at).await?;
                    let out = fetch_reservation(&mut *tx, id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(out)
                }

                async fn record_key_failure(&self, id: ReservationId, at: Timestamp, max_failures: u32, lock_ms: i64) -> Result<Reservation> {
                    let mut tx = begin(self).await?;
                    sqlx::query(
                        "UPDATE reservations SET key_failures = key_failures + 1, \
                         key_locked_until_ms = CASE WHEN key_failures + 1 >= $1 THEN $2 ELSE key_locked_until_ms END \
                         WHERE id = $3",
                    )
                    .bind(i64::from(max_failures))
                    .bind(to_ms(at) + lock_ms)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let out = fetch_reservation(&mut *tx, id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(out)
                }

                async fn claims_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Claim>> {
                    let rows = sqlx::query(
                        "SELECT channel_id, slot_ms, reservation_id FROM slot_claims WHERE slot_ms >= $1 AND slot_ms < $2 \
                         ORDER BY channel_id, slot_ms",
                    )
                    .bind(to_ms(from))
                    .bind(to_ms(to))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(Claim {
                                channel: ChannelId(get(row, "channel_id")?),
                                slot: ts(row, "slot_ms")?,
                                reservation: ReservationId(get(row, "reservation_id")?),
                            })
                        })
                        .collect()
                }

                async fn reservations_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Reservation>> {
                    // Driven by the end index: rows still running after `from` (the future is
                    // bounded by the booking horizon), not every reservation that ever started
                    // before `to`; `+ 0` keeps the planner off the start index.
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {RES_COLS} FROM reservations WHERE end_ms > $1 AND start_ms + 0 < $2 ORDER BY start_ms, channel_id, id"
                    ));
                    let rows = sqlx::query(sql).bind(to_ms(from)).bind(to_ms(to)).fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(reservation_from).collect()
                }

                async fn charges_between(&self, member: Option<MemberId>, from: Timestamp, to: Timestamp) -> Result<Vec<ChargeLine>> {
                    let rows = sqlx::query(
                        "SELECT c.reservation_id, c.member_id, c.amount_minor, c.currency, c.state, c.created_at_ms, \
                         c.updated_at_ms, r.channel_id, r.start_ms, r.slots, r.title \
                         FROM charges c JOIN reservations r ON r.id = c.reservation_id \
                         WHERE r.start_ms >= $1 AND r.start_ms < $2 AND ($3 IS NULL OR c.member_id = $3) \
                         ORDER BY r.start_ms, c.reservation_id",
                    )
                    .bind(to_ms(from))
                    .bind(to_ms(to))
                    .bind(member.map(|m| m.0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(ChargeLine {
                                charge: charge_from(row)?,
                                channel: ChannelId(get(row, "channel_id")?),
                                start: ts(row, "start_ms")?,
                                slots: u32_of(row, "slots")?,
                                title: get(row, "title")?,
                            })
                        })
                        .collect()
                }
            }

            #[async_trait]
            impl OutboxStore for $store {
                async fn enqueue(&self, msgs: Vec<NewMessage>, at: Timestamp) -> Result<usize> {
                    let mut tx = begin(self).await?;
                    let n = insert_messages(&mut tx, &msgs, at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(n)
                }

                async fn claim_due(&self, now: Timestamp, lease_ms: i64, limit: u32) -> Result<Vec<OutboxMessage>> {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "UPDATE outbox SET next_attempt_ms = $1 WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' \
                         AND next_attempt_ms <= $2 ORDER BY next_attempt_ms, id LIMIT $3{}) RETURNING {OUTBOX_COLS}",
                        $skip
                    ));
                    let mut tx = begin(self).await?;
                    let rows = sqlx::query(sql)
                        .bind(to_ms(now) + lease_ms)
                        .bind(to_ms(now))
                        .bind(i64::from(limit))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    let mut out = rows.iter().map(message_from).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|m| m.id);
                    Ok(out)
                }

                async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<()> {
                    sqlx::query("UPDATE outbox SET state = 'sent', sent_at_ms = $1, attempts = attempts + 1 WHERE id = $2 AND state = 'queued'")
                        .bind(to_ms(at))
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<Timestamp>) -> Result<()> {
                    let state = if retry_at.is_some() { "queued" } else { "failed" };
                    sqlx::query(
                        "UPDATE outbox SET state = $1, attempts = attempts + 1, last_error = $2, \
                         next_attempt_ms = COALESCE($3, next_attempt_ms) WHERE id = $4 AND state = 'queued'",
                    )
                    .bind(state)
                    .bind(error)
                    .bind(retry_at.map(to_ms))
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn outbox_counts(&self) -> Result<OutboxCounts> {
                    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let mut c = OutboxCounts::default();
                    for row in &rows {
                        let n = u64::try_from(get::<i64>(row, "n")?).unwrap_or(0);
                        match parse::<MessageState>(row, "state")? {
                            MessageState::Queued => c.queued = n,
                            MessageState::Sent => c.sent = n,
                            MessageState::Failed => c.failed = n,
                        }
                    }
                    Ok(c)
                }

                async fn outbox_messages(&self, state: MessageState, limit: u32) -> Result<Vec<OutboxMessage>> {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {OUTBOX_COLS} FROM outbox WHERE state = $1 ORDER BY id DESC LIMIT $2"
                    ));
                    let rows = sqlx::query(sql)
                        .bind(state.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(message_from).collect()
                }

                async fn retry_message(&self, id: i64, at: Timestamp) -> Result<bool> {
                    let r = sqlx::query("UPDATE outbox SET state = 'queued', next_attempt_ms = $1 WHERE id = $2 AND state = 'failed'")
                        .bind(to_ms(at))
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(r.rows_affected() == 1)
                }
            }

            #[async_trait]
            impl ClusterStore for $store {
                async fn put_node(&self, name: &str, credential_hash: &str, at: Timestamp) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO nodes (name, credential_hash, created_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET credential_hash = excluded.credential_hash",
                    )
                    .bind(name)
                    .bind(credential_hash)
                    .bind(to_ms(at))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn node_credential(&self, name: &str) -> Result<String> {
                    sqlx::query_scalar::<_, String>("SELECT credential_hash FROM nodes WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| StorageError::not_found("node"))
                }

                async fn renew_node(&self, hb: NodeHeartbeat<'_>, now: Timestamp, lease_ms: i64) -> Result<()> {
                    let r = sqlx::query(
                        "UPDATE nodes SET play_url = $1, ingest_url = $2, report = $3, lease_until_ms = $4 WHERE name = $5",
                    )
                    .bind(hb.play_url)
                    .bind(hb.ingest_url)
                    .bind(hb.report)
                    .bind(to_ms(now).saturating_add(lease_ms))
                    .bind(hb.name)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        return Err(StorageError::not_found("node"));
                    }
                    Ok(())
                }

                async fn nodes(&self) -> Result<Vec<NodeRecord>> {
                    let rows = sqlx::query("SELECT name, play_url, ingest_url, lease_until_ms, report FROM nodes ORDER BY name")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter()
                        .map(|r| {
                            Ok(NodeRecord {
                                name: get(r, "name")?,
                                play_url: get(r, "play_url")?,
                                ingest_url: get(r, "ingest_url")?,
                                lease_until: ts(r, "lease_until_ms")?,
                                report: get(r, "report")?,
                            })
                        })
                        .collect()
                }

                async fn claim_placement(&self, channel: ChannelId, node: &str, now: Timestamp, lease_ms: i64) -> Result<Option<Placement>> {
                    let row = sqlx::query(
                        "INSERT INTO placements (channel_id, node, epoch, lease_until_ms) VALUES ($1, $2, 1, $3) \
                         ON CONFLICT (channel_id) DO UPDATE SET node = excluded.node, lease_until_ms = excluded.lease_until_ms, \
                         epoch = CASE WHEN placements.node = excluded.node THEN placements.epoch ELSE placements.epoch + 1 END \
                         WHERE placements.node = excluded.node OR placements.lease_until_ms <= $4 \
                         RETURNING channel_id, node, epoch, lease_until_ms",
                    )
                    .bind(channel.0)
                    .bind(node)
                    .bind(to_ms(now).saturating_add(lease_ms))
                    .bind(to_ms(now))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(placement_from).transpose()
                }

                async fn placements(&self) -> Result<Vec<Placement>> {
                    let rows = sqlx::query("SELECT channel_id, node, epoch, lease_until_ms FROM placements ORDER BY channel_id")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(placement_from).collect()
                }

                async fn take_seat(&self, channel: ChannelId, holder: &str, capacity: u32, now: Timestamp, lease_ms: i64) -> Result<Option<u32>> {
                    // Any free seat will do: no ordering, so the free seats are found
                    // straight from the (channel, lease) index, and concurrent takers skip
                    // each other's rows instead of queueing on the same one.
                    let take = format!(
                        "UPDATE seats SET holder = $1, node = NULL, lease_until_ms = $2 WHERE channel_id = $3 AND seat_no = \
                         (SELECT seat_no FROM seats WHERE channel_id = $3 AND lease_until_ms <= $5 AND seat_no < $4 LIMIT 1{}) \
                         RETURNING seat_no",
                        $skip
                    );
                    let until = to_ms(now).saturating_add(lease_ms);
                    let attempt = || {
                        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(take.clone()))
                            .bind(holder)
                            .bind(until)
                            .bind(channel.0)
                            .bind(i64::from(capacity))
                            .bind(to_ms(now))
                            .fetch_optional(&self.pool)
                    };
                    if let Some(n) = attempt().await.map_err(db_err)? {
                        return Ok(Some(n as u32));
                    }
                    // The seats are made once per capacity: make the missing ones, look again.
                    let made: i64 = sqlx::query_scalar("SELECT count(*) FROM seats WHERE channel_id = $1 AND seat_no < $2")
                        .bind(channel.0)
                        .bind(i64::from(capacity))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if made >= i64::from(capacity) {
                        return Ok(None);
                    }
                    sqlx::query(
                        "INSERT INTO seats (channel_id, seat_no) WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $2) \
                         SELECT $1, i FROM n WHERE true ON CONFLICT (channel_id, seat_no) DO NOTHING",
                    )
                    .bind(channel.0)
                    .bind(i64::from(capacity))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(attempt().await.map_err(db_err)?.map(|n| n as u32))
                }

                async fn hold_seats(&self, channel: ChannelId, node: &str, holders: &[String], left: &[String], now: Timestamp, lease_ms: i64) -> Result<()> {
                    // Holders go in lists of at most this many parameters (the databases
                    // limit them per statement), whatever the audience.
                    const CHUNK: usize = 5_000;
                    let until = to_ms(now).saturating_add(lease_ms);
                    let params = |from: usize, n: usize| (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                    let mut tx = begin(self).await?;
                    for chunk in left.chunks(CHUNK) {
                        let gone = sqlx::AssertSqlSafe(format!(
                            "UPDATE seats SET holder = NULL, node = NULL, lease_until_ms = 0 WHERE channel_id = $1 AND holder IN ({})",
                            params(2, chunk.len())
                        ));
                        let mut q = sqlx::query(gone).bind(channel.0);
                        for h in chunk {
                            q = q.bind(h);
                        }
                        q.execute(&mut *tx).await.map_err(db_err)?;
                    }
                    for chunk in holders.chunks(CHUNK) {
                        let renew = sqlx::AssertSqlSafe(format!(
                            "UPDATE seats SET node = $2, lease_until_ms = $3 WHERE channel_id = $1 AND holder IN ({})",
                            params(4, chunk.len())
                        ));
                        let mut q = sqlx::query(renew).bind(channel.0).bind(node).bind(until);
                        for h in chunk {
                            q = q.bind(h);
                        }
                        q.execute(&mut *tx).await.map_err(db_err)?;
                    }
                    // Seats this node served and did not renew just now (their lease is from
                    // an earlier heartbeat): the viewer left.
                    sqlx::query(
                        "UPDATE seats SET holder = NULL, node = NULL, lease_until_ms = 0 \
                         WHERE channel_id = $1 AND node = $2 AND lease_until_ms < $3",
                    )
                    .bind(channel.0)
                    .bind(node)
                    .bind(until)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(())
                }

                async fn seats_taken(&self, channel: ChannelId, now: Timestamp) -> Result<u32> {
                    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM seats WHERE channel_id = $1 AND lease_until_ms > $2")
                        .bind(channel.0)
                        .bind(to_ms(now))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(n as u32)
                }

                async fn put_node_totals(&self, id: ReservationId, node: &str, stats: &ProgramStats) -> Result<()> {
                    insert_stats(&self.pool, id, stats, Some(node)).await
                }

                async fn node_totals(&self) -> Result<Vec<(ReservationId, ProgramStats)>> {
                    let rows = sqlx::query(
                        "SELECT reservation_id, peak_viewers, unique_viewers, viewer_minutes, bytes_out, seconds_on_air, viewer_curve \
                         FROM node_totals ORDER BY reservation_id, node",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(|r| Ok((ReservationId(get(r, "reservation_id")?), stats_from(r)?))).collect()
                }

                async fn drop_node_totals(&self, id: ReservationId) -> Result<()> {
                    sqlx::query("DELETE FROM node_totals WHERE reservation_id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn open_outage(&self, id: ReservationId, node: &str, from: Timestamp) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO outages (reservation_id, node, from_ms) SELECT $1, $2, $3 \
                         WHERE NOT EXISTS (SELECT 1 FROM outages WHERE reservation_id = $1 AND to_ms IS NULL) \
                         ON CONFLICT (reservation_id, from_ms) DO NOTHING",
                    )
                    .bind(id.0)
                    .bind(node)
                    .bind(to_ms(from))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn close_outages(&self, id: ReservationId, at: Timestamp) -> Result<()> {
                    sqlx::query("UPDATE outages SET to_ms = $2 WHERE reservation_id = $1 AND to_ms IS NULL")
                        .bind(id.0)
                        .bind(to_ms(at))
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn throttle_fail(&self, key: &str, now: Timestamp, reset_after_ms: i64, from: CountFrom) -> Result<ThrottleCount> {
                    let anchor = match from {
                        CountFrom::First => "throttles.first_ms",
                        CountFrom::Last => "throttles.last_ms",
                    };
                    let sql = sqlx::AssertSqlSafe(format!(
                        "INSERT INTO throttles (throttle_key, failures, first_ms, last_ms) VALUES ($1, 1, $2, $2) \
                         ON CONFLICT (throttle_key) DO UPDATE SET \
                         failures = CASE WHEN {anchor} + $3 <= $2 THEN 1 ELSE throttles.failures + 1 END, \
                         first_ms = CASE WHEN {anchor} + $3 <= $2 THEN $2 ELSE throttles.first_ms END, \
                         last_ms = $2 \
                         RETURNING failures, first_ms, last_ms"
                    ));
                    let row = sqlx::query(sql)
                        .bind(key)
                        .bind(to_ms(now))
                        .bind(reset_after_ms)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    throttle_from(&row)
                }

                async fn throttle_count(&self, key: &str) -> Result<Option<ThrottleCount>> {
                    let row = sqlx::query("SELECT failures, first_ms, last_ms FROM throttles WHERE throttle_key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(throttle_from).transpose()
                }

                async fn throttle_clear(&self, key: &str) -> Result<()> {
                    sqlx::query("DELETE FROM throttles WHERE throttle_key = $1")
                        .bind(key)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn prune_throttles(&self, before: Timestamp) -> Result<u64> {
                    let r = sqlx::query("DELETE FROM throttles WHERE last_ms < $1")
                        .bind(to_ms(before))
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(r.rows_affected())
                }

                async fn outages(&self, id: ReservationId) -> Result<Vec<Outage>> {
                    let rows = sqlx::query("SELECT node, from_ms, to_ms FROM outages WHERE reservation_id = $1 ORDER BY from_ms")
                        .bind(id.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter()
                        .map(|r| {
                            Ok(Outage {
                                node: get(r, "node")?,
                                from: ts(r, "from_ms")?,
                                to: get::<Option<i64>>(r, "to_ms")?.map(from_ms).transpose()?,
                            })
                        })
                        .collect()
                }
            }

            fn throttle_from(r: &DbRow) -> Result<ThrottleCount> {
                Ok(ThrottleCount {
                    failures: u32::try_from(get::<i64>(r, "failures")?).unwrap_or(u32::MAX),
                    first: ts(r, "first_ms")?,
                    last: ts(r, "last_ms")?,
                })
            }

            fn placement_from(r: &DbRow) -> Result<Placement> {
                Ok(Placement {
                    channel: ChannelId(get(r, "channel_id")?),
                    node: get(r, "node")?,
                    epoch: get(r, "epoch")?,
                    lease_until: ts(r, "lease_until_ms")?,
                })
            }

            #[async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    $backend
                }

                async fn ping(&self) -> Result<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
                    Ok(())
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::WriteTurns;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Writers queued one at a time get their turns in the order they asked, each after
    /// the previous turn ended; together, nobody waits.
    #[tokio::test]
    async fn writers_take_turns_in_the_order_they_asked() {
        let turns = WriteTurns::one_at_a_time();
        let first = turns.take().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..8 {
            let (turns, order) = (turns.clone(), Arc::clone(&order));
            waiting.push(tokio::spawn(async move {
                let _turn = turns.take().await;
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }));
            // Let writer `i` queue before writer `i + 1` asks.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            order.lock().unwrap().is_empty(),
            "a writer went before the first ended"
        );
        drop(first);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());

        let together = WriteTurns::together();
        let _a = together.take().await;
        tokio::time::timeout(Duration::from_secs(1), together.take())
            .await
            .expect("writers together do not wait for each other");
    }
}
