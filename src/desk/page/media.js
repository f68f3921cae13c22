// The desk's audio: microphone and speaker through a 48 kHz AudioContext and its worklets,
// Opus through WebCodecs, and RTP in WebTransport datagrams framed as the agent protocol says
// (docs/agent-protocol.md §7): a QUIC varint flow id, then one RTP packet. Loss protection both
// ways (§7.1) is in ./protection.js.
import { FRAME_SAMPLES } from "./jitter.js";
import { RED_PAYLOAD_TYPE, RedHistory, TICKS_PER_FRAME, parseRed, readFeedback, writeFeedback } from "./protection.js";
import { InOrder } from "./reorder.js";

const SAMPLE_RATE = 48000;
const RTP_VERSION = 0x80;
const FRAME_MICROS = 20000;
// Bitrate while whole frames are repeated: in-band FEC is off then, and 24 kbit/s is what
// narrowband speech needs without it (src/media/opus.rs).
const REDUNDANT_BITRATE = 24000;

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
    this.received = 0;
    this.order = new InOrder();
    this.remoteSsrc = null;
    this.upstreamLoss = null;
    this.red = new RedHistory();
    this.protection = null; // [redundant, loss percent] the encoder is configured for
    this.params = params;
    this.encoder = new AudioEncoder({
      output: (chunk) => this.send(chunk),
      error: (e) => media.onError(`Microphone encoder: ${e.message}`),
    });
    this.protect(false, 0);
    this.decoding = new Map(); // decoder timestamp → the packet's { seq, ts, arrival, copy }
    this.decoded = 0;
    this.decoder = new AudioDecoder({
      output: (data) => this.play(data),
      error: (e) => media.onError(`Audio decoder: ${e.message}`),
    });
    this.decoder.configure({ codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1 });
  }

  // How the encoder protects what it sends, as the gateway's reports ask: whole earlier frames
  // in each packet (in-band FEC adds nothing then), or in-band FEC planned for the reported loss.
  // The encoder is told of changes only.
  protect(redundant, lossPct) {
    const bitrate = this.params.bitrate || REDUNDANT_BITRATE;
    const wanted = redundant ? [true, 0] : [false, this.params.fec ? lossPct : 0];
    if (this.protection && this.protection[0] === wanted[0] && Math.abs(this.protection[1] - wanted[1]) < 5) return;
    this.protection = wanted;
    this.encoder.configure({
      codec: "opus",
      sampleRate: SAMPLE_RATE,
      numberOfChannels: 1,
      bitrate: redundant ? Math.min(bitrate, REDUNDANT_BITRATE) : bitrate,
      opus: {
        frameDuration: 20000,
        complexity: 9,
        application: "voip",
        signal: "voice",
        useinbandfec: !redundant && !!this.params.fec,
        packetlossperc: wanted[1],
      },
    });
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
    const frame = new Uint8Array(chunk.byteLength);
    chunk.copyTo(frame);
    const opus = this.media.payloadType;
    const redundant = this.red.repeats();
    const payload = redundant ? this.red.payload(frame, opus) : frame;
    this.red.remember(frame);
    const header = this.flowBytes.length;
    const packet = new Uint8Array(header + 12 + payload.length);
    packet.set(this.flowBytes);
    const view = new DataView(packet.buffer, header);
    view.setUint8(0, RTP_VERSION);
    view.setUint8(1, (this.marker ? 0x80 : 0) | (redundant ? RED_PAYLOAD_TYPE : opus));
    view.setUint16(2, this.seq);
    view.setUint32(4, this.ts);
    view.setUint32(8, this.ssrc);
    packet.set(payload, header + 12);
    this.marker = false;
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME_SAMPLES) >>> 0;
    this.media.sendDatagram(packet);
  }

  receive(packet) {
    if (packet.length < 12 || (packet[0] & 0xc0) !== RTP_VERSION) return;
    const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    if (isRtcp(packet)) return this.feedback(view);
    const opus = this.media.payloadType;
    const payloadType = packet[1] & 0x7f;
    if (payloadType !== opus && payloadType !== RED_PAYLOAD_TYPE) return;
    if (this.held) return;
    const ssrc = view.getUint32(8);
    if (ssrc !== this.remoteSsrc) {
      // A new stream (the call resumed on another flow, say): start the buffer afresh.
      this.remoteSsrc = ssrc;
      this.order = new InOrder();
      this.media.playout.port.postMessage({ type: "restart" });
    }
    const headerLength = 12 + 4 * (packet[0] & 0x0f);
    if (packet.length <= headerLength) return;
    const payload = packet.subarray(headerLength);
    const red = payloadType === RED_PAYLOAD_TYPE ? parseRed(payload, opus) : null;
    if (payloadType === RED_PAYLOAD_TYPE && !red) return;
    const seq = view.getUint16(2);
    const ts = view.getUint32(4);
    // Arrival on the audio clock, the clock playout runs on; a packet held back for the
    // decoder's order still arrived when it did.
    const arrival = this.media.context.currentTime;
    this.received += 1;
    // Held back at most about as long as the jitter buffer holds a frame.
    const wait = Math.floor((this.media.lastStats?.targetMs ?? 0) / 20);
    // Copies of frames whose packet did not come (yet) first, oldest first: they stand in
    // only if it never does.
    const packets = (red ? red.copies : []).map(({ back, payload: copy }) => ({
      seq: (seq - back) & 0xffff,
      ts: (ts - back * TICKS_PER_FRAME) >>> 0,
      payload: copy,
      arrival,
      copy: true,
    }));
    packets.push({ seq, ts, payload: red ? red.primary : payload, arrival, copy: false });
    for (const packet of packets) {
      for (const ready of this.order.add(packet, wait)) this.decode(ready);
    }
  }

  decode(packet) {
    if (packet.afterCopy) {
      const { seq, ts, arrival } = packet;
      this.media.playout.port.postMessage({ type: "arrived", seq, ts, arrival });
      return;
    }
    if (this.decoder.state !== "configured" || packet.payload.length === 0) return;
    const key = this.decoded++ * FRAME_MICROS;
    this.decoding.set(key, packet);
    this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: key, data: packet.payload }));
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
          {
            type: "frame",
            seq: (packet.seq + n) & 0xffff,
            ts: (packet.ts + n * FRAME_SAMPLES) >>> 0,
            pcm: piece,
            arrival: packet.arrival,
            copy: packet.copy,
          },
          [piece.buffer],
        );
      }
    }
    data.close();
  }

  // The gateway's feedback on our stream: how much of what we send reaches it, and how many
  // frames back our packets should repeat.
  feedback(view) {
    const { report, request } = readFeedback(view);
    if (!report || report.ssrc !== this.ssrc) return; // about a stream we no longer send
    this.upstreamLoss = (report.fractionLost / 256) * 100;
    if (!request) return;
    this.red.setSpan(request.span);
    this.protect(request.span > 0, Math.floor((report.fractionLost * 100) / 256));
    this.media.onPeerConcealed(request.concealed);
  }

  // The page's own feedback on the gateway's stream, from the playout's counts.
  report(feedback) {
    if (this.remoteSsrc === null || this.held) return;
    const rtcp = writeFeedback({
      reporterSsrc: this.ssrc,
      report: { ssrc: this.remoteSsrc, ...feedback },
      span: feedback.span,
      concealed: feedback.concealed,
    });
    const packet = new Uint8Array(this.flowBytes.length + rtcp.length);
    packet.set(this.flowBytes);
    packet.set(rtcp, this.flowBytes.length);
    this.media.sendDatagram(packet);
  }

  setHeld(on) {
    this.held = on;
    // Media time passes unsent: the copies held no longer precede the next packet.
    this.red.forget();
    if (!on) this.marker = true;
  }

  close() {
    for (const codec of [this.encoder, this.decoder]) {
      if (codec.state !== "closed") codec.close();
    }
  }
}

