// The desk's jitter buffer: decoded 20 ms frames in, one frame per 20 ms of the audio clock
// out. It makes the decisions the gateway's buffer makes (src/media/jitter.rs, without its
// time-stretching):
//
// - Order and loss come from sequence numbers; timing from RTP timestamps. A timestamp jump
//   with no sequence gap is a pause in sending (DTX), played as silence, not as loss.
// - Target delay: each packet's transit (arrival less its timestamp) is compared with the
//   fastest transit of the last two seconds; the difference is how late it was. The target is
//   one frame plus the 95th percentile of the last 100 packets' lateness, clamped to
//   [minFrames, maxFrames]. It rises at once and falls by one frame per 50 packets at most.
//   During a pause in sending it re-aligns for free, cutting the silence short.
// - Actual delay is how long after its fastest possible arrival a frame plays. More than a
//   frame above the target: drop one; more than half a frame below: insert a concealment; one
//   correction per 10 frames, and a band wider than a correction's step, so a little jitter
//   never has one correction undo the other. A correction waits for a quiet frame (a whole
//   frame dropped or repeated is heard in speech) unless the delay is three frames off.
// - Underrun: with nothing queued it conceals but keeps its place, so a packet that was only
//   late still plays; after five empty periods the stream counts as stopped and plays silence
//   until a frame has waited the target delay again.
// - A packet far outside the current timing (a new stream, a resumed call) restarts it.
//
// - Copies of earlier frames (RED, ./protection.js) fill their frames' places, and play only if
//   the frame's own packet never comes. While the page asks for copies `span` frames back the
//   target holds span + ½ frames, so the first lost frame of a burst that long is still waiting
//   when the copy after the burst arrives. Copies say nothing about the network's jitter.
// - Every frame played tells the loss monitor whether its own packet came; from it comes the
//   feedback the page sends the gateway (the span to ask for and the receiver report).
//
// It is plain data and arithmetic with time passed in, so tests can drive it without a browser.

import { LossMonitor } from "./protection.js";

export const FRAME_SAMPLES = 960; // 20 ms at 48 kHz, also the RTP clock's advance per frame
const FRAME_SECONDS = 0.02;
const BASELINE_SECONDS = 2;
const LATENESS_WINDOW = 100;
const FALL_EVERY_PACKETS = 50;
const CORRECTION_PAUSE_FRAMES = 10;
const STOP_AFTER_UNDERRUNS = 5;
const CONCEALED_FADE = 0.6;
const CONCEALED_AUDIBLE = 3;
const RESTART_FRAMES = 150; // 3 s away from the playout position: a new stream
const QUIET = 0.01; // a frame's peak below -40 dBFS: a correction there is not heard
const FAR_OFF_FRAMES = 3; // a delay this far from the target is corrected even in speech
const MAX_COPY_BACK = 6; // copies lie at most this many frames before the newest packet
const MAX_GAP_FRAMES = 50; // a larger sequence gap between frames played is a jump, not a loss
const FEEDBACK_SECONDS = 1;

export const peak = (pcm) => pcm.reduce((m, s) => Math.max(m, Math.abs(s)), 0);

const u16 = (n) => n & 0xffff;
const i32 = (n) => n | 0;

export class JitterBuffer {
  constructor({ minFrames = 1, maxFrames = 25 } = {}) {
    this.minFrames = minFrames;
    this.maxFrames = maxFrames;
    this.stats = {
      received: 0,
      lost: 0,
      late: 0,
      concealed: 0,
      missed: 0, // concealed while the call was not held: what the listener did not hear
      recovered: 0, // frames played from a copy
      recoveredLate: 0, // copies that came after their frame was concealed
      dropped: 0,
      inserted: 0,
      jitterMs: 0,
      targetMs: 0,
    };
    this.losses = new LossMonitor();
    this.copyFloor = 0; // frames the target holds for the copies asked for
    this.held = false;
    this.lastFeedback = null; // [when, span asked for]
    this.missedReported = 0;
    this.restart();
  }

