//! What viewers may see and play: the listed programs (never a secret one), a program by
//! its slug, its state, and the play grants — a live or replay token for one program after
//! the password check, the broadcaster's preview and download. A grant is a signed,
//! short-lived token naming the program and its kind ([`slotcast_domain::token`]) and
//! the URLs of [`slotcast_domain::playback`].

use super::listings::Fact;
use super::viewer_password;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::secrets;
use crate::state::Center;
use slotcast_domain::jiff::civil::Date;
use slotcast_domain::playback::{self, PlayUrls};
use slotcast_domain::token::{self, PlayClaims, PlayKind};
use slotcast_domain::visibility::{PlayAccess, Viewer, play_access};
use slotcast_domain::{MemberId, Slug, Status, Timestamp};
use slotcast_store::{Channel, Member, Reservation, StorageError};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where a program stands for viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramState {
    /// Before its start.
    Scheduled,
    /// Between its start and its end.
    OnAir,
    /// Over, without a replay.
    Ended,
    /// Over, with its recording to replay.
    OnDemand,
}

impl ProgramState {
    /// As the API and the pages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgramState::Scheduled => "scheduled",
            ProgramState::OnAir => "on_air",
            ProgramState::Ended => "ended",
            ProgramState::OnDemand => "on_demand",
        }
    }
}

/// Whether viewers can see the program at all (established, not cancelled or expired).
fn established(r: &Reservation) -> bool {
    matches!(
        r.status,
        Status::Confirmed | Status::Live | Status::Completed
    )
}

/// Whether a program can be replayed: it is over (completed) and the stream node has its
/// recording.
fn replayable(c: &Center, r: &Reservation) -> bool {
    r.status == Status::Completed && c.stats.recording(r.id).is_some()
}

/// The state of program `r` at the center's now.
pub fn state(c: &Center, r: &Reservation) -> ProgramState {
    let now = c.clock.now();
    if now < r.schedule.start {
        ProgramState::Scheduled
    } else if now < r.schedule.end && r.status != Status::Completed {
        ProgramState::OnAir
    } else if replayable(c, r) {
        ProgramState::OnDemand
    } else {
        ProgramState::Ended
    }
}

/// What moves in a listing of `facts` at the center's now: each program's state and
/// whether its channel is full, a byte each. Answers rendered from the same facts with
/// the same bytes are the same.
pub fn moving(c: &Center, facts: &[Fact]) -> Vec<u8> {
    facts
        .iter()
        .map(|(r, ch, _)| {
            (state(c, r) as u8) << 1 | u8::from(c.stats.viewers(ch.id) >= ch.capacity)
        })
        .collect()
}

/// Parses `?date=` (default: today in the service's zone) and gives the day's bounds.
pub fn day_bounds(st: &Center, date: Option<&str>) -> ApiResult<(Date, Timestamp, Timestamp)> {
    let tz = &st.settings.policy.time_zone;
    let now = st.clock.now();
    let today = now.to_zoned(tz.clone()).date();
    let date = match date {
        None => today,
        Some(d) => d
            .parse::<Date>()
            .map_err(|_| ApiError::field("date", "must be a date such as 2026-06-10"))?,
    };
    // Ahead, the booking horizon (the same as for bookings); back, a year of history.
    let policy = &st.settings.policy;
    let ahead = (date - today).get_days();
    if ahead > i32::try_from(policy.horizon_days).unwrap_or(i32::MAX) {
        return Err(ApiError::field(
            "date",
            slotcast_domain::request::beyond_horizon(policy, now),
        ));
    }
    if ahead < -400 {
        return Err(ApiError::field(
            "date",
            "must be within 400 days before today",
        ));
    }
    let at = |d: Date| {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(ApiError::internal)
    };
    Ok((
        date,
        at(date)?,
        at(date.tomorrow().map_err(ApiError::internal)?)?,
    ))
}

/// Listed programs (public and password, established) overlapping `[from, to)`; never a
/// secret one.
pub async fn listed(c: &Center, from: Timestamp, to: Timestamp) -> ApiResult<Vec<Reservation>> {
    let all = c.store.reservations_between(from, to).await?;
    Ok(all
        .into_iter()
        .filter(|r| r.visibility.is_listed() && established(r))
        .collect())
}

/// A program as viewers see it: its reservation, channel and broadcaster, where it stands
/// and whether its channel is full now.
#[derive(Debug, Clone)]
pub struct Program {
    /// The reservation (program data, times, visibility).
    pub reservation: Reservation,
    /// Its channel.
    pub channel: Channel,
    /// Who broadcasts it.
    pub broadcaster: Member,
    /// Where it stands now.
    pub state: ProgramState,
    /// Whether the channel has no free seat now.
    pub full: bool,
}

