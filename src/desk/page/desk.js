// The agent desk: the agent protocol (docs/agent-protocol.md) over a WebTransport session to
// the gateway's agent endpoint. Control messages are length-prefixed JSON on one
// bidirectional stream, exactly as the CLI agent sends them over QUIC; audio is in media.js.
//
// `window.desk` mirrors what the page shows, for tests and for a curious agent's console.
import { Media } from "./media.js";
import { LinkHealth } from "./protection.js";

const PROTOCOL_VERSION = 1;
const CLIENT = "trunkgate-desk/0.2";
const STATS_EVERY_MS = 5000;
const PING_EVERY_MS = 2000;
const RETRY_EVERY_MS = 1000;
const CONNECT_TIMEOUT_MS = 3000;
const $ = (id) => document.getElementById(id);

const desk = (window.desk = {
  state: "logged_out",
  offer: null,
  call: null,
  error: null,
  notice: null,
  refused: false,
  reconnecting: false,
  muted: false,
  quality: null,
  wrapUpUntil: null,
  messages: [],
  media: null,
  // A supervisor's session: its queues, their calls and agents, their figures, and the call it
  // is in ({call, mode, flow}).
  supervises: [],
  live: null,
  wallboard: [],
  supervising: null,
});

let session = null; // { transport, writer, agent, credential, token, grace, id }
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const seconds = (ms) => {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

function show() {
  const now = Date.now();
  $("status").textContent = desk.reconnecting ? "reconnecting…" : desk.state.replace("_", " ");
  $("status").dataset.state = desk.state;
  $("wrap-up").hidden = desk.state !== "wrap_up" || !desk.wrapUpUntil;
  if (desk.wrapUpUntil) $("wrap-up-left").textContent = seconds(desk.wrapUpUntil - now);
  $("offer").hidden = !desk.offer;
  if (desk.offer) {
    $("offer-caller").textContent = desk.offer.caller || "withheld";
    $("offer-queue").textContent = desk.offer.queue;
    const waited = (desk.offer.waited_ms || 0) + (now - desk.offer.receivedAt);
    $("offer-waited").textContent = seconds(waited);
  }
  $("call").hidden = !desk.call;
  if (desk.call) {
    $("call-caller").textContent = desk.call.caller || "withheld";
    $("call-timer").textContent = seconds(now - desk.call.since);
    $("held").hidden = !desk.call.held;
    $("hold").textContent = desk.call.held ? "Take off hold" : "Hold";
    $("mute").textContent = desk.muted ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(desk.muted));
    $("muted").hidden = !desk.muted;
  }
  const q = desk.quality;
  $("quality").hidden = !desk.call || !q;
  if (q) {
    $("quality-rtt").textContent = q.rttMs === null ? "–" : `${Math.round(q.rttMs)} ms`;
    $("quality-loss").textContent = `${q.lossPct.toFixed(1)} %`;
    $("quality-jitter").textContent = `${q.jitterMs.toFixed(1)} ms`;
    $("quality-upstream").textContent = q.upstreamLossPct === null ? "–" : `${q.upstreamLossPct.toFixed(1)} %`;
    $("quality").dataset.grade = q.lossPct > 5 || q.rttMs > 300 ? "poor" : q.lossPct > 1 || q.rttMs > 150 ? "fair" : "good";
  }
  const link = desk.call?.link;
  $("link-warning").hidden = !link?.poor;
  if (link?.poor) {
    const missed = [];
    if (link.sentLostMs > 0) missed.push(`the caller missed ${(link.sentLostMs / 1000).toFixed(1)} s of what you said`);
    if (link.heardLostMs > 0) missed.push(`you missed ${(link.heardLostMs / 1000).toFixed(1)} s of the caller`);
    $("link-warning").textContent = `Your network is losing audio: ${missed.join(" and ")} in the last 10 s.`;
  }
  showSupervisor();
  $("message").textContent = desk.error || "";
  $("notice").textContent = desk.notice || "";
  ringing(!!desk.offer);
}

