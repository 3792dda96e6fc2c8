//! Configuration: typed, with the defaults of the product, loaded once in `main` from
//! built-in defaults, then the TOML file (`--config`), then `SLOTCAST__SECTION__KEY`
//! environment variables (upper case, `__` between levels). Every problem is reported as
//! one line naming the key, where its value came from and what is allowed.

use serde::{Deserialize, Deserializer};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::jiff::tz::TimeZone;
use slotcast_domain::policy::CancelCharge;
use slotcast_domain::{Currency, Policy, SlotLength};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SLOTCAST__";

/// A configuration problem, for one line on the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A secret value: usable, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_string(d).map(Secret)
    }
}

/// Accepts a string, or a number or boolean written without quotes (as environment
/// variables often are), as a string.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
        Raw::F(f) => f.to_string(),
        Raw::B(b) => b.to_string(),
    })
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    lenient_string(d).map(Some)
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SQLite file, outbox, recordings, filler.
    pub data_dir: PathBuf,
    /// Base URL used in e-mails and profiles.
    #[serde(deserialize_with = "lenient_string")]
    pub public_url: String,
    /// IANA zone of calendars and quotas.
    #[serde(deserialize_with = "lenient_string")]
    pub time_zone: String,
    /// Database.
    pub database: DatabaseConfig,
    /// HTTP listener.
    pub http: HttpConfig,
    /// RTMP listener.
    pub rtmp: ListenConfig,
    /// Slot rules.
    pub slots: SlotsConfig,
    /// Quota.
    pub quota: QuotaConfig,
    /// Billing.
    pub billing: BillingConfig,
    /// Programs.
    pub programs: ProgramsConfig,
    /// Filler.
    pub filler: FillerConfig,
    /// Live delivery.
    pub delivery: DeliveryConfig,
    /// The async runtime.
    pub runtime: RuntimeConfig,
    /// E-mail.
    pub mail: MailConfig,
    /// Time source.
    pub time: TimeConfig,
    /// Logging.
    pub log: LogConfig,
    /// Channels created on first start (when the database has none).
    pub channels: Vec<ChannelConfig>,
    /// What this process runs: `all` (center and stream node in one process, the
    /// default), `center` (a replica of the center, on PostgreSQL) or `stream` (a stream
    /// node of a center); `slotcastd serve --role` overrides it.
    pub role: Role,
    /// `[cluster]`: the center's internal API for stream nodes (role `center`).
    pub cluster: ClusterConfig,
    /// `[node]`: this stream node (role `stream`).
    pub node: NodeConfig,
}

/// Whether `name` can name a stream node: 1–64 ASCII letters, digits or dashes.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// What a process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Center and stream node in one process (SQLite or PostgreSQL).
    #[default]
    All,
    /// A center replica: pages, API, scheduler, e-mail, the nodes' internal API.
    Center,
    /// A stream node: ingest, delivery, recording, filler, for the channels placed on it.
    Stream,
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Where the internal API for stream nodes listens (keep it off the internet).
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// How long a node holds its lease and its channels without renewing (3–300 s); a
    /// channel moves to a standby node this long after its node died.
    pub node_lease_seconds: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            listen: "127.0.0.1:8090".parse().expect("valid"),
            node_lease_seconds: 10,
        }
    }
}

/// `[node]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name, as registered with `slotcastd admin add-node`.
    pub name: String,
    /// The credential `slotcastd admin add-node` printed.
    pub credential: Option<Secret>,
    /// The center's internal API, e.g. `http://10.0.0.1:8090`.
    pub center_url: String,
    /// The channels this node may serve: it takes those no live node holds (list the same
    /// channels on a standby node).
    pub channels: Vec<String>,
    /// The channels this node relays as an edge: it pulls their programs from the node
    /// they are placed on (their origin) and serves more viewers of them.
    pub relays: Vec<String>,
    /// Where viewers reach this node's HTTP delivery; default `http://<http.listen>`.
    pub play_url: String,
    /// Where publishers reach this node's RTMP ingest; default `rtmp://<rtmp.listen>/live`.
    pub ingest_url: String,
}

