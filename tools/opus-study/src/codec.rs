//! Thin safe wrappers over the FFI: one encoder, one decoder, and (1.6 only) DRED.

use crate::ffi::*;
use std::os::raw::c_int;

#[derive(Clone, Debug)]
pub struct EncSettings {
    /// Input (and encoder) rate: 8000 narrowband, 16000 wideband.
    pub fs: i32,
    pub bitrate: i32,
    pub complexity: i32,
    pub fec: bool,
    pub loss_perc: i32,
    /// DRED depth in 10 ms units (libopus's unit); 0 = off.
    pub dred_10ms: i32,
}

pub struct Enc {
    st: *mut OpusEncoder,
    pub frame: usize,
    buf: Vec<u8>,
}

fn check(what: &str, r: c_int) {
    assert!(r == OPUS_OK, "{what} failed: {r}");
}

impl Enc {
    pub fn new(s: &EncSettings) -> Enc {
        let mut err = 0;
        let st = unsafe { opus_encoder_create(s.fs, 1, APPLICATION_VOIP, &mut err) };
        assert!(!st.is_null() && err == OPUS_OK, "encoder create: {err}");
        let max_bw = if s.fs <= 8000 { BANDWIDTH_NARROWBAND } else { BANDWIDTH_WIDEBAND };
        unsafe {
            check("bitrate", opus_encoder_ctl(st, SET_BITRATE, s.bitrate as c_int));
            check("complexity", opus_encoder_ctl(st, SET_COMPLEXITY, s.complexity as c_int));
            check("max_bw", opus_encoder_ctl(st, SET_MAX_BANDWIDTH, max_bw));
            check("signal", opus_encoder_ctl(st, SET_SIGNAL, SIGNAL_VOICE));
            check("fec", opus_encoder_ctl(st, SET_INBAND_FEC, s.fec as c_int));
            check("loss", opus_encoder_ctl(st, SET_PACKET_LOSS_PERC, s.loss_perc as c_int));
            check("dtx", opus_encoder_ctl(st, SET_DTX, 0 as c_int));
        }
        if s.dred_10ms > 0 {
            #[cfg(feature = "lib16")]
            unsafe {
                check("dred", opus_encoder_ctl(st, SET_DRED_DURATION, s.dred_10ms as c_int));
            }
            #[cfg(not(feature = "lib16"))]
            panic!("DRED needs libopus 1.5+");
        }
        Enc { st, frame: (s.fs / 50) as usize, buf: vec![0; 1500] }
    }

    /// Encoder lookahead in samples at the encoder rate (the decoder's output lags by this).
    pub fn lookahead(&self) -> i32 {
        let mut v: c_int = 0;
        unsafe { check("lookahead", opus_encoder_ctl(self.st, GET_LOOKAHEAD, &mut v as *mut c_int)) };
        v
    }

    pub fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        let n = self.encode_in_place(pcm);
        self.buf[..n].to_vec()
    }

    pub fn encode_in_place(&mut self, pcm: &[i16]) -> usize {
        assert_eq!(pcm.len(), self.frame);
        let n = unsafe {
            opus_encode(self.st, pcm.as_ptr(), self.frame as c_int, self.buf.as_mut_ptr(), self.buf.len() as i32)
        };
        assert!(n > 0, "encode failed: {n}");
        n as usize
    }
}

impl Drop for Enc {
    fn drop(&mut self) {
        unsafe { opus_encoder_destroy(self.st) }
    }
}

pub struct Dec {
    st: *mut OpusDecoder,
    pub frame: usize,
}

impl Dec {
    /// Output rate `fs` (8000 throughout the study); `complexity` ≥ 5 asks 1.5+ for deep PLC.
    pub fn new(fs: i32, complexity: i32) -> Dec {
        let mut err = 0;
        let st = unsafe { opus_decoder_create(fs, 1, &mut err) };
        assert!(!st.is_null() && err == OPUS_OK, "decoder create: {err}");
        if complexity > 0 {
            // 1.3.1 has no decoder complexity; asking is an error there.
            unsafe { check("dec complexity", opus_decoder_ctl(st, SET_COMPLEXITY, complexity as c_int)) };
        }
        Dec { st, frame: (fs / 50) as usize }
    }

    fn run(&mut self, pkt: Option<&[u8]>, fec: bool, out: &mut [i16]) {
        let (p, l) = match pkt {
            Some(p) => (p.as_ptr(), p.len() as i32),
            None => (std::ptr::null(), 0),
        };
        let n = unsafe { opus_decode(self.st, p, l, out.as_mut_ptr(), self.frame as c_int, fec as c_int) };
        assert_eq!(n as usize, self.frame, "decode returned {n}");
    }

