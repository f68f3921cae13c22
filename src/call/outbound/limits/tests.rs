//! Each limit refuses the call that would break it, and only that one.
use super::*;
use crate::call::outbound::dialplan::normalise;
use crate::call::outbound::TrunkOutbound;

fn config(extra: &str) -> OutboundConfig {
    toml::from_str(&format!(
        "country_code = \"49\"\nnational_prefix = \"0\"\n{extra}"
    ))
    .unwrap()
}

fn trunk(extra: &str) -> TrunkOutbound {
    toml::from_str(&format!(
        "proxy = \"sip:carrier.example\"\ncaller_id = \"+4930999999\"\n{extra}"
    ))
    .unwrap()
}

const DAY: u64 = 20_000;

#[test]
fn national_numbers_pass_international_and_premium_ones_do_not_by_default() {
    let c = config("");
    let check = |typed: &str| check_destination(&normalise(typed, &c).unwrap(), &c);
    assert_eq!(check("030 123456"), Ok(()));
    assert_eq!(check("0171 1234567"), Ok(()));
    assert!(
        matches!(check("0900 1234567"), Err(Refusal::Blocked { prefix, .. }) if prefix == "+49900")
    );
    assert!(matches!(check("0137 123456"), Err(Refusal::Blocked { .. })));
    assert!(matches!(
        check("0044 20 7946 0958"),
        Err(Refusal::NotAllowed { .. })
    ));
    assert!(matches!(
        check("+881 6 1234567"),
        Err(Refusal::Blocked { .. })
    ));
}

#[test]
fn allowed_and_blocked_ranges_are_the_operators_to_set() {
    let c = config("allow = [\"+49\", \"+33\"]\nblock = [\"+4930\"]");
    let check = |typed: &str| check_destination(&normalise(typed, &c).unwrap(), &c);
    assert_eq!(check("+33 1 23 45 67 89"), Ok(()));
    assert_eq!(
        check("0900 1234567"),
        Ok(()),
        "the default block list was replaced"
    );
    assert!(matches!(check("030 123456"), Err(Refusal::Blocked { .. })));
    assert!(matches!(
        check("+44 20 7946 0958"),
        Err(Refusal::NotAllowed { .. })
    ));
}

#[test]
fn an_agent_has_at_most_its_calls_up_and_gets_one_back_when_a_call_ends() {
    let c = config("agent_max_calls = 2");
    let t = trunk("");
    let mut limits = Limits::default();
    let now = Instant::now();
    assert_eq!(
        limits.admit(now, DAY, 1, "alice", &c, "carrier", t.limits()),
        Ok(())
    );
    assert_eq!(
        limits.admit(now, DAY, 2, "alice", &c, "carrier", t.limits()),
        Ok(())
    );
    assert!(matches!(
        limits.admit(now, DAY, 3, "alice", &c, "carrier", t.limits()),
        Err(Refusal::AgentCalls { limit: 2, .. })
    ));
    assert_eq!(
        limits.admit(now, DAY, 4, "bob", &c, "carrier", t.limits()),
        Ok(()),
        "bob has his own"
    );
    limits.ended(now, DAY, 1);
    assert_eq!(
        limits.admit(now, DAY, 5, "alice", &c, "carrier", t.limits()),
        Ok(())
    );
}

#[test]
fn calls_per_hour_count_over_the_last_hour_whether_or_not_they_were_answered() {
    let c = config("agent_calls_per_hour = 3");
    let t = trunk("");
    let mut limits = Limits::default();
    let start = Instant::now();
    for (i, minute) in [0u64, 10, 20].into_iter().enumerate() {
        let at = start + Duration::from_secs(minute * 60);
        limits
            .admit(at, DAY, i as u64, "alice", &c, "carrier", t.limits())
            .unwrap();
        limits.ended(at, DAY, i as u64);
    }
    let at = start + Duration::from_secs(59 * 60);
    assert!(matches!(
        limits.admit(at, DAY, 10, "alice", &c, "carrier", t.limits()),
        Err(Refusal::AgentRate { limit: 3, .. })
    ));
    let hour_after_first = start + HOUR;
    assert_eq!(
        limits.admit(
            hour_after_first,
            DAY,
            11,
            "alice",
            &c,
            "carrier",
            t.limits()
        ),
        Ok(())
    );
}

