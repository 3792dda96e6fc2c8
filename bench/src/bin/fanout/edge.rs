//! `--edge-db`: fan-out through an edge node against the origin alone, in one invocation.
//!
//! A center (role `center`) on an empty PostgreSQL database, an origin node serving the
//! channel and an edge node relaying it (role `stream`, `node.relays`), all on loopback.
//! The program is booked, confirmed and published to the origin as in the main run. For
//! each N, N HTTP-FLV viewers play from the origin (its CPU counted), then N play from the
//! edge (the origin's and the edge's CPU counted: the relay is part of the cost). The
//! figure is delivered Gbit per CPU second through the edge against the origin alone.

use super::procs::{self, Slotcastd};
use super::publish::SendLog;
use super::viewer::{Clock, Target};
use super::{Args, Ingest, Run, fanout_run, product};
use slotcast_bench::Res;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The center, the origin and the edge.
struct Cluster {
    center: Slotcastd,
    origin: Slotcastd,
    edge: Slotcastd,
}

impl Cluster {
    fn start(bin: &Path, dir: &Path, db: &str) -> Res<Cluster> {
        let internal = procs::free_addr()?;
        let center_dir = dir.join("center");
        let shared = [
            ("DATABASE__URL", db.to_owned()),
            ("FILLER__AUTO_GENERATE", "false".to_owned()),
        ];
        procs::admin(
            bin,
            &center_dir,
            &["create-operator", "--email", product::OPERATOR],
            &shared,
            product::PASSWORD,
        )?;
        let mut center_env = shared.to_vec();
        center_env.push(("CLUSTER__LISTEN", internal.to_string()));
        let center = Slotcastd::serve(bin, &center_dir, "center", &center_env)?;
        let node = |name: &str, key: &str| -> Res<Slotcastd> {
            let out = procs::admin(bin, &center_dir, &["add-node", "--name", name], &shared, "")?;
            let credential = out.lines().last().unwrap_or_default().trim().to_owned();
            Slotcastd::serve(
                bin,
                &dir.join(name),
                "stream",
                &[
                    ("NODE__NAME", name.to_owned()),
                    ("NODE__CREDENTIAL", credential),
                    ("NODE__CENTER_URL", format!("http://{internal}")),
                    (key, r#"["fanout"]"#.to_owned()),
                    ("FILLER__AUTO_GENERATE", "false".to_owned()),
                ],
            )
        };
        let origin = node("origin", "NODE__CHANNELS")?;
        let edge = node("edge", "NODE__RELAYS")?;
        Ok(Cluster {
            center,
            origin,
            edge,
        })
    }
}

/// Runs the comparison and prints its table (see the module page).
pub async fn run(
    args: &Args,
    db: &str,
    dir: &Path,
    ingest: &Ingest,
    clock: &Arc<Clock>,
    tck: f64,
) -> Res<()> {
    let bin = super::slotcastd_bin(args)?;
    let c = Cluster::start(&bin, dir, db)?;
    let base = format!("http://{}", c.center.http);
    let max_n = args.n.iter().copied().max().unwrap_or(0);
    // Two runs per N, the viewers of the first holding their seats a little longer.
    let capacity = (2 * max_n + 100) as u32;
    let minutes = (args.n.len() as u64 * 2 * (args.seconds + args.settle + 40) / 60 + 3) as u32;
    let program = product::book(
        &base,
        &c.center.data,
        capacity,
        minutes.clamp(3, 36),
        Duration::from_secs(20),
    )
    .await
    .map_err(|e| format!("product flow: {e}; center log:\n{}", c.center.log_tail()))?;
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    tokio::time::sleep(Duration::from_secs(
        (program.connect_from + 1 - now).max(0) as u64
    ))
    .await;
    let log: Arc<SendLog> = ingest.publish(c.origin.rtmp, "live", &program.key).await?;
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    // The start, then a few heartbeats for the edge to be told and to pull.
    tokio::time::sleep(Duration::from_secs((program.start + 5 - now).max(5) as u64)).await;
    println!(
        "edge: center {}, origin {} (publishing), edge {} relaying; program {} for {minutes} min",
        c.center.http, c.origin.http, c.edge.http, program.slug
    );

    let mut rows = Vec::new();
    for &n in &args.n {
        let mut pair = Vec::new();
        for (via_edge, addr) in [(false, c.origin.http), (true, c.edge.http)] {
            let server = if via_edge { "edge" } else { "origin" };
            let r = match product::play_urls(&base, &program.slug, n).await {
                Ok(urls) => {
                    let targets = urls
                        .iter()
                        .map(|u| Target::Flv {
                            addr,
                            path: product::path_of(&u.flv),
                        })
                        .collect();
                    let pids = || {
                        let mut p = c.origin.pids();
                        if via_edge {
                            p.extend(c.edge.pids());
                        }
                        p
                    };
                    fanout_run(
                        server, "HTTP-FLV", n, targets, &pids, &log, clock, args, tck,
                    )
                    .await
                }
                Err(e) => Run::failed(server, "HTTP-FLV", n, e),
            };
            pair.push(r);
        }
        rows.push(pair);
    }
    log.stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Fan-out through an edge (HTTP-FLV; origin alone = origin's CPU; through the edge = origin's + edge's CPU)\n"
    );
    let _ = writeln!(
        out,
        "| N | origin alone: Gbit per CPU s | through the edge: Gbit per CPU s | ratio | behind (origin, edge) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for pair in &rows {
        let [alone, edge] = &pair[..] else { continue };
        let per = |r: &Run| if r.ok() { 1.0 / r.cpu_per_gbit() } else { 0.0 };
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2} | **{:.2}** | {}, {} |",
            alone.n,
            per(alone),
            per(edge),
            if per(alone) > 0.0 {
                per(edge) / per(alone)
            } else {
                0.0
            },
            alone.behind,
            edge.behind
        );
    }
    println!("{out}");
    Ok(())
}
