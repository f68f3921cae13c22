// Unit tests of the desk's jitter buffer (../jitter.js), driven in virtual time: every push
// carries the arrival time the test chooses and every pop the playout time, one pop per 20 ms,
// so nothing sleeps and every run is the same. Each frame's samples all hold a marker (its
// frame number, from 1, so no frame looks like silence), which tells which frame played.
//
// Run with `node --test src/desk/page/tests/` (the integration test desk_scripts does).
import { test } from "node:test";
import assert from "node:assert/strict";

import { FRAME_SAMPLES, JitterBuffer } from "../jitter.js";

const FRAME = 0.02; // seconds per frame
const TICKS = 960; // RTP timestamp advance per frame (48 kHz)
const STOP = 5; // empty pops after which the stream counts as stopped
const FADE = 0.6; // a concealment's gain on the frame before it

// A quiet frame (a pause between words, where the buffer may correct its delay unheard)
// carries its marker a millionth as loud.
const frame = (mark, quiet = false) => new Float32Array(FRAME_SAMPLES).fill(quiet ? mark / 1e6 : mark);
const markOf = (pcm) => (Math.abs(pcm[0]) >= 1 ? pcm[0] : Math.round(pcm[0] * 1e6));

// `count` packets sent one per 20 ms from `at`: sequence numbers and timestamps wrap as RTP's do.
function stream({ count, seq = 1000, ts = 160000, at = 1, mark = 1 }) {
  return Array.from({ length: count }, (_, i) => ({
    seq: (seq + i) & 0xffff,
    ts: (ts + i * TICKS) >>> 0,
    at: at + i * FRAME,
    mark: mark + i,
  }));
}

// Pops every 20 ms (5 ms after a packet's on-time arrival, so no arrival ties with a pop) from
// `from` to `until`, pushing each packet, in arrival order, before the first pop at or after its
// arrival. `afterPush(buffer, packet)` sees the buffer after each push. Each pop's entry has
// what it returned and the stats right after it.
function play(buffer, packets, { from = 1, until, afterPush = () => {} }) {
  const queue = [...packets].sort((a, b) => a.at - b.at); // stable: ties keep their order
  const out = [];
  let pushed = 0;
  for (let k = 0; ; k++) {
    const now = from + 0.005 + k * FRAME;
    if (now > until) break;
    while (pushed < queue.length && queue[pushed].at <= now) {
      const p = queue[pushed++];
      buffer.push(p.seq, p.ts, frame(p.mark, p.quiet), p.at);
      // Copies of earlier frames (RED) ride in the same packet: `copies` lists frames back.
      for (const back of p.copies || []) {
        buffer.push((p.seq - back) & 0xffff, (p.ts - back * TICKS) >>> 0, frame(p.mark - back), p.at, true);
      }
      afterPush(buffer, p);
    }
    const { kind, pcm } = buffer.pop(now);
    assert.equal(pcm.length, FRAME_SAMPLES);
    out.push({ now, kind, pcm, stats: { ...buffer.stats } });
  }
  return out;
}

// One word per pop: "f12" for frame 12, "c" for a concealment, "s" for silence.
const words = (out) => out.map(({ kind, pcm }) => (kind === "frame" ? `f${markOf(pcm)}` : kind[0]));
const marks = (out) => out.filter((o) => o.kind === "frame").map((o) => markOf(o.pcm));
const range = (first, last) => Array.from({ length: last - first + 1 }, (_, i) => `f${first + i}`);
const isSilent = (pcm) => pcm.every((s) => s === 0);
// Every sample of `pcm` is `value` (to float precision).
function assertAll(pcm, value, message) {
  for (const s of pcm) assert.ok(Math.abs(s - value) < 1e-4, `${message}: sample ${s}, wanted ${value}`);
}
// The pops from the first frame played on.
const fromStart = (out) => out.slice(out.findIndex((o) => o.kind === "frame"));

