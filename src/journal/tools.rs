//! `trunkgate journal verify` and `trunkgate journal tail`: the operator's view of a journal
//! on disk and of what a sink holds.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::s3_sink::{S3Error, S3Store};
use super::segment;
use super::verify::{Report, Verifier};
use super::JournalReader;

/// Checks every record under `path`: a journal's segment directory, or a directory of NDJSON
/// batches (a file sink's, or objects copied from a bucket, `.zst` and `.gz` read as such),
/// searched recursively.
pub fn verify_path(path: &Path) -> io::Result<Report> {
    let mut verifier = Verifier::default();
    let segments = segment::list(path)?;
    if !segments.is_empty() {
        for (_, file) in segments {
            push_segment(&mut verifier, &file)?;
        }
        return Ok(verifier.finish());
    }
    let mut files = Vec::new();
    collect_batches(path, &mut files)?;
    files.sort();
    for file in files {
        let name = file.display().to_string();
        match decompress(&name, std::fs::read(&file)?) {
            Ok(body) => push_batch(&mut verifier, &body, &name),
            Err(e) => verifier.problem(format!("{name}: {e}")),
        }
    }
    Ok(verifier.finish())
}

/// Checks every record in the objects under `prefix` of an S3 bucket (what the s3 sink wrote,
/// from one gateway or many).
pub fn verify_s3(store: &S3Store, prefix: &str) -> Result<Report, S3Error> {
    let mut verifier = Verifier::default();
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    for key in store.list(&prefix)? {
        if !is_batch(&key) {
            continue;
        }
        let bytes = store.get(&key)?;
        match decompress(&key, bytes) {
            Ok(body) => push_batch(&mut verifier, &body, &key),
            Err(e) => verifier.problem(format!("{key}: {e}")),
        }
    }
    Ok(verifier.finish())
}

/// A batch's NDJSON, as the sink compressed it (by its name's ending).
fn decompress(name: &str, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    if name.ends_with(".zst") {
        zstd::stream::decode_all(&bytes[..])
    } else if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn push_batch(verifier: &mut Verifier, body: &[u8], name: &str) {
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if !line.is_empty() {
            verifier.push(line, &format_args!("{name}:{}", i + 1));
        }
    }
}

fn is_batch(name: &str) -> bool {
    [".ndjson", ".ndjson.zst", ".ndjson.gz"]
        .iter()
        .any(|ending| name.ends_with(ending))
}

fn push_segment(verifier: &mut Verifier, file: &Path) -> io::Result<()> {
    let bytes = std::fs::read(file)?;
    if segment::Header::decode(&bytes).is_none() {
        verifier.problem(format!("{}: bad segment header", file.display()));
        return Ok(());
    }
    let mut frames = segment::frames(&bytes);
    for (offset, payload) in frames.by_ref() {
        verifier.push(
            payload,
            &format_args!("{} at byte {offset}", file.display()),
        );
    }
    if *frames.tail() != segment::Tail::Clean {
        // What follows cannot be framed. (A journal being written may show its last record
        // half-written here.)
        verifier.problem(format!(
            "{} at byte {}: a record damaged or cut short",
            file.display(),
            frames.offset()
        ));
    }
    Ok(())
}

fn collect_batches(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_batches(&path, out)?;
        } else if is_batch(&path.to_string_lossy()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Prints the records of the journal in `dir` from `from` (or the last `last` records), one
/// JSON line each; with `follow`, goes on printing new ones as they are written.
pub fn tail(dir: &Path, from: Option<u64>, last: u64, follow: bool) -> io::Result<()> {
    let newest = segment::list(dir)?
        .pop()
        .map(|(_, path)| std::fs::read(path))
        .transpose()?
        .and_then(|bytes| segment::scan(&bytes).ok())
        .map_or(0, |scan| scan.last_seq);
    let from = from.unwrap_or_else(|| newest.saturating_sub(last.saturating_sub(1)).max(1));
    let mut reader = JournalReader::new(dir, from);
    let stdout = io::stdout();
    loop {
        let mut out = stdout.lock();
        while let Some(record) = reader
            .next(u64::MAX)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
        {
            out.write_all(&record)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
