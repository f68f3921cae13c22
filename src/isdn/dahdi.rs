//! A span on a DAHDI card: the D-channel and the B-channels as `/dev/dahdi/channel` bound to
//! their timeslots. The D-channel is configured `hardhdlc` by `dahdi_cfg` (docs/e1.md): each
//! read is one frame with its 2-octet FCS (checked by the card) and each write one frame with
//! 2 octets of room the card fills with the FCS. Line alarms arrive as events: a read fails
//! with ELAST and `DAHDI_GETEVENT` says which. B-channels are read and written as G.711 blocks
//! of 160 octets (20 ms).
//!
//! A thin shell: everything above it is the same code the software span runs, tested against
//! libpri. DAHDI's kernel modules cannot load on the build machines, so this file is compiled
//! in CI but has never met a card there.
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;

use super::bchannel::BChannel;
use super::q931::ie::Law;
use super::software::BChannels;

const CHANNEL_DEVICE: &str = "/dev/dahdi/channel";
/// DAHDI's ioctl type.
const DAHDI_CODE: u32 = 0xDA;
/// "No data, an event waits": what a read fails with when `DAHDI_GETEVENT` has something.
const ELAST: i32 = 500;
const EVENT_ALARM: i32 = 4;
const EVENT_NOALARM: i32 = 5;
const EVENT_ABORT: i32 = 6;
const EVENT_OVERRUN: i32 = 7;
const EVENT_BADFCS: i32 = 8;
const LAW_MULAW: i32 = 1;
const LAW_ALAW: i32 = 2;
/// Octets a B-channel read or write carries: 20 ms.
const BLOCK: i32 = 160;
/// Timeslots an E1 span takes in DAHDI's channel numbering.
const E1_TIMESLOTS: u32 = 31;
/// The D-channel's timeslot on an E1.
const DCHANNEL_TIMESLOT: u8 = 16;

/// Linux's `_IOW(type, nr, int)` and `_IOR(type, nr, int)`.
const fn iow_int(nr: u32) -> u64 {
    (1u64 << 30) | (4 << 16) | ((DAHDI_CODE as u64) << 8) | nr as u64
}

const fn ior_int(nr: u32) -> u64 {
    (2u64 << 30) | (4 << 16) | ((DAHDI_CODE as u64) << 8) | nr as u64
}

const SET_BLOCKSIZE: u64 = iow_int(1);
const GETEVENT: u64 = ior_int(8);
const SPECIFY: u64 = iow_int(38);
const SETLAW: u64 = iow_int(39);

/// DAHDI numbers channels across spans in order; with E1 spans only, timeslot `ts` of span
/// `span` is this channel.
pub fn channel_number(span: u32, timeslot: u8) -> u32 {
    (span.max(1) - 1) * E1_TIMESLOTS + u32::from(timeslot)
}

fn ioctl_int(fd: &OwnedFd, request: u64, value: &mut i32) -> io::Result<()> {
    // SAFETY: `value` is a valid, writable int for the duration of the call, which is what
    // these DAHDI requests read or write; the descriptor is ours.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, value as *mut i32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `/dev/dahdi/channel` bound to DAHDI channel `channel`, non-blocking.
fn open_channel(channel: u32) -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(CHANNEL_DEVICE)
        .map_err(|e| io::Error::new(e.kind(), format!("{CHANNEL_DEVICE}: {e}")))?;
    let fd = OwnedFd::from(file);
    let mut number = channel as i32;
    ioctl_int(&fd, SPECIFY, &mut number)
        .map_err(|e| io::Error::new(e.kind(), format!("dahdi channel {channel}: {e}")))?;
    Ok(fd)
}

/// A span's B-channels, opened for audio in `law` with 20 ms blocks.
pub fn open_bchannels(span: u32, channels: &[u8], law: Law) -> io::Result<BChannels> {
    let bchannels = BChannels::default();
    for &timeslot in channels {
        let fd = open_channel(channel_number(span, timeslot))?;
        let mut block = BLOCK;
        ioctl_int(&fd, SET_BLOCKSIZE, &mut block)?;
        let mut law = match law {
            Law::ALaw => LAW_ALAW,
            Law::MuLaw => LAW_MULAW,
        };
        ioctl_int(&fd, SETLAW, &mut law)?;
        bchannels.set(timeslot, BChannel::new(fd)?);
    }
    Ok(bchannels)
}

/// What the D-channel gave.
pub enum Got {
    /// A frame of this many octets (its FCS taken off) in the buffer.
    Frame(usize),
    /// The span's alarm came (layer 1 down) or cleared (up).
    Alarm(bool),
    /// The card saw a bad frame (FCS, abort, overrun): for the metrics.
    Problem(&'static str),
}

/// The span's D-channel.
pub struct Dchannel {
    fd: AsyncFd<OwnedFd>,
}

impl Dchannel {
    pub fn open(span: u32) -> io::Result<Self> {
        let fd = open_channel(channel_number(span, DCHANNEL_TIMESLOT))?;
        // SAFETY: an `OwnedFd` holds its descriptor open, the same one, until it is dropped
        // with the `AsyncFd`.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Dchannel { fd })
    }

    /// The next frame or line event.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Got> {
        loop {
            let mut ready = self.fd.readable().await?;
            let fd = ready.get_inner().as_raw_fd();
            // SAFETY: `buf` is valid and writable for `buf.len()` octets during the call.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 2 {
                return Ok(Got::Frame(n as usize - 2));
            }
            if n >= 0 {
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(ELAST) => {
                    let mut event = 0;
                    ioctl_int(ready.get_inner(), GETEVENT, &mut event)?;
                    match event {
                        EVENT_ALARM => return Ok(Got::Alarm(true)),
                        EVENT_NOALARM => return Ok(Got::Alarm(false)),
                        EVENT_BADFCS => return Ok(Got::Problem("frame with a bad FCS")),
                        EVENT_ABORT => return Ok(Got::Problem("frame aborted")),
                        EVENT_OVERRUN => return Ok(Got::Problem("receive overrun")),
                        _ => continue,
                    }
                }
                Some(libc::EAGAIN) => ready.clear_ready(),
                _ => return Err(e),
            }
        }
    }

    /// Sends a frame; the card adds its FCS in the 2 octets after it.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(frame.len() + 2);
        out.extend_from_slice(frame);
        out.extend_from_slice(&[0, 0]);
        // SAFETY: `out` is valid and readable for `out.len()` octets during the call.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), out.as_ptr().cast(), out.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_and_channel_numbering_are_dahdis() {
        // As <dahdi/user.h> defines them on Linux: _IOW(0xDA, 38, int) and so on.
        assert_eq!(SPECIFY, 0x4004_DA26);
        assert_eq!(SET_BLOCKSIZE, 0x4004_DA01);
        assert_eq!(SETLAW, 0x4004_DA27);
        assert_eq!(GETEVENT, 0x8004_DA08);
        assert_eq!(channel_number(1, 16), 16);
        assert_eq!(channel_number(2, 1), 32);
    }

    #[test]
    fn without_dahdi_opening_a_span_says_which_device_is_missing() {
        if std::path::Path::new(CHANNEL_DEVICE).exists() {
            return;
        }
        let error = Dchannel::open(1).err().expect("no DAHDI here");
        assert!(error.to_string().contains(CHANNEL_DEVICE), "{error}");
    }
}
