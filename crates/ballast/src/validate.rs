//! `ballast validate FILE...`: every problem of every policy, like a compiler would print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ballast_core::{Format, Policy, Problem, parse_document, validate_all};
use ballast_runtime::ExecutorFactory as _;

/// Arguments of `ballast validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy files, or folders whose `.yaml`, `.yml` and `.json` files are read.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// One problem, located in its file.
#[derive(Debug)]
struct Located {
    file: PathBuf,
    problem: Problem,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (files, policies) = check_and_report(&args.paths)?;
    match policies {
        Some(policies) => {
            println!(
                "{} polic{} in {} file{}: OK",
                policies.len(),
                if policies.len() == 1 { "y" } else { "ies" },
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}

/// Reads and validates the files named (and the policy files of the folders named), printing
/// every problem as `ballast validate` does. Returns the files read, and the policies when
/// there was no problem at all.
pub fn check_and_report(paths: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, Option<Vec<Policy>>)> {
    let files = expand(paths)?;
    let (policies, problems) = check_files(&files)?;
    for p in &problems {
        let path = if p.problem.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", p.problem.path)
        };
        println!("{}: {path}{}", p.file.display(), p.problem.message);
    }
    if problems.is_empty() {
        return Ok((files, Some(policies)));
    }
    let with_problems = problems
        .iter()
        .map(|p| &p.file)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    eprintln!(
        "{} problem{} in {with_problems} file{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        if with_problems == 1 { "" } else { "s" }
    );
    Ok((files, None))
}

/// Files named, and the policy files inside folders named, in a stable order.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read folder {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(
                            p.extension().and_then(|e| e.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                })
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads and validates policy files together, so that a name used in two files is caught.
fn check_files(files: &[PathBuf]) -> anyhow::Result<(Vec<Policy>, Vec<Located>)> {
    let mut policies = Vec::new();
    let mut problems = Vec::new();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Located {
                    file: file.clone(),
                    problem: Problem::new("", format!("cannot read the file: {e}")),
                });
                continue;
            }
        };
        let parsed = match parse_document(&text, format_of(file)) {
            Ok(p) => p,
            Err(e) => {
                problems.push(Located {
                    file: file.clone(),
                    problem: Problem::new("", e.to_string()),
                });
                continue;
            }
        };
        if parsed.is_empty() {
            problems.push(Located {
                file: file.clone(),
                problem: Problem::new("", "the file holds no policy"),
            });
        }
        let targets = ballast_runtime::Targets::default();
        for (item, result) in parsed.iter().zip(validate_all(&parsed)) {
            if let Some(spec) = &item.spec {
                match names.get(&spec.name) {
                    Some(first) if first != file => problems.push(Located {
                        file: file.clone(),
                        problem: Problem::new(
                            "name",
                            format!(
                                "duplicate policy name `{}` (also in {})",
                                spec.name,
                                first.display()
                            ),
                        )
                        .prefixed(&item.location),
                    }),
                    Some(_) => {}
                    None => {
                        names.insert(spec.name.clone(), file.clone());
                    }
                }
                // The executor's own fields, which only the executor knows.
                for p in targets.check(spec.target.as_ref()) {
                    problems.push(Located {
                        file: file.clone(),
                        problem: Problem::new(p.path, p.reason).prefixed(&item.location),
                    });
                }
            }
            match result {
                Ok(policy) => policies.push(policy),
                Err(found) => problems.extend(found.into_iter().map(|problem| Located {
                    file: file.clone(),
                    problem,
                })),
            }
        }
    }
    Ok((policies, problems))
}

/// JSON for `.json`, YAML otherwise.
pub fn format_of(path: &Path) -> Format {
    Format::from_file_name(&path.to_string_lossy())
}

/// Loads every policy of the given files, or fails with every problem.
pub fn load(files: &[PathBuf]) -> anyhow::Result<Vec<Policy>> {
    let files = expand(files)?;
    let (policies, problems) = check_files(&files)?;
    if problems.is_empty() {
        return Ok(policies);
    }
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.file.display(), p.problem))
        .collect();
    anyhow::bail!("invalid policies:\n{}", lines.join("\n"))
}
