// slotcast — the member pages: deadline countdowns, choosing a run of free slots in the
// reservation grid (which fills the form) with the fee, and the clock offset measured
// NTP-style against the service's time endpoint. Every form works without this.
import { serverNow } from "./app.js";

const pad = (n) => String(n).padStart(2, "0");
const span = (ms) => {
  const s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return `${d > 0 ? `${d}d ` : ""}${pad(h)}:${pad(m)}:${pad(s % 60)}`;
};

// Countdowns to a deadline.
const countdowns = document.querySelectorAll(".countdown-to");
if (countdowns.length) {
  const tick = () => {
    for (const el of countdowns) {
      const left = Number(el.dataset.until) - serverNow();
      el.textContent = left > 0 ? span(left) : el.dataset.done;
    }
  };
  tick();
  setInterval(tick, 1000);
}

// The reservation grid: a click on a free cell starts a run; a click on a later free
// cell of the same channel extends it over free cells only.
const grid = document.getElementById("slots");
const form = document.getElementById("booking");
if (grid && form) {
  const channel = form.elements.channel, start = form.elements.start, slots = form.elements.slots;
  const fee = document.getElementById("fee");
  const lang = document.documentElement.lang;
  const showFee = () => {
    const opt = channel.selectedOptions[0];
    const n = Number(slots.value);
    if (!opt || !(n > 0)) { fee.textContent = ""; return; }
    const currency = opt.dataset.currency;
    const digits = new Intl.NumberFormat(lang, { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
    const amount = (Number(opt.dataset.minor) * n) / 10 ** digits;
    fee.textContent = `${fee.dataset.label}: ${new Intl.NumberFormat(lang, { style: "currency", currency }).format(amount)}`;
  };
  const cells = (col) => [...grid.querySelectorAll(`tbody tr`)].map((tr) => tr.children[col + 1]);
  const mark = () => {
    for (const td of grid.querySelectorAll("td.chosen")) td.classList.remove("chosen");
    const col = [...grid.querySelectorAll("thead th[data-channel]")].findIndex((th) => th.dataset.channel === channel.value);
    if (col < 0) return;
    const column = cells(col);
    const first = column.findIndex((td) => td.querySelector("a")?.dataset.start === start.value);
    if (first < 0) return;
    for (let i = first; i < first + Number(slots.value) && i < column.length; i++) column[i].classList.add("chosen");
  };
  grid.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-start]");
    if (!a) return;
    ev.preventDefault();
    const col = Number(a.dataset.col);
    const column = cells(col);
    const at = column.findIndex((td) => td.contains(a));
    const from = column.findIndex((td) => td.querySelector("a")?.dataset.start === start.value);
    const extend = channel.value === a.dataset.channel && from >= 0 && at > from &&
      column.slice(from, at + 1).every((td) => td.classList.contains("free"));
    channel.value = a.dataset.channel;
    if (extend) {
      slots.value = String(at - from + 1);
    } else {
      start.value = a.dataset.start;
      slots.value = "1";
    }
    mark();
    showFee();
  });
  for (const el of [channel, start, slots]) el.addEventListener("input", () => { mark(); showFee(); });
  mark();
  showFee();
}

// The clock offset: four exchanges with the time endpoint; the one with the shortest
// round trip gives offset = server − (sent + received) / 2.
const offset = document.getElementById("offset");
if (offset) {
  const local = document.getElementById("local-clock");
  const service = document.getElementById("service-clock");
  const out = document.getElementById("offset-value");
  const zone = document.body.dataset.tz;
  const fmt = new Intl.DateTimeFormat(document.documentElement.lang, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  const zoned = new Intl.DateTimeFormat(document.documentElement.lang, {
    timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  let measured = null;
  const tick = () => {
    const now = Date.now();
    local.textContent = fmt.format(new Date(now));
    local.dateTime = new Date(now).toISOString();
    const svc = new Date(measured === null ? serverNow() : now + measured);
    service.textContent = zoned.format(svc);
    service.dateTime = svc.toISOString();
  };
  const measure = async () => {
    let best = null;
    for (let i = 0; i < 4; i++) {
      const sent = Date.now();
      const res = await fetch("/api/v1/time", { cache: "no-store" });
      const received = Date.now();
      const body = await res.json();
      const server = Date.parse(body.server_time);
      const rtt = received - sent;
      if (best === null || rtt < best.rtt) best = { rtt, offset: server - (sent + received) / 2 };
    }
    return best;
  };
  measure().then((best) => {
    measured = best.offset;
    const ms = Math.round(-best.offset);
    const abs = Math.abs(ms);
    const text = abs < 50 ? offset.dataset.same
      : `${ms > 0 ? offset.dataset.ahead : offset.dataset.behind} ${(abs / 1000).toFixed(3)} s`;
    out.textContent = `${text} (±${Math.ceil(best.rtt / 2)} ms)`;
    out.dataset.offsetMs = String(ms);
    tick();
  }).catch(() => { out.textContent = "—"; });
  tick();
  setInterval(tick, 1000);
}
