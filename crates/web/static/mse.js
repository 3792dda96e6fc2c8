// slotcast — an fMP4 stream from a fetch response into a <video> through Media Source
// Extensions, chunk by chunk as it arrives (the player and the broadcaster's preview).

// Pipes `res` (a fetch response of an fMP4 stream) into `video`; resolves when the stream
// ends. `MS` is MediaSource (or ManagedMediaSource); `onBuffer(buffer)` gets the source
// buffer once it exists.
export async function pipe(MS, video, res, onBuffer = () => {}) {
  const source = new MS();
  video.src = URL.createObjectURL(source);
  await new Promise((ok) => source.addEventListener("sourceopen", ok, { once: true }));
  const reader = res.body.getReader();
  let head = new Uint8Array(0);
  let buffer = null;
  const queue = [];
  const pump = () => {
    if (!buffer || buffer.updating || queue.length === 0) return;
    try {
      buffer.appendBuffer(queue.shift());
    } catch (e) {
      if (e.name === "QuotaExceededError") trim(video, buffer, 5);
    }
  };
  video.play().catch(() => {});
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      break;
    }
    if (chunk.done) break;
    if (!buffer) {
      head = concat(head, chunk.value);
      const type = mimeOf(head);
      if (!type) continue;
      buffer = source.addSourceBuffer(type);
      buffer.mode = "segments";
      buffer.addEventListener("updateend", pump);
      onBuffer(buffer);
      queue.push(head);
    } else {
      queue.push(chunk.value);
    }
    pump();
  }
}

// Drops what was played more than `keep` seconds ago.
export function trim(video, buffer, keep) {
  if (video.buffered.length === 0 || buffer.updating) return;
  const from = video.buffered.start(0);
  if (video.currentTime - from > keep) buffer.remove(from, video.currentTime - 10);
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// The MIME type with codecs, once the init segment (ftyp + moov) has arrived: the H.264
// profile from avcC, AAC when there is an mp4a track.
export function mimeOf(bytes) {
  let at = 0;
  let moov = null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (at + 8 <= bytes.length) {
    const size = view.getUint32(at);
    const kind = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (size < 8 || at + size > bytes.length) return null;
    if (kind === "moov") { moov = bytes.subarray(at, at + size); break; }
    at += size;
  }
  if (!moov) return null;
  const codecs = [];
  const avcc = find(moov, "avcC");
  if (avcc >= 0) {
    const hex = (n) => n.toString(16).padStart(2, "0").toUpperCase();
    codecs.push(`avc1.${hex(moov[avcc + 5])}${hex(moov[avcc + 6])}${hex(moov[avcc + 7])}`);
  }
  if (find(moov, "mp4a") >= 0) codecs.push("mp4a.40.2");
  return `video/mp4; codecs="${codecs.join(",")}"`;
}

function find(bytes, name) {
  const c = [...name].map((ch) => ch.charCodeAt(0));
  for (let i = 0; i + 4 <= bytes.length; i++) {
    if (bytes[i] === c[0] && bytes[i + 1] === c[1] && bytes[i + 2] === c[2] && bytes[i + 3] === c[3]) return i;
  }
  return -1;
}
