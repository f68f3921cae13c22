// Packets in, in the order they arrive; payloads out in sequence order, for the page's one Opus
// decoder. Opus decodes each frame from the state the previous one left: a frame decoded after
// its successor, or a copy decoded out of its place, comes out distorted (measured: on a link
// with ±30 ms of jitter, decoding in arrival order scored PESQ-NB 1.4 instead of 3.8). The
// gateway decodes at playout, in order; the page cannot (no WebCodecs in an AudioWorklet), so it
// holds a packet that follows a gap until the gap fills — the late packet, or a copy of it in a
// RED packet — or until it is no use waiting: a packet `wait` frames newer than the gap has come,
// about as long as the jitter buffer would hold the missing frame anyway.
//
// A packet whose frame was decoded from a copy is not decoded again, but its coming is news
// to the jitter buffer (the frame was not lost after all): it comes back marked `afterCopy`.
//
// Plain data and arithmetic, so tests drive it without a browser.

const u16 = (n) => n & 0xffff;
const distance = (from, to) => ((u16(to - from) + 0x8000) & 0xffff) - 0x8000;
const JUMP = 100; // sequence numbers this far ahead start the order afresh (hold, resume)
const COPIES_REMEMBERED = 64;

export class InOrder {
  constructor() {
    this.next = null; // the sequence number to decode next
    this.newest = null;
    this.pending = new Map(); // sequence number → packet
    this.fromCopies = new Set(); // recent sequence numbers decoded from a copy
  }

  // A packet (or a copy from a RED packet: `copy`), with whatever the caller wants back with
  // it. Returns the packets now ready to decode, in order.
  add(packet, wait) {
    const { seq } = packet;
    if (this.next === null || Math.abs(distance(this.next, seq)) > JUMP) {
      this.next = seq;
      this.newest = seq;
      this.pending.clear();
      this.fromCopies.clear();
    }
    if (distance(this.next, seq) < 0) {
      // Its place was decoded or given up.
      if (!packet.copy && this.fromCopies.delete(seq)) return [{ ...packet, afterCopy: true }];
      return [];
    }
    const held = this.pending.get(seq);
    // A copy waits only until the frame's own packet comes.
    if (!held || (held.copy && !packet.copy)) this.pending.set(seq, packet);
    if (distance(this.newest, seq) > 0) this.newest = seq;
    const ready = [];
    for (;;) {
      const due = this.pending.get(this.next);
      if (due) {
        this.pending.delete(this.next);
        ready.push(due);
        if (due.copy) {
          this.fromCopies.add(due.seq);
          // A Set iterates in insertion order: the first is the oldest.
          if (this.fromCopies.size > COPIES_REMEMBERED) this.fromCopies.delete(this.fromCopies.values().next().value);
        }
      } else if (distance(this.next, this.newest) < Math.max(1, wait)) {
        break;
      }
      this.next = u16(this.next + 1);
      if (distance(this.next, this.newest) < 0) break;
    }
    return ready;
  }
}