// The supervisor's view: the wallboard as a table, the calls with a button per mode.
function showSupervisor() {
  const on = desk.supervises.length > 0;
  $("supervisor").hidden = !on;
  $("available").parentElement.hidden = on;
  if (!on) return;
  $("supervises").textContent = desk.supervises.join(", ");
  const pct = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} %`);
  const secs = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} s`);
  const rows = desk.wallboard.map((q) => {
    const row = document.createElement("tr");
    row.dataset.queue = q.queue;
    const cells = {
      queue: q.queue,
      waiting: String(q.waiting),
      longest: secs(q.longest_wait_s),
      sl15: pct(q.service_level_15m_pct),
      slday: pct(q.service_level_day_pct),
      asa: secs(q.asa_s),
      aht: secs(q.aht_s),
      abandon: pct(q.abandon_rate_pct),
      available: String(q.agents_available),
      incall: String(q.agents_in_call),
      wrapup: String(q.agents_wrap_up),
      away: String(q.agents_away),
    };
    for (const [field, text] of Object.entries(cells)) {
      const cell = document.createElement("td");
      cell.dataset.field = field;
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  });
  $("wallboard").tBodies[0].replaceChildren(...rows);
  const calls = (desk.live?.calls || []).map((c) => {
    const item = document.createElement("li");
    item.dataset.call = c.call;
    item.append(`${c.caller || "withheld"} · ${c.queue} · ${c.state}${c.agent ? ` with ${c.agent}` : ""} `);
    if (c.state === "talking") {
      for (const mode of ["monitor", "whisper", "barge"]) {
        const button = document.createElement("button");
        button.id = `${mode}-${c.call}`;
        button.textContent = mode[0].toUpperCase() + mode.slice(1);
        button.addEventListener("click", () => send({ type: "supervise", call: c.call, mode }));
        item.append(button);
      }
    }
    return item;
  });
  $("live-calls").replaceChildren(...calls);
  $("supervising").hidden = !desk.supervising;
  if (desk.supervising) $("supervising-what").textContent = `In ${desk.supervising.call}: ${desk.supervising.mode}`;
}

function fail(text) {
  desk.error = text;
  show();
}

async function send(message) {
  if (!session?.writer) return;
  const body = encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, ...message }));
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  await session.writer.write(frame);
}

function hexToBytes(hex) {
  const clean = hex.replaceAll(":", "");
  return new Uint8Array(clean.match(/../g).map((b) => parseInt(b, 16)));
}

function callFrom(fields) {
  return { since: Date.now(), held: false, stats: { at: 0, received: 0, lost: 0 }, health: new LinkHealth(), missedSeen: null, link: null, ...fields };
}

function handle(message) {
  desk.messages.push(message.type);
  switch (message.type) {
    case "welcome": {
      const resumed = session.id === message.session;
      if (session.id && !resumed) {
        // Too late to resume: a fresh session, and any call is gone.
        desk.call = null;
        desk.media.endCall();
        desk.notice = "Reconnected, but too late to keep the call.";
      }
      session.id = message.session;
      session.token = message.resume_token;
      session.grace = message.resume_grace_ms;
      desk.error = null;
      desk.reconnecting = false;
      desk.state = message.state;
      desk.supervises = message.supervises || [];
      desk.media.attach(session.transport, message.media);
      ping();
      $("login-form").hidden = true;
      $("desk").hidden = false;
      break;
    }
    case "resumed":
      if (message.call) {
        const c = message.call;
        desk.call = { ...(desk.call || callFrom({ caller: c.caller, queue: c.queue })), call: c.id, flow: c.flow, held: c.held };
        desk.media.moveCall(c.flow);
        desk.media.setHeld(c.held);
        desk.notice = "Connection restored: your call is back.";
      } else {
        if (desk.call) desk.notice = "Connection restored; the caller left meanwhile.";
        else desk.notice = "Connection restored.";
        desk.call = null;
        desk.media.endCall();
      }
      break;
    case "login_refused":
      desk.refused = true;
      fail(`Login refused (${message.reason}): ${message.message}`);
      break;
    case "state":
      desk.state = message.state;
      desk.wrapUpUntil = message.state === "wrap_up" && message.wrap_up_ms ? Date.now() + message.wrap_up_ms : null;
      break;
    case "offer":
      desk.offer = { ...message, receivedAt: Date.now() };
      desk.notice = null;
      break;
    case "offer_cancelled":
      desk.offer = null;
      desk.notice = message.reason === "timeout" ? "The call rang out: you are away now." : null;
      break;
    case "answered":
      desk.call = callFrom({ ...(desk.offer || {}), call: message.call, flow: message.flow });
      desk.offer = null;
      desk.muted = false;
      desk.media.muted = false;
      desk.media.startCall(message.flow);
      break;
    case "call_ended":
      desk.call = null;
      desk.quality = null;
      desk.media.endCall();
      desk.notice = message.reason === "caller_hung_up" ? "The caller hung up." : null;
      break;
    case "hold":
      if (desk.call && desk.call.call === message.call) {
        desk.call.held = message.on;
        desk.media.setHeld(message.on);
      }
      break;
    case "dtmf":
      desk.notice = `The caller pressed ${message.digit}.`;
      break;
    case "live":
      desk.live = message;
      break;
    case "wallboard":
      desk.wallboard = message.queues;
      break;
    case "supervising":
      if (desk.supervising?.flow !== message.flow) desk.media.startCall(message.flow);
      desk.supervising = { call: message.call, mode: message.mode, flow: message.flow };
      break;
    case "supervision_ended":
      desk.supervising = null;
      desk.media.endCall();
      desk.notice = message.reason === "left" ? null : `Out of the call (${message.reason.replace("_", " ")}).`;
      break;
    case "help_requested":
      desk.notice = `${message.agent} asks for help on ${message.call}${message.note ? `: ${message.note}` : ""}.`;
      break;
    case "chat":
      desk.notice = `${message.from}: ${message.text}`;
      break;
    case "pong":
      if (session.pingSent) session.rttMs = performance.now() - session.pingSent;
      break;
    case "error":
      fail(`${message.code}: ${message.message}`);
      break;
  }
  show();
}

