//! Recordings on disk: a call's recording is written, sealed for `[recording] public_key`
//! (age, [`super::age`]), to `NAME.part` in the recordings directory while the call lasts, then
//! synced and renamed to `NAME` — the name its CDR gives — for [`super::upload`] to ship.
//! Nothing is ever written in the clear.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::age::{AgeWriter, Recipient};
use crate::events::CallId;
use crate::journal::recorder::recording_file;

/// What a finished recording's file ends with; one being written ends with `.part` after it.
pub const EXTENSION: &str = ".opus.age";
pub const PART: &str = ".part";

/// Where the daemon's recordings go, and for whom they are sealed.
pub struct RecordingStore {
    dir: PathBuf,
    recipient: Recipient,
    /// This daemon run's id, as the journal's call ids carry it (`RUN-N`).
    run: String,
    /// Wakes the uploader when a recording is complete.
    pub finished: Arc<tokio::sync::Notify>,
}

impl RecordingStore {
    pub fn new(dir: PathBuf, recipient: Recipient, run: &str) -> Self {
        RecordingStore {
            dir,
            recipient,
            run: run.to_owned(),
            finished: Arc::default(),
        }
    }

    /// Starts the file of `call`'s recording.
    pub fn create(&self, call: CallId) -> io::Result<RecordingFile> {
        std::fs::create_dir_all(&self.dir)?;
        let name = recording_file(&format!("{}-{call}", self.run));
        let done = self.dir.join(&name);
        let part = self.dir.join(format!("{name}{PART}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            // Sealed, but still nobody else's business.
            .mode(0o600)
            .open(&part)?;
        let writer = AgeWriter::new(file, &self.recipient, &mut rand::rngs::OsRng)?;
        Ok(RecordingFile { writer, part, done })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// One recording being written.
pub struct RecordingFile {
    writer: AgeWriter<File>,
    part: PathBuf,
    done: PathBuf,
}

impl RecordingFile {
    /// Appends Ogg Opus bytes; every full 64 KiB is sealed and written at once.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Seals the rest, makes the file durable and gives it its final name. Blocking (fsync).
    pub fn finish(self) -> io::Result<PathBuf> {
        let file = self.writer.finish()?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.part, &self.done)?;
        if let Some(dir) = self.done.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(self.done)
    }
}

/// Recordings a stopped gateway left unfinished (`NAME.part`): they are kept under their final
/// name, holding what was sealed before the stop (the age stream lacks its last chunk, so a
/// reader restores all but the unsealed end and says it is cut short). Returns their names.
pub fn recover_unfinished(dir: &Path) -> io::Result<Vec<String>> {
    let mut recovered = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(recovered),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(done) = name.strip_suffix(PART) else {
            continue;
        };
        std::fs::rename(entry.path(), dir.join(done))?;
        recovered.push(done.to_owned());
    }
    if !recovered.is_empty() {
        File::open(dir)?.sync_all()?;
    }
    Ok(recovered)
}