test("in-order packets at a steady 20 ms play every frame in order, starting within the target delay", () => {
  const buffer = new JitterBuffer();
  // Sequence numbers and timestamps both wrap during the run.
  const packets = stream({ count: 100, seq: 65500, ts: 0xffffffff - 40 * TICKS });
  const out = play(buffer, packets, { until: 3.1 });

  const start = out.findIndex((o) => o.kind === "frame");
  assert.ok(start >= 0, "something played");
  assert.deepEqual(words(out.slice(0, start)), Array(start).fill("s"), "silence before the start");
  assert.deepEqual(words(out.slice(start, start + 100)), range(1, 100), "every frame, in order, none in between");
  const startDelay = out[start].now - packets[0].at;
  const target = buffer.stats.targetMs / 1000;
  assert.equal(buffer.stats.targetMs, 20, "no jitter: the target stays at one frame");
  assert.ok(startDelay >= target && startDelay < target + FRAME, `started ${startDelay} s after the first arrival`);

  const { received, lost, late, concealed, dropped, inserted, jitterMs } = buffer.stats;
  assert.deepEqual({ received, lost, late, dropped, inserted }, { received: 100, lost: 0, late: 0, dropped: 0, inserted: 0 });
  // The only concealments are the stream's end (an underrun), after the last frame.
  assert.equal(concealed, words(out.slice(start + 100)).filter((w) => w === "c").length);
  assert.ok(jitterMs < 0.01, `jitter ${jitterMs} ms`);
});

test("a lost packet is concealed once, by the previous frame faded, and counted as lost", () => {
  const buffer = new JitterBuffer();
  const packets = stream({ count: 50 }).filter((p) => p.mark !== 21);
  const out = fromStart(play(buffer, packets, { until: 2.1 })).slice(0, 50);

  assert.deepEqual(words(out), [...range(1, 20), "c", ...range(22, 50)]);
  assertAll(out[20].pcm, 20 * FADE, "the concealment is frame 20, faded");
  const { received, lost, late, concealed, dropped, inserted } = out[49].stats; // before the stream's end
  assert.deepEqual({ received, lost, late, concealed, dropped, inserted }, { received: 49, lost: 1, late: 0, concealed: 1, dropped: 0, inserted: 0 });
});

test("two swapped packets still play in order", () => {
  // A 60 ms buffer: a packet can only overtake another on a path that jitters that much.
  const buffer = new JitterBuffer({ minFrames: 3 });
  const packets = stream({ count: 50 });
  packets[20].at = packets[21].at + 0.005; // frame 21 arrives 25 ms late, after frame 22
  const out = fromStart(play(buffer, packets, { until: 2.2 }));

  assert.deepEqual(words(out.slice(0, 50)), range(1, 50));
  const { lost, late, concealed, dropped, inserted } = out[49].stats; // before the stream's end
  assert.deepEqual({ lost, late, concealed, dropped, inserted }, { lost: 0, late: 0, concealed: 0, dropped: 0, inserted: 0 });
});

test("a pause in sending (timestamps jump, sequence numbers do not) plays as silence, not loss", () => {
  // The first talk spurt's packets arrive while the buffer still holds 80 ms, so the buffer
  // knows of the pause before it reaches it.
  const buffer = new JitterBuffer({ minFrames: 4 });
  const first = stream({ count: 10, seq: 65526 });
  // Three frames' time without packets; the sequence numbers carry on from the first spurt
  // (and wrap from 65535 to 0 there).
  const second = stream({ count: 20, seq: 0, ts: 160000 + 13 * TICKS, at: 1 + 13 * FRAME, mark: 14 });
  const out = fromStart(play(buffer, [...first, ...second], { until: 2 }));

  assert.deepEqual(words(out.slice(0, 33)), [...range(1, 10), "s", "s", "s", ...range(14, 33)]);
  for (const o of out.slice(10, 13)) assert.ok(isSilent(o.pcm), "silence is silent");
  const { lost, concealed, dropped, inserted } = out[32].stats; // before the stream's end
  assert.deepEqual({ lost, concealed, dropped, inserted }, { lost: 0, concealed: 0, dropped: 0, inserted: 0 });
});

