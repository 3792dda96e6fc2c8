// slotcast — the page's clock (the service's time, ticking from the server's clock),
// start and end times in the viewer's own zone, and the countdown to a program's start.
const body = document.body;
const zone = body.dataset.tz;
// How far the server's clock is ahead of this browser's, taken when the page was served.
const offset = Number(body.dataset.serverTime) - Date.now();
export const serverNow = () => Date.now() + offset;

const clockFormat = new Intl.DateTimeFormat(document.documentElement.lang, {
  timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const clock = document.getElementById("clock");
if (clock) {
  const tick = () => {
    const now = new Date(serverNow());
    clock.textContent = clockFormat.format(now);
    clock.dateTime = now.toISOString();
  };
  tick();
  setInterval(tick, 1000);
}

const ownZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (ownZone && ownZone !== zone) {
  const local = new Intl.DateTimeFormat(document.documentElement.lang, {
    dateStyle: "medium", timeStyle: "short", timeZoneName: "short",
  });
  for (const el of document.querySelectorAll("[data-local]")) {
    el.textContent = `${el.dataset.label}: ${local.format(new Date(el.dataset.local))}`;
  }
}

const countdown = document.getElementById("countdown");
if (countdown) {
  const start = Number(countdown.dataset.start);
  const out = countdown.querySelector("strong");
  const pad = (n) => String(n).padStart(2, "0");
  const tick = () => {
    const left = Math.max(0, Math.round((start - serverNow()) / 1000));
    const d = Math.floor(left / 86400), h = Math.floor(left / 3600) % 24;
    const m = Math.floor(left / 60) % 60, s = left % 60;
    out.textContent = `${d > 0 ? `${d}d ` : ""}${pad(h)}:${pad(m)}:${pad(s)}`;
    if (left === 0) {
      countdown.hidden = true;
      document.dispatchEvent(new CustomEvent("slotcast:start"));
      return;
    }
    setTimeout(tick, 1000 - ((serverNow() - start) % 1000 + 1000) % 1000 || 1000);
  };
  tick();
}