    pub fn decode(&mut self, pkt: &[u8], out: &mut [i16]) {
        self.run(Some(pkt), false, out)
    }
    /// The frame before `next`, from `next`'s in-band FEC (LBRR).
    pub fn decode_fec(&mut self, next: &[u8], out: &mut [i16]) {
        self.run(Some(next), true, out)
    }
    /// Packet loss concealment (classic, or deep PLC when enabled and the stream is 16 kHz SILK).
    pub fn conceal(&mut self, out: &mut [i16]) {
        self.run(None, false, out)
    }
}

impl Drop for Dec {
    fn drop(&mut self) {
        unsafe { opus_decoder_destroy(self.st) }
    }
}

/// Does a packet carry LBRR (in-band FEC) for the previous frame? Mono, one 20 ms SILK frame:
/// the range coder's first two symbols are the VAD flag and the LBRR flag, each coded with
/// probability 1/2, so they are the first two bits of the frame's data.
pub fn has_lbrr_bits(pkt: &[u8]) -> bool {
    if pkt.len() < 2 {
        return false;
    }
    let config = pkt[0] >> 3;
    if config >= 16 {
        return false; // CELT-only
    }
    let (frames, sizes, _) = parse(pkt);
    if frames != 1 || sizes[0] == 0 {
        return false;
    }
    let first = data_offset(pkt);
    pkt[first] & 0x40 != 0
}

/// Number of frames, their sizes, and the bytes not in any frame (TOC, framing, padding,
/// extensions such as DRED).
pub fn parse(pkt: &[u8]) -> (usize, [i16; 48], usize) {
    let mut toc = 0u8;
    let mut frames = [std::ptr::null(); 48];
    let mut sizes = [0i16; 48];
    let mut off: c_int = 0;
    let n = unsafe {
        opus_packet_parse(pkt.as_ptr(), pkt.len() as i32, &mut toc, frames.as_mut_ptr(), sizes.as_mut_ptr(), &mut off)
    };
    assert!(n > 0, "packet parse: {n}");
    let n = n as usize;
    let in_frames: usize = sizes[..n].iter().map(|&s| s as usize).sum();
    (n, sizes, pkt.len() - in_frames)
}

fn data_offset(pkt: &[u8]) -> usize {
    let mut toc = 0u8;
    let mut frames = [std::ptr::null(); 48];
    let mut sizes = [0i16; 48];
    let mut off: c_int = 0;
    unsafe {
        opus_packet_parse(pkt.as_ptr(), pkt.len() as i32, &mut toc, frames.as_mut_ptr(), sizes.as_mut_ptr(), &mut off);
        frames[0].offset_from(pkt.as_ptr()) as usize
    }
}

pub fn has_lbrr(pkt: &[u8]) -> bool {
    #[cfg(feature = "lib16")]
    {
        let r = unsafe { opus_packet_has_lbrr(pkt.as_ptr(), pkt.len() as i32) };
        debug_assert_eq!(r == 1, has_lbrr_bits(pkt));
        r == 1
    }
    #[cfg(not(feature = "lib16"))]
    has_lbrr_bits(pkt)
}

#[cfg(feature = "lib16")]
pub struct Dred {
    dec: *mut OpusDREDDecoder,
    state: *mut OpusDRED,
}

#[cfg(feature = "lib16")]
impl Dred {
    pub fn new() -> Dred {
        let mut err = 0;
        let dec = unsafe { opus_dred_decoder_create(&mut err) };
        assert!(!dec.is_null() && err == OPUS_OK, "dred decoder create: {err}");
        let state = unsafe { opus_dred_alloc(&mut err) };
        assert!(!state.is_null() && err == OPUS_OK, "dred alloc: {err}");
        Dred { dec, state }
    }

    /// Parses the DRED in `pkt` (entropy decoding only). Returns how many samples back from
    /// the packet's start it covers (at `fs`), 0 when the packet has none.
    pub fn parse(&mut self, pkt: &[u8], max_samples: i32, fs: i32) -> i32 {
        let mut end: c_int = 0;
        let r = unsafe {
            opus_dred_parse(self.dec, self.state, pkt.as_ptr(), pkt.len() as i32, max_samples, fs, &mut end, 1)
        };
        assert!(r >= 0, "dred parse: {r}");
        r
    }

    /// Runs the DRED decoder network over what `parse` read.
    pub fn process(&mut self) {
        let r = unsafe { opus_dred_process(self.dec, self.state, self.state) };
        assert!(r == OPUS_OK, "dred process: {r}");
    }

    /// Synthesises one frame that starts `offset` samples before the DRED packet's audio.
    pub fn decode(&self, dec: &mut Dec, offset: i32, out: &mut [i16]) {
        let n = unsafe { opus_decoder_dred_decode(dec.st, self.state, offset, out.as_mut_ptr(), dec.frame as i32) };
        assert_eq!(n as usize, dec.frame, "dred decode: {n}");
    }
}

#[cfg(feature = "lib16")]
impl Drop for Dred {
    fn drop(&mut self) {
        unsafe {
            opus_dred_free(self.state);
            opus_dred_decoder_destroy(self.dec);
        }
    }
}