test("a long pause in sending stops the stream without loss; the next talk spurt plays whole", () => {
  const buffer = new JitterBuffer();
  const first = stream({ count: 25 });
  // One second without packets (DTX); the sequence numbers carry on.
  const second = stream({ count: 25, seq: 1025, ts: 160000 + 75 * TICKS, at: 1 + 75 * FRAME, mark: 76 });
  const out = fromStart(play(buffer, [...first, ...second], { until: 3.2 }));

  const w = words(out);
  assert.deepEqual(w.slice(0, 25), range(1, 25));
  // Nothing queued: the buffer cannot tell a pause from a late packet until the stream stops.
  assert.deepEqual(w.slice(25, 25 + STOP), ["c", "c", "c", "c", "s"]);
  const resumed = w.indexOf("f76");
  assert.ok(resumed > 0, "the second talk spurt plays");
  assert.deepEqual(w.slice(25 + STOP - 1, resumed), Array(resumed - 25 - STOP + 1).fill("s"), "silence until it does");
  assert.deepEqual(w.slice(resumed, resumed + 25), range(76, 100), "all of it, in order");
  assert.ok(out[resumed].now - second[0].at < buffer.stats.targetMs / 1000 + FRAME, "without waiting longer than the target");
  assert.equal(buffer.stats.lost, 0);
  assert.equal(buffer.stats.dropped, 0);
});

test("a short pause in sending re-aligns in its silence: no speech frame is dropped after it", () => {
  const buffer = new JitterBuffer();
  const first = stream({ count: 25 });
  // 60 ms without packets, shorter than it takes the stream to count as stopped: the buffer
  // conceals in place, then learns it was a pause.
  const second = stream({ count: 100, seq: 1025, ts: 160000 + 28 * TICKS, at: 1 + 28 * FRAME, mark: 29 });
  const out = fromStart(play(buffer, [...first, ...second], { until: 4 }));

  const w = words(out);
  const resumed = w.indexOf("f29");
  assert.ok(resumed > 0, "the second talk spurt plays");
  const gap = w.slice(25, resumed);
  assert.ok(gap.length <= 3 && gap.every((x) => x === "c" || x === "s"), `the pause, no longer: ${gap}`);
  assert.deepEqual(w.slice(resumed, resumed + 100), range(29, 128), "all of it, in order");
  assert.equal(buffer.stats.dropped, 0, "no frame dropped to catch up");
  assert.equal(buffer.stats.lost, 0);
  const last = out[resumed + 99];
  assert.ok(last.now - second[99].at < buffer.stats.targetMs / 1000 + FRAME, "the delay is back at the target");
});

// Seeded PRNG (mulberry32): the same "random" jitter on every run.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("jitter raises the target until nearly nothing is concealed; steady arrivals bring it back slowly", () => {
  const buffer = new JitterBuffer();
  const random = mulberry32(7);
  const jittery = stream({ count: 500 }).map((p) => ({ ...p, at: p.at + random() * 0.06 }));
  // Steady arrivals of speech with a quiet frame every half second, where the buffer may
  // shed its delay unheard.
  const steady = stream({ count: 500, seq: 1500, ts: 160000 + 500 * TICKS, at: 11, mark: 501 }).map((p) => ({
    ...p,
    quiet: p.mark % 25 === 0,
  }));
  const arrival = new Map([...jittery, ...steady].map((p) => [p.mark, p.at]));
  const targets = []; // [packet number, targetMs] after each push
  const out = play(buffer, [...jittery, ...steady], {
    until: 21.1,
    afterPush: (b) => targets.push(b.stats.targetMs),
  });

  // Jittery: the target covers the lateness, and after the first second (while the target
  // grows) nearly every frame plays.
  const jitterPhase = out.filter((o) => o.now < 11);
  const maxTarget = Math.max(...targets.slice(0, 500));
  assert.ok(maxTarget > 40, `target reached only ${maxTarget} ms`);
  assert.ok(targets[499] > 40, `target at the end of the jitter ${targets[499]} ms`);
  const afterFirstSecond = jitterPhase.filter((o) => o.now >= 2);
  const concealedLate = afterFirstSecond.filter((o) => o.kind === "conceal").length;
  assert.ok(concealedLate <= afterFirstSecond.length / 100, `${concealedLate} concealments after the first second`);
  assert.equal(buffer.stats.lost, 0);

  // Every frame that plays, plays once and in order.
  const played = marks(out);
  for (let i = 1; i < played.length; i++) assert.ok(played[i] > played[i - 1], `frame ${played[i]} after ${played[i - 1]}`);
  assert.ok(played.length >= 990, `only ${played.length} of 1000 frames played`);

  // Steady: the target comes down, one frame at a time and at most once per 50 packets.
  let lastFall = -Infinity;
  for (let i = 1; i < targets.length; i++) {
    const fall = targets[i - 1] - targets[i];
    if (fall <= 0) continue;
    assert.ok(Math.abs(fall - 20) < 1e-9, `the target fell by ${fall} ms at packet ${i}`);
    assert.ok(i - lastFall >= 50, `the target fell at packets ${lastFall} and ${i}`);
    lastFall = i;
  }
  assert.equal(targets.at(-1), 20, "back to one frame");
  // And the delay with it: the last frames play within a frame of the target after arrival.
  const last = out.filter((o) => o.kind === "frame").at(-1);
  assert.equal(markOf(last.pcm), 1000);
  assert.ok(last.now - arrival.get(1000) < (20 + 20) / 1000 + 1e-9, `last frame delayed ${last.now - arrival.get(1000)} s`);
});