/// `[database]`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/slotcast.db`.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub url: Option<String>,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .finish()
    }
}

/// Hides the password of a `scheme://user:password@host/…` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Reverse proxies (addresses or blocks such as `10.0.0.0/8`) whose
    /// `X-Forwarded-For` / `Forwarded` header names the client; ignored from anyone else.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("valid"),
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpConfig {
    /// The trusted proxies, parsed (validated at load).
    pub fn proxies(&self) -> Vec<slotcast_center::net::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

/// `[rtmp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Address to listen on.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// The ingest endpoints broadcasters are given, preferred first (e.g. a primary and a
    /// backup stream node); empty: `rtmp://<public host>:<port>/live` of this node.
    pub endpoints: Vec<String>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            listen: "127.0.0.1:1935".parse().expect("valid"),
            endpoints: Vec::new(),
        }
    }
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = lenient_string(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not an address such as 127.0.0.1:8080 or [::]:8080"
        ))
    })
}

/// `[slots]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlotsConfig {
    /// Slot length in minutes (divides 60).
    pub minutes: u32,
    /// Most slots per reservation.
    pub max_per_reservation: u32,
    /// Confirm deadline before the start.
    pub confirm_lead_minutes: u32,
    /// Confirm grace for late bookings.
    pub late_grace_minutes: u32,
    /// Connect window opens before the start.
    pub connect_before_seconds: u32,
    /// Connect window closes after the end.
    pub connect_after_seconds: u32,
    /// Confirmation reminder before the deadline.
    pub confirm_reminder_minutes: u32,
    /// Start reminder before the start.
    pub start_reminder_minutes: u32,
    /// Extension offer before the end.
    pub extension_offer_minutes: u32,
    /// How many days ahead bookings are taken (and availability and programs shown).
    pub horizon_days: u32,
}

impl Default for SlotsConfig {
    fn default() -> Self {
        Self {
            minutes: 10,
            max_per_reservation: 36,
            confirm_lead_minutes: 360,
            late_grace_minutes: 15,
            connect_before_seconds: 300,
            connect_after_seconds: 180,
            confirm_reminder_minutes: 60,
            start_reminder_minutes: 10,
            extension_offer_minutes: 10,
            horizon_days: 90,
        }
    }
}

/// `[quota]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Slots per member per calendar month.
    pub slots_per_month: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            slots_per_month: 30,
        }
    }
}

/// `[billing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// ISO 4217 currency of the demo channels.
    #[serde(deserialize_with = "lenient_string")]
    pub currency: String,
    /// Bill cancellations made after confirmation.
    pub charge_cancelled_after_confirm: bool,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            currency: "JPY".into(),
            charge_cancelled_after_confirm: true,
        }
    }
}

/// `[programs]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgramsConfig {
    /// Allowed genres; empty allows any.
    pub genres: Vec<String>,
    /// E-mail invitees already at acceptance (not only at confirmation).
    pub invite_at_acceptance: bool,
}

/// `[filler]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FillerConfig {
    /// Make a test-card filler and slate with ffmpeg at start for channels that have none
    /// (when ffmpeg is installed).
    pub auto_generate: bool,
    /// Length of a generated filler loop, seconds.
    pub seconds: u32,
}

impl Default for FillerConfig {
    fn default() -> Self {
        FillerConfig {
            auto_generate: true,
            seconds: 10,
        }
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// HTTP-FLV and fMP4 viewers are written at most this often, milliseconds (what arrived
    /// meanwhile goes in one write); 0: at every video frame.
    pub write_interval_ms: u32,
    /// A live viewer who stays past its program's end sees the filler this many seconds,
    /// then is closed (at once when another program follows).
    pub linger_seconds: u32,
    /// A replay's play session ends after this many seconds without a request.
    pub replay_idle_seconds: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            write_interval_ms: 100,
            linger_seconds: 15,
            replay_idle_seconds: 3600,
        }
    }
}

