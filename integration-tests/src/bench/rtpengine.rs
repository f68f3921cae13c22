//! rtpengine, the reference: Debian's `rtpengine-daemon` in userspace mode (`--table=-1`),
//! driven over its NG control protocol (bencoded dictionaries over UDP) to transcode each
//! call PCMU ↔ Opus, with a UDP reflector as the Opus side's endpoint.
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::sip::sdp_audio_address;

/// A bencode value (the NG protocol's encoding).
#[derive(Debug, Clone, PartialEq)]
pub enum Bencode {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    pub fn str(s: &str) -> Bencode {
        Bencode::Bytes(s.as_bytes().to_vec())
    }

    pub fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Bencode)>) -> Bencode {
        Bencode::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Bencode::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Bencode::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.encode(out));
                out.push(b'e');
            }
            Bencode::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Bencode::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the front of `input`; returns it and the rest.
    pub fn decode(input: &[u8]) -> Option<(Bencode, &[u8])> {
        match *input.first()? {
            b'i' => {
                let end = input.iter().position(|&b| b == b'e')?;
                let value = std::str::from_utf8(&input[1..end]).ok()?.parse().ok()?;
                Some((Bencode::Int(value), &input[end + 1..]))
            }
            b'l' => {
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while *rest.first()? != b'e' {
                    let (item, after) = Bencode::decode(rest)?;
                    items.push(item);
                    rest = after;
                }
                Some((Bencode::List(items), &rest[1..]))
            }
            b'd' => {
                let mut rest = &input[1..];
                let mut entries = BTreeMap::new();
                while *rest.first()? != b'e' {
                    let (Bencode::Bytes(key), after) = Bencode::decode(rest)? else {
                        return None;
                    };
                    let (value, after) = Bencode::decode(after)?;
                    entries.insert(key, value);
                    rest = after;
                }
                Some((Bencode::Dict(entries), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = input.iter().position(|&b| b == b':')?;
                let len: usize = std::str::from_utf8(&input[..colon]).ok()?.parse().ok()?;
                let body = input.get(colon + 1..colon + 1 + len)?;
                Some((Bencode::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Bencode> {
        match self {
            Bencode::Dict(entries) => entries.get(key.as_bytes()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Bencode::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// A running rtpengine and its NG control socket.
pub struct Rtpengine {
    child: Child,
    ng: SocketAddr,
    socket: UdpSocket,
    cookie: u64,
}

impl Rtpengine {
    /// Starts `rtpengine` in the foreground, userspace only, media ports in `ports`, NG on
    /// `ng_port`, logging to `log`.
    pub fn start(
        ng_port: u16,
        ports: (u16, u16),
        log: &Path,
        threads: usize,
    ) -> std::io::Result<Rtpengine> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new("rtpengine")
            .args([
                "--foreground",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng=127.0.0.1:{ng_port}"),
                &format!("--port-min={}", ports.0),
                &format!("--port-max={}", ports.1),
                &format!("--num-threads={threads}"),
                "--log-stderr",
                "--log-level=5",
                "--delete-delay=0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()?;
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        // A busy rtpengine answers late: its control thread competes with the media threads.
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut engine = Rtpengine {
            child,
            ng: SocketAddr::from(([127, 0, 0, 1], ng_port)),
            socket,
            cookie: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if engine
                .command(Bencode::dict([("command", Bencode::str("ping"))]))
                .is_ok()
            {
                return Ok(engine);
            }
            if Instant::now() > deadline || engine.child.try_wait()?.is_some() {
                return Err(std::io::Error::other(format!(
                    "rtpengine did not answer a ping on its NG port (log: {})",
                    log.display()
                )));
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One NG command and its answer (retried on a lost datagram: NG is idempotent per cookie).
    pub fn command(&mut self, body: Bencode) -> Result<Bencode, String> {
        self.cookie += 1;
        let cookie = format!("bench{}", self.cookie);
        let mut message = format!("{cookie} ").into_bytes();
        body.encode(&mut message);
        let mut buffer = vec![0u8; 65536];
        for _ in 0..8 {
            self.socket
                .send_to(&message, self.ng)
                .map_err(|e| e.to_string())?;
            let Ok((len, _)) = self.socket.recv_from(&mut buffer) else {
                continue;
            };
            let reply = &buffer[..len];
            let Some(rest) = reply.strip_prefix(format!("{cookie} ").as_bytes()) else {
                continue; // an answer to an earlier, retried command
            };
            let (answer, _) = Bencode::decode(rest).ok_or("an undecodable NG answer")?;
            let result = answer.get("result").and_then(Bencode::as_str);
            if result != Some("ok") && result != Some("pong") {
                let reason = answer
                    .get("error-reason")
                    .and_then(Bencode::as_str)
                    .unwrap_or("no reason given");
                return Err(format!("rtpengine: {result:?}: {reason}"));
            }
            return Ok(answer);
        }
        Err("rtpengine did not answer".into())
    }

    /// Sets up call `label`: the caller offers PCMU at `caller`, rtpengine offers Opus to the
    /// agent side, which answers from `reflector`. Returns where the caller sends its PCMU.
    pub fn transcoded_call(
        &mut self,
        label: usize,
        caller: SocketAddr,
        reflector: SocketAddr,
        opus_bitrate: u32,
    ) -> Result<SocketAddr, String> {
        let call_id = format!("bench-rtpe-{label}");
        let offer_sdp = format!(
            "v=0\r\no=- {label} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            ip = caller.ip(),
            port = caller.port()
        );
        let offer = self.command(Bencode::dict([
            ("command", Bencode::str("offer")),
            ("call-id", Bencode::str(&call_id)),
            ("from-tag", Bencode::str("caller")),
            ("sdp", Bencode::str(&offer_sdp)),
            ("ICE", Bencode::str("remove")),
            (
                "codec",
                Bencode::dict([
                    (
                        "transcode",
                        Bencode::List(vec![Bencode::str(&format!("opus/48000/1/{opus_bitrate}"))]),
                    ),
                    ("mask", Bencode::List(vec![Bencode::str("PCMU")])),
                ]),
            ),
        ]))?;
        let offered = offer
            .get("sdp")
            .and_then(Bencode::as_str)
            .ok_or("offer answer without sdp")?;
        let opus_pt = opus_payload_type(offered).ok_or("rtpengine offered no Opus")?;
        let answer_sdp = format!(
            "v=0\r\no=- {label} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {opus_pt}\r\na=rtpmap:{opus_pt} opus/48000/2\r\n\
             a=ptime:20\r\na=sendrecv\r\n",
            ip = reflector.ip(),
            port = reflector.port()
        );
        let answer = self.command(Bencode::dict([
            ("command", Bencode::str("answer")),
            ("call-id", Bencode::str(&call_id)),
            ("from-tag", Bencode::str("caller")),
            ("to-tag", Bencode::str("agent")),
            ("sdp", Bencode::str(&answer_sdp)),
            ("ICE", Bencode::str("remove")),
        ]))?;
        let answered = answer
            .get("sdp")
            .and_then(Bencode::as_str)
            .ok_or("answer without sdp")?;
        sdp_audio_address(answered).ok_or_else(|| format!("no audio address in {answered}"))
    }

    pub fn delete(&mut self, label: usize) {
        let _ = self.command(Bencode::dict([
            ("command", Bencode::str("delete")),
            ("call-id", Bencode::str(&format!("bench-rtpe-{label}"))),
            ("from-tag", Bencode::str("caller")),
        ]));
    }

    pub fn stop(mut self) {
        crate::process::terminate(&mut self.child, Duration::from_secs(5));
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn opus_payload_type(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=rtpmap:")?;
        let (pt, encoding) = rest.split_once(' ')?;
        encoding
            .to_ascii_lowercase()
            .starts_with("opus/")
            .then(|| pt.parse().ok())?
    })
}

/// The agent side for rtpengine: every datagram goes back where it came from, undecoded (the
/// counterpart of `trunkgate-agent --reflect`).
pub struct Reflector {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Reflector {
    pub fn start() -> std::io::Result<Reflector> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-reflect".into())
            .spawn(move || {
                let mut buffer = [0u8; 2048];
                let mut reflected = 0u64;
                while !stopping.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = socket.recv_from(&mut buffer) {
                        if socket.send_to(&buffer[..len], from).is_ok() {
                            reflected += 1;
                        }
                    }
                }
                reflected
            })?;
        Ok(Reflector {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it; how many datagrams it sent back.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trips_an_ng_command() {
        let command = Bencode::dict([
            ("command", Bencode::str("offer")),
            ("flags", Bencode::List(vec![Bencode::str("trust-address")])),
            ("n", Bencode::Int(-3)),
        ]);
        let mut out = Vec::new();
        command.encode(&mut out);
        assert_eq!(
            out,
            b"d7:command5:offer5:flagsl13:trust-addresse1:ni-3ee".to_vec()
        );
        let (decoded, rest) = Bencode::decode(&out).unwrap();
        assert!(rest.is_empty());
        assert_eq!(decoded, command);
        assert_eq!(
            decoded.get("command").and_then(Bencode::as_str),
            Some("offer")
        );
        assert_eq!(Bencode::decode(b"5:abc"), None, "a string past the end");
    }

    #[test]
    fn the_opus_payload_type_comes_from_its_rtpmap() {
        let sdp =
            "m=audio 3000 RTP/AVP 96 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(opus_payload_type(sdp), Some(96));
        assert_eq!(opus_payload_type("a=rtpmap:0 PCMU/8000"), None);
    }
}