test("a packet that arrives after its slot played counts as late and is not played", () => {
  const buffer = new JitterBuffer();
  const packets = stream({ count: 60 });
  packets[40].at += 0.1; // frame 41: 100 ms late
  const out = fromStart(play(buffer, packets, { until: 2.3 }));

  assert.deepEqual(words(out.slice(0, 60)), [...range(1, 40), "c", ...range(42, 60)]);
  assert.ok(!marks(out).includes(41), "frame 41 never plays");
  assert.equal(buffer.stats.late, 1);
  assert.equal(buffer.stats.received, 60);
});

test("a stream that stops plays silence after five empty periods, and plays again when it resumes", () => {
  const buffer = new JitterBuffer();
  const first = stream({ count: 50 });
  // Two seconds later the same stream goes on: sequence numbers carry on, timestamps kept time.
  const second = stream({ count: 50, seq: 1050, ts: 160000 + 150 * TICKS, at: 1 + 150 * FRAME, mark: 151 });
  const out = fromStart(play(buffer, [...first, ...second], { until: 5.2 }));

  const w = words(out);
  assert.deepEqual(w.slice(0, 50), range(1, 50));
  assert.deepEqual(w.slice(50, 50 + STOP), ["c", "c", "c", "c", "s"]);
  assertAll(out[50].pcm, 50 * FADE, "the first concealment is frame 50, faded");
  const resumed = w.indexOf("f151");
  assert.ok(resumed > 0, "the stream plays again");
  assert.deepEqual(w.slice(50 + STOP - 1, resumed), Array(resumed - 50 - STOP + 1).fill("s"), "silence while stopped");
  for (const o of out.slice(50 + STOP - 1, resumed)) assert.ok(isSilent(o.pcm), "silence is silent");
  assert.deepEqual(w.slice(resumed, resumed + 50), range(151, 200));
  assert.ok(out[resumed].now - second[0].at < buffer.stats.targetMs / 1000 + FRAME, "it starts within the target");
  assert.equal(buffer.stats.lost, 0);
  assert.equal(buffer.stats.concealed, 2 * (STOP - 1), "concealed: four at each end");
});

