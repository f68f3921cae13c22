//! Hostile and broken input: the daemon answers 400/501 where it can, drops the rest, keeps
//! serving calls, and refuses bad configuration with file, line and key.
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use trunkgate_integration::{config_for_tests, Gateway, Sipp};

fn udp_exchange(gw: &Gateway, message: &[u8]) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    sock.send_to(message, gw.sip_udp()).unwrap();
    let mut buf = [0u8; 65536];
    sock.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn request(extra_headers: &str, content_length: &str, body: &str) -> String {
    format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-torture-{}\r\n\
From: <sip:t@127.0.0.1>;tag=t1\r\n\
To: <sip:100@127.0.0.1>\r\n\
Call-ID: torture-{}@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
{extra_headers}Content-Length: {content_length}\r\n\r\n{body}",
        rand_id(),
        rand_id()
    )
}

fn rand_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A normal call still completes: the proof that bad input hurt nothing.
fn still_serves_calls(gw: &Gateway) {
    Sipp::builtin("uac")
        .target(gw.sip_udp())
        .calls(5)
        .rate(5)
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
}

#[test]
fn malformed_udp_messages_get_400_or_are_dropped_and_calls_go_on() {
    let gw = Gateway::start(&config_for_tests(""));
    let short_body = request("", "500", "v=0\r\n");
    let reply = udp_exchange(&gw, short_body.as_bytes()).expect("an answer to a short body");
    assert!(reply.starts_with("SIP/2.0 400 "), "{reply}");
    assert!(
        reply.to_lowercase().contains("content-length"),
        "the reason says why: {reply}"
    );

    let no_call_id = request("", "0", "").replace("Call-ID: ", "X-Gone: ");
    assert!(
        udp_exchange(&gw, no_call_id.as_bytes()).is_none(),
        "no Call-ID: nothing to answer with"
    );

    let mismatched = request("", "0", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    let reply = udp_exchange(&gw, mismatched.as_bytes()).expect("answer to a mismatched CSeq");
    assert!(reply.starts_with("SIP/2.0 400"), "{reply}");
    assert!(
        reply.contains("CSeq: 1 BYE\r\n"),
        "the CSeq is echoed as sent: {reply}"
    );

    // A CSeq that is not "NUMBER METHOD" cannot be echoed into a valid answer: dropped.
    let bad_cseq = request("", "0", "").replace("CSeq: 1 INVITE", "CSeq: one INVITE");
    assert!(udp_exchange(&gw, bad_cseq.as_bytes()).is_none());

    let unknown = request("", "0", "")
        .replace("INVITE sip:", "FROBNICATE sip:")
        .replace("1 INVITE", "1 FROBNICATE");
    let reply = udp_exchange(&gw, unknown.as_bytes()).expect("answer to an unknown method");
    assert!(reply.starts_with("SIP/2.0 501"), "{reply}");

    let huge = request(&format!("X-Huge: {}\r\n", "a".repeat(70_000)), "0", "");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Too big for one datagram on most stacks: send what fits, which is still oversized junk.
    let _ = sock.send_to(&huge.as_bytes()[..65_000], gw.sip_udp());
    let many_headers = request(&"X-A: b\r\n".repeat(400), "0", "");
    assert!(udp_exchange(&gw, many_headers.as_bytes()).is_none_or(|r| r.starts_with("SIP/2.0 400")));

    for junk in [
        &b"\x00\x01\x02\xff\xfe garbage"[..],
        b"INVITE\r\n\r\n",
        b"SIP/2.0 999 Nope\r\n\r\n",
        b"\r\n\r\n",
    ] {
        assert!(
            udp_exchange(&gw, junk).is_none(),
            "junk gets no answer: {junk:?}"
        );
    }
    let mut not_utf8 = request("", "0", "").into_bytes();
    not_utf8.splice(10..10, [0xC3, 0x28]);
    let _ = udp_exchange(&gw, &not_utf8);

    still_serves_calls(&gw);
    assert!(gw
        .log_lines()
        .iter()
        .any(|l| l.contains("malformed sip message")));
}

#[test]
fn broken_tcp_streams_are_closed_and_calls_go_on() {
    let gw = Gateway::start(&config_for_tests(""));
    // A message cut off mid-body, then the connection closed: nothing to answer, nothing stuck.
    {
        let mut s = TcpStream::connect(gw.sip_tcp()).unwrap();
        let msg = request("", "200", "v=0\r\n");
        s.write_all(msg.as_bytes()).unwrap();
    }
    // A Content-Length that cannot be a number: the stream cannot be framed and is closed.
    {
        let mut s = TcpStream::connect(gw.sip_tcp()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(
            request("", "lots", "")
                .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
                .as_bytes(),
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.is_empty() || text.starts_with("SIP/2.0 400"), "{text}");
    }
    // A double-CRLF keep-alive ping gets its single-CRLF pong (RFC 5626).
    {
        let mut s = TcpStream::connect(gw.sip_tcp()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"\r\n\r\n").unwrap();
        let mut pong = [0u8; 2];
        s.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"\r\n");
    }
    // Binary junk on TCP.
    {
        let mut s = TcpStream::connect(gw.sip_tcp()).unwrap();
        let _ = s.write_all(&[0xffu8; 70_000]);
    }
    still_serves_calls(&gw);
}

#[test]
fn bad_config_is_refused_with_file_line_and_key() {
    let config = config_for_tests("").replace("jitter_min_ms = 20", "jitter_min_ms = \"soon\"");
    let line = config
        .lines()
        .position(|l| l.starts_with("jitter_min_ms"))
        .unwrap()
        + 1;
    let (status, lines) = Gateway::builder(&config).run_to_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let text = lines.join("\n");
    assert!(
        text.contains(&format!(".toml:{line}:")) && text.contains("media.jitter_min_ms"),
        "error names file, line and key: {text}"
    );
}

#[test]
fn check_config_accepts_the_example_and_rejects_a_broken_one() {
    let bin = trunkgate_integration::trunkgate_bin();
    let example = trunkgate_integration::repo_root().join("config.example.toml");
    let ok = std::process::Command::new(&bin)
        .arg("check-config")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("route = \"ivr:main\"", "route = \"ivr:missing\"");
    std::fs::write(&bad, &text).unwrap();
    let out = std::process::Command::new(&bin)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().position(|l| l.starts_with("route =")).unwrap() + 1;
    assert!(
        err.contains(&format!("bad.toml:{line}:")) && err.contains("trunk.0.route"),
        "{err}"
    );
}