impl Program {
    /// The program of `fact` at the center's now.
    pub fn of(c: &Center, (r, channel, broadcaster): &Fact) -> Self {
        Program::new(c, r.clone(), channel.clone(), broadcaster.clone())
    }

    fn new(c: &Center, reservation: Reservation, channel: Channel, broadcaster: Member) -> Self {
        Program {
            state: state(c, &reservation),
            full: c.stats.viewers(channel.id) >= channel.capacity,
            reservation,
            channel,
            broadcaster,
        }
    }
}

/// The listed programs overlapping `[from, to)` ([`listed`]) with their channels and
/// broadcasters, by start time.
pub async fn programs(c: &Center, from: Timestamp, to: Timestamp) -> ApiResult<Vec<Program>> {
    Ok(programs_of(c, &facts(c, from, to).await?))
}

/// The facts behind [`programs`] (reservation, channel, broadcaster), shared and not
/// cloned: for a page that needs only some of them as [`Program`]s ([`Program::of`]).
pub async fn facts(c: &Center, from: Timestamp, to: Timestamp) -> ApiResult<Arc<Vec<Fact>>> {
    c.listings.day(from, to, load_day(c, from, to)).await
}

async fn load_day(c: &Center, from: Timestamp, to: Timestamp) -> ApiResult<Vec<Fact>> {
    let channels = c.store.channels().await?;
    let mut members: HashMap<MemberId, Member> = HashMap::new();
    let mut out = Vec::new();
    let mut listed = listed(c, from, to).await?;
    listed.sort_by_key(|r| (r.schedule.start, r.channel));
    for r in listed {
        let Some(channel) = channels.iter().find(|ch| ch.id == r.channel).cloned() else {
            return Err(ApiError::internal(format!(
                "program {} on an unknown channel",
                r.id
            )));
        };
        // One lookup per broadcaster, not per program.
        let broadcaster = match members.get(&r.member) {
            Some(m) => m.clone(),
            None => {
                let m = c.store.member(r.member).await?;
                members.insert(r.member, m.clone());
                m
            }
        };
        out.push((r, channel, broadcaster));
    }
    Ok(out)
}

fn programs_of(c: &Center, facts: &[Fact]) -> Vec<Program> {
    facts.iter().map(|f| Program::of(c, f)).collect()
}

/// The program with this slug ([`by_slug`]) with its channel and broadcaster.
pub async fn program(c: &Center, slug: &str) -> ApiResult<Program> {
    let load = async {
        let r = by_slug(c, slug).await?;
        let channel = c.store.channel(r.channel).await?;
        let broadcaster = c.store.member(r.member).await?;
        Ok(vec![(r, channel, broadcaster)])
    };
    let facts = c.listings.slug(slug, load).await?;
    programs_of(c, &facts)
        .pop()
        .ok_or_else(|| ApiError::not_found("program"))
}

