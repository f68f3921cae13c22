// The desk's audio worklets, on the audio rendering thread of a 48 kHz AudioContext (the
// browser converts from and to the devices' own rates).
//
// "capture" cuts the microphone into 20 ms frames for the encoder; "playout" runs the jitter
// buffer and plays one decoded frame per 20 ms of the audio clock, so its pace is the sound
// card's, not the main thread's; it also says when the gateway is due a report on what arrived.
import { FRAME_SAMPLES, JitterBuffer, peak } from "./jitter.js";

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Float32Array(FRAME_SAMPLES);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    let at = 0;
    while (at < input.length) {
      const n = Math.min(input.length - at, FRAME_SAMPLES - this.filled);
      this.frame.set(input.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === FRAME_SAMPLES) {
        const pcm = this.frame;
        this.port.postMessage({ pcm, level: peak(pcm) }, [pcm.buffer]);
        this.frame = new Float32Array(FRAME_SAMPLES);
        this.filled = 0;
      }
    }
    return true;
  }
}

class Playout extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new JitterBuffer();
    this.current = new Float32Array(FRAME_SAMPLES);
    this.at = FRAME_SAMPLES;
    this.frames = 0;
    this.recording = false;
    this.port.onmessage = ({ data }) => {
      switch (data.type) {
        case "frame":
          // Arrival on the audio clock, the clock playout runs on, taken as the packet came.
          this.buffer.push(data.seq, data.ts, data.pcm, data.arrival ?? currentTime, data.copy);
          break;
        case "arrived":
          this.buffer.arrivedAfterCopy(data.seq, data.ts, data.arrival);
          break;
        case "restart":
          // The counts of the stream that ended, for tests and troubleshooting.
          if (this.buffer.stats.received > 0) this.port.postMessage({ type: "ended", stats: { ...this.buffer.stats } });
          this.buffer = new JitterBuffer();
          break;
        case "held":
          this.buffer.setHeld(data.on);
          break;
        case "record":
          this.recording = data.on;
          break;
      }
    };
  }

  process(_inputs, outputs) {
    const output = outputs[0][0];
    let written = 0;
    while (written < output.length) {
      if (this.at === FRAME_SAMPLES) this.nextFrame(currentTime + written / sampleRate);
      const n = Math.min(output.length - written, FRAME_SAMPLES - this.at);
      output.set(this.current.subarray(this.at, this.at + n), written);
      this.at += n;
      written += n;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(output);
    return true;
  }

  nextFrame(now) {
    const { pcm } = this.buffer.pop(now);
    const feedback = this.buffer.pollFeedback(now);
    if (feedback) this.port.postMessage({ type: "feedback", feedback });
    this.current = pcm;
    this.at = 0;
    this.frames += 1;
    if (this.recording) this.port.postMessage({ type: "played", pcm: pcm.slice() });
    if (this.frames % 5 === 0) this.port.postMessage({ type: "level", level: peak(pcm) });
    if (this.frames % 50 === 0) this.port.postMessage({ type: "stats", stats: { ...this.buffer.stats } });
  }
}

registerProcessor("capture", Capture);
registerProcessor("playout", Playout);