/// `[runtime]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Threads running sockets and requests; 0: half the machine's cores, at least one.
    /// Blocking work (password hashing, files, SQLite) has threads of its own.
    pub worker_threads: u16,
}

impl RuntimeConfig {
    /// The worker threads to start on a machine with `cores` cores.
    pub fn workers(&self, cores: usize) -> usize {
        match self.worker_threads {
            0 => (cores / 2).max(1),
            n => n.into(),
        }
    }
}

/// `[mail]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `file` (write `.eml` files to `<data_dir>/outbox`) or `smtp`.
    #[serde(deserialize_with = "lenient_string")]
    pub transport: String,
    /// Sender address.
    #[serde(deserialize_with = "lenient_string")]
    pub from: String,
    /// SMTP settings.
    pub smtp: SmtpConfig,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: "file".into(),
            from: "slotcast <slotcast@localhost.localdomain>".into(),
            smtp: SmtpConfig::default(),
        }
    }
}

/// `[mail.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name.
    #[serde(deserialize_with = "lenient_string")]
    pub host: String,
    /// Port.
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    #[serde(deserialize_with = "lenient_string")]
    pub tls: String,
    /// User name.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: "starttls".into(),
            username: None,
            password: None,
        }
    }
}

/// `[time]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeConfig {
    /// `host:port` NTP servers; empty uses the system clock.
    pub ntp_servers: Vec<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(deserialize_with = "lenient_string")]
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
        }
    }
}

/// `[[channels]]`: a channel created on first start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name.
    pub name: String,
    /// Most concurrent viewers.
    pub capacity: u32,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Price per slot in minor units of `billing.currency`.
    pub tariff_per_slot: i64,
}