/// The programs the operator features that viewers may see now: listed (never a secret
/// one), established, and not over unless they can be replayed; most recently featured
/// first.
pub async fn featured(c: &Center) -> ApiResult<Vec<Program>> {
    let load = async {
        let mut out = Vec::new();
        for id in c.store.pickups().await? {
            let r = match c.store.reservation(id).await {
                Ok(r) if r.visibility.is_listed() && established(&r) => r,
                Ok(_) | Err(StorageError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let channel = c.store.channel(r.channel).await?;
            let broadcaster = c.store.member(r.member).await?;
            out.push((r, channel, broadcaster));
        }
        Ok(out)
    };
    let facts = c.listings.featured(load).await?;
    let mut programs = programs_of(c, &facts);
    programs.retain(|p| p.state != ProgramState::Ended);
    Ok(programs)
}

/// Features program `slug` (`picked`) or stops featuring it. A secret program cannot be
/// featured: it is listed nowhere.
pub async fn feature(c: &Center, slug: &str, picked: bool) -> ApiResult<()> {
    let r = by_slug(c, slug).await?;
    if picked && !r.visibility.is_listed() {
        return Err(ApiError::new(
            ErrorCode::WrongState,
            "a secret program cannot be featured: it is listed nowhere",
        ));
    }
    c.store.set_pickup(r.id, picked, c.clock.now()).await?;
    c.listings_changed();
    Ok(())
}

/// The program with this slug (the only way to reach a secret one), if viewers may see it.
pub async fn by_slug(c: &Center, slug: &str) -> ApiResult<Reservation> {
    // A text that cannot be a slug names no program: it never reaches a query.
    let slug = Slug::parse(slug).map_err(|_| ApiError::not_found("program"))?;
    match c.store.reservation_by_slug(slug.as_str()).await {
        Ok(r) if established(&r) => Ok(r),
        Ok(_) | Err(StorageError::NotFound { .. }) => Err(ApiError::not_found("program")),
        Err(e) => Err(e.into()),
    }
}

/// A play grant: a token for one program and kind, and where to play with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayGrant {
    /// Live, replay or preview.
    pub kind: PlayKind,
    /// The signed token.
    pub token: String,
    /// Until when it admits a viewer.
    pub expires: Timestamp,
    /// The playback URLs.
    pub urls: PlayUrls,
}

/// A signed token of `kind` for program `r`, admitting until `expires`, with a new grant
/// (one viewer seat).
fn sign(c: &Center, kind: PlayKind, r: &Reservation, expires: Timestamp) -> String {
    sign_grant(c, kind, r, expires, new_grant())
}

/// A fresh grant: one viewer, one seat.
fn new_grant() -> u64 {
    u64::from_be_bytes(secrets::random_bytes())
}

/// [`sign`] with the grant given.
fn sign_grant(
    c: &Center,
    kind: PlayKind,
    r: &Reservation,
    expires: Timestamp,
    grant: u64,
) -> String {
    token::sign(
        c.secrets.play_key(),
        &PlayClaims {
            kind,
            channel: r.channel,
            reservation: r.id,
            grant,
            program_end: r.schedule.end,
            expires,
        },
    )
}

/// Where viewers reach program `r`'s media: the stream node that holds it (its channel's
/// node, or the node with its recording), or the center's own address (role `all`).
fn node_base(c: &Center, r: &Reservation) -> String {
    c.stats
        .play_base(r.channel, r.id)
        .unwrap_or_else(|| c.settings.public_url.clone())
}

/// The longest a live token admits when seats are taken in the database.
const SEAT_TOKEN: slotcast_domain::jiff::SignedDuration =
    slotcast_domain::jiff::SignedDuration::from_secs(30);

/// How long after its token expired an unused grant keeps its seat: time for the node
/// that admitted the viewer at the last moment to report it.
const SEAT_ARRIVAL: slotcast_domain::jiff::SignedDuration =
    slotcast_domain::jiff::SignedDuration::from_secs(20);

/// What a viewer shows for a password or secret program.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// Nothing.
    None,
    /// The viewer password.
    Password(&'a str),
    /// A viewer pass ([`viewer_pass`]) from an earlier right password.
    Pass(&'a str),
}

/// How long a viewer pass lasts after the program's end (its replay stays open to the
/// browser that gave the password).
const PASS_AFTER_END: slotcast_domain::jiff::SignedDuration =
    slotcast_domain::jiff::SignedDuration::from_hours(24 * 7);

/// A viewer pass for program `r`: give it to the browser that gave the right password.
pub fn viewer_pass(c: &Center, r: &Reservation) -> String {
    token::sign_pass(c.secrets.pass_key(), r.id, r.schedule.end + PASS_AFTER_END)
}

/// The play grant of program `r` for `viewer` (signed in or not) with `credential`: the
/// password check for protected programs (throttled per `throttle_key`, e.g. the
/// address), then a live grant from its connect window to its end (if the channel has a
/// free seat), or after the end a replay grant when it was recorded.
pub async fn grant(
    c: &Center,
    viewer: Option<&Member>,
    r: &Reservation,
    credential: Credential<'_>,
    throttle_key: &str,
) -> ApiResult<PlayGrant> {
    let now = c.clock.now();
    let who = if viewer.is_some_and(|m| m.id == r.member) {
        Viewer::Owner
    } else {
        Viewer::Other
    };
    let password_ok = match (credential, viewer_password(c, r)?) {
        (Credential::Pass(pass), Some(_)) => {
            Some(token::pass_admits(c.secrets.pass_key(), pass, r.id, now))
        }
        (Credential::Password(given), Some(real)) => {
            if let Some(wait) = c.password_throttle.wait(throttle_key, now).await? {
                return Err(ApiError::too_many(
                    ErrorCode::TooManyAttempts,
                    "too many wrong passwords; wait and try again",
                    wait,
                ));
            }
            Some(bool::from(given.as_bytes().ct_eq(real.as_bytes())))
        }
        _ => None,
    };
    match play_access(r.visibility, who, password_ok) {
        PlayAccess::Granted => {}
        PlayAccess::PasswordRequired => {
            return Err(ApiError::new(
                ErrorCode::PasswordRequired,
                "this program needs its viewer password",
            ));
        }
        PlayAccess::WrongPassword => {
            c.password_throttle.fail(throttle_key, now).await?;
            return Err(ApiError::new(
                ErrorCode::WrongPassword,
                "the viewer password is not right",
            ));
        }
    }
    if now >= r.schedule.end || r.status == Status::Completed {
        if replayable(c, r) {
            return Ok(replay(c, r, now));
        }
        return Err(ApiError::new(ErrorCode::Ended, "the program has ended"));
    }
    if now < r.schedule.connect_from {
        return Err(ApiError::new(
            ErrorCode::NotOnAir,
            format!("the program starts at {}", r.schedule.start),
        ));
    }
    let channel = c.store.channel(r.channel).await?;
    let grant = new_grant();
    let mut expires = now + c.settings.play_token_ttl;
    let full = if c.settings.exact_seats {
        // Across nodes: a seat of the channel's, taken in the database. An unused grant
        // holds it only briefly: its token admits for at most SEAT_TOKEN, and the node
        // that admits the viewer renews the seat long before SEAT_ARRIVAL has passed.
        expires = expires.min(now + SEAT_TOKEN);
        let lease = expires.duration_since(now) + SEAT_ARRIVAL;
        c.store
            .take_seat(
                channel.id,
                &grant.to_string(),
                channel.capacity,
                now,
                lease.as_millis() as i64,
            )
            .await?
            .is_none()
    } else {
        c.stats.viewers(channel.id) >= channel.capacity
    };
    if full {
        return Err(ApiError::new(
            ErrorCode::ChannelFull,
            format!(
                "the channel is full ({} viewers); try again later",
                channel.capacity
            ),
        ));
    }
    let token = sign_grant(c, PlayKind::Live, r, expires, grant);
    Ok(PlayGrant {
        kind: PlayKind::Live,
        urls: playback::live(
            &c.stats
                .live_base(r.channel)
                .unwrap_or_else(|| node_base(c, r)),
            &channel.name,
            &token,
        ),
        token,
        expires,
    })
}

/// A replay grant of `r`. A replay takes no seat on the channel; the stream node keeps
/// the player in a replay session once the token admitted it.
fn replay(c: &Center, r: &Reservation, now: Timestamp) -> PlayGrant {
    let expires = now + c.settings.play_token_ttl;
    let token = sign(c, PlayKind::Replay, r, expires);
    PlayGrant {
        kind: PlayKind::Replay,
        urls: playback::replay(&node_base(c, r), &r.slug, &token),
        token,
        expires,
    }
}

/// The broadcaster's preview of their confirmed or live program `r`: what the publisher
/// sends, before the start too, until the connect window closes. Returns the token, its
/// expiry and the HTTP-FLV URL.
pub fn preview(c: &Center, r: &Reservation) -> ApiResult<(String, Timestamp, String)> {
    if !matches!(r.status, Status::Confirmed | Status::Live) {
        return Err(ApiError::new(
            ErrorCode::WrongState,
            format!(
                "only confirmed programs have a preview; this one is {}",
                r.status
            ),
        ));
    }
    let expires = r.schedule.connect_to;
    let token = sign(c, PlayKind::Preview, r, expires);
    let url = playback::preview(&node_base(c, r), r.id, &token);
    Ok((token, expires, url))
}

/// The broadcaster's preview of `r` as an fMP4 stream, for the dashboard's player.
pub fn preview_mse(c: &Center, r: &Reservation) -> ApiResult<String> {
    let (token, _, _) = preview(c, r)?;
    Ok(playback::preview_mse(&node_base(c, r), r.id, &token))
}

/// Where the broadcaster downloads the recording of their program `r` once it is over:
/// a URL of the stream node (which owns the file) with a short replay grant.
pub fn download(c: &Center, r: &Reservation) -> ApiResult<String> {
    if r.status.holds_slots() {
        return Err(ApiError::new(
            ErrorCode::RecordingInProgress,
            "the recording can be downloaded once the program has ended",
        ));
    }
    if c.stats.recording(r.id).is_none() {
        return Err(ApiError::not_found("recording"));
    }
    let token = sign(
        c,
        PlayKind::Replay,
        r,
        c.clock.now() + c.settings.play_token_ttl,
    );
    Ok(playback::download(&node_base(c, r), &r.slug, &token))
}