  restart() {
    this.frames = new Map(); // slot → { seq, pcm }
    this.baseTs = null; // RTP timestamp of slot 0
    this.next = 0; // the slot to play next
    this.playing = false;
    this.underruns = 0;
    this.lastSeq = null; // extended sequence number of the last frame played
    this.lastFrame = null;
    this.concealedRun = 0;
    this.sinceCorrection = 0;
    this.transits = []; // [arrival, transit] over the baseline window
    this.fastest = 0; // the least transit in it
    this.lateness = [];
    this.target = Math.max(this.minFrames, this.copyFloor);
    this.packetsSinceFall = 0;
    this.highestSeq = null;
    this.firstSeq = null;
    this.streamReceived = 0; // packets since the restart; stats.received counts them all
    this.lostBefore = this.stats.lost; // lost before the restart, which the count keeps
    this.previousTransit = null;
  }

  // One decoded frame: its RTP sequence number and timestamp, 960 samples, and when its packet
  // arrived (seconds, any clock that only moves forward).
  push(seq, ts, pcm, arrival, copy = false) {
    if (copy) return this.pushCopy(seq, ts, pcm);
    if (this.baseTs === null) this.baseTs = ts;
    let slot = i32(ts - this.baseTs) / FRAME_SAMPLES;
    if (Math.abs(slot - this.next) > RESTART_FRAMES) {
      this.restart();
      this.baseTs = ts;
      slot = 0;
    }
    slot = Math.round(slot);
    this.stats.received += 1;
    this.streamReceived += 1;
    const extended = this.extend(seq);
    this.learn(slot, arrival);
    if (this.playing && slot < this.next) {
      this.stats.late += 1;
      return;
    }
    if (this.frames.size >= this.maxFrames * 2) {
      // Bounded memory: the oldest goes, and playout moves past it.
      const oldest = this.oldestSlot();
      this.frames.delete(oldest);
      this.next = Math.max(this.next, oldest + 1);
    }
    this.frames.set(slot, { seq: extended, pcm, copy: false });
  }

  // A copy of a frame from a RED packet: it takes the frame's place if that is empty and not
  // yet due. The page decodes in sequence order, so a copy may come before the packet that
  // carried it. Returns whether it was taken.
  pushCopy(seq, ts, pcm) {
    if (this.baseTs === null || this.highestSeq === null) return false;
    const extended = this.highestSeq + (((u16(seq - this.highestSeq) + 0x8000) & 0xffff) - 0x8000);
    if (Math.abs(extended - this.highestSeq) > MAX_COPY_BACK) return false;
    const slot = Math.round(i32(ts - this.baseTs) / FRAME_SAMPLES);
    if (this.playing && slot < this.next) {
      // Its frame's time has passed; if that frame was not played, it was concealed.
      if (this.lastSeq !== null && extended > this.lastSeq) this.stats.recoveredLate += 1;
      return false;
    }
    if (this.frames.has(slot) || this.frames.size >= this.maxFrames * 2) return false;
    this.frames.set(slot, { seq: extended, pcm, copy: true });
    return true;
  }

  // A packet came whose frame was already decoded from a copy (the page decodes each frame
  // once): it counts as received, and the frame, if still queued, as its own.
  arrivedAfterCopy(seq, ts, arrival) {
    if (this.baseTs === null || this.highestSeq === null) return;
    const slot = Math.round(i32(ts - this.baseTs) / FRAME_SAMPLES);
    this.stats.received += 1;
    this.streamReceived += 1;
    this.extend(seq);
    this.learn(slot, arrival);
    const queued = this.frames.get(slot);
    if (queued) queued.copy = false;
    else this.stats.late += 1;
  }