impl Default for Config {
    fn default() -> Self {
        let ch = |name: &str, capacity, bitrate_kbps, tariff_per_slot| ChannelConfig {
            name: name.into(),
            capacity,
            bitrate_kbps,
            tariff_per_slot,
        };
        Self {
            data_dir: PathBuf::from("./data"),
            public_url: "http://localhost:8080".into(),
            time_zone: "UTC".into(),
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
            rtmp: ListenConfig::default(),
            slots: SlotsConfig::default(),
            quota: QuotaConfig::default(),
            billing: BillingConfig::default(),
            programs: ProgramsConfig::default(),
            filler: FillerConfig::default(),
            delivery: DeliveryConfig::default(),
            runtime: RuntimeConfig::default(),
            mail: MailConfig::default(),
            time: TimeConfig::default(),
            log: LogConfig::default(),
            channels: vec![
                ch("small", 10, 1000, 100),
                ch("medium", 100, 2500, 300),
                ch("large", 1000, 4000, 800),
            ],
            role: Role::All,
            cluster: ClusterConfig::default(),
            node: NodeConfig::default(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then the `SLOTCAST__…` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            None => toml::Table::new(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", p.display()))
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    ConfigError(format!(
                        "config file {} is not valid TOML: {}",
                        p.display(),
                        one_line(&e.to_string())
                    ))
                })?
            }
        };
        let mut from_env = BTreeMap::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError(format!(
                    "environment variable {name}: empty key part"
                )));
            }
            set_path(&mut table, &path, env_value(&value))
                .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
            from_env.insert(path.join("."), name);
        }
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let origin = from_env
                    .get(&key)
                    .map(|v| format!(" (from {v})"))
                    .unwrap_or_default();
                ConfigError(format!(
                    "invalid configuration key `{key}`{origin}: {}",
                    one_line(&e.inner().to_string())
                ))
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what `role` needs: PostgreSQL for a center replica; a name, a credential, a
    /// center and channels for a stream node.
    pub fn check_role(&self, role: Role) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| {
            Err(ConfigError(format!(
                "role {role:?}: configuration key `{key}` {msg}"
            )))
        };
        match role {
            Role::All => Ok(()),
            Role::Center if !self.database_url().starts_with("postgres") => err(
                "database.url",
                "must name PostgreSQL (postgres://…): center replicas share one database",
            ),
            Role::Center => Ok(()),
            Role::Stream => {
                let n = &self.node;
                if !valid_node_name(&n.name) {
                    return err("node.name", "must be 1–64 letters, digits or dashes");
                }
                if n.credential.as_ref().is_none_or(|c| c.0.is_empty()) {
                    return err(
                        "node.credential",
                        "is required (see `slotcastd admin add-node`)",
                    );
                }
                if !(n.center_url.starts_with("http://") || n.center_url.starts_with("https://")) {
                    return err(
                        "node.center_url",
                        "must be the center's internal URL, http(s)://…",
                    );
                }
                if n.channels.is_empty() && n.relays.is_empty() {
                    return err(
                        "node.channels",
                        "must name the channels this node may serve (or `node.relays` those it relays)",
                    );
                }
                if let Some(both) = n.relays.iter().find(|r| n.channels.contains(r)) {
                    return err(
                        "node.relays",
                        &format!(
                            "names `{both}`, which `node.channels` names too: a node is a channel's origin or its edge"
                        ),
                    );
                }
                Ok(())
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: String| {
            Err(ConfigError(format!(
                "invalid configuration key `{key}`: {msg}"
            )))
        };
        if let Err(e) = SlotLength::from_minutes(self.slots.minutes) {
            return err("slots.minutes", e.to_string());
        }
        if self.slots.max_per_reservation == 0 || self.slots.max_per_reservation > 24 * 60 {
            return err(
                "slots.max_per_reservation",
                "must be between 1 and 1440".into(),
            );
        }
        if self.delivery.write_interval_ms > 1000 {
            return err(
                "delivery.write_interval_ms",
                "must be between 0 and 1000".into(),
            );
        }
        if self.runtime.worker_threads > 256 {
            return err(
                "runtime.worker_threads",
                "must be between 0 (half the cores) and 256".into(),
            );
        }
        if self.delivery.linger_seconds > 600 {
            return err(
                "delivery.linger_seconds",
                "must be between 0 and 600".into(),
            );
        }
        if !(60..=86_400).contains(&self.delivery.replay_idle_seconds) {
            return err(
                "delivery.replay_idle_seconds",
                "must be between 60 and 86400".into(),
            );
        }
        if !(1..=3650).contains(&self.slots.horizon_days) {
            return err("slots.horizon_days", "must be between 1 and 3650".into());
        }
        if self.quota.slots_per_month == 0 {
            return err("quota.slots_per_month", "must be at least 1".into());
        }
        if self.slots.confirm_lead_minutes * 60 < self.slots.connect_before_seconds {
            return err(
                "slots.confirm_lead_minutes",
                "the confirm deadline must not be later than the opening of the connect window"
                    .into(),
            );
        }
        if let Err(e) = TimeZone::get(&self.time_zone) {
            return err(
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone such as Europe/Berlin ({e})",
                    self.time_zone
                ),
            );
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return err(
                "public_url",
                format!("{:?} must start with http:// or https://", self.public_url),
            );
        }
        if let Some(bad) = self.rtmp.endpoints.iter().find(|e| {
            !e.starts_with("rtmp://")
                || e.len() > 500
                || e.chars().any(|c| c.is_whitespace() || c.is_control())
                || e.trim_start_matches("rtmp://").split('/').count() < 2
        }) {
            return err(
                "rtmp.endpoints",
                format!(
                    "{bad:?} is not an ingest address such as rtmp://live.example.org:1935/live"
                ),
            );
        }
        if let Err(e) = Currency::parse(&self.billing.currency) {
            return err("billing.currency", e.to_string());
        }
        match self.mail.transport.as_str() {
            "file" => {}
            "smtp" if self.mail.smtp.host.is_empty() => {
                return err(
                    "mail.smtp.host",
                    "is required when mail.transport = \"smtp\"".into(),
                );
            }
            "smtp" => {}
            other => {
                return err(
                    "mail.transport",
                    format!("{other:?} is not one of \"file\", \"smtp\""),
                );
            }
        }
        if !matches!(self.mail.smtp.tls.as_str(), "starttls" | "tls" | "none") {
            return err(
                "mail.smtp.tls",
                format!(
                    "{:?} is not one of \"starttls\", \"tls\", \"none\"",
                    self.mail.smtp.tls
                ),
            );
        }
        if !(3..=300).contains(&self.cluster.node_lease_seconds) {
            return err(
                "cluster.node_lease_seconds",
                "must be between 3 and 300".into(),
            );
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return err(
                "log.format",
                format!("{:?} is not one of \"text\", \"json\"", self.log.format),
            );
        }
        for s in &self.http.trusted_proxies {
            if let Err(why) = s.parse::<slotcast_center::net::IpNet>() {
                return err("http.trusted_proxies", why);
            }
        }
        for s in &self.time.ntp_servers {
            let ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return err(
                    "time.ntp_servers",
                    format!("{s:?} is not host:port, e.g. pool.ntp.org:123"),
                );
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            if c.name.trim().is_empty()
                || c.capacity == 0
                || c.bitrate_kbps == 0
                || c.tariff_per_slot < 0
            {
                return err(
                    &format!("channels[{i}]"),
                    "needs a name, capacity ≥ 1, bitrate_kbps ≥ 1 and tariff_per_slot ≥ 0".into(),
                );
            }
        }
        crate::storage::check_url(&self.database_url())
            .map_err(|e| ConfigError(format!("invalid configuration key `database.url`: {e}")))?;
        Ok(())
    }

    /// The database URL, defaulting to the SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("slotcast.db").display()))
    }

    /// The booking rules this configuration sets.
    pub fn policy(&self) -> Policy {
        let s = &self.slots;
        let mins = |m: u32| SignedDuration::from_mins(i64::from(m));
        let secs = |x: u32| SignedDuration::from_secs(i64::from(x));
        Policy {
            slot: SlotLength::from_minutes(s.minutes).expect("validated"),
            max_slots_per_reservation: s.max_per_reservation,
            confirm_lead: mins(s.confirm_lead_minutes),
            late_grace: mins(s.late_grace_minutes),
            connect_before: secs(s.connect_before_seconds),
            connect_after: secs(s.connect_after_seconds),
            confirm_reminder_before: mins(s.confirm_reminder_minutes),
            start_reminder_before: mins(s.start_reminder_minutes),
            extension_offer_before: mins(s.extension_offer_minutes),
            quota_slots_per_month: self.quota.slots_per_month,
            time_zone: TimeZone::get(&self.time_zone).expect("validated"),
            genres: self.programs.genres.clone(),
            cancel_charge: if self.billing.charge_cancelled_after_confirm {
                CancelCharge::Full
            } else {
                CancelCharge::None
            },
            horizon_days: s.horizon_days,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An environment value as TOML: numbers, booleans, arrays and inline tables keep their
/// type; anything else is a string.
fn env_value(v: &str) -> toml::Value {
    format!("v = {v}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("non-empty");
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    t.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> slotcast_testkit::TempDir {
        let d = slotcast_testkit::TempDir::new("config");
        std::fs::File::create(d.path().join("slotcast.toml"))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        d
    }

    #[test]
    fn each_role_says_what_it_lacks() {
        let node = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("SLOTCAST__NODE__NAME", "edge-1"),
                ("SLOTCAST__NODE__CREDENTIAL", "c0ffee"),
                ("SLOTCAST__NODE__CENTER_URL", "http://10.0.0.1:8090"),
            ];
            vars.extend_from_slice(extra);
            Config::load(None, env(&vars))
                .unwrap()
                .check_role(Role::Stream)
                .map_err(|e| e.to_string())
        };
        let lacking = node(&[]).unwrap_err();
        assert!(lacking.contains("node.channels"), "{lacking}");
        node(&[("SLOTCAST__NODE__CHANNELS", r#"["small"]"#)]).unwrap();
        node(&[("SLOTCAST__NODE__RELAYS", r#"["small"]"#)]).unwrap();
        let both = node(&[
            ("SLOTCAST__NODE__CHANNELS", r#"["small", "large"]"#),
            ("SLOTCAST__NODE__RELAYS", r#"["large"]"#),
        ])
        .unwrap_err();
        assert!(both.contains("`large`"), "{both}");
        let center = Config::load(None, env(&[]))
            .unwrap()
            .check_role(Role::Center);
        assert!(center.unwrap_err().to_string().contains("PostgreSQL"));
    }

    #[test]
    fn defaults_are_the_products() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.database_url(), "sqlite://./data/slotcast.db");
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.rtmp.listen.to_string(), "127.0.0.1:1935");
        let p = c.policy();
        assert_eq!(p.slot.minutes(), 10);
        assert_eq!(p.confirm_lead.as_mins(), 360);
        assert_eq!(p.late_grace.as_mins(), 15);
        assert_eq!(
            (p.connect_before.as_secs(), p.connect_after.as_secs()),
            (300, 180)
        );
        assert_eq!(p.quota_slots_per_month, 30);
        assert_eq!(c.mail.transport, "file");
        assert!(c.time.ntp_servers.is_empty());
        // Half the cores run sockets and requests; one on one or two cores.
        let w = |cores| c.runtime.workers(cores);
        assert_eq!((w(1), w(2), w(8)), (1, 1, 4));
        let names: Vec<_> = c
            .channels
            .iter()
            .map(|c| (c.name.as_str(), c.capacity, c.tariff_per_slot))
            .collect();
        assert_eq!(
            names,
            vec![
                ("small", 10, 100),
                ("medium", 100, 300),
                ("large", 1000, 800)
            ]
        );
    }

    #[test]
    fn file_then_environment() {
        let d = file(
            "time_zone = \"Europe/Berlin\"\n[slots]\nminutes = 15\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"mail.example.org\"\n",
        );
        let c = Config::load(
            Some(&d.path().join("slotcast.toml")),
            env(&[
                ("SLOTCAST__SLOTS__MINUTES", "20"),
                ("SLOTCAST__MAIL__SMTP__PASSWORD", "12345"),
                ("SLOTCAST__TIME__NTP_SERVERS", "[\"127.0.0.1:1123\"]"),
                ("SLOTCAST__PUBLIC_URL", "https://tv.example.org"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.slots.minutes, 20);
        assert_eq!(c.time_zone, "Europe/Berlin");
        assert_eq!(c.mail.smtp.password, Some(Secret("12345".into())));
        assert_eq!(c.time.ntp_servers, vec!["127.0.0.1:1123"]);
        let proxied = Config::load(
            None,
            env(&[(
                "SLOTCAST__HTTP__TRUSTED_PROXIES",
                "[\"127.0.0.1\", \"10.0.0.0/8\"]",
            )]),
        )
        .unwrap();
        assert_eq!(proxied.http.proxies().len(), 2);
        let e = Config::load(
            None,
            env(&[("SLOTCAST__HTTP__TRUSTED_PROXIES", "[\"10.0.0.0/40\"]")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`http.trusted_proxies`") && e.contains("prefix"),
            "{e}"
        );
        assert_eq!(c.public_url, "https://tv.example.org");
    }

    #[test]
    fn errors_name_the_key_and_what_is_allowed() {
        let e = |vars: &[(&str, &str)]| Config::load(None, env(vars)).unwrap_err().to_string();
        assert_eq!(
            e(&[("SLOTCAST__SLOTS__MINUTES", "7")]),
            "invalid configuration key `slots.minutes`: slot length must be one of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60 minutes, got 7"
        );
        let m = e(&[("SLOTCAST__SLOTS__MINUTES", "ten")]);
        assert!(m.starts_with("invalid configuration key `slots.minutes` (from SLOTCAST__SLOTS__MINUTES): invalid type: string \"ten\""), "{m}");
        let m = e(&[("SLOTCAST__SLOTS__MINUTEZ", "10")]);
        assert!(m.contains("unknown field `minutez`"), "{m}");
        let m = e(&[("SLOTCAST__TIME_ZONE", "Mars/Olympus")]);
        assert!(
            m.starts_with(
                "invalid configuration key `time_zone`: \"Mars/Olympus\" is not an IANA time zone"
            ),
            "{m}"
        );
        let m = e(&[("SLOTCAST__DATABASE__URL", "mysql://localhost/x")]);
        assert_eq!(
            m,
            "invalid configuration key `database.url`: unsupported database URL scheme `mysql`: use sqlite://path/to/file.db or postgres://user:password@host/database"
        );
        let m = e(&[("SLOTCAST__HTTP__LISTEN", "localhost")]);
        assert!(
            m.contains("`http.listen`") && m.contains("not an address"),
            "{m}"
        );
        assert_eq!(
            e(&[("SLOTCAST__DELIVERY__WRITE_INTERVAL_MS", "5000")]),
            "invalid configuration key `delivery.write_interval_ms`: must be between 0 and 1000"
        );
        assert_eq!(
            e(&[("SLOTCAST__RUNTIME__WORKER_THREADS", "300")]),
            "invalid configuration key `runtime.worker_threads`: must be between 0 (half the cores) and 256"
        );
        assert_eq!(
            e(&[("SLOTCAST__DELIVERY__LINGER_SECONDS", "601")]),
            "invalid configuration key `delivery.linger_seconds`: must be between 0 and 600"
        );
        let r = e(&[(
            "SLOTCAST__RTMP__ENDPOINTS",
            r#"["rtmp://a.example.org/live", "http://b"]"#,
        )]);
        assert!(
            r.contains("rtmp.endpoints") && r.contains("\"http://b\""),
            "{r}"
        );
        let m = e(&[("SLOTCAST__MAIL__TRANSPORT", "smtp")]);
        assert_eq!(
            m,
            "invalid configuration key `mail.smtp.host`: is required when mail.transport = \"smtp\""
        );
        for m in [
            e(&[("SLOTCAST__SLOTS__MINUTES", "7")]),
            e(&[("SLOTCAST__SLOTS__MINUTEZ", "1")]),
        ] {
            assert!(!m.contains('\n'), "one line: {m}");
        }
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        let d = file("[slots\nminutes = 10\n");
        let m = Config::load(Some(&d.path().join("slotcast.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            m.starts_with("config file ") && m.contains("is not valid TOML") && !m.contains('\n'),
            "{m}"
        );
        let m = Config::load(Some(Path::new("/nonexistent/slotcast.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            m.starts_with("cannot read config file /nonexistent/slotcast.toml"),
            "{m}"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::load(
            None,
            env(&[
                (
                    "SLOTCAST__DATABASE__URL",
                    "postgres://app:hunter2@db.example.org/slotcast",
                ),
                ("SLOTCAST__MAIL__SMTP__PASSWORD", "swordfish"),
            ]),
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("swordfish"),
            "{dbg}"
        );
        assert!(dbg.contains("postgres://app:<redacted>@db.example.org/slotcast"));
        assert_eq!(
            c.database_url(),
            "postgres://app:hunter2@db.example.org/slotcast"
        );
    }
}
