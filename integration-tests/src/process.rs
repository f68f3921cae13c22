//! Bounded waiting and polite termination for child processes; std offers neither.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How often a waiting test looks at a child or a log again. Short enough not to slow tests
/// down, long enough not to burn one of the machine's two cores.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Reads a value every `every` until `accept` takes it or `limit` passes; the last value read
/// either way (`None`: there was none). For figures a peer only shows when asked (a metric, a
/// Prometheus query).
pub(crate) fn poll_value(
    limit: Duration,
    every: Duration,
    mut read: impl FnMut() -> Option<f64>,
    accept: impl Fn(f64) -> bool,
) -> Option<f64> {
    let deadline = Instant::now() + limit;
    loop {
        let value = read();
        if value.is_some_and(&accept) || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(every);
    }
}

/// Waits up to `limit` for `child` to exit; `None` if it is still running.
pub(crate) fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(POLL_INTERVAL),
            // try_wait only fails if the child was already reaped: nothing left to wait for.
            Err(_) => return None,
        }
    }
}

/// Sends SIGTERM, waits up to `grace` for a clean exit, then SIGKILLs. Returns the exit status
/// (`None` if the process had to be killed or was already reaped).
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    send_sigterm(child);
    if let Some(status) = wait_timeout(child, grace) {
        return Some(status);
    }
    // kill fails only if the process is already gone, which is what we want anyway.
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn send_sigterm(child: &Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own unreaped child, so
    // the number cannot have been reused by an unrelated process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Runs `command` to its end, or kills it after `limit`; its stdout and stderr together.
/// Output goes through a file, so a chatty child never blocks on a full pipe.
pub fn output_within(
    mut command: std::process::Command,
    limit: Duration,
) -> std::io::Result<String> {
    let mut log = tempfile::tempfile()?;
    let child_log = log.try_clone()?;
    let mut child = command
        .stdout(child_log.try_clone()?)
        .stderr(child_log)
        .spawn()?;
    if wait_timeout(&mut child, limit).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    use std::io::{Read, Seek};
    log.rewind()?;
    let mut out = String::new();
    log.read_to_string(&mut out)?;
    Ok(out)
}
