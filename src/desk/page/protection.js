// Loss protection on the desk's audio, both ways, as the gateway does it (docs/agent-protocol.md
// §7.1, src/media/feedback.rs and src/media/red.rs):
//
// - As a receiver the page tells the gateway once a second how its audio arrives (an RTCP
//   receiver report) and how many frames back each packet should repeat (the span, in an APP
//   packet named TGRD): as many as the longest burst of lost packets in the last 10 s, at most 5.
// - As a sender it does what the gateway's reports ask: while their span is above 0 each packet
//   is RED (RFC 2198, payload type 63) repeating up to three earlier frames.
//
// Plain data and arithmetic, so tests drive it without a browser.

export const RED_PAYLOAD_TYPE = 63;
export const TICKS_PER_FRAME = 960;
const MAX_DEPTH = 3;
const MAX_SPAN = 6;
const MAX_BLOCK_LEN = 1023;
export const LOSS_WINDOW_FRAMES = 500;
export const MAX_REQUESTED_SPAN = 5;
export const NEW_STREAM_SPAN = 3;
const RTCP_RR = 201;
const RTCP_APP = 204;
const APP_NAME = [0x54, 0x47, 0x52, 0x44]; // "TGRD"

// A RED payload's Opus blocks: { primary, copies: [{ back, payload }] }, or null when the
// payload is malformed. Blocks of another payload type or not whole frames back are skipped.
export function parseRed(payload, opusType) {
  const headers = [];
  let at = 0;
  for (;;) {
    if (at >= payload.length) return null;
    if ((payload[at] & 0x80) === 0) break;
    if (at + 4 > payload.length || headers.length === MAX_DEPTH) return null;
    const word = new DataView(payload.buffer, payload.byteOffset + at, 4).getUint32(0);
    headers.push({ type: payload[at] & 0x7f, offset: (word >>> 10) & 0x3fff, length: word & 0x3ff });
    at += 4;
  }
  const primaryType = payload[at] & 0x7f;
  at += 1;
  const declared = at + headers.reduce((sum, h) => sum + h.length, 0);
  if (declared > payload.length) return null;
  const copies = [];
  for (const { type, offset, length } of headers) {
    const block = payload.subarray(at, at + length);
    at += length;
    const back = offset / TICKS_PER_FRAME;
    if (type === opusType && Number.isInteger(back) && back >= 1 && back <= MAX_SPAN && length > 0) {
      copies.push({ back, payload: block });
    }
  }
  return { primary: primaryType === opusType ? payload.subarray(declared) : new Uint8Array(0), copies };
}

// The frames just sent, to repeat in the next packets.
export class RedHistory {
  constructor() {
    this.frames = []; // most recent first
    this.span = 0;
  }

  setSpan(span) {
    this.span = Math.min(span, MAX_SPAN);
  }

  // Frames back the next packet repeats, oldest first: the one `span` back, one halfway and
  // the one just before, so a burst as long as the span is rebuilt whole.
  distances() {
    const s = this.span;
    const chosen = s === 0 ? [] : s === 1 ? [1] : s === 2 ? [2, 1] : [s, Math.ceil(s / 2), 1];
    return chosen.filter((back) => back <= this.frames.length);
  }

  repeats() {
    return this.distances().length > 0;
  }

  // Media time passed unsent (hold): what is held no longer precedes the next packet.
  forget() {
    this.frames = [];
  }

  // The RED payload: block headers, the primary's header, the copies, then the primary.
  payload(primary, opusType) {
    const back = this.distances();
    const blocks = back.map((b) => this.frames[b - 1]);
    const out = new Uint8Array(4 * blocks.length + 1 + blocks.reduce((n, b) => n + b.length, 0) + primary.length);
    const view = new DataView(out.buffer);
    let at = 0;
    blocks.forEach((block, i) => {
      view.setUint32(at, (0x80000000 | (opusType << 24) | ((back[i] * TICKS_PER_FRAME) << 10) | block.length) >>> 0);
      at += 4;
    });
    out[at++] = opusType;
    for (const block of blocks) {
      out.set(block, at);
      at += block.length;
    }
    out.set(primary, at);
    return out;
  }

  remember(frame) {
    if (frame.length > MAX_BLOCK_LEN) {
      // No block header can describe it; the next packet starts over.
      this.frames = [];
      return;
    }
    this.frames.unshift(frame);
    if (this.frames.length > MAX_SPAN) this.frames.pop();
  }
}

// The receiver's view of its network losses, one entry per frame played: whether the frame's own
// packet came (a frame rebuilt from a copy still lost its packet).
export class LossMonitor {
  // A new stream asks for NEW_STREAM_SPAN at once, as if such a burst had just ended: a call's
  // first losses come before any report could ask for copies.
  constructor({ newStream = true } = {}) {
    this.frames = 0;
    this.bursts = newStream ? [[0, NEW_STREAM_SPAN]] : []; // [frame the burst ended at, length]
    this.run = 0;
    this.interval = [0, 0]; // frames and losses since the last report
    this.totalLost = 0;
  }

