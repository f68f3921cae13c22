// The desk's audio: microphone and speaker through a 48 kHz AudioContext and its worklets,
// Opus through WebCodecs, and RTP in WebTransport datagrams framed as the agent protocol says
// (docs/agent-protocol.md §7): a QUIC varint flow id, then one RTP packet.
import { FRAME_SAMPLES } from "./jitter.js";

const SAMPLE_RATE = 48000;
const RTP_VERSION = 0x80;
const FRAME_MICROS = 20000;

export function encodeVarint(value) {
  if (value < 0x40) return Uint8Array.of(value);
  if (value < 0x4000) return Uint8Array.of(0x40 | (value >> 8), value & 0xff);
  if (value < 0x40000000) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, value | 0x80000000);
    return out;
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value) | (0xc0n << 56n));
  return out;
}

// [value, bytes used], or null when the datagram is too short.
export function decodeVarint(bytes) {
  if (bytes.length === 0) return null;
  const length = 1 << (bytes[0] >> 6);
  if (bytes.length < length) return null;
  let value = bytes[0] & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + bytes[i];
  return [value, length];
}

const random32 = () => crypto.getRandomValues(new Uint32Array(1))[0];

// RFC 5761: RTCP packet types 192–223 sit where RTP has its marker bit and payload type.
const isRtcp = (packet) => packet[1] >= 192 && packet[1] <= 223;

// One call's audio both ways on one flow.
class CallAudio {
  constructor(media, flow, params) {
    this.media = media;
    this.setFlow(flow);
    this.ssrc = random32();
    this.seq = random32() & 0xffff;
    this.ts = random32();
    this.marker = true;
    this.frames = 0;
    this.held = false;
    this.decoding = new Map(); // decoder timestamp → the packet's { seq, ts }
    this.decoded = 0;
    this.received = 0;
    this.remoteSsrc = null;
    this.upstreamLoss = null;
    this.encoder = new AudioEncoder({
      output: (chunk) => this.send(chunk),
      error: (e) => media.onError(`Microphone encoder: ${e.message}`),
    });
    this.encoder.configure({
      codec: "opus",
      sampleRate: SAMPLE_RATE,
      numberOfChannels: 1,
      bitrate: params.bitrate || 24000,
      opus: { frameDuration: 20000, complexity: 5, useinbandfec: !!params.fec },
    });
    this.decoder = new AudioDecoder({
      output: (data) => this.play(data),
      error: (e) => media.onError(`Audio decoder: ${e.message}`),
    });
    this.decoder.configure({ codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1 });
  }

  setFlow(flow) {
    this.flow = flow;
    this.flowBytes = encodeVarint(flow);
  }

  // A 20 ms frame from the microphone (silence when muted).
  encode(pcm) {
    if (this.held || this.encoder.state !== "configured") return;
    const data = new AudioData({
      format: "f32",
      sampleRate: SAMPLE_RATE,
      numberOfFrames: FRAME_SAMPLES,
      numberOfChannels: 1,
      timestamp: this.frames * FRAME_MICROS,
      data: pcm,
    });
    this.frames += 1;
    this.encoder.encode(data);
    data.close();
  }

