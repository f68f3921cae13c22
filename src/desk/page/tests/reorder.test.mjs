// Unit tests of the order the page decodes in (../reorder.js).
//
// Run with `node --test src/desk/page/tests/` (the integration test desk_scripts does).
import { test } from "node:test";
import assert from "node:assert/strict";

import { InOrder } from "../reorder.js";

// Adds packets (a number is a packet with that sequence number; `[n, "copy"]` a copy) and
// returns what came out, as "n" or "n(copy)" or "n(after copy)".
function feed(order, packets, wait) {
  return packets.flatMap((p) => {
    const [seq, kind] = Array.isArray(p) ? p : [p];
    return order.add({ seq: seq & 0xffff, copy: kind === "copy" }, wait).map((out) => {
      const tag = out.afterCopy ? "(after copy)" : out.copy ? "(copy)" : "";
      return `${out.seq}${tag}`;
    });
  });
}

test("packets in order come straight out", () => {
  assert.deepEqual(feed(new InOrder(), [1, 2, 3, 4], 3), ["1", "2", "3", "4"]);
});

test("a packet overtaken by the next ones is waited for and decoded in its place", () => {
  assert.deepEqual(feed(new InOrder(), [1, 3, 4, 2, 5], 3), ["1", "2", "3", "4", "5"]);
});

test("a gap is given up once a packet `wait` newer comes, and its packet is then dropped", () => {
  const order = new InOrder();
  assert.deepEqual(feed(order, [1, 3, 4], 3), ["1"]);
  assert.deepEqual(feed(order, [5], 3), ["3", "4", "5"], "2 given up when 5 came");
  assert.deepEqual(feed(order, [2], 3), [], "too late for the decoder");
  assert.deepEqual(feed(new InOrder(), [1, 3], 1), ["1", "3"], "a wait of 1 holds nothing back");
  assert.deepEqual(feed(new InOrder(), [1, 3], 0), ["1", "3"], "nor does 0");
});

test("a copy fills a gap at once, and its packet arriving later is news, not audio", () => {
  const order = new InOrder();
  // Packet 3 (a RED packet) carries a copy of 2, which was lost or is late.
  assert.deepEqual(feed(order, [1, [2, "copy"], 3], 3), ["1", "2(copy)", "3"]);
  assert.deepEqual(feed(order, [2], 3), ["2(after copy)"]);
  assert.deepEqual(feed(order, [2], 3), [], "a duplicate is nothing");
  assert.deepEqual(feed(order, [[3, "copy"], [4, "copy"]], 3), ["4(copy)"], "copies of what came are ignored");
});

test("a packet waiting for a gap replaces a copy of itself", () => {
  const order = new InOrder();
  assert.deepEqual(feed(order, [1, [3, "copy"], 3], 5), ["1"]);
  assert.deepEqual(feed(order, [2], 5), ["2", "3"], "3 decoded from its own packet");
});

test("sequence numbers wrap, and a jump starts the order afresh", () => {
  assert.deepEqual(feed(new InOrder(), [65534, 0, 65535, 1], 3), ["65534", "65535", "0", "1"]);
  const order = new InOrder();
  assert.deepEqual(feed(order, [1, 2], 3), ["1", "2"]);
  assert.deepEqual(feed(order, [5000, 5001], 3), ["5000", "5001"], "after a hold or a resume");
});