test("a timestamp jump of more than 3 s restarts the buffer, which plays the new stream", () => {
  for (const jump of [4, -10, 1234.56]) {
    const buffer = new JitterBuffer();
    const first = stream({ count: 50 });
    // 100 ms after the first stream's last packet, a new one from a timestamp `jump` seconds
    // away, with new sequence numbers; its frame 160 is lost.
    const ts = (160000 + 50 * TICKS + Math.round(jump * 50) * TICKS) >>> 0;
    const second = stream({ count: 50, seq: 40000, ts, at: 2.1, mark: 151 }).filter((p) => p.mark !== 160);
    const out = fromStart(play(buffer, [...first, ...second], { until: 3.5 }));

    const w = words(out);
    assert.deepEqual(w.slice(0, 50), range(1, 50), `jump ${jump} s`);
    const restarted = w.indexOf("f151");
    assert.ok(restarted > 0, `jump ${jump} s: the new stream plays`);
    assert.ok(out[restarted].now - second[0].at < buffer.stats.targetMs / 1000 + FRAME, `jump ${jump} s: without delay`);
    assert.deepEqual(w.slice(restarted, restarted + 50), [...range(151, 159), "c", ...range(161, 200)], `jump ${jump} s`);
    // The counts go on across the restart: the new stream's loss adds to them.
    assert.equal(buffer.stats.received, 99, `jump ${jump} s`);
    assert.equal(buffer.stats.lost, 1, `jump ${jump} s`);
    assert.equal(buffer.stats.late, 0, `jump ${jump} s`);
  }
});

test("a buffer nobody pops keeps at most twice maxFrames frames, and plays the newest it kept", () => {
  for (const maxFrames of [25, 4]) {
    const buffer = new JitterBuffer({ maxFrames });
    const packets = stream({ count: 200 });
    for (const p of packets) {
      buffer.push(p.seq, p.ts, frame(p.mark), p.at);
      assert.ok(buffer.frames.size <= 2 * maxFrames, `${buffer.frames.size} frames held (maxFrames ${maxFrames})`);
    }
    assert.equal(buffer.stats.received, 200);
    assert.equal(buffer.stats.lost, 0, "what the buffer let go was not lost in the network");
    // Popping now plays what was kept, oldest first; the frames it drops to bring the delay
    // (a second and more) down are the only ones that do not play.
    const kept = 200 - 2 * maxFrames;
    const out = [];
    for (let k = 0; k < 2 * maxFrames; k++) out.push(buffer.pop(5 + k * FRAME));
    const played = marks(out);
    assert.equal(played[0], kept + 1, `maxFrames ${maxFrames}: the oldest kept frame plays first`);
    for (let i = 1; i < played.length; i++) assert.ok(played[i] > played[i - 1], `maxFrames ${maxFrames}: ${played}`);
    assert.equal(played.length + buffer.stats.dropped, 2 * maxFrames, `maxFrames ${maxFrames}: ${words(out)}`);
    assert.equal(played.at(-1), 200);
  }
});

// A stream whose packets repeat the frames 3, 2 and 1 back (RED at a span of 3), with frames
// `lost` never arriving themselves.
function redundantStream(count, lost) {
  return stream({ count })
    .map((p) => ({ ...p, copies: [3, 2, 1].filter((back) => back < p.mark) }))
    .filter((p) => !lost.includes(p.mark));
}

test("a burst as long as the span is rebuilt from the copies after it, none concealed", () => {
  const buffer = new JitterBuffer();
  buffer.expectCopies(3);
  assert.equal(buffer.stats.targetMs, 70, "the span and half a frame");
  const out = fromStart(play(buffer, redundantStream(60, [21, 22, 23]), { until: 2.3 })).slice(0, 60);

  assert.deepEqual(words(out), range(1, 60), "every frame, the lost ones from their copies");
  const { received, lost, concealed, recovered, recoveredLate } = out[59].stats;
  assert.deepEqual({ received, lost, concealed, recovered, recoveredLate }, { received: 57, lost: 3, concealed: 0, recovered: 3, recoveredLate: 0 });
  const started = out[0].now - 1;
  assert.ok(started >= 0.07 && started < 0.09, `started ${started} s after the first arrival`);
});

test("without the delay copies need, a burst is a gap: the buffer runs dry, then plays the copies late", () => {
  const buffer = new JitterBuffer();
  const out = fromStart(play(buffer, redundantStream(60, [21, 22, 23]), { until: 2.3 })).slice(0, 60);

  assert.deepEqual(words(out).slice(18, 26), ["f19", "f20", "c", "c", "f21", "f22", "f23", "f24"]);
  const { concealed, recovered, recoveredLate } = out[59].stats;
  assert.deepEqual({ concealed, recovered, recoveredLate }, { concealed: 2, recovered: 3, recoveredLate: 0 });
});

