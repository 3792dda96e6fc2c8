// slotcast — LL-HLS through Media Source Extensions: the player's way through proxies and
// caches that hold back a streamed response (and its choice with `?via=hls`). It follows
// the media playlist with blocking reloads (_HLS_msn/_HLS_part), appends each part as soon
// as the server has it, and starts at the newest independent part, so it plays about two
// parts behind the live edge — where a browser's own HLS plays whole segments seconds back.
import { mimeOf } from "./mse.js";

// Plays the LL-HLS stream whose entry playlist is `url` into `video` until the program
// ends or the session is refused; resolves then. `MS` is MediaSource (or
// ManagedMediaSource); `onBuffer(buffer, holdBack)` gets the source buffer once it exists
// and how far behind the newest part to play (seconds: two part durations).
export async function playLlHls(MS, video, grantUrl, onBuffer) {
  const url = new URL(grantUrl, location.href).href;
  const get = async (u) => {
    const res = await fetch(u, { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return res;
  };
  try {
    const entry = await (await get(url)).text();
    const media = new URL(entry.split("\n").find((l) => l && !l.startsWith("#")), url).href;
    const source = new MS();
    video.src = URL.createObjectURL(source);
    await new Promise((ok) => source.addEventListener("sourceopen", ok, { once: true }));
    video.play().catch(() => {});
    let buffer = null;
    let map = null;
    let pl = parse(await (await get(media)).text(), media);
    let next = start(pl);
    for (;;) {
      for (const seg of pl.segments) {
        if (seg.msn < next.msn) continue;
        if (seg.msn > next.msn) next = { msn: seg.msn, part: 0 };
        if (seg.map !== map) {
          const init = new Uint8Array(await (await get(seg.map)).arrayBuffer());
          if (!buffer) {
            buffer = source.addSourceBuffer(mimeOf(init));
            buffer.mode = "segments";
            onBuffer(buffer, 2 * pl.partTarget);
          }
          await append(buffer, init);
          map = seg.map;
        }
        if (next.part === 0 && seg.uri && seg.parts.length === 0) {
          // Beyond the parts the playlist lists: the whole segment.
          await append(buffer, await bytes(await get(seg.uri)));
        } else {
          for (; next.part < seg.parts.length; next.part++) {
            await append(buffer, await bytes(await get(seg.parts[next.part])));
          }
        }
        if (seg.uri) next = { msn: seg.msn + 1, part: 0 };
      }
      if (pl.ended) return;
      const first = pl.segments[0];
      if (first && next.msn < first.msn) next = start(pl); // fell out of the window
      pl = parse(await (await get(`${media}&_HLS_msn=${next.msn}&_HLS_part=${next.part}`)).text(), media);
    }
  } catch {
    // Refused (the session or the program ended) or the network failed: the player asks
    // for a new grant.
  }
}

const bytes = async (res) => new Uint8Array(await res.arrayBuffer());

function append(buffer, data) {
  return new Promise((ok, fail) => {
    buffer.addEventListener("updateend", ok, { once: true });
    buffer.addEventListener("error", fail, { once: true });
    buffer.appendBuffer(data);
  });
}

// Where to start: the newest independent part (a keyframe), or the newest whole segment.
function start(pl) {
  for (let s = pl.segments.length - 1; s >= 0; s--) {
    const seg = pl.segments[s];
    const i = seg.independent.lastIndexOf(true);
    if (i >= 0) return { msn: seg.msn, part: i };
    if (seg.uri && seg.parts.length === 0) return { msn: seg.msn, part: 0 };
  }
  return { msn: pl.segments[0]?.msn ?? pl.firstMsn, part: 0 };
}

// A media playlist: its segments in order (the last may be in progress: no `uri` yet),
// each with its init segment (`map`) and listed parts, URLs resolved against `base`.
function parse(text, base) {
  const at = (u) => new URL(u, base).href;
  const attr = (line, name) => (line.match(new RegExp(`${name}="?([^",]*)`)) || [])[1];
  const pl = { segments: [], ended: false, partTarget: 0.5, firstMsn: 0 };
  let msn = 0;
  let map = null;
  let seg = { parts: [], independent: [] };
  for (const line of text.split("\n")) {
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) {
      msn = pl.firstMsn = Number(line.slice(22));
    } else if (line.startsWith("#EXT-X-PART-INF:")) {
      pl.partTarget = Number(attr(line, "PART-TARGET")) || 0.5;
    } else if (line.startsWith("#EXT-X-MAP:")) {
      map = at(attr(line, "URI"));
    } else if (line.startsWith("#EXT-X-PART:")) {
      seg.parts.push(at(attr(line, "URI")));
      seg.independent.push(line.includes("INDEPENDENT=YES"));
    } else if (line.startsWith("#EXT-X-ENDLIST")) {
      pl.ended = true;
    } else if (line && !line.startsWith("#")) {
      pl.segments.push({ ...seg, msn: msn++, map, uri: at(line) });
      seg = { parts: [], independent: [] };
    }
  }
  if (seg.parts.length > 0) pl.segments.push({ ...seg, msn, map, uri: null });
  return pl;
}