async function readMessages(readable) {
  const reader = readable.getReader();
  let pending = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(pending.length + value.length);
    joined.set(pending);
    joined.set(value, pending.length);
    pending = joined;
    while (pending.length >= 4) {
      const length = new DataView(pending.buffer, pending.byteOffset).getUint32(0);
      if (pending.length < 4 + length) break;
      handle(JSON.parse(decoder.decode(pending.subarray(4, 4 + length))));
      pending = pending.slice(4 + length);
    }
  }
}

// One WebTransport session to the agent endpoint, logging in (or resuming) on it.
async function connect() {
  const config = await (await fetch("desk/config")).json();
  const url = `https://${location.hostname}:${config.port}${config.path}`;
  const options = config.hashes.length
    ? { serverCertificateHashes: config.hashes.map((h) => ({ algorithm: "sha-256", value: hexToBytes(h) })) }
    : {};
  const transport = new WebTransport(url, options);
  // A path that is still dark would hold a handshake for as long as the browser's own limit.
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("the gateway did not answer")), CONNECT_TIMEOUT_MS));
  try {
    await Promise.race([transport.ready, timeout]);
  } catch (e) {
    try {
      transport.close();
    } catch {
      // Never connected: nothing to close.
    }
    throw e;
  }
  const stream = await transport.createBidirectionalStream();
  session.transport = transport;
  session.writer = stream.writable.getWriter();
  const ended = (error) => {
    if (session?.transport === transport) lost(error);
  };
  transport.closed.then(() => ended(null)).catch((e) => ended(e));
  readMessages(stream.readable).catch((e) => ended(e));
  const login = { type: "login", agent: session.agent, credential: session.credential, skills: [], client: CLIENT };
  await send(session.token ? { ...login, resume: session.token } : login);
}

// The connection ended without a logout. After a refusal or a deliberate close, that is all;
// otherwise the page reconnects by itself, with its resume token, within the grace period.
function lost(error) {
  const s = session;
  if (!s || s.transport === null) return;
  s.transport = null;
  s.writer = null;
  if (desk.refused || s.closing) return;
  if (!s.token) return fail(`Connection lost${error ? `: ${error.message}` : ""}`);
  desk.reconnecting = true;
  desk.notice = desk.call ? "Connection lost: the caller hears music while the desk reconnects…" : "Connection lost: reconnecting…";
  show();
  const until = Date.now() + s.grace;
  const retry = async () => {
    if (session !== s || s.transport) return;
    if (Date.now() > until) {
      desk.reconnecting = false;
      desk.call = null;
      desk.media.endCall();
      return fail("Connection lost for too long: log in again.");
    }
    try {
      await connect();
    } catch {
      s.transport = null;
      setTimeout(retry, RETRY_EVERY_MS);
    }
  };
  retry();
}

