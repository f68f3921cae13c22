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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::age::{decrypt, AgeError, Identity};

    fn store(dir: &Path) -> (RecordingStore, Identity) {
        let identity = Identity::generate(&mut rand::rngs::OsRng);
        let store = RecordingStore::new(dir.join("recordings"), identity.recipient(), "r1");
        (store, identity)
    }

    #[test]
    fn a_finished_recording_has_its_cdr_name_mode_0600_and_only_sealed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, identity) = store(dir.path());
        let mut file = store.create(7).unwrap();
        let audio: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        file.write(&audio).unwrap();
        let path = file.finish().unwrap();
        assert_eq!(path.file_name().unwrap(), "r1-7.opus.age", "the CDR's name");
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let sealed = std::fs::read(&path).unwrap();
        assert!(
            !sealed.windows(64).any(|w| w == &audio[..64]),
            "nothing in the clear"
        );
        let mut opened = Vec::new();
        decrypt(&sealed[..], &identity, &mut opened).unwrap();
        assert_eq!(opened, audio);
        assert!(recover_unfinished(store.dir()).unwrap().is_empty());
    }

    #[test]
    fn a_recording_left_unfinished_by_a_crash_is_kept_with_what_was_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, identity) = store(dir.path());
        let mut file = store.create(8).unwrap();
        let audio = vec![0x42u8; 150_000];
        file.write(&audio).unwrap();
        // The process dies: the writer is never finished.
        std::mem::forget(file);
        let recovered = recover_unfinished(store.dir()).unwrap();
        assert_eq!(recovered, vec!["r1-8.opus.age".to_string()]);
        let sealed = std::fs::read(store.dir().join("r1-8.opus.age")).unwrap();
        let mut opened = Vec::new();
        let cut = decrypt(&sealed[..], &identity, &mut opened);
        // Two whole 64 KiB chunks were sealed; the rest was still in memory.
        assert!(
            matches!(cut, Err(AgeError::Truncated { restored: 131_072 })),
            "{cut:?}"
        );
        assert_eq!(opened, audio[..2 * 65_536]);
    }
}