  send(chunk) {
    const header = this.flowBytes.length;
    const packet = new Uint8Array(header + 12 + chunk.byteLength);
    packet.set(this.flowBytes);
    const view = new DataView(packet.buffer, header);
    view.setUint8(0, RTP_VERSION);
    view.setUint8(1, (this.marker ? 0x80 : 0) | this.media.payloadType);
    view.setUint16(2, this.seq);
    view.setUint32(4, this.ts);
    view.setUint32(8, this.ssrc);
    chunk.copyTo(packet.subarray(header + 12));
    this.marker = false;
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME_SAMPLES) >>> 0;
    this.media.sendDatagram(packet);
  }

  receive(packet) {
    if (packet.length < 12 || (packet[0] & 0xc0) !== RTP_VERSION) return;
    const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    if (isRtcp(packet)) return this.feedback(view);
    const payloadType = packet[1] & 0x7f;
    // Redundancy (RED, 63) comes only to receivers that ask for it, which this one does not.
    if (payloadType !== this.media.payloadType) return;
    if (this.held || this.decoder.state !== "configured") return;
    const ssrc = view.getUint32(8);
    if (ssrc !== this.remoteSsrc) {
      // A new stream (the call resumed on another flow, say): start the buffer afresh.
      this.remoteSsrc = ssrc;
      this.media.playout.port.postMessage({ type: "restart" });
    }
    const headerLength = 12 + 4 * (packet[0] & 0x0f);
    if (packet.length <= headerLength) return;
    this.received += 1;
    const key = this.decoded++ * FRAME_MICROS;
    this.decoding.set(key, { seq: view.getUint16(2), ts: view.getUint32(4) });
    this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: key, data: packet.subarray(headerLength) }));
  }

  play(data) {
    // Decoders may round timestamps through floating point: 259999 for 260000.
    const key = Math.round(data.timestamp / FRAME_MICROS) * FRAME_MICROS;
    const packet = this.decoding.get(key);
    this.decoding.delete(key);
    if (packet) {
      const pcm = new Float32Array(data.numberOfFrames);
      data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
      // Frames longer than 20 ms go in as 20 ms pieces.
      for (let at = 0; at + FRAME_SAMPLES <= pcm.length; at += FRAME_SAMPLES) {
        const piece = pcm.slice(at, at + FRAME_SAMPLES);
        const n = at / FRAME_SAMPLES;
        this.media.playout.port.postMessage(
          { type: "frame", seq: (packet.seq + n) & 0xffff, ts: (packet.ts + n * FRAME_SAMPLES) >>> 0, pcm: piece },
          [piece.buffer],
        );
      }
    }
    data.close();
  }

  // The gateway's receiver report on our stream: how much of what we send reaches it.
  feedback(view) {
    let at = 0;
    while (at + 8 <= view.byteLength) {
      const count = view.getUint8(at) & 0x1f;
      const type = view.getUint8(at + 1);
      const length = (view.getUint16(at + 2) + 1) * 4;
      if (type === 201 && count > 0 && at + 32 <= view.byteLength) {
        this.upstreamLoss = (view.getUint8(at + 12) / 256) * 100;
      }
      at += length;
    }
  }

  close() {
    for (const codec of [this.encoder, this.decoder]) {
      if (codec.state !== "closed") codec.close();
    }
  }
}

// The devices and codecs of a logged-in desk; calls come and go on it.
export class Media {
  constructor({ onError, onLevels, onStats }) {
    this.onError = onError;
    this.onLevels = onLevels;
    this.onStats = onStats;
    this.call = null;
    this.muted = false;
    this.payloadType = 111;
    this.params = {};
    this.datagrams = null;
    this.levels = { microphone: 0, speaker: 0 };
    this.heard = null;
    this.echoed = null;
    this.voiceProcessing = true;
  }

  static supported() {
    return typeof AudioEncoder === "function" && typeof AudioDecoder === "function" && typeof AudioWorkletNode === "function";
  }

