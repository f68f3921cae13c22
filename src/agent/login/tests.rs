//! Failed logins in virtual time.
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

const OFFICE: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));

#[test]
fn an_agent_that_keeps_failing_waits_but_its_colleagues_behind_the_same_nat_do_not() {
    let t0 = Instant::now();
    let mut f = FailedLogins::new();
    for k in 0..MAX_FAILURES_PER_AGENT {
        assert!(f.allowed(t0, OFFICE, "alice"), "attempt {k}");
        f.failed(t0 + Duration::from_secs(u64::from(k)), OFFICE, "alice");
    }
    let t = t0 + Duration::from_secs(5);
    assert!(!f.allowed(t, OFFICE, "alice"));
    assert!(
        f.allowed(t, OFFICE, "bob"),
        "the same office, another agent"
    );
    assert!(f.allowed(t, ELSEWHERE, "alice"), "alice from home");
    // The wait runs from the last failure.
    let last = t0 + Duration::from_secs(u64::from(MAX_FAILURES_PER_AGENT - 1));
    assert!(!f.allowed(
        last + FAILURE_WINDOW - Duration::from_millis(1),
        OFFICE,
        "alice"
    ));
    assert!(f.allowed(last + FAILURE_WINDOW, OFFICE, "alice"));
}

#[test]
fn old_failures_stop_counting_and_a_success_forgets_them() {
    let t0 = Instant::now();
    let mut f = FailedLogins::new();
    for _ in 0..MAX_FAILURES_PER_AGENT - 1 {
        f.failed(t0, OFFICE, "alice");
    }
    // A minute later the count starts over: one more failure does not block.
    f.failed(t0 + FAILURE_WINDOW, OFFICE, "alice");
    assert!(f.allowed(t0 + FAILURE_WINDOW, OFFICE, "alice"));
    for _ in 0..MAX_FAILURES_PER_AGENT - 2 {
        f.failed(t0 + FAILURE_WINDOW, OFFICE, "alice");
    }
    f.succeeded(OFFICE, "alice");
    f.failed(t0 + FAILURE_WINDOW, OFFICE, "alice");
    assert!(
        f.allowed(t0 + FAILURE_WINDOW, OFFICE, "alice"),
        "counted afresh after the success"
    );
}

#[test]
fn an_address_trying_many_agent_ids_waits_once_it_has_failed_often() {
    let t0 = Instant::now();
    let mut f = FailedLogins::new();
    for k in 0..MAX_FAILURES_PER_ADDRESS {
        f.failed(t0, ELSEWHERE, &format!("guess{k}"));
    }
    assert!(!f.allowed(t0, ELSEWHERE, "someone-new"));
    assert!(f.allowed(t0, OFFICE, "someone-new"));
}

#[test]
fn memory_stays_bounded_under_failures_from_ever_new_addresses() {
    let t0 = Instant::now();
    let mut f = FailedLogins::new();
    for k in 0..100_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k));
        f.failed(t0 + Duration::from_millis(u64::from(k)), ip, "alice");
    }
    let (addresses, pairs) = f.tracked();
    assert!(
        addresses <= 16_384 && pairs <= 16_384,
        "{addresses} {pairs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_run_two_at_a_time_in_turn_and_all_get_an_answer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let verifier = Verifier::new(2);
    let hash = crate::agent::credential::hash("s3cret");
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let attempts: Vec<_> = (0..6)
        .map(|k| {
            let (v, h) = (verifier.clone(), hash.clone());
            let (running, most) = (running.clone(), most.clone());
            let credential = if k % 2 == 0 { "s3cret" } else { "wrong" };
            tokio::spawn(async move {
                v.in_turn(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Real Argon2 work, tens of milliseconds: unbounded, all six would overlap.
                    let ok = crate::agent::credential::verify(credential, &h);
                    running.fetch_sub(1, Ordering::SeqCst);
                    ok
                })
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for a in attempts {
        answers.push(a.await.unwrap());
    }
    assert_eq!(answers, [true, false, true, false, true, false]);
    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "{} at once",
        most.load(Ordering::SeqCst)
    );
    assert_eq!(
        verifier.permits.available_permits(),
        2,
        "every turn was given back"
    );
}

#[test]
fn only_guesses_count_as_failures() {
    let t0 = Instant::now();
    let mut f = FailedLogins::new();
    for _ in 0..MAX_FAILURES_PER_AGENT {
        f.record(t0, OFFICE, "alice", Some(RefusalReason::Revoked));
        f.record(t0, OFFICE, "alice", Some(RefusalReason::AlreadyLoggedIn));
    }
    assert!(
        f.allowed(t0, OFFICE, "alice"),
        "refusals that are not guesses"
    );
    for _ in 0..MAX_FAILURES_PER_AGENT - 1 {
        f.record(t0, OFFICE, "alice", Some(RefusalReason::BadCredential));
    }
    f.record(t0, OFFICE, "alice", None);
    f.record(t0, OFFICE, "alice", Some(RefusalReason::UnknownAgent));
    assert!(
        f.allowed(t0, OFFICE, "alice"),
        "the success started the count over"
    );
    for _ in 0..MAX_FAILURES_PER_AGENT {
        f.record(t0, OFFICE, "mallory", Some(RefusalReason::UnknownAgent));
    }
    assert!(!f.allowed(t0, OFFICE, "mallory"));
}