async function login(agent, credential) {
  if (!Media.supported()) {
    throw new Error("this browser lacks WebCodecs audio or AudioWorklet: use a current Chromium, Chrome, Edge or Firefox");
  }
  if (!desk.media) {
    desk.media = new Media({
      onError: fail,
      onLevels: meters,
      onStats: (stats, call) => measured(stats, call),
      onPeerConcealed: (frames) => linkHealth({ sent: frames }),
    });
    await desk.media.open($("microphone").value || undefined, $("voice-processing").checked);
    await listDevices();
    if (desk.media.context.state !== "running") {
      desk.notice = "The browser holds the sound back until you click the page.";
      document.addEventListener("click", () => desk.media?.context.resume(), { once: true });
    }
  }
  session = { agent, credential, transport: null, writer: null, token: null, id: null, rttMs: null };
  await connect();
}

// Levels as bars, updated at most once per animation frame.
function meters(levels) {
  $("microphone-level").value = Math.min(1, levels.microphone);
  $("speaker-level").value = Math.min(1, levels.speaker);
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["audioinput", $("microphone")], ["audiooutput", $("speaker")]]) {
    const chosen = select.value;
    select.replaceChildren(new Option("default", ""));
    for (const d of devices.filter((d) => d.kind === kind && d.deviceId !== "default")) {
      select.add(new Option(d.label || `${kind} ${select.length}`, d.deviceId));
    }
    select.value = chosen;
  }
  $("speaker-choice").hidden = !desk.media?.canChooseSpeaker();
}

// Call quality as this desk hears it: the playout's counts, RTT from the transport (or our
// pings), and the gateway's report of how our audio reaches it. Every 5 s it goes to the
// gateway as `stats` too, which logs it with the call.
async function measured(stats, call) {
  if (!desk.call || !call) return;
  const c = desk.call;
  // The playout's count runs over the whole desk session; this call's starts here.
  if (c.missedSeen === null) c.missedSeen = stats.missed;
  linkHealth({ heard: stats.missed - c.missedSeen });
  c.missedSeen = stats.missed;
  const rttMs = await rtt();
  const expected = stats.received + stats.lost - (c.stats.received + c.stats.lost);
  const lostNow = stats.lost - c.stats.lost;
  desk.quality = {
    rttMs,
    lossPct: expected > 0 ? (100 * lostNow) / expected : 0,
    jitterMs: stats.jitterMs,
    upstreamLossPct: call.upstreamLoss,
    targetMs: stats.targetMs,
    concealed: stats.concealed,
    received: stats.received,
  };
  if (Date.now() - c.stats.at >= STATS_EVERY_MS) {
    send({
      type: "stats",
      call: c.call,
      rtt_ms: Math.round(rttMs || 0),
      loss_pct: Math.min(100, desk.quality.lossPct),
      jitter_ms: Math.min(60000, stats.jitterMs),
      packets_received: stats.received,
      packets_lost: stats.lost,
    });
    c.stats = { at: Date.now(), received: stats.received, lost: stats.lost };
  }
  show();
}

// Frames this desk concealed (`heard`) or the gateway did (`sent`): an agent told that their
// network drops audio can move off a failing Wi-Fi.
function linkHealth(concealed) {
  if (!desk.call) return;
  desk.call.link = desk.call.health.add(performance.now() / 1000, concealed);
}

async function rtt() {
  const transport = session?.transport;
  if (transport && typeof transport.getStats === "function") {
    try {
      const s = await transport.getStats();
      if (typeof s.smoothedRtt === "number") return s.smoothedRtt;
    } catch {
      // Not implemented here: the control stream's ping answers instead.
    }
  }
  return session?.rttMs ?? null;
}

// The control path's round trip, and a check that the gateway's control loop still answers.
function ping() {
  if (!session?.writer) return;
  session.pingSent = performance.now();
  send({ type: "ping", nonce: Math.floor(Math.random() * 2 ** 32) });
}
setInterval(ping, PING_EVERY_MS);
// Timers and countdowns tick even when nothing arrives.
setInterval(() => (desk.offer || desk.call || desk.wrapUpUntil) && show(), 1000);