  // Opens the audio context and the microphone; call from a user gesture (autoplay rules).
  async open(microphone, voiceProcessing) {
    this.context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: "interactive" });
    await this.context.audioWorklet.addModule("worklet.js");
    this.capture = new AudioWorkletNode(this.context, "capture", { channelCount: 1, channelCountMode: "explicit" });
    // The capture node outputs nothing; connected, it is pulled by the graph in every browser.
    this.capture.connect(this.context.destination);
    this.capture.port.onmessage = ({ data }) => this.captured(data);
    this.playout = new AudioWorkletNode(this.context, "playout", { numberOfInputs: 0, outputChannelCount: [1] });
    this.playout.connect(this.context.destination);
    this.playout.port.onmessage = ({ data }) => this.fromPlayout(data);
    await this.useMicrophone(microphone, voiceProcessing);
    // Called from the login click, a user gesture, it starts the audio; without one a browser
    // may hold it until the next, which must not hold up the login.
    this.context.resume().catch(() => {});
  }

  async useMicrophone(deviceId, voiceProcessing = this.voiceProcessing) {
    this.voiceProcessing = voiceProcessing;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        channelCount: 1,
        // Agents on laptop speakers need echo cancellation; on a headset, without the
        // processing the caller hears the voice as it was said.
        echoCancellation: this.voiceProcessing,
        noiseSuppression: this.voiceProcessing,
        autoGainControl: this.voiceProcessing,
      },
    });
    if (this.source) {
      this.source.disconnect();
      for (const track of this.stream.getTracks()) track.stop();
    }
    this.stream = stream;
    this.source = this.context.createMediaStreamSource(stream);
    this.source.connect(this.capture);
  }

  canChooseSpeaker() {
    return this.context && typeof this.context.setSinkId === "function";
  }

  async useSpeaker(deviceId) {
    if (this.canChooseSpeaker()) await this.context.setSinkId(deviceId || "");
  }

  attach(transport, media) {
    this.payloadType = media.payload_type;
    this.params = media;
    this.datagrams = transport.datagrams.writable.getWriter();
    this.readDatagrams(transport.datagrams.readable.getReader()).catch(() => {});
  }

  async readDatagrams(reader) {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const flow = decodeVarint(value);
      if (flow && this.call && flow[0] === this.call.flow) this.call.receive(value.subarray(flow[1]));
    }
  }

  sendDatagram(packet) {
    // Late audio is worthless: never wait for a full queue, the browser drops what it cannot send.
    if (this.datagrams) this.datagrams.write(packet).catch(() => {});
  }

  startCall(flow) {
    this.endCall();
    this.call = new CallAudio(this, flow, this.params);
    this.playout.port.postMessage({ type: "restart" });
  }

  // A resumed call keeps its codecs; only the flow (and the connection) are new.
  moveCall(flow) {
    if (this.call) this.call.setFlow(flow);
    else this.startCall(flow);
  }

  setHeld(on) {
    if (this.call) this.call.held = on;
    if (this.call && !on) this.call.marker = true;
  }

  endCall() {
    if (this.call) this.call.close();
    this.call = null;
    this.playout?.port.postMessage({ type: "restart" });
  }

  captured({ pcm, level }) {
    this.levels.microphone = this.muted ? 0 : level;
    if (this.echoed) pcm = this.echoed.shift() || new Float32Array(FRAME_SAMPLES);
    if (this.call) {
      if (this.muted) pcm.fill(0);
      this.call.encode(pcm);
    }
  }

  // Echo test: what the speaker plays goes back instead of the microphone, so a caller hears
  // themselves through the whole path (round trip = twice mouth-to-ear, near enough).
  echo(on) {
    this.echoed = on ? [] : null;
    this.playout.port.postMessage({ type: "record", on: on || this.heard !== null });
  }

  fromPlayout(message) {
    switch (message.type) {
      case "level":
        this.levels.speaker = message.level;
        this.onLevels(this.levels);
        break;
      case "stats":
        this.lastStats = message.stats;
        this.onStats(message.stats, this.call);
        break;
      case "played":
        if (this.heard) this.heard.push(message.pcm);
        if (this.echoed) this.echoed.push(message.pcm.slice());
        break;
    }
  }

  // For tests and troubleshooting: keep what the speaker plays from now on.
  recordHeard() {
    this.heard = [];
    this.playout.port.postMessage({ type: "record", on: true });
  }

  // What the speaker played since recordHeard, as 16-bit PCM at 48 kHz in base64.
  takeHeard() {
    const frames = this.heard || [];
    const pcm = new Int16Array(frames.length * FRAME_SAMPLES);
    frames.forEach((frame, i) => {
      for (let s = 0; s < frame.length; s++) pcm[i * FRAME_SAMPLES + s] = Math.max(-1, Math.min(1, frame[s])) * 32767;
    });
    this.heard = [];
    let binary = "";
    const bytes = new Uint8Array(pcm.buffer);
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  }

  close() {
    this.endCall();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.context?.close();
  }
}
