//! Schedule entries read in the policy's time zone, across daylight-saving changes.
//!
//! Europe/Budapest is UTC+1 in winter (CET) and UTC+2 in summer (CEST); the clocks go
//! forward from 02:00 to 03:00 on the last Sunday of March and back from 03:00 to 02:00 on
//! the last Sunday of October. In 2025 those are 30 March and 26 October.
//!
//! The engine asks croner for the most recent occurrence at or before `now`. For an entry
//! at one fixed time of day (`30 2 * * *`), croner runs a wall-clock time that does not
//! exist (spring forward) at the first real instant after the gap, and a wall-clock time
//! that occurs twice (fall back) once, at the first of the two instants.

#[allow(dead_code)]
mod common;

use ballast_core::{Observations, Policy, PolicyState, Strategy, Timestamp, decide};
use chrono::TimeDelta;
use common::{at, policy};

/// The floor the schedules set at `now` and the reason, which names the firing.
fn floor_at(policy: &Policy, now: Timestamp) -> Option<(u32, String)> {
    let obs = Observations::new(policy.min_replicas, policy.metrics.len());
    let d = decide(policy, &mut PolicyState::default(), now, &obs);
    d.proposals
        .into_iter()
        .find(|p| p.strategy == Strategy::Schedule)
        .map(|p| (p.desired, p.reason))
}

/// Every firing between `from` and `to` seen at five-minute steps (every entry here fires
/// on a multiple of five minutes): the UTC minute at which the schedule proposal changed to
/// name a new firing, and the floor it set.
fn firings(policy: &Policy, from: &str, to: &str) -> Vec<(String, u32)> {
    let (from, to) = (at(from), at(to));
    let mut out = Vec::new();
    let mut last = floor_at(policy, from - TimeDelta::minutes(1)).map(|f| f.1);
    let mut now = from;
    while now < to {
        let (floor, reason) = floor_at(policy, now).expect("a schedule proposal");
        if last.as_deref() != Some(reason.as_str()) {
            out.push((now.format("%Y-%m-%d %H:%M").to_string(), floor));
            last = Some(reason);
        }
        now += TimeDelta::minutes(5);
    }
    out
}

