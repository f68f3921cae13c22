//! Reading records back, in order, from any sequence number still on disk: for the uploader
//! (which reads only what the writer has synced), `journal tail` and `journal verify`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame::{self, Decoded};
use super::record;
use super::segment::{self, Header};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("record {wanted} is no longer on disk (the oldest segment starts at {oldest})")]
    Removed { wanted: u64, oldest: u64 },
    #[error("{path}: bad segment header")]
    BadHeader { path: PathBuf },
    #[error("{path} at byte {offset}: {why}")]
    Damaged {
        path: PathBuf,
        offset: u64,
        why: String,
    },
}

pub struct JournalReader {
    dir: PathBuf,
    next_seq: u64,
    open: Option<OpenSegment>,
}

struct OpenSegment {
    file: File,
    path: PathBuf,
    /// Sequence number of the record at `offset`.
    seq: u64,
    offset: u64,
}

impl JournalReader {
    /// A reader whose first record will be `from`.
    pub fn new(dir: &Path, from: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            next_seq: from.max(1),
            open: None,
        }
    }

    /// The sequence number of the record [`JournalReader::next`] returns next.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next record's bytes if it is at most `up_to` and written; `None` otherwise.
    pub fn next(&mut self, up_to: u64) -> Result<Option<Vec<u8>>, ReadError> {
        if self.next_seq > up_to {
            return Ok(None);
        }
        loop {
            if self.open.is_none() && !self.open_segment_holding(self.next_seq)? {
                return Ok(None);
            }
            // Infallible: opened just above.
            let open = self.open.as_mut().expect("a segment is open");
            let Some(payload) = read_frame(open)? else {
                // The segment ends here: its records go on in the next one, if it exists yet.
                let next = self.dir.join(segment::file_name(open.seq));
                if !next.exists() {
                    return Ok(None);
                }
                self.open = None;
                continue;
            };
            let seq = open.seq;
            open.seq += 1;
            if seq < self.next_seq {
                continue;
            }
            let envelope = record::parse(&payload).map_err(|e| ReadError::Damaged {
                path: open.path.clone(),
                offset: open.offset,
                why: e.to_string(),
            })?;
            if envelope.seq != seq {
                return Err(ReadError::Damaged {
                    path: open.path.clone(),
                    offset: open.offset,
                    why: format!("record {} where {seq} was due", envelope.seq),
                });
            }
            self.next_seq += 1;
            return Ok(Some(payload));
        }
    }

    /// Opens the segment that holds `seq`; `false` if the journal has no such record yet.
    fn open_segment_holding(&mut self, seq: u64) -> Result<bool, ReadError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReadError::Io { path, source }
        };
        let segments = segment::list(&self.dir).map_err(io_err(&self.dir))?;
        let Some((first, path)) = segments.iter().rev().find(|(first, _)| *first <= seq) else {
            return match segments.first() {
                Some((oldest, _)) => Err(ReadError::Removed {
                    wanted: seq,
                    oldest: *oldest,
                }),
                None => Ok(false),
            };
        };
        let file = File::open(path).map_err(io_err(path))?;
        let mut header = [0u8; segment::HEADER_LEN];
        match file.read_exact_at(&mut header, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ReadError::BadHeader { path: path.clone() })
            }
            Err(e) => return Err(io_err(path)(e)),
        }
        if Header::decode(&header).map(|h| h.first_seq) != Some(*first) {
            return Err(ReadError::BadHeader { path: path.clone() });
        }
        self.open = Some(OpenSegment {
            file,
            path: path.clone(),
            seq: *first,
            offset: segment::HEADER_LEN as u64,
        });
        Ok(true)
    }
}

/// The payload of the frame at the segment's offset, moving past it; `None` at the end of
/// what is written (a frame still being written counts as not there yet).
fn read_frame(open: &mut OpenSegment) -> Result<Option<Vec<u8>>, ReadError> {
    let io_err = |e| ReadError::Io {
        path: open.path.clone(),
        source: e,
    };
    let mut header = [0u8; frame::HEADER_LEN];
    if !read_at(&open.file, &mut header, open.offset).map_err(io_err)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 || len > frame::MAX_PAYLOAD {
        return Err(ReadError::Damaged {
            path: open.path.clone(),
            offset: open.offset,
            why: format!("frame length {len}"),
        });
    }
    let mut whole = vec![0u8; frame::HEADER_LEN + len];
    if !read_at(&open.file, &mut whole, open.offset).map_err(io_err)? {
        return Ok(None);
    }
    match frame::decode(&whole) {
        Decoded::Frame { payload, len } => {
            let payload = payload.to_vec();
            open.offset += len as u64;
            Ok(Some(payload))
        }
        _ => Err(ReadError::Damaged {
            path: open.path.clone(),
            offset: open.offset,
            why: "checksum".into(),
        }),
    }
}

/// Fills `buf` from `offset`; `false` if the file ends first.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}
