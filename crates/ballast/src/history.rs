//! `ballast history`: the server's audit log, newest first.

use std::process::ExitCode;

use crate::client::{Client, Entry, ServerArgs};

/// Arguments of `ballast history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this policy (by name).
    #[arg(long)]
    pub policy: Option<String>,
    /// From this time (RFC 3339), inclusive.
    #[arg(long)]
    pub since: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    #[arg(long)]
    pub until: Option<String>,
    /// `scale_up`, `scale_down` or `hold`.
    #[arg(long)]
    pub action: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    // A policy on the server is filtered by id there; a deleted one by its recorded name here.
    let mut by_name = None;
    if let Some(name) = &args.policy {
        match client
            .list()
            .await?
            .into_iter()
            .find(|p| &p.spec.name == name)
        {
            Some(p) => query.push(("policy_id", p.id)),
            None => by_name = Some(name.clone()),
        }
    }
    for (key, value) in [
        ("since", &args.since),
        ("until", &args.until),
        ("action", &args.action),
    ] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut cursor: Option<String> = None;
    while entries.len() < args.limit {
        let mut q = query.clone();
        let want = (args.limit - entries.len()).clamp(1, 500);
        q.push(("limit", want.to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = client.history(&q).await?;
        entries.extend(
            page.entries
                .into_iter()
                .filter(|e| by_name.is_none() || e.policy_name == by_name),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    entries.truncate(args.limit);
    if entries.is_empty() {
        println!("(no entries)");
    }
    for e in &entries {
        println!("{}", line(e));
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry: time, policy, action (or kind), from→to, outcome, reason.
fn line(e: &Entry) -> String {
    let replicas = match (e.from_replicas, e.to_replicas) {
        (Some(f), Some(t)) => format!("{f}→{t}"),
        _ => "-".to_owned(),
    };
    format!(
        "{}  {}  {}  {}  {}  {}",
        e.at,
        e.policy_name.as_deref().unwrap_or("-"),
        e.action.as_deref().unwrap_or(&e.kind),
        replicas,
        e.outcome.as_deref().unwrap_or("-"),
        e.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_shows_time_policy_action_counts_outcome_and_reason() {
        let e = Entry {
            at: "2026-01-31T08:00:00Z".to_owned(),
            kind: "decision".to_owned(),
            policy_name: Some("web".to_owned()),
            action: Some("scale_up".to_owned()),
            from_replicas: Some(2),
            to_replicas: Some(4),
            reason: "busy".to_owned(),
            outcome: Some("dry_run".to_owned()),
        };
        assert_eq!(
            line(&e),
            "2026-01-31T08:00:00Z  web  scale_up  2→4  dry_run  busy"
        );
    }

    #[test]
    fn an_entry_without_an_action_shows_its_kind() {
        let e = Entry {
            at: "t".to_owned(),
            kind: "policy_created".to_owned(),
            policy_name: Some("web".to_owned()),
            action: None,
            from_replicas: None,
            to_replicas: None,
            reason: "created".to_owned(),
            outcome: None,
        };
        assert_eq!(line(&e), "t  web  policy_created  -  -  created");
    }
}
