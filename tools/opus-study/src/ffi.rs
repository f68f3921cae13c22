//! The few libopus entry points the study needs, declared once for both backends.
//!
//! Which library they resolve to is chosen by the build's feature: `lib13` links the system
//! libopus 1.3.1 through the `opus` 0.3.1 crate (audiopus_sys, pkg-config), `lib16` the static
//! libopus 1.6.1 that `opusic-sys` builds with cmake. The two export the same symbols, so one
//! binary holds exactly one of them.

use std::os::raw::{c_char, c_int, c_uchar};

#[repr(C)]
pub struct OpusEncoder {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OpusDecoder {
    _private: [u8; 0],
}

pub const OPUS_OK: c_int = 0;
pub const APPLICATION_VOIP: c_int = 2048;
pub const SIGNAL_VOICE: c_int = 3001;
pub const BANDWIDTH_NARROWBAND: c_int = 1101;
pub const BANDWIDTH_WIDEBAND: c_int = 1103;

pub const SET_BITRATE: c_int = 4002;
pub const SET_MAX_BANDWIDTH: c_int = 4004;
pub const SET_COMPLEXITY: c_int = 4010;
pub const SET_INBAND_FEC: c_int = 4012;
pub const SET_PACKET_LOSS_PERC: c_int = 4014;
pub const SET_DTX: c_int = 4016;
pub const SET_SIGNAL: c_int = 4024;
pub const GET_LOOKAHEAD: c_int = 4027;
#[cfg(feature = "lib16")]
pub const SET_DRED_DURATION: c_int = 4050;

extern "C" {
    pub fn opus_get_version_string() -> *const c_char;
    pub fn opus_encoder_create(
        fs: i32,
        channels: c_int,
        application: c_int,
        error: *mut c_int,
    ) -> *mut OpusEncoder;
    pub fn opus_encoder_destroy(st: *mut OpusEncoder);
    pub fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;
    pub fn opus_encode(
        st: *mut OpusEncoder,
        pcm: *const i16,
        frame_size: c_int,
        data: *mut c_uchar,
        max_data_bytes: i32,
    ) -> i32;
    pub fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut OpusDecoder;
    pub fn opus_decoder_destroy(st: *mut OpusDecoder);
    pub fn opus_decoder_ctl(st: *mut OpusDecoder, request: c_int, ...) -> c_int;
    pub fn opus_decode(
        st: *mut OpusDecoder,
        data: *const c_uchar,
        len: i32,
        pcm: *mut i16,
        frame_size: c_int,
        decode_fec: c_int,
    ) -> c_int;
    pub fn opus_packet_parse(
        data: *const c_uchar,
        len: i32,
        out_toc: *mut c_uchar,
        frames: *mut *const c_uchar,
        size: *mut i16,
        payload_offset: *mut c_int,
    ) -> c_int;
}

#[cfg(feature = "lib16")]
#[repr(C)]
pub struct OpusDREDDecoder {
    _private: [u8; 0],
}
#[cfg(feature = "lib16")]
#[repr(C)]
pub struct OpusDRED {
    _private: [u8; 0],
}

#[cfg(feature = "lib16")]
extern "C" {
    pub fn opus_packet_has_lbrr(packet: *const c_uchar, len: i32) -> c_int;
    pub fn opus_dred_decoder_create(error: *mut c_int) -> *mut OpusDREDDecoder;
    pub fn opus_dred_decoder_destroy(dec: *mut OpusDREDDecoder);
    pub fn opus_dred_alloc(error: *mut c_int) -> *mut OpusDRED;
    pub fn opus_dred_free(dred: *mut OpusDRED);
    pub fn opus_dred_parse(
        dred_dec: *mut OpusDREDDecoder,
        dred: *mut OpusDRED,
        data: *const c_uchar,
        len: i32,
        max_dred_samples: i32,
        sampling_rate: i32,
        dred_end: *mut c_int,
        defer_processing: c_int,
    ) -> c_int;
    pub fn opus_dred_process(
        dred_dec: *mut OpusDREDDecoder,
        src: *const OpusDRED,
        dst: *mut OpusDRED,
    ) -> c_int;
    pub fn opus_decoder_dred_decode(
        st: *mut OpusDecoder,
        dred: *const OpusDRED,
        dred_offset: i32,
        pcm: *mut i16,
        frame_size: i32,
    ) -> c_int;
}

/// Makes sure the backend crate's native library is linked (and names it).
pub fn backend_version() -> String {
    #[cfg(feature = "lib13")]
    let _ = opus::version();
    #[cfg(feature = "lib16")]
    let _ = unsafe { opusic_sys::opus_get_version_string() };
    let p = unsafe { opus_get_version_string() };
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}
