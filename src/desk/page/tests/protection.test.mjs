// Unit tests of the desk's loss protection (../protection.js). The byte strings pinned here are
// pinned by the gateway's own tests too (src/media/feedback.rs, src/media/red.rs), so the page
// and the gateway write and read the same packets.
//
// Run with `node --test src/desk/page/tests/` (the integration test desk_scripts does).
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  LOSS_WINDOW_FRAMES,
  LinkHealth,
  LossMonitor,
  MAX_REQUESTED_SPAN,
  NEW_STREAM_SPAN,
  RedHistory,
  parseRed,
  readFeedback,
  writeFeedback,
} from "../protection.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const bytes = (s) => new Uint8Array(Buffer.from(s, "hex"));

// Feedback { reporter 7, about SSRC 9: fraction 13, cumulative 40, highest 70000, jitter 480;
// span 3, concealed 12 }, as src/media/feedback.rs writes it.
const GATEWAY_FEEDBACK =
  "81c90007" + "00000007" + "00000009" + "0d000028" + "00011170" + "000001e0" + "00000000" + "00000000" +
  "80cc0003" + "00000007" + "54475244" + "030c0000";

test("feedback is written byte for byte as the gateway writes it, and read back", () => {
  const written = writeFeedback({
    reporterSsrc: 7,
    report: { ssrc: 9, fractionLost: 13, cumulativeLost: 40, highestSeq: 70000, jitter: 480 },
    span: 3,
    concealed: 12,
  });
  assert.equal(hex(written), GATEWAY_FEEDBACK);
  const read = readFeedback(new DataView(written.buffer));
  assert.deepEqual(read, { report: { ssrc: 9, fractionLost: 13 }, request: { span: 3, concealed: 12 } });
});

test("plain rtcp asks for nothing and truncated rtcp is not read past its end", () => {
  const rrOnly = bytes(GATEWAY_FEEDBACK.slice(0, 64));
  assert.deepEqual(readFeedback(new DataView(rrOnly.buffer)), { report: { ssrc: 9, fractionLost: 13 }, request: null });
  const cut = bytes(GATEWAY_FEEDBACK.slice(0, 80));
  assert.equal(readFeedback(new DataView(cut.buffer)).request, null);
  for (let len = 0; len < 48; len++) readFeedback(new DataView(bytes(GATEWAY_FEEDBACK).buffer, 0, len));
});

// Frames "one", "two", "three" sent, span 2, then primary "four": as src/media/red.rs writes it.
const GATEWAY_RED = "ef1e0003" + "ef0f0005" + "6f" + hex(Buffer.from("twothreefour"));

test("red payloads are written as the gateway writes them and parsed back", () => {
  const history = new RedHistory();
  history.setSpan(2);
  for (const frame of ["one", "two", "three"]) history.remember(new TextEncoder().encode(frame));
  const payload = history.payload(new TextEncoder().encode("four"), 111);
  assert.equal(hex(payload), GATEWAY_RED);
  const parsed = parseRed(payload, 111);
  const text = (b) => new TextDecoder().decode(b);
  assert.equal(text(parsed.primary), "four");
  assert.deepEqual(
    parsed.copies.map(({ back, payload }) => [back, text(payload)]),
    [[2, "two"], [1, "three"]],
  );
});

test("copies spread over the span and a fresh history repeats only what it has", () => {
  const backs = (span, sent) => {
    const history = new RedHistory();
    history.setSpan(span);
    for (let i = 0; i < sent; i++) history.remember(Uint8Array.of(i));
    return history.distances();
  };
  assert.deepEqual(backs(6, 6), [6, 3, 1]);
  assert.deepEqual(backs(5, 6), [5, 3, 1]);
  assert.deepEqual(backs(3, 6), [3, 2, 1]);
  assert.deepEqual(backs(2, 6), [2, 1]);
  assert.deepEqual(backs(1, 6), [1]);
  assert.deepEqual(backs(0, 6), []);
  assert.deepEqual(backs(9, 6), [6, 3, 1], "capped");
  assert.deepEqual(backs(6, 3), [3, 1]);
  const held = new RedHistory();
  held.setSpan(3);
  held.remember(Uint8Array.of(1));
  held.forget();
  assert.equal(held.repeats(), false, "after a hold the next packet starts over");
});

