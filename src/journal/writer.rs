//! The journal's writer: appends records to the newest segment, rotates, syncs, and on
//! opening recovers from whatever a crash or power loss left.
//!
//! Blocking file IO on purpose: it runs on a thread of its own, and
//! the group-commit policy (when to call [`JournalWriter::sync`]) is the caller's.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::frame;
use super::record::{self, Hash, JournalId, RecordType, GENESIS};
use super::segment::{self, Header, Tail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A segment is closed and a new one begun past this size.
    pub segment_bytes: u64,
    /// All segments together never grow past this; 0 means no bound but the disk.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            segment_bytes: 8 << 20,
            max_bytes: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a journal segment (bad header); move it away to start a new journal")]
    BadSegment { path: PathBuf },
    #[error("{path}: belongs to journal {found}, the segment before it to {expected}")]
    Mixed {
        path: PathBuf,
        found: JournalId,
        expected: JournalId,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Writing failed (a full disk, most likely); nothing of the record stayed in the file.
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The journal is at its `max_bytes`.
    #[error("the journal is at its max_bytes ({max_bytes} bytes) and nothing can be removed")]
    Full { max_bytes: u64 },
    #[error("a record of {0} bytes is larger than a record may be")]
    TooLarge(usize),
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// A journal was created: the directory held no segment.
    pub created: bool,
    /// The last record kept, 0 if none.
    pub last_seq: u64,
    /// Bytes cut from the newest segment's tail (a torn or damaged last write) and where they
    /// were set aside.
    pub cut: Option<(u64, PathBuf)>,
    /// Why those bytes could not be read as records.
    pub cut_because: Option<String>,
}

pub struct JournalWriter {
    dir: PathBuf,
    journal: JournalId,
    limits: Limits,
    file: File,
    path: PathBuf,
    segment_len: u64,
    segment_records: u64,
    /// Bytes in the segments before the current one.
    closed_bytes: u64,
    next_seq: u64,
    last_hash: Hash,
    synced_seq: u64,
}

impl JournalWriter {
    /// Opens the journal in `dir` (created if need be), cutting a torn tail from its newest
    /// segment. Only the newest segment is read, so opening takes as long for a journal of a
    /// gigabyte as for one of a few records.
    pub fn open(dir: &Path, limits: Limits) -> Result<(Self, Recovery), OpenError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        remove_leftover_temporaries(dir).map_err(io_err(dir))?;
        let segments = segment::list(dir).map_err(io_err(dir))?;
        let Some((_, newest)) = segments.last() else {
            let header = Header {
                journal: JournalId::random(),
                first_seq: 1,
                prev: GENESIS,
            };
            let (file, path) = create_segment(dir, &header).map_err(io_err(dir))?;
            let writer = Self::at(dir, limits, file, path, header, 0, 0);
            let recovery = Recovery {
                created: true,
                last_seq: 0,
                cut: None,
                cut_because: None,
            };
            return Ok((writer, recovery));
        };
        let bytes = std::fs::read(newest).map_err(io_err(newest))?;
        let scan = segment::scan(&bytes).map_err(|_| OpenError::BadSegment {
            path: newest.clone(),
        })?;
        if let [.., (_, before), _] = &segments[..] {
            check_same_journal(before, newest, scan.header.journal)?;
        }
        let mut recovery = Recovery {
            created: false,
            last_seq: scan.last_seq,
            cut: None,
            cut_because: None,
        };
        if scan.valid_len < bytes.len() {
            let aside =
                newest.with_extension(format!("{}.torn-{}", segment::EXTENSION, scan.valid_len));
            std::fs::write(&aside, &bytes[scan.valid_len..]).map_err(io_err(&aside))?;
            recovery.cut = Some(((bytes.len() - scan.valid_len) as u64, aside));
            recovery.cut_because = Some(match &scan.tail {
                Tail::Torn => "the last write was cut short".to_string(),
                Tail::Damaged(why) => why.clone(),
                Tail::Clean => "unreadable".to_string(),
            });
        }
        let file = OpenOptions::new()
            .append(true)
            .open(newest)
            .map_err(io_err(newest))?;
        if recovery.cut.is_some() {
            file.set_len(scan.valid_len as u64)
                .map_err(io_err(newest))?;
            file.sync_all().map_err(io_err(newest))?;
        }
        let mut closed_bytes = 0;
        for (_, path) in &segments[..segments.len() - 1] {
            closed_bytes += std::fs::metadata(path).map_err(io_err(path))?.len();
        }
        let mut writer = Self::at(
            dir,
            limits,
            file,
            newest.clone(),
            scan.header,
            scan.records,
            closed_bytes,
        );
        writer.segment_len = scan.valid_len as u64;
        writer.next_seq = scan.last_seq + 1;
        writer.last_hash = scan.last_hash;
        writer.synced_seq = scan.last_seq;
        Ok((writer, recovery))
    }

    fn at(
        dir: &Path,
        limits: Limits,
        file: File,
        path: PathBuf,
        header: Header,
        records: u64,
        closed_bytes: u64,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            journal: header.journal,
            limits,
            file,
            path,
            segment_len: segment::HEADER_LEN as u64,
            segment_records: records,
            closed_bytes,
            next_seq: header.first_seq,
            last_hash: header.prev,
            synced_seq: header.first_seq - 1,
        }
    }

    pub fn journal(&self) -> JournalId {
        self.journal
    }

    /// The last record written (0 if none): safe from a crash of this process.
    pub fn written_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The last record synced to disk: safe from power loss too. Only these may leave the box,
    /// or a record lost with the power could come back under the same key with other content.
    pub fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.closed_bytes + self.segment_len
    }

    /// Appends one record and returns its sequence number. On an error the record is not in
    /// the journal and its sequence number is still free: the caller keeps it and tries again.
    pub fn append(
        &mut self,
        at: SystemTime,
        kind: RecordType,
        data: &serde_json::Value,
    ) -> Result<u64, AppendError> {
        let seq = self.next_seq;
        let payload = record::encode(self.journal, seq, &self.last_hash, at, kind, data);
        if payload.len() > frame::MAX_PAYLOAD {
            return Err(AppendError::TooLarge(payload.len()));
        }
        let framed = frame::encode(&payload);
        let len = framed.len() as u64;
        if self.limits.max_bytes > 0 && self.bytes_on_disk() + len > self.limits.max_bytes {
            return Err(AppendError::Full {
                max_bytes: self.limits.max_bytes,
            });
        }
        if self.segment_records > 0 && self.segment_len + len > self.limits.segment_bytes {
            self.rotate()?;
        }
        if let Err(source) = self.file.write_all(&framed) {
            // A part written before the disk filled must not stay: the next record would
            // follow garbage. If even this fails, the next open cuts the tail.
            let _ = self.file.set_len(self.segment_len);
            return Err(AppendError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.segment_len += len;
        self.segment_records += 1;
        self.next_seq += 1;
        self.last_hash = record::hash(&payload);
        Ok(seq)
    }

    /// The last record of the oldest segment, if there is more than the one being written:
    /// what [`JournalWriter::remove_through`] takes to free the oldest segment alone.
    pub fn oldest_segment_end(&self) -> io::Result<Option<u64>> {
        let segments = segment::list(&self.dir)?;
        Ok(segments.get(1).map(|(next_first, _)| next_first - 1))
    }

    /// Makes every record written so far survive power loss (fdatasync).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.synced_seq == self.written_seq() {
            return Ok(());
        }
        self.file.sync_data()?;
        self.synced_seq = self.written_seq();
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), AppendError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AppendError::Io { path, source }
        };
        self.sync().map_err(io_err(&self.path))?;
        let header = Header {
            journal: self.journal,
            first_seq: self.next_seq,
            prev: self.last_hash,
        };
        let (file, path) = create_segment(&self.dir, &header).map_err(io_err(&self.dir))?;
        self.closed_bytes += self.segment_len;
        self.file = file;
        self.path = path;
        self.segment_len = segment::HEADER_LEN as u64;
        self.segment_records = 0;
        Ok(())
    }

    /// Deletes the segments whose every record is at most `seq` (what every sink has
    /// acknowledged), never the one being written. Returns how many bytes that freed.
    pub fn remove_through(&mut self, seq: u64) -> io::Result<u64> {
        self.remove_through_older_than(seq, None)
    }

    /// [`JournalWriter::remove_through`], only segments last written before `before`.
    pub fn remove_through_older_than(
        &mut self,
        seq: u64,
        before: Option<SystemTime>,
    ) -> io::Result<u64> {
        let segments = segment::list(&self.dir)?;
        let mut freed = 0;
        for pair in segments.windows(2) {
            let [(_, path), (next_first, _)] = pair else {
                continue;
            };
            if next_first - 1 > seq || *path == self.path {
                break;
            }
            let metadata = std::fs::metadata(path)?;
            if before.is_some_and(|before| metadata.modified().is_ok_and(|m| m >= before)) {
                break;
            }
            freed += metadata.len();
            std::fs::remove_file(path)?;
        }
        self.closed_bytes = self.closed_bytes.saturating_sub(freed);
        Ok(freed)
    }
}

/// Makes a segment appear whole or not at all (see [`write_durably`]), open for appending.
fn create_segment(dir: &Path, header: &Header) -> io::Result<(File, PathBuf)> {
    let path = dir.join(segment::file_name(header.first_seq));
    write_durably(&path, &header.encode())?;
    let file = OpenOptions::new().append(true).open(&path)?;
    Ok((file, path))
}

/// Writes `bytes` as `path` whole or not at all: under a temporary name (`.tmp`, removed from
/// the journal's directory on open), synced, renamed, the directory synced.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

fn remove_leftover_temporaries(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

fn check_same_journal(before: &Path, newest: &Path, journal: JournalId) -> Result<(), OpenError> {
    let mut header = [0u8; segment::HEADER_LEN];
    let read = File::open(before).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut header)
    });
    read.map_err(|source| OpenError::Io {
        path: before.to_path_buf(),
        source,
    })?;
    match Header::decode(&header) {
        Some(h) if h.journal == journal => Ok(()),
        Some(h) => Err(OpenError::Mixed {
            path: newest.to_path_buf(),
            found: journal,
            expected: h.journal,
        }),
        None => Err(OpenError::BadSegment {
            path: before.to_path_buf(),
        }),
    }
}