// A two-tone ring while an offer waits, from the page itself (no sound file to fetch).
let ringer = null;
function ringing(on) {
  const context = desk.media?.context;
  if (!on || !context) {
    ringer?.stop();
    ringer = null;
    return;
  }
  if (ringer) return;
  const gain = context.createGain();
  gain.gain.value = 0;
  for (const freq of [440, 480]) {
    const tone = context.createOscillator();
    tone.frequency.value = freq;
    tone.connect(gain);
    tone.start();
  }
  gain.connect(context.destination);
  // 2 s on, 4 s off, at a fifth of full scale, until stopped.
  const start = context.currentTime;
  for (let cycle = 0; cycle < 100; cycle++) {
    gain.gain.setValueAtTime(0.2, start + cycle * 6);
    gain.gain.setValueAtTime(0, start + cycle * 6 + 2);
  }
  ringer = { stop: () => gain.disconnect() };
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  desk.error = null;
  desk.notice = null;
  desk.refused = false;
  login($("agent").value.trim(), $("credential").value).catch((e) => {
    if (session) session.transport = null;
    fail(`Cannot log in: ${e.message}`);
  });
});
$("logout").addEventListener("click", async () => {
  if (!session) return;
  session.closing = true;
  try {
    await session.writer?.close();
  } catch {
    // Gone already: nothing left to finish.
  }
  session.transport?.close();
  session = null;
  // The microphone is the agent's while logged out.
  desk.media?.close();
  desk.media = null;
  desk.state = "logged_out";
  desk.call = desk.offer = null;
  $("desk").hidden = true;
  $("login-form").hidden = false;
  show();
});
$("available").addEventListener("click", () => send({ type: "set_state", state: "available" }));
$("away").addEventListener("click", () => {
  const reason = $("away-reason").value.trim();
  send(reason ? { type: "set_state", state: "away", reason } : { type: "set_state", state: "away" });
});
$("accept").addEventListener("click", () => desk.offer && send({ type: "accept", call: desk.offer.call }));
$("reject").addEventListener("click", () => {
  if (!desk.offer) return;
  send({ type: "reject", call: desk.offer.call });
  // The queue offers it elsewhere; nothing more comes about it.
  desk.offer = null;
  show();
});
$("leave").addEventListener("click", () => desk.supervising && send({ type: "leave", call: desk.supervising.call }));
$("hangup").addEventListener("click", () => desk.call && send({ type: "hangup", call: desk.call.call }));
$("hold").addEventListener("click", () => desk.call && send({ type: "hold", call: desk.call.call, on: !desk.call.held }));
$("mute").addEventListener("click", () => {
  desk.muted = !desk.muted;
  if (desk.media) desk.media.muted = desk.muted;
  show();
});
const chooseMicrophone = () =>
  desk.media?.useMicrophone($("microphone").value || undefined, $("voice-processing").checked).catch((e) => fail(`Microphone: ${e.message}`));
$("microphone").addEventListener("change", chooseMicrophone);
$("voice-processing").addEventListener("change", () => {
  localStorage.setItem("voiceProcessing", String($("voice-processing").checked));
  chooseMicrophone();
});
$("voice-processing").checked = localStorage.getItem("voiceProcessing") !== "false";
$("speaker").addEventListener("change", () => desk.media?.useSpeaker($("speaker").value).catch((e) => fail(`Speaker: ${e.message}`)));
navigator.mediaDevices?.addEventListener("devicechange", () => desk.media && listDevices());
for (const key of document.querySelectorAll("#keypad button")) {
  key.addEventListener("click", () => desk.call && send({ type: "dtmf", call: desk.call.call, digits: key.dataset.key }));
}
// Keys typed while on a call go to the keypad, as on a desk phone.
document.addEventListener("keydown", (event) => {
  if (!desk.call || ["INPUT", "SELECT"].includes(event.target.tagName)) return;
  const key = event.key;
  if (/^[0-9*#]$/.test(key)) send({ type: "dtmf", call: desk.call.call, digits: key });
});
show();
