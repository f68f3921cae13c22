//! The daemon's output, kept line by line so tests can wait for what it says and print all of
//! it when they fail.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines from both of the daemon's output streams, in arrival order. Logging libraries differ
/// on stdout versus stderr, so both are kept; each line is tagged with its stream.
#[derive(Default)]
pub(crate) struct LogBuffer {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// Streams that reached end of file; at 2 the process has closed both and nothing more
    /// will arrive.
    closed_streams: usize,
}

const STREAM_COUNT: usize = 2;

impl LogBuffer {
    /// Starts a thread that appends every line of `stream` (tagged `tag`) until end of file.
    pub(crate) fn follow(
        self: &Arc<Self>,
        tag: &'static str,
        stream: impl Read + Send + 'static,
    ) -> JoinHandle<()> {
        let buffer = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("gateway-{tag}"))
            .spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut raw = Vec::new();
                loop {
                    raw.clear();
                    match reader.read_until(b'\n', &mut raw) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&raw);
                            let line = strip_ansi(text.trim_end_matches(['\n', '\r']));
                            buffer.push(format!("[{tag}] {line}"));
                        }
                    }
                }
                let mut state = buffer.lock();
                state.closed_streams += 1;
                buffer.changed.notify_all();
            })
            .expect("spawning a log reader thread")
    }

    fn push(&self, line: String) {
        self.lock().lines.push(line);
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A reader thread cannot panic while holding the lock (it only pushes), so poisoning
        // would come from a test thread; the lines are still valid, keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// The first line at index `from` or later that satisfies `matches`, with its index.
    /// Waits up to `limit` for it; gives up early once the daemon closed its output.
    pub(crate) fn wait_for(
        &self,
        from: usize,
        limit: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + limit;
        let mut next = from;
        let mut state = self.lock();
        loop {
            while next < state.lines.len() {
                if matches(&state.lines[next]) {
                    return Some((next, state.lines[next].clone()));
                }
                next += 1;
            }
            let now = Instant::now();
            if now >= deadline || state.closed_streams >= STREAM_COUNT {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// All lines, numbered, for a failing test's output.
    pub(crate) fn dump(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        for (index, line) in state.lines.iter().enumerate() {
            out.push_str(&format!("{index:5} {line}\n"));
        }
        out
    }
}

/// Removes ANSI escape sequences (colours) so that `key=value` pairs can be matched even when a
/// logger colours keys and values separately.
pub(crate) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // CSI: ESC [ parameters… final byte in @..~
        if chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// The SIP sockets a `listening` line announces: every `udp=ADDR` and `tcp=ADDR` in it.
pub(crate) fn listening_addrs(line: &str) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    if !line.contains("listening") {
        return (Vec::new(), Vec::new());
    }
    (field_addrs(line, "udp"), field_addrs(line, "tcp"))
}

fn field_addrs(line: &str, key: &str) -> Vec<SocketAddr> {
    let needle = format!("{key}=");
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find(&needle) {
        let starts_word = !matches!(
            rest[..pos].chars().next_back(),
            Some(c) if c.is_alphanumeric() || c == '_' || c == '.'
        );
        let value = &rest[pos + needle.len()..];
        rest = value;
        if !starts_word {
            continue;
        }
        let value = value.trim_start_matches('"');
        let end = value
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | ',' | '}' | ')'))
            .unwrap_or(value.len());
        if let Ok(addr) = value[..end].parse::<SocketAddr>() {
            found.push(addr);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_removed() {
        let coloured = "\u{1b}[2m2024\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[3mudp\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:5060";
        assert_eq!(strip_ansi(coloured), "2024  INFO udp=127.0.0.1:5060");
    }

    #[test]
    fn listening_line_yields_both_transports() {
        let (udp, tcp) = listening_addrs(
            "INFO trunkgate::sip: listening udp=127.0.0.1:40001 tcp=127.0.0.1:40002",
        );
        assert_eq!(udp, vec!["127.0.0.1:40001".parse::<SocketAddr>().unwrap()]);
        assert_eq!(tcp, vec!["127.0.0.1:40002".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn quoted_and_ipv6_addresses_parse() {
        let (udp, tcp) = listening_addrs(r#"listening udp="[::1]:5060", x=1"#);
        assert_eq!(udp, vec!["[::1]:5060".parse::<SocketAddr>().unwrap()]);
        assert!(tcp.is_empty());
    }

    #[test]
    fn lines_without_listening_or_with_prefixed_keys_are_ignored() {
        assert_eq!(
            listening_addrs("bound udp=127.0.0.1:1"),
            (Vec::new(), Vec::new())
        );
        assert_eq!(
            listening_addrs("listening rtp_udp=127.0.0.1:1 media.tcp=127.0.0.1:2"),
            (Vec::new(), Vec::new())
        );
    }

    #[test]
    fn wait_sees_earlier_lines_and_stops_when_streams_close() {
        let buffer = Arc::new(LogBuffer::default());
        let first = buffer.follow("stdout", &b"hello\nlistening udp=127.0.0.1:9\n"[..]);
        let second = buffer.follow("stderr", &b""[..]);
        first.join().unwrap();
        second.join().unwrap();
        let (index, line) = buffer
            .wait_for(0, Duration::from_secs(5), |line| line.contains("listening"))
            .expect("line present");
        assert_eq!(index, 1);
        assert_eq!(line, "[stdout] listening udp=127.0.0.1:9");
        let started = Instant::now();
        assert!(buffer
            .wait_for(0, Duration::from_secs(5), |line| line.contains("never"))
            .is_none());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "wait should end at end of output"
        );
    }
}
