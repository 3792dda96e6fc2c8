//! Runs one command: asks the server, keeps what must be kept, prints the answer (text for
//! people, `--json` for scripts). This module is the tool's terminal: it alone prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Value, json};

use crate::api::Api;
use crate::cli::{Cli, Command};
use crate::local::{DataDir, Session};
use crate::{Error, Result, agent, clock};

/// Runs `cli`.
pub async fn run(cli: Cli) -> Result<()> {
    let dir = DataDir::new(cli.data_dir.clone())?;
    let json_out = cli.json;
    match cli.command {
        Command::Login { server, email } => login(&dir, &server, &email).await,
        Command::Logout => {
            let s = dir.session()?;
            let api = Api::new(&s.server, Some(s.token));
            match api
                .call(reqwest::Method::DELETE, "/sessions/current", None)
                .await
            {
                Ok(_) | Err(Error::SessionEnded) => {}
                Err(e) => return Err(e),
            }
            dir.forget_session()?;
            println!("signed out of {}", s.server);
            Ok(())
        }
        Command::Channels => {
            let v = signed_in(&dir)?.get("/channels").await?;
            print_channels(&v, json_out);
            Ok(())
        }
        Command::Availability { date } => {
            let path = match &date {
                Some(d) => format!("/availability?date={}", encode(d)),
                None => "/availability".to_owned(),
            };
            let v = signed_in(&dir)?.get(&path).await?;
            print_availability(&v, json_out);
            Ok(())
        }
        Command::Reserve {
            channel,
            start,
            slots,
            title,
            visibility,
            password,
            invitees,
            genre,
            outline,
            detail,
            yes,
        } => {
            let api = signed_in(&dir)?;
            let mut body = json!({"channel": channel, "start": start, "slots": slots,
                "visibility": visibility, "title": title, "invitees": invitees});
            for (k, v) in [
                ("viewer_password", password),
                ("genre", genre),
                ("outline", outline),
                ("detail", detail),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            let q = api.post("/reservations/quote", body.clone()).await?;
            if q["available"] == false {
                return Err(Error::Input(
                    "those slots are taken; see `slotcast availability`".into(),
                ));
            }
            println!("fee:            {}", money(&q["fee"]));
            println!("confirm before: {}", q["confirm_by"].as_str().unwrap_or(""));
            println!("quota left:     {} slots this month", q["quota_left"]);
            println!("terms:          {}/terms", api.server());
            if !yes && !ask("Book it, accepting the terms? [y/N] ")? {
                return Err(Error::Input("not booked".into()));
            }
            let r = api.post("/reservations", body).await?;
            let id = r["id"].as_i64().unwrap_or_default();
            println!("booked: reservation {id}");
            println!(
                "the reservation key is on its way by e-mail; then run `slotcast confirm {id}`"
            );
            Ok(())
        }
        Command::Confirm { id, key } => {
            let (v, path) = profile_for_device(&dir, id, key, "confirm").await?;
            println!("confirmed: reservation {id}");
            println!(
                "connection profile stored (encrypted for this device): {}",
                path.display()
            );
            print_window(&v["reservation"]);
            Ok(())
        }
        Command::Profile { id, key } => {
            let (_, path) = profile_for_device(&dir, id, key, "profile").await?;
            println!(
                "connection profile stored for this device: {}",
                path.display()
            );
            Ok(())
        }
        Command::List => {
            let v = signed_in(&dir)?.get("/reservations").await?;
            if json_out {
                println!("{v:#}");
            } else {
                let empty = Vec::new();
                let list = v.as_array().unwrap_or(&empty);
                if list.is_empty() {
                    println!("no reservations");
                }
                for r in list {
                    println!(
                        "{:>20}  {:<22}  {:<9}  {}  {}",
                        r["id"],
                        r["status"].as_str().unwrap_or(""),
                        channel_of(r),
                        r["start"].as_str().unwrap_or(""),
                        r["title"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        Command::Show { id } => {
            let v = signed_in(&dir)?.get(&format!("/reservations/{id}")).await?;
            let stored = dir.profile_path(id).exists();
            if json_out {
                let mut v = v;
                v["profile_stored"] = json!(stored);
                println!("{v:#}");
            } else {
                println!(
                    "{} — {}",
                    v["title"].as_str().unwrap_or(""),
                    v["status"].as_str().unwrap_or("")
                );
                println!("start:   {}", v["start"].as_str().unwrap_or(""));
                println!("end:     {}", v["end"].as_str().unwrap_or(""));
                println!("slots:   {} · fee {}", v["slots"], money(&v["fee"]));
                println!("confirm before: {}", v["confirm_by"].as_str().unwrap_or(""));
                print_window(&v);
                println!("watch:   {}", v["watch_url"].as_str().unwrap_or(""));
                println!(
                    "profile: {}",
                    if stored {
                        "stored on this device"
                    } else {
                        "not on this device (`slotcast profile ID`)"
                    }
                );
            }
            Ok(())
        }
        Command::Change {
            id,
            title,
            genre,
            outline,
            detail,
            password,
        } => {
            let mut body = json!({});
            for (k, v) in [
                ("title", title),
                ("genre", genre),
                ("outline", outline),
                ("detail", detail),
                ("viewer_password", password),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                return Err(Error::Input(
                    "nothing to change: give --title, --genre, --outline, --detail or --password"
                        .into(),
                ));
            }
            let api = signed_in(&dir)?;
            api.call(
                reqwest::Method::PATCH,
                &format!("/reservations/{id}"),
                Some(body),
            )
            .await?;
            println!("changed: reservation {id} (invitees are told)");
            Ok(())
        }
        Command::Cancel { id, yes } => {
            let api = signed_in(&dir)?;
            let r = api.get(&format!("/reservations/{id}")).await?;
            println!(
                "{} — {}",
                r["title"].as_str().unwrap_or(""),
                r["start"].as_str().unwrap_or("")
            );
            if r["status"] == "confirmed" {
                println!(
                    "it is confirmed: cancelling still bills {}",
                    money(&r["fee"])
                );
            }
            if !yes && !ask("Cancel it? [y/N] ")? {
                return Err(Error::Input("not cancelled".into()));
            }
            api.call(
                reqwest::Method::DELETE,
                &format!("/reservations/{id}"),
                None,
            )
            .await?;
            let _ = std::fs::remove_file(dir.profile_path(id));
            println!("cancelled: reservation {id}");
            Ok(())
        }
        Command::Extend { id, slots } => {
            let api = signed_in(&dir)?;
            let r = api
                .post(
                    &format!("/reservations/{id}/extend"),
                    json!({"slots": slots}),
                )
                .await?;
            println!(
                "extended: reservation {id} now ends {} (fee {})",
                r["end"].as_str().unwrap_or(""),
                money(&r["fee"])
            );
            Ok(())
        }
        Command::Agent {
            id,
            source,
            effects,
            remind_minutes,
            no_dashboard,
        } => {
            let api = signed_in(&dir)?;
            let options = agent::Options {
                source: agent::Source::parse(&source)?,
                effects: effects
                    .iter()
                    .map(|e| agent::Effect::parse(e))
                    .collect::<Result<_>>()?,
                remind_minutes,
                dashboard: !no_dashboard,
            };
            let id = match id {
                Some(id) => id,
                None => next_stored(&dir, &api).await?,
            };
            agent::run(&api, &dir, id, &options).await
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "slotcast", &mut std::io::stdout());
            Ok(())
        }
        Command::Time { samples, set_clock } => {
            let api = match dir.session() {
                Ok(s) => Api::new(&s.server, None),
                Err(e) => return Err(e),
            };
            let o = clock::measure(&api, samples).await?;
            if json_out {
                println!(
                    "{:#}",
                    json!({"server_ahead_ms": o.server_ahead_ms.round(), "error_ms": o.error_ms.ceil(),
                        "server_time_ms": o.server_now_ms.round()})
                );
            } else {
                let server = slotcast_domain::Timestamp::from_millisecond(o.server_now_ms as i64)
                    .map(|t| format!("{t:.3}"))
                    .unwrap_or_default();
                println!("server time: {server}");
                println!(
                    "this machine: {:.3}",
                    slotcast_domain::jiff::Timestamp::now()
                );
                let secs = o.server_ahead_ms / 1000.0;
                let how = if secs >= 0.0 { "behind" } else { "ahead of" };
                println!(
                    "offset: this machine is {:.3} s {how} the server (± {:.3} s)",
                    secs.abs(),
                    o.error_ms / 1000.0
                );
            }
            if set_clock {
                set_system_clock(o.server_now_ms)?;
                println!("this machine's clock is set to the server's");
            }
            Ok(())
        }
    }
}

/// The next reservation (by start) whose profile is stored here and whose window has not
/// closed.
async fn next_stored(dir: &DataDir, api: &Api) -> Result<i64> {
    let list = api.get("/reservations").await?;
    let now = slotcast_domain::jiff::Timestamp::now();
    let mut open: Vec<(String, i64)> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["status"].as_str(), Some("confirmed" | "live")))
        .filter_map(|r| Some((r["start"].as_str()?.to_owned(), r["id"].as_i64()?)))
        .filter(|(_, id)| dir.profile_path(*id).exists())
        .filter(|(_, id)| agent::plan(dir, *id).is_ok_and(|p| p.connect_to > now))
        .collect();
    open.sort();
    open.first().map(|(_, id)| *id).ok_or_else(|| {
        Error::Input(
            "no confirmed reservation with its profile on this device: run `slotcast confirm ID`"
                .into(),
        )
    })
}

/// The API of the stored session.
fn signed_in(dir: &DataDir) -> Result<Api> {
    let s = dir.session()?;
    Ok(Api::new(&s.server, Some(s.token)))
}

async fn login(dir: &DataDir, server: &str, email: &str) -> Result<()> {
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(Error::Input(format!(
            "the server is an http:// or https:// address, not {server:?}"
        )));
    }
    let password = secret("password: ")?;
    let api = Api::new(server, None);
    let v = api
        .post("/sessions", json!({"email": email, "password": password}))
        .await?;
    let token = v["token"]
        .as_str()
        .ok_or_else(|| Error::Input("the server gave no session".into()))?;
    dir.save_session(&Session {
        server: api.server().to_owned(),
        token: token.to_owned(),
    })?;
    println!("signed in to {} as {email}", api.server());
    Ok(())
}

/// The reservation key: from the command line, else asked for.
fn key_or_ask(key: Option<String>) -> Result<String> {
    let key = match key {
        Some(k) => k,
        None => secret("reservation key (from the e-mail): ")?,
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        return Err(Error::Input("no reservation key given".into()));
    }
    Ok(key)
}

/// A secret typed at the terminal without echo, or a line of stdin when it is not a
/// terminal.
fn secret(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::Input(format!("cannot read stdin: {e}")))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    let _ = stty("-echo");
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = stty("echo");
    eprintln!();
    read.map_err(|e| Error::Input(format!("cannot read the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks a yes/no question on the terminal (no terminal: no).
fn ask(question: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Input(format!("cannot read the terminal: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Asks the server for the connection profile of `id` encrypted for this device
/// (`action`: `confirm` the reservation, or `profile` again) with the reservation key, and
/// stores it; the server's answer and where the profile is.
async fn profile_for_device(
    dir: &DataDir,
    id: i64,
    key: Option<String>,
    action: &str,
) -> Result<(Value, std::path::PathBuf)> {
    let api = signed_in(dir)?;
    let key = key_or_ask(key)?;
    let device = dir.device_key()?;
    let v = api
        .post(
            &format!("/reservations/{id}/{action}"),
            json!({"reservation_key": key, "device_public_key": device.to_public().to_string()}),
        )
        .await?;
    let armored = v["profile"]
        .as_str()
        .ok_or_else(|| Error::Input("the server sent no encrypted profile".into()))?;
    let path = dir.save_profile(id, armored)?;
    Ok((v, path))
}

fn money(v: &Value) -> String {
    format!(
        "{} {}",
        v["amount"].as_str().unwrap_or(""),
        v["currency"].as_str().unwrap_or("")
    )
}

fn channel_of(r: &Value) -> String {
    r["channel"].to_string()
}

fn print_window(r: &Value) {
    let w = &r["connect_window"];
    if let (Some(from), Some(to)) = (w["from"].as_str(), w["to"].as_str()) {
        println!("stream key works from {from} until {to}");
    }
}

fn print_channels(v: &Value, json_out: bool) {
    if json_out {
        println!("{v:#}");
        return;
    }
    println!(
        "{:<16} {:>9} {:>12} {:>14}",
        "channel", "viewers", "bitrate", "price/slot"
    );
    for c in v.as_array().into_iter().flatten() {
        println!(
            "{:<16} {:>9} {:>7} kb/s {:>14}",
            c["name"].as_str().unwrap_or(""),
            c["capacity"],
            c["bitrate_kbps"],
            money(&c["tariff"])
        );
    }
}

fn print_availability(v: &Value, json_out: bool) {
    if json_out {
        println!("{v:#}");
        return;
    }
    let empty = Vec::new();
    let channels = v["channels"].as_array().unwrap_or(&empty);
    println!(
        "{} ({}), {}-minute slots: . free, # taken, - closed",
        v["date"].as_str().unwrap_or(""),
        v["time_zone"].as_str().unwrap_or(""),
        v["slot_minutes"]
    );
    print!("{:<6}", "");
    for c in channels {
        print!(" {:<12}", c["name"].as_str().unwrap_or(""));
    }
    println!();
    let rows = channels
        .first()
        .and_then(|c| c["slots"].as_array())
        .map_or(0, Vec::len);
    for i in 0..rows {
        let start = channels[0]["slots"][i]["start"].as_str().unwrap_or("");
        print!("{:<6}", start.get(11..16).unwrap_or(start));
        for c in channels {
            let s = &c["slots"][i];
            let mark = if s["state"] == "taken" {
                s["program"]["title"]
                    .as_str()
                    .map_or("#".to_owned(), |t| format!("# {t}"))
            } else if s["bookable"] == true {
                ".".to_owned()
            } else {
                "-".to_owned()
            };
            print!(" {:<12}", mark.chars().take(12).collect::<String>());
        }
        println!();
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sets the system clock with `date` (needs the right to).
fn set_system_clock(server_ms: f64) -> Result<()> {
    let secs = format!("@{:.3}", server_ms / 1000.0);
    let out = std::process::Command::new("date")
        .args(["-u", "-s", &secs])
        .output()
        .map_err(|e| Error::Input(format!("cannot run date: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "this machine's clock cannot be set here ({}); run as a user allowed to set it",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
