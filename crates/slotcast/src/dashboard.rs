//! The agent's live dashboard in the terminal (ratatui): on air or not, elapsed and
//! remaining time, the server's and this machine's time, bitrate, picture, channel,
//! viewers, the endpoint in use, the latest news, and the extension offer — `e` takes one
//! slot more, `q` stops the agent. Drawn from a shared [`Status`] that the agent and the
//! live event stream keep up to date; without a terminal the agent logs lines instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};
use slotcast_domain::Timestamp;
use tokio::sync::mpsc;

/// What the dashboard shows.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Title and channel.
    pub program: String,
    /// The channel.
    pub channel: String,
    /// Start and end (the end moves with an extension).
    pub start: Option<Timestamp>,
    /// End.
    pub end: Option<Timestamp>,
    /// This machine's offset from the server, in ms.
    pub offset_ms: f64,
    /// The server's latest live event.
    pub on_air: bool,
    /// A publisher is connected.
    pub publishing: bool,
    /// Viewers now.
    pub viewers: u64,
    /// Ingest bitrate.
    pub bitrate_kbps: u64,
    /// Picture.
    pub picture: String,
    /// Slots of extension offered now.
    pub offer_slots: u64,
    /// The endpoint pushed to.
    pub endpoint: String,
    /// The latest news.
    pub news: String,
    /// The agent is done: the dashboard closes.
    pub done: bool,
}

/// A key the broadcaster pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Take one more slot.
    Extend,
    /// Stop the agent.
    Quit,
}

/// `h:mm:ss`.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn draw(frame: &mut ratatui::Frame<'_>, s: &Status) {
    let now_local = Timestamp::now();
    let now = Timestamp::from_millisecond(now_local.as_millisecond() + s.offset_ms as i64)
        .unwrap_or(now_local);
    let (elapsed, remaining) = match (s.start, s.end) {
        (Some(a), Some(b)) => (
            if now < a {
                "—".to_owned()
            } else {
                span(now.min(b).as_millisecond() - a.as_millisecond())
            },
            span(b.as_millisecond() - now.max(a).as_millisecond()),
        ),
        _ => ("—".into(), "—".into()),
    };
    let state = if s.on_air {
        Line::from("ON AIR").style(Style::new().bold().red())
    } else if s.publishing {
        Line::from("sending, not on air yet").style(Style::new().bold().yellow())
    } else {
        Line::from("not sending").style(Style::new().add_modifier(Modifier::DIM))
    };
    let hms = |t: Timestamp| format!("{t:.0}").get(11..19).unwrap_or("").to_owned();
    let offer = if s.offer_slots > 0 {
        Line::from(format!(
            "extension offered: up to {} slots — press e to add one",
            s.offer_slots
        ))
        .style(Style::new().bold().green())
    } else {
        Line::from("no extension offered")
    };
    let lines = vec![
        state,
        Line::from(format!("elapsed {elapsed}   remaining {remaining}")),
        Line::from(format!(
            "server {} UTC   this machine {} UTC   offset {:+.3} s",
            hms(now),
            hms(now_local),
            -s.offset_ms / 1000.0
        )),
        Line::from(format!(
            "viewers {}   bitrate {} kbit/s   picture {}",
            s.viewers, s.bitrate_kbps, s.picture
        )),
        Line::from(format!("channel {}   endpoint {}", s.channel, s.endpoint)),
        offer,
        Line::from(s.news.clone()),
        Line::from("e extend · q quit").style(Style::new().add_modifier(Modifier::DIM)),
    ];
    let [area] = Layout::vertical([Constraint::Min(0)]).areas(frame.area());
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(format!(" slotcast — {} ", s.program))),
        area,
    );
}

/// Runs the dashboard on this terminal until the agent is done; keys go to `actions`.
pub fn start(
    status: Arc<Mutex<Status>>,
    actions: mpsc::Sender<Action>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut terminal) = ratatui::try_init() else {
            return;
        };
        loop {
            let s = status.lock().map(|s| s.clone()).unwrap_or_default();
            if s.done {
                break;
            }
            let _ = terminal.draw(|f| draw(f, &s));
            if event::poll(Duration::from_millis(250)).unwrap_or(false)
                && let Ok(Event::Key(k)) = event::read()
                && k.kind == KeyEventKind::Press
            {
                let action = match k.code {
                    KeyCode::Char('e') => Some(Action::Extend),
                    KeyCode::Char('q') => Some(Action::Quit),
                    _ => None,
                };
                if let Some(a) = action {
                    let _ = actions.blocking_send(a);
                }
            }
        }
        ratatui::restore();
    })
}
