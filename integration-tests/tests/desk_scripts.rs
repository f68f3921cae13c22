//! The agent desk page's scripts under Node.js (`node`, v18 or later): the unit tests in
//! `src/desk/page/tests/` (the jitter buffer, driven in virtual time) pass, and every script the
//! gateway serves from `src/desk/page/` parses. The other scripts use browser globals (the DOM,
//! WebTransport, WebCodecs, audio worklets), so they are only syntax-checked here; the browser
//! tests (`desk_page`, `desk_audio`) run them.
use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trunkgate_integration::repo_root;

/// Long enough for Node to start and the tests to run on a busy machine; they take well under a
/// second.
const LIMIT: Duration = Duration::from_secs(60);

const PAGE: &str = "src/desk/page";

/// Runs `node args…` from the repository root for at most [`LIMIT`] and fails the test, with
/// node's output, unless it exits successfully. Its output goes to files, not pipes, so a
/// chatty node cannot block on a full pipe while the test waits for it to exit.
fn node(args: &[&str]) {
    let mut stdout = tempfile::tempfile().expect("temp file for node's stdout");
    let mut stderr = tempfile::tempfile().expect("temp file for node's stderr");
    let mut child = Command::new("node")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("temp file handle"))
        .stderr(stderr.try_clone().expect("temp file handle"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (install Node.js 18 or later): {e}"));
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // kill fails only if node has just exited: either way it is gone after wait.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |file: &mut File| {
        let mut bytes = Vec::new();
        file.rewind().expect("rewinding node's output");
        file.read_to_end(&mut bytes).expect("reading node's output");
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (out, err) = (read(&mut stdout), read(&mut stderr));
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("node {args:?}: {status}\n--- stdout\n{out}\n--- stderr\n{err}"),
        None => panic!("node {args:?}: still running after {LIMIT:?}, killed\n--- stdout\n{out}\n--- stderr\n{err}"),
    }
}

/// The files in `dir` (relative to the repository root) whose names end with `suffix`, as
/// paths relative to the root, sorted.
fn files(dir: &str, suffix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("reading a directory entry").path())
        .filter(|path| path.is_file() && name(path).ends_with(suffix))
        .map(|path| format!("{dir}/{}", name(&path)))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *{suffix} files in {dir}");
    found
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn the_desk_pages_unit_tests_pass_under_node() {
    // The test files by name rather than the directory: Node 21 and later take `--test`'s
    // arguments as globs, and a directory no longer matches the files in it.
    let tests = files(&format!("{PAGE}/tests"), ".test.mjs");
    let mut args = vec!["--test"];
    args.extend(tests.iter().map(String::as_str));
    node(&args);
}

#[test]
fn every_desk_page_script_parses() {
    let scripts = files(PAGE, ".js");
    for expected in ["desk.js", "jitter.js", "media.js", "worklet.js"] {
        let path = format!("{PAGE}/{expected}");
        assert!(
            scripts.contains(&path),
            "{path} is missing from {scripts:?}"
        );
    }
    // As ES modules: src/desk/page/package.json says so.
    for script in &scripts {
        node(&["--check", script]);
    }
}
