//! The pages' text in English and Japanese: one compiled catalogue per language (a
//! missing text is a compile error, not a blank on a page), chosen by a `?lang=` switch
//! that a cookie remembers, else by `Accept-Language`.

mod member;
pub mod messages;

pub use member::MemberText;

use axum::http::HeaderMap;
use slotcast_domain::jiff::civil::Date;

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// Japanese.
    Ja,
}

/// The cookie that remembers the switch.
pub const LANG_COOKIE: &str = "slotcast_lang";

impl Lang {
    /// From a code such as `ja` or `en-GB`.
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The page's language: `?lang=` (`switch`), then the cookie, then the first
    /// `Accept-Language` entry we have (by weight), then English.
    pub fn choose(switch: Option<&str>, headers: &HeaderMap) -> Lang {
        if let Some(l) = switch.and_then(Lang::parse) {
            return l;
        }
        let cookie = slotcast_center::auth::cookie(headers, LANG_COOKIE).and_then(Lang::parse);
        if let Some(l) = cookie {
            return l;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut offers: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Lang::parse(parts.next()?)?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        offers.sort_by(|a, b| b.0.total_cmp(&a.0));
        offers.first().map_or(Lang::En, |(_, l)| *l)
    }

    /// Its catalogue.
    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }

    /// Its catalogue of the member and operator pages.
    pub fn member(self) -> &'static MemberText {
        match self {
            Lang::En => &member::EN,
            Lang::Ja => &member::JA,
        }
    }

    /// A day, written out (`Tuesday, 1 December 2026`; `2026年12月1日（火）`).
    pub fn day(self, d: Date) -> String {
        let wd = usize::from(d.weekday().to_monday_zero_offset().unsigned_abs());
        match self {
            Lang::En => format!(
                "{}, {} {} {}",
                EN.weekdays_long[wd],
                d.day(),
                EN.months[usize::from(d.month().unsigned_abs()) - 1],
                d.year()
            ),
            Lang::Ja => format!(
                "{}年{}月{}日（{}）",
                d.year(),
                d.month(),
                d.day(),
                JA.weekdays[wd]
            ),
        }
    }

    /// A month (`December 2026`; `2026年12月`).
    pub fn month(self, d: Date) -> String {
        match self {
            Lang::En => format!(
                "{} {}",
                EN.months[usize::from(d.month().unsigned_abs()) - 1],
                d.year()
            ),
            Lang::Ja => format!("{}年{}月", d.year(), d.month()),
        }
    }
}