  frame(lost) {
    this.frames += 1;
    this.interval[0] += 1;
    if (lost) {
      this.run += 1;
      this.interval[1] += 1;
      this.totalLost += 1;
    } else if (this.run > 0) {
      this.bursts.push([this.frames, this.run]);
      this.run = 0;
    }
    while (this.bursts.length && this.bursts[0][0] + LOSS_WINDOW_FRAMES <= this.frames) this.bursts.shift();
  }

  wantedSpan() {
    const longest = Math.max(this.run, ...this.bursts.map(([, length]) => length));
    return Math.min(longest, MAX_REQUESTED_SPAN);
  }

  // RFC 3550's fraction lost since the last call, in 1/256ths.
  takeFractionLost() {
    const [frames, lost] = this.interval;
    this.interval = [0, 0];
    return frames === 0 ? 0 : Math.min(255, Math.floor((lost * 256) / frames));
  }
}

// The compound RTCP packet of §7.1: a receiver report with one block, then the TGRD request.
// `report`: { ssrc, fractionLost, cumulativeLost, highestSeq, jitter } (jitter in 48 kHz ticks).
export function writeFeedback({ reporterSsrc, report, span, concealed }) {
  const out = new Uint8Array(32 + 16);
  const view = new DataView(out.buffer);
  view.setUint8(0, 0x81);
  view.setUint8(1, RTCP_RR);
  view.setUint16(2, 7);
  view.setUint32(4, reporterSsrc);
  view.setUint32(8, report.ssrc);
  const cumulative = Math.max(-0x800000, Math.min(0x7fffff, report.cumulativeLost));
  view.setUint32(12, ((report.fractionLost << 24) | (cumulative & 0xffffff)) >>> 0);
  view.setUint32(16, report.highestSeq >>> 0);
  view.setUint32(20, Math.min(0xffffffff, Math.round(report.jitter)) >>> 0);
  // Last SR and its delay stay 0: the gateway sends no sender reports.
  view.setUint8(32, 0x80); // subtype 0
  view.setUint8(33, RTCP_APP);
  view.setUint16(34, 3);
  view.setUint32(36, reporterSsrc);
  out.set(APP_NAME, 40);
  view.setUint8(44, Math.min(255, span));
  view.setUint8(45, Math.min(255, concealed));
  return out;
}

// Reads a compound RTCP packet: { report: { ssrc, fractionLost } | null, request: { span,
// concealed } | null }.
export function readFeedback(view) {
  let report = null;
  let request = null;
  let at = 0;
  while (at + 4 <= view.byteLength) {
    const count = view.getUint8(at) & 0x1f;
    const type = view.getUint8(at + 1);
    const length = (view.getUint16(at + 2) + 1) * 4;
    if (at + length > view.byteLength) break;
    if (type === RTCP_RR && count > 0 && length >= 32) {
      report = { ssrc: view.getUint32(at + 8), fractionLost: view.getUint8(at + 12) };
    } else if (type === RTCP_APP && count === 0 && length >= 16 && APP_NAME.every((c, i) => view.getUint8(at + 8 + i) === c)) {
      request = { span: view.getUint8(at + 12), concealed: view.getUint8(at + 13) };
    }
    at += length;
  }
  return { report, request };
}

// Whether the call's audio gets through, each way, judged by what each listener did not hear
// (src/media/link_health.rs): poor at 10 frames concealed either way in 10 s, good again once
// both are down to 2, so a link on the edge does not flap.
const HEALTH_WINDOW_SECONDS = 10;
const POOR_FRAMES = 10;
const GOOD_FRAMES = 2;

export class LinkHealth {
  constructor() {
    this.heard = []; // [when, frames] this end concealed
    this.sent = []; // [when, frames] the gateway reported concealing
    this.poor = false;
  }

  // `heard`: frames this end concealed; `sent`: frames the gateway did, as it reported.
  add(now, { heard = 0, sent = 0 }) {
    if (heard > 0) this.heard.push([now, heard]);
    if (sent > 0) this.sent.push([now, sent]);
    const total = (entries) => {
      while (entries.length && entries[0][0] <= now - HEALTH_WINDOW_SECONDS) entries.shift();
      return entries.reduce((sum, [, frames]) => sum + frames, 0);
    };
    const heardLost = total(this.heard);
    const sentLost = total(this.sent);
    if (!this.poor && (heardLost >= POOR_FRAMES || sentLost >= POOR_FRAMES)) this.poor = true;
    else if (this.poor && heardLost <= GOOD_FRAMES && sentLost <= GOOD_FRAMES) this.poor = false;
    return { poor: this.poor, heardLostMs: heardLost * 20, sentLostMs: sentLost * 20 };
  }
}
