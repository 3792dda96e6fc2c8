// slotcast — the broadcaster's live dashboard: on air or not, elapsed and remaining time
// on the service's clock, viewers, bitrate, picture and recording, pushed by the server
// once a second (Server-Sent Events), and the preview of what the publisher sends.
import { pipe } from "./mse.js";

const box = document.getElementById("dashboard");
if (box) start(box);

function start(box) {
  const d = box.dataset;
  const $ = (id) => document.getElementById(id);
  const pad = (n) => String(n).padStart(2, "0");
  const span = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
  };
  const zone = document.body.dataset.tz;
  const clock = new Intl.DateTimeFormat(document.documentElement.lang, {
    timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  const start = Number(d.start), end = Number(d.end);

  const events = new EventSource(d.events);
  events.addEventListener("live", (ev) => {
    const e = JSON.parse(ev.data);
    const now = Date.parse(e.server_time);
    $("dash-clock").textContent = clock.format(new Date(now));
    $("dash-elapsed").textContent = now < start ? "—" : span(Math.min(now, end) - start);
    $("dash-remaining").textContent = now < start ? `${span(end - start)} (${span(start - now)} →)` : span(end - now);
    $("dash-viewers").textContent = e.viewers;
    $("dash-bitrate").textContent = e.publishing ? `${e.bitrate_kbps} kbit/s` : "—";
    $("dash-picture").textContent = e.width ? `${e.width}×${e.height} · ${e.fps.toFixed(1)} fps` : "—";
    $("dash-recording").textContent = e.recording;
    const air = $("dash-air");
    air.textContent = e.status === "completed" || now >= end ? d.ended
      : e.on_air ? d.onAir : e.publishing ? d.waiting : d.offAir;
    air.dataset.onAir = String(e.on_air);
    box.dataset.viewers = String(e.viewers);
    const badge = { live: ["on-air", d.statusLive], completed: ["on-demand", d.statusCompleted],
      cancelled: ["ended", d.statusCancelled] }[e.status];
    if (badge) {
      $("dash-status").className = `badge ${badge[0]}`;
      $("dash-status").textContent = badge[1];
    }
    if (e.publishing && !previewing) preview();
    if (e.offer_slots > 0 && !$("offer")) location.reload();
  });

  // The preview: what the publisher sends, before the start too.
  let previewing = false;
  const video = $("preview-video");
  const overlay = $("preview-overlay");
  async function preview() {
    const MS = window.MediaSource || window.ManagedMediaSource;
    if (!MS) return;
    previewing = true;
    try {
      const g = await (await fetch(d.preview, { method: "POST", headers: { "x-csrf-token": d.csrf } })).json();
      if (!g.url) throw new Error("no preview");
      const res = await fetch(g.url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      overlay.textContent = "";
      await pipe(MS, video, res);
    } catch { /* tried again with the next event that shows a publisher */ }
    previewing = false;
  }
}
