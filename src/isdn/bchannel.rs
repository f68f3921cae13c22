//! A B-channel's audio as the call's task reads and writes it: a non-blocking file descriptor
//! that carries 64 kbit/s of G.711 as byte messages. A DAHDI channel (`/dev/dahdi/channel`,
//! bound to its timeslot, in audio mode) and a software span's B-channel socket are both this,
//! so the E1 leg does not know which it has.
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// One B-channel, owned by the call on it.
#[derive(Debug)]
pub struct BChannel {
    fd: OwnedFd,
}

impl BChannel {
    /// Takes an open descriptor and makes it non-blocking.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own; no memory is passed.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(BChannel { fd })
    }

    /// What has arrived (one message, or one DAHDI block), or `None` when nothing waits.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is a valid writable slice of `buf.len()` bytes for the call.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        }
    }

    /// Sends audio toward the line. A full buffer drops it: late audio is worthless.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: `bytes` is a valid readable slice of `bytes.len()` bytes for the call.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
            _ => Err(e),
        }
    }

    /// Reads and drops whatever is waiting (audio from before the call).
    pub fn flush(&self) {
        let mut buf = [0u8; 1024];
        while let Ok(Some(n)) = self.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}