// A redundant block's header: |1| payload type | timestamp offset (14 bits) | length (10 bits) |.
const block = (type, offset, length) =>
  ((((0x80 | type) << 24) | (offset << 10) | length) >>> 0).toString(16).padStart(8, "0");

test("malformed red payloads are refused and any bytes parse or fail without throwing", () => {
  assert.equal(parseRed(new Uint8Array(0), 111), null);
  assert.equal(parseRed(Uint8Array.of(0x80 | 111, 0, 0), 111), null);
  assert.equal(parseRed(bytes(block(111, 960, 5) + "6f0102"), 111), null, "a block past the end");
  assert.equal(parseRed(bytes(block(111, 960, 1).repeat(4) + "6f01020304"), 111), null, "four copies");
  // Blocks of another payload type or a timestamp offset that is not whole frames are skipped.
  const odd = parseRed(bytes(block(0, 960, 1) + block(111, 500, 1) + "6f" + "0909" + "07"), 111);
  assert.deepEqual([...odd.primary], [7]);
  assert.deepEqual(odd.copies, []);
  let state = 0x12345678;
  for (let len = 0; len < 200; len++) {
    const random = Uint8Array.from({ length: len }, () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state & 0xff;
    });
    parseRed(random, 111);
  }
});

test("the span follows the longest burst of the last ten seconds, capped, and lapses", () => {
  const monitor = new LossMonitor({ newStream: false });
  assert.equal(monitor.wantedSpan(), 0);
  monitor.frame(true);
  assert.equal(monitor.wantedSpan(), 1, "a burst under way already counts");
  monitor.frame(true);
  monitor.frame(false);
  assert.equal(monitor.wantedSpan(), 2);
  for (let i = 0; i < 8; i++) monitor.frame(true);
  monitor.frame(false);
  assert.equal(monitor.wantedSpan(), MAX_REQUESTED_SPAN);
  for (let i = 0; i < LOSS_WINDOW_FRAMES; i++) monitor.frame(false);
  assert.equal(monitor.wantedSpan(), 0);
  assert.equal(monitor.totalLost, 10);
});

test("a new stream asks for copies until ten clean seconds, and fraction lost is per report", () => {
  const monitor = new LossMonitor();
  assert.equal(monitor.wantedSpan(), NEW_STREAM_SPAN);
  for (let i = 1; i < LOSS_WINDOW_FRAMES; i++) monitor.frame(false);
  assert.equal(monitor.wantedSpan(), NEW_STREAM_SPAN);
  monitor.frame(false);
  assert.equal(monitor.wantedSpan(), 0);
  assert.equal(monitor.takeFractionLost(), 0);
  for (let i = 0; i < 100; i++) monitor.frame(i % 4 === 0);
  assert.equal(monitor.takeFractionLost(), 64, "a quarter is 64/256");
  assert.equal(monitor.takeFractionLost(), 0);
});

test("the link turns poor at 10 frames either way in 10 s and good at 2 both ways", () => {
  const health = new LinkHealth();
  assert.equal(health.add(0, { heard: 9 }).poor, false);
  const poor = health.add(1, { sent: 10 });
  assert.deepEqual(poor, { poor: true, heardLostMs: 180, sentLostMs: 200 });
  assert.equal(health.add(10.5, {}).poor, true, "the sender's ten still in the window");
  assert.deepEqual(health.add(11, { heard: 2 }), { poor: false, heardLostMs: 40, sentLostMs: 0 });
  assert.equal(health.add(12, { heard: 7 }).poor, false, "nine in the window: still good");
});