/// Every text of the pages (each field is named for where it shows).
#[derive(Debug)]
#[allow(missing_docs)]
pub struct Text {
    /// The `lang` attribute.
    pub lang: &'static str,
    pub skip: &'static str,
    pub nav_label: &'static str,
    pub nav_today: &'static str,
    pub nav_guide: &'static str,
    pub nav_about: &'static str,
    pub nav_pickup: &'static str,
    pub pickup_title: &'static str,
    pub pickup_empty: &'static str,
    pub feature: &'static str,
    pub unfeature: &'static str,
    pub service_time: &'static str,
    pub language: &'static str,
    pub tagline: &'static str,
    pub on_air: &'static str,
    pub open: &'static str,
    pub full: &'static str,
    pub ended: &'static str,
    pub on_demand: &'static str,
    pub today_title: &'static str,
    pub on_air_now: &'static str,
    pub later_today: &'static str,
    pub earlier_today: &'static str,
    pub nothing_on_air: &'static str,
    pub nothing_later: &'static str,
    pub seats: &'static str,
    pub by: &'static str,
    pub channel: &'static str,
    pub genre: &'static str,
    pub time: &'static str,
    pub broadcaster: &'static str,
    pub guide_title: &'static str,
    pub prev_month: &'static str,
    pub next_month: &'static str,
    pub all_genres: &'static str,
    pub filter: &'static str,
    pub list_view: &'static str,
    pub grid_view: &'static str,
    pub no_programs_day: &'static str,
    pub subscribe: &'static str,
    pub has_programs: &'static str,
    pub starts: &'static str,
    pub ends: &'static str,
    pub in_your_time: &'static str,
    pub starts_in: &'static str,
    pub password_label: &'static str,
    pub protected: &'static str,
    pub password_submit: &'static str,
    pub password_needed: &'static str,
    pub wrong_password: &'static str,
    pub too_many: &'static str,
    pub form_expired: &'static str,
    pub viewers_now: &'static str,
    pub latency: &'static str,
    pub buffering: &'static str,
    pub channel_full: &'static str,
    pub retry: &'static str,
    pub program_ended: &'static str,
    pub replay_soon: &'static str,
    pub add_calendar: &'static str,
    pub other_players: &'static str,
    pub web: &'static str,
    pub player_label: &'static str,
    pub no_script: &'static str,
    pub about_title: &'static str,
    pub about_intro: &'static str,
    pub about_watch_title: &'static str,
    pub about_watch: &'static str,
    pub about_live_title: &'static str,
    pub about_steps: [&'static str; 5],
    pub not_found_title: &'static str,
    pub not_found: &'static str,
    pub error_title: &'static str,
    pub error: &'static str,
    pub back_home: &'static str,
    pub months: [&'static str; 12],
    pub weekdays: [&'static str; 7],
    pub weekdays_long: [&'static str; 7],
}

/// English.
pub static EN: Text = Text {
    lang: "en",
    skip: "Skip to the content",
    nav_label: "Main",
    nav_today: "Today's live",
    nav_guide: "Program guide",
    nav_about: "About",
    nav_pickup: "Pickup",
    pickup_title: "Featured programs",
    pickup_empty: "No programs are featured right now.",
    feature: "Feature this program",
    unfeature: "Stop featuring",
    service_time: "Service time",
    language: "Language",
    tagline: "Reserved live streaming: programs book their airtime, and every seat is counted.",
    on_air: "ON AIR",
    open: "OPEN",
    full: "FULL",
    ended: "ENDED",
    on_demand: "ON DEMAND",
    today_title: "Today's live",
    on_air_now: "On air now",
    later_today: "Later today",
    earlier_today: "Earlier today and on demand",
    nothing_on_air: "Nothing is on air right now.",
    nothing_later: "Nothing more is scheduled today.",
    seats: "seats",
    by: "by",
    channel: "Channel",
    genre: "Genre",
    time: "Time",
    broadcaster: "Broadcaster",
    guide_title: "Program guide",
    prev_month: "Previous month",
    next_month: "Next month",
    all_genres: "All genres",
    filter: "Filter",
    list_view: "List",
    grid_view: "Grid",
    no_programs_day: "No programs on this day.",
    subscribe: "Subscribe (iCalendar)",
    has_programs: "has programs",
    starts: "Starts",
    ends: "Ends",
    in_your_time: "In your time zone",
    starts_in: "Starts in",
    password_label: "Viewer password",
    protected: "password",
    password_submit: "Watch",
    password_needed: "This program is protected: enter the viewer password you were given.",
    wrong_password: "That password is not right. Check it and try again.",
    too_many: "Too many wrong passwords from here. Wait a few minutes and try again.",
    form_expired: "The form expired. Please send it again.",
    viewers_now: "Watching now",
    latency: "Latency",
    buffering: "Buffering…",
    channel_full: "The channel is full: every seat is taken. You get the next free seat — this page keeps trying.",
    retry: "Try again now",
    program_ended: "The program has ended.",
    replay_soon: "The replay will be here once the recording is ready.",
    add_calendar: "Add to calendar",
    other_players: "For VLC or another player",
    web: "Web",
    player_label: "Video player",
    no_script: "The player needs JavaScript. The program's details are above.",
    about_title: "About slotcast",
    about_intro: "slotcast is a live streaming service where broadcasters reserve airtime on a channel, like booking a room. Each channel has a fixed number of seats, so everyone who gets in watches without the stream breaking up.",
    about_watch_title: "How to watch",
    about_watch: "Find a program under Today's live or in the Program guide and open it. Public programs play in the browser; protected ones ask for the viewer password the broadcaster gave you. If the channel is full, the page waits for a free seat.",
    about_live_title: "How to go live",
    about_steps: [
        "Become a premium member (a card is kept on file; only brand and last four digits).",
        "Book slots on a channel: the fee and the confirmation deadline are shown before you book.",
        "Confirm the booking with the reservation key from the e-mail before the deadline.",
        "Connect OBS or ffmpeg with the key (it works only in your connect window), or let the broadcaster tool do it.",
        "You are on air at the start time; the stream ends when your time is up.",
    ],
    not_found_title: "Not found",
    not_found: "There is no such page, or the program is not available.",
    error_title: "Something went wrong",
    error: "Something went wrong on our side. It has been logged; please try again shortly.",
    back_home: "Back to today's live",
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    weekdays_long: [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ],
};

/// Japanese.
pub static JA: Text = Text {
    lang: "ja",
    skip: "本文へ移動",
    nav_label: "メイン",
    nav_today: "本日のライブ",
    nav_guide: "番組表",
    nav_about: "slotcastについて",
    nav_pickup: "ピックアップ",
    pickup_title: "ピックアップ番組",
    pickup_empty: "現在ピックアップ中の番組はありません。",
    feature: "この番組をピックアップする",
    unfeature: "ピックアップをやめる",
    service_time: "サービス時刻",
    language: "言語",
    tagline: "予約制ライブ配信：番組は放送枠を予約し、座席はすべて数えられています。",
    on_air: "放送中",
    open: "OPEN",
    full: "満席",
    ended: "終了",
    on_demand: "オンデマンド",
    today_title: "本日のライブ",
    on_air_now: "放送中の番組",
    later_today: "このあとの番組",
    earlier_today: "本日の放送済み・オンデマンド",
    nothing_on_air: "現在放送中の番組はありません。",
    nothing_later: "本日このあとの番組はありません。",
    seats: "席",
    by: "配信者",
    channel: "チャンネル",
    genre: "ジャンル",
    time: "時間",
    broadcaster: "配信者",
    guide_title: "番組表",
    prev_month: "前の月",
    next_month: "次の月",
    all_genres: "すべてのジャンル",
    filter: "絞り込む",
    list_view: "リスト",
    grid_view: "表",
    no_programs_day: "この日の番組はありません。",
    subscribe: "カレンダーに登録（iCalendar）",
    has_programs: "番組あり",
    starts: "開始",
    ends: "終了",
    in_your_time: "あなたの時刻",
    starts_in: "開始まで",
    password_label: "視聴パスワード",
    protected: "パスワード",
    password_submit: "視聴する",
    password_needed: "この番組は保護されています。受け取った視聴パスワードを入力してください。",
    wrong_password: "パスワードが違います。確認してもう一度入力してください。",
    too_many: "誤ったパスワードが多すぎます。数分待ってからもう一度お試しください。",
    form_expired: "フォームの有効期限が切れました。もう一度送信してください。",
    viewers_now: "視聴中",
    latency: "遅延",
    buffering: "読み込み中…",
    channel_full: "チャンネルは満席です。空きが出しだい視聴できます（このページが自動で再試行します）。",
    retry: "今すぐ再試行",
    program_ended: "番組は終了しました。",
    replay_soon: "録画の準備ができしだい、ここで再生できます。",
    add_calendar: "カレンダーに追加",
    other_players: "VLC などのプレーヤー用",
    web: "ウェブ",
    player_label: "動画プレーヤー",
    no_script: "プレーヤーには JavaScript が必要です。番組の詳細は上にあります。",
    about_title: "slotcastについて",
    about_intro: "slotcast は、配信者がチャンネルの放送枠を予約するライブ配信サービスです。各チャンネルの座席数は決まっているので、入場した全員が途切れずに視聴できます。",
    about_watch_title: "視聴のしかた",
    about_watch: "「本日のライブ」か「番組表」で番組を選んで開きます。公開番組はブラウザでそのまま再生され、保護された番組では配信者から受け取った視聴パスワードを入力します。満席のときは空席が出るまでページが待ちます。",
    about_live_title: "配信のしかた",
    about_steps: [
        "プレミアム会員になります（カードはブランドと下4桁のみ保存）。",
        "チャンネルの放送枠を予約します。料金と確認期限は予約前に表示されます。",
        "期限までに、メールで届いた予約キーで予約を確定します。",
        "OBS または ffmpeg を予約キーで接続します（接続可能時間内のみ有効）。配信ツールに任せることもできます。",
        "開始時刻に放送が始まり、予約時間が終わると配信は終了します。",
    ],
    not_found_title: "見つかりません",
    not_found: "ページが存在しないか、番組を表示できません。",
    error_title: "エラーが発生しました",
    error: "サーバー側で問題が発生しました。記録済みです。しばらくしてからもう一度お試しください。",
    back_home: "本日のライブへ戻る",
    months: [
        "1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月",
    ],
    weekdays: ["月", "火", "水", "木", "金", "土", "日"],
    weekdays_long: [
        "月曜日",
        "火曜日",
        "水曜日",
        "木曜日",
        "金曜日",
        "土曜日",
        "日曜日",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(accept: &str, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("accept-language", HeaderValue::from_str(accept).unwrap());
        if let Some(c) = cookie {
            h.insert("cookie", HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn the_switch_beats_the_cookie_which_beats_the_browser() {
        assert_eq!(Lang::choose(None, &headers("ja,en;q=0.8", None)), Lang::Ja);
        assert_eq!(
            Lang::choose(None, &headers("fr, en-GB;q=0.5, ja;q=0.9", None)),
            Lang::Ja
        );
        assert_eq!(Lang::choose(None, &headers("fr", None)), Lang::En);
        assert_eq!(
            Lang::choose(None, &headers("ja", Some("a=b; slotcast_lang=en"))),
            Lang::En
        );
        assert_eq!(
            Lang::choose(Some("ja"), &headers("en", Some("slotcast_lang=en"))),
            Lang::Ja
        );
        assert_eq!(Lang::choose(Some("xx"), &headers("ja", None)), Lang::Ja);
    }

    #[test]
    fn days_are_written_as_each_language_writes_them() {
        let d: Date = "2026-12-01".parse().unwrap();
        assert_eq!(Lang::En.day(d), "Tuesday, 1 December 2026");
        assert_eq!(Lang::Ja.day(d), "2026年12月1日（火）");
        assert_eq!(Lang::Ja.month(d), "2026年12月");
    }
}