fn fired(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

const OFFICE_HOURS: &str = r#"
name: office-hours
min_replicas: 1
max_replicas: 10
schedules:
  - {cron_expression: "0 8 * * 1-5", desired_replicas: 5, timezone: Europe/Budapest}
  - {cron_expression: "0 20 * * 1-5", desired_replicas: 1, timezone: Europe/Budapest}
"#;

#[test]
fn a_weekday_0800_budapest_entry_fires_at_0700_utc_in_winter_and_0600_utc_in_summer() {
    let p = policy(OFFICE_HOURS);
    let floor = |t: &str| floor_at(&p, at(t)).unwrap().0;
    // Winter (CET, UTC+1).
    assert_eq!(floor("2025-01-06T06:59:59Z"), 1);
    assert_eq!(floor("2025-01-06T07:00:00Z"), 5);
    assert_eq!(floor("2025-01-06T18:59:59Z"), 5);
    assert_eq!(floor("2025-01-06T19:00:00Z"), 1);
    // Summer (CEST, UTC+2).
    assert_eq!(floor("2025-07-07T05:59:59Z"), 1);
    assert_eq!(floor("2025-07-07T06:00:00Z"), 5);
    assert_eq!(floor("2025-07-07T17:59:59Z"), 5);
    assert_eq!(floor("2025-07-07T18:00:00Z"), 1);
}

#[test]
fn the_reason_names_the_firing_in_local_time() {
    let p = policy(OFFICE_HOURS);
    let (_, reason) = floor_at(&p, at("2025-03-31T06:30:00Z")).unwrap();
    assert_eq!(
        reason,
        "schedule `0 8 * * 1-5` (Europe/Budapest) fired at 2025-03-31 08:00 CEST: floor 5"
    );
}

#[test]
fn weekday_entries_move_by_an_hour_in_utc_across_the_march_switch() {
    let p = policy(OFFICE_HOURS);
    assert_eq!(
        firings(&p, "2025-03-27T00:00:00Z", "2025-04-01T00:00:00Z"),
        fired(&[
            ("2025-03-27 07:00", 5), // Thursday 08:00 CET
            ("2025-03-27 19:00", 1),
            ("2025-03-28 07:00", 5), // Friday
            ("2025-03-28 19:00", 1), // then nothing over the weekend of the switch
            ("2025-03-31 06:00", 5), // Monday 08:00 CEST
            ("2025-03-31 18:00", 1),
        ])
    );
}

#[test]
fn weekday_entries_move_by_an_hour_in_utc_across_the_october_switch() {
    let p = policy(OFFICE_HOURS);
    assert_eq!(
        firings(&p, "2025-10-23T00:00:00Z", "2025-10-28T00:00:00Z"),
        fired(&[
            ("2025-10-23 06:00", 5), // Thursday 08:00 CEST
            ("2025-10-23 18:00", 1),
            ("2025-10-24 06:00", 5), // Friday
            ("2025-10-24 18:00", 1),
            ("2025-10-27 07:00", 5), // Monday 08:00 CET
            ("2025-10-27 19:00", 1),
        ])
    );
}

const AT_0230: &str = r#"
name: night-batch
min_replicas: 1
max_replicas: 10
schedules:
  - {cron_expression: "30 2 * * *", desired_replicas: 6, timezone: Europe/Budapest}
  - {cron_expression: "45 2 * * *", desired_replicas: 3, timezone: Europe/Budapest}
  - {cron_expression: "0 12 * * *", desired_replicas: 1, timezone: Europe/Budapest}
"#;

#[test]
fn an_entry_at_a_local_time_skipped_by_spring_forward_fires_once_right_after_the_gap() {
    // On 30 March 02:00 CET jumps to 03:00 CEST: 02:30 and 02:45 do not exist that night.
    // croner runs both entries at the first real instant after the gap, 03:00 CEST (01:00
    // UTC); they tie, and the larger floor wins. Not never, not twice.
    let p = policy(AT_0230);
    assert_eq!(
        firings(&p, "2025-03-29T00:00:00Z", "2025-03-31T00:00:00Z"),
        fired(&[
            ("2025-03-29 01:30", 6), // 02:30 CET
            ("2025-03-29 01:45", 3), // 02:45 CET
            ("2025-03-29 11:00", 1), // 12:00 CET
            ("2025-03-30 01:00", 6), // 03:00 CEST: the skipped 02:30 and 02:45 both run now
            ("2025-03-30 10:00", 1), // 12:00 CEST
        ])
    );
    let (_, reason) = floor_at(&p, at("2025-03-30T01:00:00Z")).unwrap();
    assert!(
        reason.contains("fired at 2025-03-30 03:00 CEST"),
        "{reason}"
    );
}

#[test]
fn an_entry_at_a_local_time_repeated_by_fall_back_fires_once_at_the_first_instant() {
    // On 26 October 03:00 CEST goes back to 02:00 CET: 02:30 happens at 00:30 UTC and
    // again at 01:30 UTC. Each entry fires at the first only; at 01:35 UTC the floor is
    // still the one set by 02:45 CEST.
    let p = policy(AT_0230);
    assert_eq!(
        firings(&p, "2025-10-25T12:00:00Z", "2025-10-27T00:00:00Z"),
        fired(&[
            ("2025-10-26 00:30", 6), // 02:30 CEST
            ("2025-10-26 00:45", 3), // 02:45 CEST; nothing at 02:30 or 02:45 CET
            ("2025-10-26 11:00", 1), // 12:00 CET
        ])
    );
    let (floor, reason) = floor_at(&p, at("2025-10-26T01:35:00Z")).unwrap();
    assert_eq!(floor, 3);
    assert!(
        reason.contains("fired at 2025-10-26 02:45 CEST"),
        "{reason}"
    );
}

#[test]
fn the_most_recent_entry_sets_the_floor_until_the_next_one_fires() {
    let p = policy(OFFICE_HOURS);
    let floor = |t: &str| floor_at(&p, at(t)).unwrap().0;
    assert_eq!(floor("2025-01-10T12:00:00Z"), 5, "Friday noon");
    assert_eq!(floor("2025-01-10T19:00:00Z"), 1, "Friday 20:00 CET");
    assert_eq!(
        floor("2025-01-11T12:00:00Z"),
        1,
        "Saturday: Friday evening's entry"
    );
    assert_eq!(floor("2025-01-12T23:00:00Z"), 1, "Monday 00:00 CET");
    assert_eq!(floor("2025-01-13T07:00:00Z"), 5, "Monday 08:00 CET");
}

#[test]
fn entries_in_different_zones_are_ordered_by_the_instant_they_fired() {
    let p = policy(
        r#"
name: two-zones
min_replicas: 1
max_replicas: 10
schedules:
  - {cron_expression: "0 9 * * *", desired_replicas: 4, timezone: Europe/Budapest}
  - {cron_expression: "0 8 * * *", desired_replicas: 2}
  - {cron_expression: "0 22 * * *", desired_replicas: 7, timezone: America/New_York}
"#,
    );
    let floor = |t: &str| floor_at(&p, at(t)).unwrap().0;
    // Winter: 22:00 New York (EST) is 03:00 UTC; 09:00 Budapest (CET) is 08:00 UTC, a tie
    // with the UTC entry that the larger floor wins.
    assert_eq!(floor("2025-01-06T07:30:00Z"), 7);
    assert_eq!(floor("2025-01-06T08:00:00Z"), 4);
    // Summer: 22:00 EDT is 02:00 UTC, 09:00 CEST is 07:00 UTC, an hour before the UTC one.
    assert_eq!(floor("2025-07-07T02:30:00Z"), 7);
    assert_eq!(floor("2025-07-07T07:30:00Z"), 4);
    assert_eq!(floor("2025-07-07T08:00:00Z"), 2);
}

#[test]
fn the_floor_is_applied_through_decide_as_a_lower_bound_of_the_other_strategies() {
    let p = policy(
        r#"
name: floor-and-tracking
min_replicas: 1
max_replicas: 10
cooldown_seconds: 0
metrics:
  queue: {query: 'sum(queue_length)'}
target_tracking: {metric: queue, target: 10}
schedules:
  - {cron_expression: "0 8 * * 1-5", desired_replicas: 5, timezone: Europe/Budapest}
  - {cron_expression: "0 20 * * 1-5", desired_replicas: 1, timezone: Europe/Budapest}
"#,
    );
    let desired = |t: &str, queue: f64| {
        let now = at(t);
        let mut obs = Observations::new(3, 1);
        obs.metrics[0] = ballast_core::MetricObservation::value(now, queue);
        decide(&p, &mut PolicyState::default(), now, &obs).desired
    };
    assert_eq!(
        desired("2025-07-07T07:00:00Z", 10.0),
        5,
        "floor above tracking's 1"
    );
    assert_eq!(
        desired("2025-07-07T07:00:00Z", 80.0),
        8,
        "tracking above the floor"
    );
    assert_eq!(desired("2025-07-07T19:00:00Z", 10.0), 1, "evening floor 1");
}
