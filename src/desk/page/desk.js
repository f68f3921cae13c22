// The agent desk: the agent protocol (docs/agent-protocol.md) over a WebTransport session to
// the gateway's agent endpoint. Control messages are length-prefixed JSON on one
// bidirectional stream, exactly as the CLI agent sends them over QUIC.
//
// `window.desk` mirrors what the page shows, for tests and for a curious agent's console.

const PROTOCOL_VERSION = 1;
const CLIENT = "trunkgate-desk/0.1";
const $ = (id) => document.getElementById(id);

const desk = (window.desk = {
  state: "logged_out",
  offer: null,
  call: null,
  error: null,
  refused: false,
  messages: [],
});

let writer = null;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function show() {
  $("status").textContent = desk.state.replace("_", " ");
  $("offer").hidden = !desk.offer;
  if (desk.offer) {
    $("offer-caller").textContent = desk.offer.caller;
    $("offer-queue").textContent = desk.offer.queue;
  }
  $("call").hidden = !desk.call;
  if (desk.call) {
    $("call-caller").textContent = desk.call.caller;
    $("held").hidden = !desk.call.held;
    $("hold").textContent = desk.call.held ? "Take off hold" : "Hold";
  }
  $("message").textContent = desk.error || "";
}

function fail(text) {
  desk.error = text;
  show();
}

// The connection ending after a refused login is the refusal's doing: keep its reason.
function lost(text) {
  if (!desk.refused) fail(text);
}

async function send(message) {
  if (!writer) return;
  const body = encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, ...message }));
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  await writer.write(frame);
}

function hexToBytes(hex) {
  const clean = hex.replaceAll(":", "");
  return new Uint8Array(clean.match(/../g).map((b) => parseInt(b, 16)));
}

function handle(message) {
  desk.messages.push(message.type);
  switch (message.type) {
    case "welcome":
      desk.error = null;
      desk.state = message.state;
      $("login-form").hidden = true;
      $("desk").hidden = false;
      break;
    case "login_refused":
      desk.refused = true;
      fail(`Login refused (${message.reason}): ${message.message}`);
      break;
    case "state":
      desk.state = message.state;
      break;
    case "offer":
      desk.offer = message;
      break;
    case "offer_cancelled":
      desk.offer = null;
      break;
    case "answered":
      desk.call = { ...(desk.offer || {}), call: message.call, flow: message.flow, held: false };
      desk.offer = null;
      break;
    case "call_ended":
      desk.call = null;
      break;
    case "hold":
      if (desk.call && desk.call.call === message.call) desk.call.held = message.on;
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

async function login(agent, credential) {
  const config = await (await fetch("desk/config")).json();
  const url = `https://${location.hostname}:${config.port}${config.path}`;
  const options = config.hashes.length
    ? { serverCertificateHashes: config.hashes.map((h) => ({ algorithm: "sha-256", value: hexToBytes(h) })) }
    : {};
  const transport = new WebTransport(url, options);
  await transport.ready;
  transport.closed
    .then(() => lost("Connection closed"))
    .catch((e) => lost(`Connection lost: ${e.message}`));
  const stream = await transport.createBidirectionalStream();
  writer = stream.writable.getWriter();
  readMessages(stream.readable).catch((e) => lost(`Connection lost: ${e.message}`));
  await send({ type: "login", agent, credential, skills: [], client: CLIENT });
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  desk.error = null;
  desk.refused = false;
  login($("agent").value.trim(), $("credential").value).catch((e) => fail(`Cannot reach the gateway: ${e.message}`));
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
$("hangup").addEventListener("click", () => desk.call && send({ type: "hangup", call: desk.call.call }));
$("hold").addEventListener("click", () => desk.call && send({ type: "hold", call: desk.call.call, on: !desk.call.held }));
for (const key of document.querySelectorAll("#keypad button")) {
  key.addEventListener("click", () => desk.call && send({ type: "dtmf", call: desk.call.call, digits: key.dataset.key }));
}
// Keys typed while on a call go to the keypad, as on a desk phone.
document.addEventListener("keydown", (event) => {
  if (!desk.call || event.target.tagName === "INPUT") return;
  const key = event.key;
  if (/^[0-9*#]$/.test(key)) send({ type: "dtmf", call: desk.call.call, digits: key });
});
show();
