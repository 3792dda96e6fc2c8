// slotcast — the first-party player. It asks the page for a play grant, plays the live
// fMP4 stream through Media Source Extensions — or LL-HLS through them (llhls.js) when the
// stream brings nothing (a proxy holding it back) or the page says `?via=hls`, and LL-HLS
// natively where MSE is missing, as on iOS — keeps to the live edge, shows buffering and
// the latency, waits for a seat when the channel is full, and asks for a new grant whenever its play session ends — which
// is how it learns that the program ended and, later, that its replay is ready.
import { serverNow } from "./app.js";
import { pipe, trim } from "./mse.js";
import { playLlHls } from "./llhls.js";

// A stream that brings no media for this long is held back on the way: use LL-HLS.
const STUCK_MS = 6000;

const box = document.getElementById("player");
if (box) start(box);

function start(box) {
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const viewers = document.getElementById("viewers");
  const latencyBox = document.getElementById("latency-box");
  const latency = document.getElementById("latency");
  const fullBox = document.getElementById("full-box");
  const others = document.getElementById("other-players");
  const t = box.dataset;
  let state = t.state;
  let playing = false;
  let retryTimer = 0;
  let edgeTimer = 0;
  // How far behind the newest media the live stream plays (seconds), and whether it has
  // yet to jump there since joining.
  let target = 0.25;
  let joined = false;
  let viaHls = new URLSearchParams(location.search).get("via") === "hls";

  const say = (text) => { overlay.textContent = text || ""; };
  const later = (fn, ms) => { clearTimeout(retryTimer); retryTimer = setTimeout(fn, ms); };

  async function grant() {
    clearTimeout(retryTimer);
    fullBox.hidden = true;
    let res;
    try {
      res = await fetch(t.grant, { method: "POST", headers: { "x-csrf-token": t.csrf } });
    } catch {
      return later(grant, 5000);
    }
    if (res.ok) return play(await res.json());
    const err = ((await res.json().catch(() => ({}))).error) || {};
    refused(err, res.status);
  }

  function refused(err, status) {
    switch (err.code) {
      case "not_on_air":
        return later(grant, Math.max(1000, Number(t.start) - serverNow()));
      case "channel_full":
        fullBox.hidden = false;
        say(t.tFull);
        return later(grant, 5000);
      case "ended":
        say(`${t.tEnded} ${t.tReplaySoon}`);
        state = "ended";
        return;
      case "password_required":
      case "wrong_password":
        return location.reload();
      default:
        say(err.message || `HTTP ${status}`);
        return later(grant, 10000);
    }
  }

  function showUrls(g) {
    if (g.kind !== "live") return;
    document.getElementById("url-hls").textContent = new URL(g.urls.hls, location.href).href;
    document.getElementById("url-flv").textContent = g.urls.flv;
    others.hidden = false;
  }

  function play(g) {
    showUrls(g);
    setTimeout(refresh, 1000);
    say("");
    if (g.kind === "replay") {
      video.src = g.urls.mse;
      video.currentTime = 0;
      video.play().catch(() => {});
      playing = true;
      return;
    }
    const mse = window.MediaSource || window.ManagedMediaSource;
    if (!mse && video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = g.urls.hls;
      video.addEventListener("ended", () => { playing = false; grant(); }, { once: true });
      video.play().catch(() => {});
      playing = true;
      return;
    }
    if (viaHls) liveHls(mse, g.urls.hls);
    else live(mse, g.urls.mse);
  }

  // The live fMP4 stream into a SourceBuffer, chunk by chunk as it arrives.
  async function live(MS, url) {
    const abort = new AbortController();
    let res;
    try {
      res = await fetch(url, { signal: abort.signal });
    } catch {
      return later(grant, 2000);
    }
    if (!res.ok) {
      const err = ((await res.json().catch(() => ({}))).error) || {};
      return refused(err, res.status);
    }
    const stuck = setTimeout(() => { viaHls = true; abort.abort(); }, STUCK_MS);
    await following(0.25, (onBuffer) => pipe(MS, video, res, (b) => {
      clearTimeout(stuck);
      onBuffer(b);
    }));
    clearTimeout(stuck);
  }

  // The LL-HLS stream into a SourceBuffer, part by part.
  function liveHls(MS, url) {
    return following(1, (onBuffer) => playLlHls(MS, video, url, (b, holdBack) => {
      target = Math.max(target, holdBack);
      onBuffer(b);
    }));
  }

  // Plays what `run(onBuffer)` feeds a source buffer, `base` seconds behind the newest
  // media (or more after stalls), until it ends; then asks for a new grant.
  async function following(base, run) {
    let buffer = null;
    playing = true;
    joined = true;
    target = Math.max(target, base);
    clearInterval(edgeTimer);
    edgeTimer = setInterval(() => keepEdge(buffer), 250);
    await run((b) => { buffer = b; });
    // The play session ended (the program's end, a cut, a lost connection): ask again.
    playing = false;
    clearInterval(edgeTimer);
    latencyBox.hidden = true;
    later(grant, 1000);
  }

  // Stay `target` seconds behind the newest media: on joining (the stream starts at the
  // last keyframe, up to a GOP back), jump there; 0.1 s behind that, play 10 % faster
  // until back; far behind (a stall, a tab in the background), jump. Each stall moves
  // the target back a little (a slow network), up to 2 s. Drop what is long played.
  function keepEdge(buffer) {
    if (!buffer || video.buffered.length === 0) return;
    const start = video.buffered.start(video.buffered.length - 1);
    const end = video.buffered.end(video.buffered.length - 1);
    const behind = end - video.currentTime;
    if (joined || behind > target + 3 || video.currentTime < start) {
      video.currentTime = Math.max(start, end - target);
      video.playbackRate = 1;
      joined = false;
    } else if (behind > target + 0.1) {
      video.playbackRate = 1.1;
    } else if (behind <= target) {
      video.playbackRate = 1;
    }
    latency.textContent = `${Math.max(0, behind).toFixed(1)} s`;
    latencyBox.hidden = false;
    trim(video, buffer, 30);
  }

  video.addEventListener("waiting", () => {
    if (!playing) return;
    say(t.tBuffering);
    if (!joined && !video.seeking) target = Math.min(2, target + 0.2);
  });
  video.addEventListener("playing", () => say(""));
  document.getElementById("retry").addEventListener("click", grant);

  // The live panel: viewers, and the program's state as it changes.
  async function refresh() {
    try {
      const s = await (await fetch(t.status, { cache: "no-store" })).json();
      viewers.textContent = s.viewers;
      showBadge(s);
      if (s.state !== state) {
        const was = state;
        state = s.state;
        if (state === "on_demand" && !playing) grant();
        if (state === "on_air" && was === "scheduled" && !playing) grant();
      }
    } catch { /* the next round tries again */ }
  }
  const poll = async () => { await refresh(); setTimeout(poll, 5000); };
  setTimeout(poll, 5000);

  // The page's state badge, as the program moves on.
  function showBadge(s) {
    const badge = document.getElementById("badge");
    if (!badge) return;
    const kind = s.state === "on_air" ? (s.full ? "full" : "on-air")
      : s.state === "scheduled" ? "open" : s.state === "on_demand" ? "on-demand" : "ended";
    const label = badge.dataset[kind.replace(/-(.)/, (_, c) => c.toUpperCase())];
    badge.className = `badge ${kind}`;
    badge.textContent = label;
  }

  if (state === "scheduled") {
    document.addEventListener("slotcast:start", grant, { once: true });
    later(grant, Math.max(0, Number(t.start) - serverNow()));
  } else if (state === "ended") {
    say(`${t.tEnded} ${t.tReplaySoon}`);
  } else {
    grant();
  }
}