  // The page asked for copies `span` frames back (0: none): from now on the target holds what
  // they need on a steady link, so a burst as long as the span is rebuilt whole.
  expectCopies(span) {
    this.copyFloor = span > 0 ? span + 0.5 : 0;
    this.target = Math.max(this.target, Math.min(this.maxFrames, this.copyFloor));
    this.stats.targetMs = this.target * FRAME_SECONDS * 1000;
  }

  // The sender holds on purpose: what runs dry meanwhile is not missed.
  setHeld(on) {
    this.held = on;
  }

  // Feedback for the sender when due (once a second, at once when the span rises), else null:
  // what ./protection.js writeFeedback needs but the SSRCs.
  pollFeedback(now) {
    if (this.highestSeq === null) return null;
    const span = this.losses.wantedSpan();
    if (this.lastFeedback !== null) {
      const [sent, asked] = this.lastFeedback;
      if (span <= asked && now - sent < FEEDBACK_SECONDS) return null;
    }
    this.lastFeedback = [now, span];
    this.expectCopies(span);
    const concealed = this.stats.missed - this.missedReported;
    this.missedReported = this.stats.missed;
    return {
      span,
      concealed: Math.min(255, concealed),
      fractionLost: this.losses.takeFractionLost(),
      cumulativeLost: this.losses.totalLost,
      highestSeq: this.highestSeq,
      jitter: this.stats.jitterMs * 48, // RTP clock ticks
    };
  }

  // Sequence numbers extended past 16 bits, and the loss count from their gaps.
  extend(seq) {
    if (this.highestSeq === null) {
      this.highestSeq = seq;
      this.firstSeq = seq;
      return seq;
    }
    const delta = ((u16(seq - this.highestSeq) + 0x8000) & 0xffff) - 0x8000;
    const extended = this.highestSeq + delta;
    if (extended > this.highestSeq) this.highestSeq = extended;
    const expected = this.highestSeq - this.firstSeq + 1;
    this.stats.lost = this.lostBefore + Math.max(0, expected - this.streamReceived);
    return extended;
  }