// The devices and codecs of a logged-in desk; calls come and go on it.
export class Media {
  constructor({ onError, onLevels, onStats, onPeerConcealed = () => {} }) {
    this.onError = onError;
    this.onLevels = onLevels;
    this.onStats = onStats;
    this.onPeerConcealed = onPeerConcealed;
    this.call = null;
    this.muted = false;
    this.payloadType = 111;
    this.params = {};
    this.datagrams = null;
    this.levels = { microphone: 0, speaker: 0 };
    this.heard = null;
    this.endedStats = null; // the playout's counts for the last stream that ended
    this.echoed = null;
    this.spoken = []; // frames to send instead of the microphone's (tests)
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
    this.call?.setHeld(on);
    this.playout?.port.postMessage({ type: "held", on });
  }

  endCall() {
    if (this.call) this.call.close();
    this.call = null;
    this.playout?.port.postMessage({ type: "restart" });
  }

  captured({ pcm, level }) {
    this.levels.microphone = this.muted ? 0 : level;
    if (this.echoed) pcm = this.echoed.shift() || new Float32Array(FRAME_SAMPLES);
    else if (this.spoken.length) pcm = this.spoken.shift();
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
      case "ended":
        this.endedStats = message.stats;
        break;
      case "feedback":
        this.call?.report(message.feedback);
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

  // For tests: send this (16-bit PCM at 48 kHz in base64) instead of the microphone, once.
  say(base64) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
    for (let at = 0; at < pcm.length; at += FRAME_SAMPLES) {
      const frame = new Float32Array(FRAME_SAMPLES);
      pcm.subarray(at, at + FRAME_SAMPLES).forEach((s, i) => (frame[i] = s / 32768));
      this.spoken.push(frame);
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