test("a packet that comes after its copy plays as itself, and copies of frames that came are ignored", () => {
  const buffer = new JitterBuffer();
  buffer.expectCopies(3);
  const packets = redundantStream(60, []);
  packets[20].at = packets[21].at + 0.005; // frame 21 comes after frame 22, which carries its copy
  const out = fromStart(play(buffer, packets, { until: 2.3 })).slice(0, 60);

  assert.deepEqual(words(out), range(1, 60));
  const { received, lost, recovered } = out[59].stats;
  assert.deepEqual({ received, lost, recovered }, { received: 60, lost: 0, recovered: 0 });
});

test("the page reports at once on a new stream, asks for what its bursts need and holds that delay", () => {
  const buffer = new JitterBuffer();
  assert.equal(buffer.pollFeedback(1), null, "nothing to report on before a packet");
  const reports = [];
  // Frames 101–105 lost: a burst of five, longer than the span. Losses count as their frames
  // fall due, about 70 ms after the packets that would have carried them.
  play(buffer, redundantStream(200, [101, 102, 103, 104, 105]), {
    until: 5,
    afterPush: (b, p) => {
      const report = b.pollFeedback(p.at);
      if (report) reports.push({ at: p.at, mark: p.mark, ...report });
    },
  });
  assert.deepEqual(
    reports.slice(0, 2).map(({ mark, span }) => [mark, span]),
    [[1, 3], [51, 3]],
    "a span of 3 with the first packet, then once a second",
  );
  const burst = reports.find((r) => r.span === 5);
  assert.ok(burst && burst.mark < 115, `the longer burst is asked for at once: ${JSON.stringify(reports)}`);
  assert.equal(buffer.stats.targetMs, 110, "five frames and a half for copies five back");
  const last = reports.at(-1);
  assert.equal(last.cumulativeLost, 5);
  assert.equal(last.highestSeq, 1000 + last.mark - 1, "the newest sequence number");
  // Frames 101 and 102 had no copy within the span of 3, and the buffer ran dry once before the
  // copies of 103–105 came.
  assert.equal(reports.reduce((n, r) => n + r.concealed, 0), 3);
  assert.equal(reports.reduce((n, r) => n + r.fractionLost, 0) > 0, true);
});

test("what runs dry while the call is held is concealed but not reported as missed", () => {
  const buffer = new JitterBuffer();
  buffer.setHeld(true);
  play(buffer, stream({ count: 10 }), { until: 1.5 });
  assert.ok(buffer.stats.concealed > 0);
  assert.equal(buffer.stats.missed, 0);
});

test("a copy may come before the packet that carried it, as the page decodes in order", () => {
  const buffer = new JitterBuffer();
  buffer.expectCopies(3);
  // Frame 21 lost; packet 22 carries its copy, which the page decodes (and pushes) first.
  const packets = stream({ count: 40 }).filter((p) => p.mark !== 21);
  const out = fromStart(
    play(buffer, packets, {
      until: 2,
      afterPush: (b, p) => {
        if (p.mark === 20) b.push(1020, 160000 + 20 * TICKS, frame(21), p.at, true);
      },
    }),
  ).slice(0, 40);
  assert.deepEqual(words(out), range(1, 40));
  assert.equal(out[39].stats.recovered, 1);
});

test("a packet that comes after its frame was decoded from a copy makes the frame its own", () => {
  const buffer = new JitterBuffer();
  buffer.expectCopies(3);
  const packets = stream({ count: 40 });
  const late = packets.splice(20, 1)[0]; // frame 21: its copy first, the packet itself 10 ms on
  const out = fromStart(
    play(buffer, packets, {
      until: 2,
      afterPush: (b, p) => {
        if (p.mark === 22) {
          b.push(late.seq, late.ts, frame(21), p.at, true);
          b.arrivedAfterCopy(late.seq, late.ts, p.at + 0.01);
        }
      },
    }),
  ).slice(0, 40);
  assert.deepEqual(words(out), range(1, 40));
  const { received, lost, recovered } = out[39].stats;
  assert.deepEqual({ received, lost, recovered }, { received: 40, lost: 0, recovered: 0 });
});
