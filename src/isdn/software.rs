//! The software span: a PRI over Unix sockets, for tests and labs where no E1 card (or no
//! DAHDI kernel module) is present. In the span's directory the gateway listens on:
//! - `d`: the D-channel, SOCK_SEQPACKET, one LAPD frame per message without FCS. A connected
//!   peer is layer 1 up; its hanging up is layer 1 down.
//! - `b1` … `b31` (one per B-channel): SOCK_SEQPACKET, each message A-law (or µ-law) bytes,
//!   160 every 20 ms each way while a call is on the channel. The far end connects when its
//!   call is answered; a new connection replaces the old one.
use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_seqpacket::{UnixSeqpacket, UnixSeqpacketListener};
use tokio_util::sync::CancellationToken;

use super::bchannel::BChannel;

/// The B-channels of a span as the calls on them find them.
#[derive(Clone, Default)]
pub struct BChannels {
    slots: Arc<Mutex<BTreeMap<u8, Arc<BChannel>>>>,
}

impl BChannels {
    /// The channel's audio, if the line has it (on a software span: once the far end
    /// connected it).
    pub fn get(&self, channel: u8) -> Option<Arc<BChannel>> {
        self.lock().get(&channel).cloned()
    }

    pub fn set(&self, channel: u8, bchannel: BChannel) {
        self.lock().insert(channel, Arc::new(bchannel));
    }

    /// Drops `bchannel` from its slot, unless the line has replaced it already.
    pub fn forget(&self, channel: u8, bchannel: &Arc<BChannel>) {
        let mut slots = self.lock();
        if slots
            .get(&channel)
            .is_some_and(|b| Arc::ptr_eq(b, bchannel))
        {
            slots.remove(&channel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u8, Arc<BChannel>>> {
        // The map stays whole whatever panicked while holding it.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct SoftwareSpan {
    dir: PathBuf,
    d: UnixSeqpacketListener,
    pub bchannels: BChannels,
}

impl SoftwareSpan {
    /// Listens in `dir` (made if missing; stale sockets replaced) on the D-channel and on each
    /// of `channels`, accepting B-channel connections until `stop`.
    pub fn bind(dir: &Path, channels: &[u8], stop: CancellationToken) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let listen = |name: &str| {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            UnixSeqpacketListener::bind(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        let d = listen("d")?;
        let bchannels = BChannels::default();
        for &channel in channels {
            let mut listener = listen(&format!("b{channel}"))?;
            let slots = bchannels.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        accepted = listener.accept() => accepted,
                        _ = stop.cancelled() => return,
                    };
                    match accepted.map(OwnedFd::from).and_then(BChannel::new) {
                        Ok(bchannel) => slots.set(channel, bchannel),
                        Err(e) => tracing::warn!(channel, "software span: b-channel accept: {e}"),
                    }
                }
            });
        }
        Ok(SoftwareSpan {
            dir: dir.to_path_buf(),
            d,
            bchannels,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The next peer on the D-channel.
    pub async fn accept(&mut self) -> io::Result<UnixSeqpacket> {
        self.d.accept().await
    }
}
