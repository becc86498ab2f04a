//! `ballast prices`: the hourly prices of a cloud provider's server types, from its own
//! catalogue (the prices a cloud node group's decisions are costed with).

use std::path::PathBuf;

use ballast_cloud::{PriceQuery, PriceRow, ProviderKind};

/// Arguments of `ballast prices`.
#[derive(Debug, clap::Args)]
pub struct PricesArgs {
    /// The provider: `hetzner`, `scaleway` or `ovh`.
    #[arg(long, value_parser = ["hetzner", "scaleway", "ovh"])]
    pub provider: String,
    /// Only this location (Hetzner), zone (Scaleway; required there) or region (OVHcloud).
    #[arg(long, visible_aliases = ["zone", "region"])]
    pub location: Option<String>,
    /// The provider's API base URL (default: its public endpoint).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// A file of `NAME=value` credential lines (default: the environment: `HCLOUD_TOKEN`,
    /// `SCW_SECRET_KEY`; OVHcloud's catalogue needs none).
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
    /// OVHcloud subsidiary whose catalogue to read.
    #[arg(long, default_value = "FR")]
    pub ovh_subsidiary: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Reads the catalogue and prints it.
pub async fn run(args: &PricesArgs) -> anyhow::Result<()> {
    let kind = match args.provider.as_str() {
        "hetzner" => ProviderKind::Hetzner,
        "scaleway" => ProviderKind::Scaleway,
        "ovh" => ProviderKind::Ovh,
        other => anyhow::bail!("unknown provider {other:?}: hetzner, scaleway or ovh"),
    };
    let query = PriceQuery {
        place: args.location.clone(),
        endpoint: args.endpoint.clone(),
        credentials_file: args.credentials_file.clone(),
        subsidiary: Some(args.ovh_subsidiary.clone()),
    };
    let rows = ballast_cloud::prices(kind, &query)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

/// The rows as an aligned table.
fn table(rows: &[PriceRow]) -> String {
    if rows.is_empty() {
        return "(no prices)\n".to_string();
    }
    let header = [
        "SERVER TYPE",
        "LOCATION",
        "VCPUS",
        "MEMORY GB",
        "PER HOUR",
        "",
    ];
    let number = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.server_type.clone(),
                r.location.clone(),
                number(r.cpus),
                number(r.memory_gb.map(|m| (m * 100.0).round() / 100.0)),
                format!("{:.4}", r.hourly),
                r.currency.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for line in &lines {
        for (w, cell) in width.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: [&str; 6]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            // Names to the left, numbers to the right.
            let cell = if (2..=4).contains(&i) {
                format!("{cell:>w$}", w = width[i])
            } else {
                format!("{cell:<w$}", w = width[i])
            };
            line.push_str(&cell);
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push(header);
    for line in &lines {
        push([&line[0], &line[1], &line[2], &line[3], &line[4], &line[5]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_print_as_an_aligned_table() {
        let row = |t: &str, l: &str, h: f64, c: Option<f64>, m: Option<f64>| PriceRow {
            server_type: t.into(),
            location: l.into(),
            hourly: h,
            currency: "EUR".into(),
            cpus: c,
            memory_gb: m,
        };
        let out = table(&[
            row("cx22", "fsn1", 0.00714, Some(2.0), Some(4.0)),
            row("cx32", "fsn1", 0.01309, Some(4.0), Some(8.0)),
            row("b2-7", "*", 0.0681, None, None),
        ]);
        assert_eq!(
            out,
            "SERVER TYPE  LOCATION  VCPUS  MEMORY GB  PER HOUR\n\
             cx22         fsn1          2          4    0.0071  EUR\n\
             cx32         fsn1          4          8    0.0131  EUR\n\
             b2-7         *             -          -    0.0681  EUR\n"
        );
        assert_eq!(table(&[]), "(no prices)\n");
    }
}