  learn(slot, arrival) {
    const transit = arrival - slot * FRAME_SECONDS;
    // RFC 3550 §6.4.1 interarrival jitter, for the stats.
    if (this.previousTransit !== null) {
      const d = Math.abs(transit - this.previousTransit);
      this.stats.jitterMs += (d * 1000 - this.stats.jitterMs) / 16;
    }
    this.previousTransit = transit;
    this.transits.push([arrival, transit]);
    while (this.transits.length && this.transits[0][0] < arrival - BASELINE_SECONDS) this.transits.shift();
    this.fastest = Math.min(...this.transits.map((t) => t[1]));
    this.lateness.push(transit - this.fastest);
    if (this.lateness.length > LATENESS_WINDOW) this.lateness.shift();
    const sorted = [...this.lateness].sort((a, b) => a - b);
    const p95 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))];
    const measured = 1 + Math.ceil(p95 / FRAME_SECONDS - 0.05);
    const wanted = Math.min(this.maxFrames, Math.max(this.minFrames, this.copyFloor, measured));
    this.packetsSinceFall += 1;
    if (wanted > this.target) {
      this.target = wanted;
      this.packetsSinceFall = 0;
    } else if (wanted < this.target && this.packetsSinceFall >= FALL_EVERY_PACKETS) {
      this.target = Math.max(wanted, this.target - 1);
      this.packetsSinceFall = 0;
    }
    this.stats.targetMs = this.target * FRAME_SECONDS * 1000;
  }

  oldestSlot() {
    return Math.min(...this.frames.keys());
  }

  // How long after its fastest possible arrival slot `slot` plays if it plays at `now`.
  delay(slot, now) {
    return now - (this.fastest + slot * FRAME_SECONDS);
  }

  // What to play for the 20 ms from `now` (the clock of `push`'s arrivals):
  // { kind: "frame" | "conceal" | "silence", pcm }.
  pop(now) {
    if (!this.playing) {
      // Start once the oldest frame has waited the target delay.
      if (this.frames.size === 0) return this.silence();
      this.next = this.oldestSlot();
      if (this.delay(this.next, now) < this.target * FRAME_SECONDS) return this.silence();
      this.playing = true;
      this.underruns = 0;
      this.sinceCorrection = 0;
    }
    this.sinceCorrection += 1;
    if (this.frames.size === 0) {
      // Underrun: conceal in place, so a late packet still plays.
      this.underruns += 1;
      if (this.underruns >= STOP_AFTER_UNDERRUNS) {
        this.playing = false;
        return this.silence();
      }
      return this.conceal();
    }
    this.underruns = 0;
    if (this.sinceCorrection >= CORRECTION_PAUSE_FRAMES) {
      const delay = this.delay(this.next, now);
      const target = this.target * FRAME_SECONDS;
      const due = this.frames.get(this.next);
      // A whole frame dropped or repeated is heard in speech, not in a quiet moment: a
      // correction waits for one unless the delay is far off.
      const quiet = (pcm) => pcm && peak(pcm) < QUIET;
      if (
        delay > target + FRAME_SECONDS &&
        this.frames.has(this.next + 1) &&
        (quiet(due?.pcm) || delay > target + FAR_OFF_FRAMES * FRAME_SECONDS)
      ) {
        // Too much delay: drop the frame due now.
        this.frames.delete(this.next);
        this.next += 1;
        this.sinceCorrection = 0;
        this.stats.dropped += 1;
      } else if (
        delay < target - FRAME_SECONDS / 2 &&
        (quiet(this.lastFrame) || delay < target - FAR_OFF_FRAMES * FRAME_SECONDS)
      ) {
        this.sinceCorrection = 0;
        this.stats.inserted += 1;
        return this.conceal();
      }
    }
    if (!this.frames.has(this.next)) {
      // A hole with later frames queued: a pause in sending if their sequence numbers follow
      // on from what was played, else lost (or so late it will not matter).
      const oldest = this.oldestSlot();
      if (this.lastSeq === null || this.frames.get(oldest).seq !== this.lastSeq + 1) {
        this.next += 1;
        return this.conceal();
      }
      // In a pause the delay re-aligns for free: the silence ends as soon as the next talk
      // spurt has waited its target.
      if (this.delay(oldest, now) < this.target * FRAME_SECONDS) {
        this.next += 1;
        return this.silence();
      }
      this.next = oldest;
    }
    const frame = this.frames.get(this.next);
    this.frames.delete(this.next);
    this.next += 1;
    if (this.lastSeq !== null) {
      const gap = frame.seq - this.lastSeq - 1;
      if (gap > 0 && gap <= MAX_GAP_FRAMES) for (let i = 0; i < gap; i++) this.losses.frame(true);
    }
    // A frame played from a copy still lost its own packet.
    this.losses.frame(frame.copy);
    if (frame.copy) this.stats.recovered += 1;
    this.lastSeq = frame.seq;
    this.lastFrame = frame.pcm;
    this.concealedRun = 0;
    return { kind: "frame", pcm: frame.pcm };
  }

  silence() {
    this.concealedRun = CONCEALED_AUDIBLE;
    return { kind: "silence", pcm: new Float32Array(FRAME_SAMPLES) };
  }

  // The last frame again, fading, then silence: WebCodecs gives no access to Opus's own PLC.
  conceal() {
    this.stats.concealed += 1;
    if (!this.held) this.stats.missed += 1;
    this.concealedRun += 1;
    const pcm = new Float32Array(FRAME_SAMPLES);
    if (this.lastFrame && this.concealedRun <= CONCEALED_AUDIBLE) {
      const gain = CONCEALED_FADE ** this.concealedRun;
      for (let i = 0; i < FRAME_SAMPLES; i++) pcm[i] = this.lastFrame[i] * gain;
    }
    return { kind: "conceal", pcm };
  }
}
