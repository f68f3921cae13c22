//! `trunkgate journal verify` and `trunkgate journal tail`: the operator's view of a journal
//! on disk and of what a sink holds.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::segment;
use super::verify::{Report, Verifier};
use super::JournalReader;

/// Checks every record under `path`: a journal's segment directory, or a directory of NDJSON
/// batches (a file sink's, or objects copied from a bucket), searched recursively.
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
        let reader = io::BufReader::new(std::fs::File::open(&file)?);
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            verifier.push(&line, &format_args!("{}:{}", file.display(), i + 1));
        }
    }
    Ok(verifier.finish())
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
        } else if path.to_string_lossy().ends_with(".ndjson") {
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
