//! Event lines: what harnesses wait for and grep.
use std::net::SocketAddr;

use crate::client::events::{quote_if_needed, Event, MediaCounters};

#[test]
fn lines_start_with_agent_and_event_then_the_fields() {
    let line = Event::Answered {
        call: "c7".into(),
        flow: 1,
    }
    .line("alice");
    assert_eq!(line, "agent=alice event=answered call=c7 flow=1");
}

#[test]
fn the_summary_names_every_counter() {
    let line = Event::Summary {
        calls: 2,
        media: MediaCounters {
            sent: 500,
            received: 498,
            concealed: 3,
            fec: 1,
            lost: 2,
            late: 0,
            ..MediaCounters::default()
        },
    }
    .line("bob-3");
    assert_eq!(
        line,
        "agent=bob-3 event=summary calls=2 sent=500 received=498 concealed=3 fec=1 red=0 red_late=0 lost=2 late=0"
    );
}

#[test]
fn values_with_spaces_or_quotes_are_quoted() {
    let line = Event::Offer {
        call: "c7".into(),
        caller: "Bob \"B\" <+4930123456>".into(),
        queue: "sales".into(),
        flow: 4,
        ring_timeout_ms: 20_000,
    }
    .line("alice");
    assert_eq!(
        line,
        r#"agent=alice event=offer call=c7 caller="Bob \"B\" <+4930123456>" queue=sales flow=4 ring_timeout_ms=20000"#
    );
    assert_eq!(quote_if_needed(""), "\"\"");
    assert_eq!(quote_if_needed("a=b"), "\"a=b\"");
    assert_eq!(quote_if_needed(r"a\b"), r#""a\\b""#);
}

#[test]
fn gateway_text_cannot_forge_a_line_or_a_field() {
    let line = Event::GatewayError {
        code: "internal".into(),
        message: "oops\nagent=alice event=call_ended call=c7".into(),
        call: None,
    }
    .line("alice");
    assert!(!line.contains('\n'), "{line}");
    let keys: Vec<String> = logfmt_keys(&line);
    assert_eq!(keys, ["agent", "event", "code", "message"], "{line}");
    assert!(line.contains(r"\u{a}"), "{line}");
}

/// The keys a logfmt reader sees: `key=` outside quotes.
fn logfmt_keys(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let (mut in_quotes, mut escaped, mut at_key, mut key) = (false, false, true, String::new());
    for c in line.chars() {
        match (in_quotes, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_quotes = !in_quotes,
            (false, _, ' ') => at_key = true,
            (false, _, '=') if at_key => {
                keys.push(std::mem::take(&mut key));
                at_key = false;
            }
            (false, _, c) if at_key => key.push(c),
            _ => {}
        }
    }
    keys
}

#[test]
fn addresses_and_optional_fields_print_plainly() {
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    assert_eq!(
        Event::Rebound { local }.line("a"),
        "agent=a event=rebound local=127.0.0.1:40000"
    );
    assert_eq!(
        Event::Resumed { call: None }.line("a"),
        "agent=a event=resumed call=none"
    );
    assert_eq!(
        Event::Resumed {
            call: Some(("c7".into(), 2))
        }
        .line("a"),
        "agent=a event=resumed call=c7 flow=2"
    );
    assert_eq!(
        Event::CallEnded {
            call: "c7".into(),
            reason: "caller_hung_up".into(),
            media: MediaCounters::default()
        }
        .line("a"),
        "agent=a event=call_ended call=c7 reason=caller_hung_up sent=0 received=0 concealed=0 fec=0 red=0 red_late=0 lost=0 late=0"
    );
    assert_eq!(
        Event::Exit {
            code: 2,
            reason: "login_refused".into()
        }
        .to_string(),
        "exit code=2 reason=login_refused"
    );
}