#[test]
fn a_trunk_has_its_own_channels_and_hourly_rate_across_agents() {
    let c = config("");
    let t = trunk("max_calls = 2\ncalls_per_hour = 3");
    let mut limits = Limits::default();
    let now = Instant::now();
    limits
        .admit(now, DAY, 1, "a", &c, "carrier", t.limits())
        .unwrap();
    limits
        .admit(now, DAY, 2, "b", &c, "carrier", t.limits())
        .unwrap();
    assert!(matches!(
        limits.admit(now, DAY, 3, "c", &c, "carrier", t.limits()),
        Err(Refusal::TrunkCalls { limit: 2, .. })
    ));
    assert_eq!(
        limits.admit(now, DAY, 4, "c", &c, "other", t.limits()),
        Ok(()),
        "another trunk is free"
    );
    limits.ended(now, DAY, 1);
    limits
        .admit(now, DAY, 5, "c", &c, "carrier", t.limits())
        .unwrap();
    limits.ended(now, DAY, 5);
    assert!(matches!(
        limits.admit(now, DAY, 6, "d", &c, "carrier", t.limits()),
        Err(Refusal::TrunkRate { limit: 3, .. })
    ));
}

#[test]
fn answered_minutes_run_out_per_agent_and_per_branch_and_come_back_the_next_day() {
    let c = config("agent_minutes_per_day = 10\nminutes_per_day = 15");
    let t = trunk("");
    let mut limits = Limits::default();
    let start = Instant::now();
    limits
        .admit(start, DAY, 1, "alice", &c, "carrier", t.limits())
        .unwrap();
    limits.answered(start, 1);
    // An ongoing call counts: nine and a half minutes in, alice may still dial…
    let later = start + Duration::from_secs(9 * 60 + 30);
    limits
        .admit(later, DAY, 2, "alice", &c, "carrier", t.limits())
        .unwrap();
    limits.ended(later, DAY, 2);
    // …and at ten minutes she may not.
    let ten = start + Duration::from_secs(600);
    assert!(matches!(
        limits.admit(ten, DAY, 3, "alice", &c, "carrier", t.limits()),
        Err(Refusal::AgentMinutes { limit: 10, .. })
    ));
    // A call that was never answered used no minutes.
    assert_eq!(limits.minutes_today(ten), 10);
    limits.ended(ten, DAY, 1);
    limits
        .admit(ten, DAY, 4, "bob", &c, "carrier", t.limits())
        .unwrap();
    limits.answered(ten, 4);
    // 4 min 1 s counts as 5 started minutes: the branch's 15 are used.
    limits.ended(ten + Duration::from_secs(241), DAY, 4);
    assert!(matches!(
        limits.admit(
            ten + Duration::from_secs(300),
            DAY,
            5,
            "carol",
            &c,
            "carrier",
            t.limits()
        ),
        Err(Refusal::BranchMinutes { limit: 15 })
    ));
    assert_eq!(
        limits.admit(
            ten + Duration::from_secs(300),
            DAY + 1,
            6,
            "alice",
            &c,
            "carrier",
            t.limits()
        ),
        Ok(()),
        "a new day"
    );
}

#[test]
fn the_days_minutes_survive_a_restart_but_not_midnight() {
    let c = config("agent_minutes_per_day = 2\nminutes_per_day = 100");
    let t = trunk("");
    let mut limits = Limits::default();
    let now = Instant::now();
    limits
        .admit(now, DAY, 1, "alice", &c, "carrier", t.limits())
        .unwrap();
    limits.answered(now, 1);
    limits.ended(now + Duration::from_secs(90), DAY, 1);
    let kept = limits.daily();
    assert_eq!(kept.branch_seconds, 120);
    // A new process, the same day: alice has used her two minutes.
    let mut restarted = Limits::default();
    restarted.restore(DAY, kept.clone());
    assert!(matches!(
        restarted.admit(now, DAY, 2, "alice", &c, "carrier", t.limits()),
        Err(Refusal::AgentMinutes { limit: 2, .. })
    ));
    // Kept yesterday: nothing used today.
    let mut next_day = Limits::default();
    next_day.restore(DAY + 1, kept);
    assert_eq!(
        next_day.admit(now, DAY + 1, 3, "alice", &c, "carrier", t.limits()),
        Ok(())
    );
}
