//! The `target` block of a process pool, as the policy writes it, and its checks.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ballast_executor::{TargetProblem, parse_target};
use serde::Deserialize;

/// The environment variable that carries a replica's index (0-based).
pub const INDEX_VAR: &str = "BALLAST_REPLICA_INDEX";
/// The environment variable that carries the policy's name.
pub const POLICY_VAR: &str = "BALLAST_POLICY";
/// The grace period when the block names none.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// The `type` of a process target: always `process`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProcessType {
    /// `type: process`.
    #[serde(rename = "process")]
    Process,
}

/// What to do when a process exits without being asked to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Start it again (same index, after a backoff) when it exits with a non-zero status or
    /// is killed by a signal; a clean exit (status 0) frees its slot.
    #[default]
    OnFailure,
    /// Never start it again; its slot is free for the next scale-up.
    Never,
}

/// A policy's `target` block for a process pool.
///
/// ```yaml
/// target:
///   type: process
///   command: /usr/local/bin/worker
///   args: ["--port", "80{index}", "--name", "{policy}-{index}"]
///   env: { RUST_LOG: info }
///   working_dir: /srv/worker
///   grace_period: 30s
///   restart: on_failure
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// `process`.
    #[serde(rename = "type")]
    pub kind: ProcessType,
    /// The program: an absolute path, or a name looked up on `PATH` (the `PATH` of `env`
    /// when it sets one, otherwise Ballast's own).
    pub command: String,
    /// Its arguments. `{index}` becomes the replica's index and `{policy}` the policy's name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables, on top of Ballast's own environment, which every process
    /// inherits. The pool adds `BALLAST_REPLICA_INDEX` and `BALLAST_POLICY`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The directory the processes start in (absolute); Ballast's own when absent.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// How long a process has between SIGTERM and SIGKILL (`10s` when absent).
    #[serde(default)]
    pub grace_period: Option<String>,
    /// What to do when a process exits without being asked to.
    #[serde(default)]
    pub restart: Restart,
    /// Where the pool keeps its records of running processes (absolute); the data
    /// directory the runtime passes when absent.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
}

impl ProcessConfig {
    /// Parses a `target` block and checks it: every problem, each with its `target.<field>`
    /// path.
    pub fn from_target(
        target: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<ProcessConfig, Vec<TargetProblem>> {
        let config: ProcessConfig = parse_target(target).map_err(|p| vec![p])?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// What is wrong with this configuration beyond its shape: an empty command, a command
    /// that is not found or not executable, a bad grace period, bad environment names,
    /// relative or missing directories.
    pub fn problems(&self) -> Vec<TargetProblem> {
        let mut problems = Vec::new();
        if let Err(reason) = self.resolve_command() {
            problems.push(TargetProblem::at("command", reason));
        }
        for (i, arg) in self.args.iter().enumerate() {
            if arg.contains('\0') {
                problems.push(TargetProblem::at(
                    &format!("args[{i}]"),
                    "contains a NUL byte",
                ));
            }
        }
        for (name, value) in &self.env {
            let field = format!("env.{name}");
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                problems.push(TargetProblem::at(
                    &field,
                    "an environment variable's name must be non-empty, without `=` or NUL",
                ));
            } else if name == INDEX_VAR || name == POLICY_VAR {
                problems.push(TargetProblem::at(
                    &field,
                    format!("`{name}` is set by the pool for each process"),
                ));
            }
            if value.contains('\0') {
                problems.push(TargetProblem::at(&field, "the value contains a NUL byte"));
            }
        }
        if let Some(dir) = &self.working_dir
            && let Err(reason) = existing_absolute_dir(dir)
        {
            problems.push(TargetProblem::at("working_dir", reason));
        }
        if let Some(dir) = &self.state_dir
            && !dir.is_absolute()
        {
            problems.push(TargetProblem::at(
                "state_dir",
                format!("`{}` is not an absolute path", dir.display()),
            ));
        }
        if let Err(reason) = self.grace() {
            problems.push(TargetProblem::at("grace_period", reason));
        }
        problems
    }

    /// The grace period between SIGTERM and SIGKILL.
    pub fn grace(&self) -> Result<Duration, String> {
        match &self.grace_period {
            None => Ok(DEFAULT_GRACE_PERIOD),
            Some(text) => humantime::parse_duration(text.trim())
                .map_err(|e| format!("`{text}` is not a duration such as `10s` or `500ms`: {e}")),
        }
    }

    /// The program's path as it will be run: the `command` itself when it is absolute,
    /// otherwise the first executable file of that name on `PATH`.
    pub fn resolve_command(&self) -> Result<PathBuf, String> {
        let command = self.command.as_str();
        if command.trim().is_empty() {
            return Err("must not be empty".to_string());
        }
        if command.contains('\0') {
            return Err("contains a NUL byte".to_string());
        }
        if command.contains('/') {
            let path = Path::new(command);
            if !path.is_absolute() {
                return Err(format!(
                    "`{command}` is a relative path; give an absolute path or a program name \
                     looked up on PATH"
                ));
            }
            return match executable(path) {
                FileCheck::Yes => Ok(path.to_path_buf()),
                FileCheck::NotExec => Err(format!("`{command}` is not executable")),
                FileCheck::Missing => Err(format!("`{command}` does not exist")),
                FileCheck::NotAFile => Err(format!("`{command}` is not a file")),
            };
        }
        let search = self
            .env
            .get("PATH")
            .map(|p| p.as_str().into())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let mut found_but_not_executable = None;
        for dir in std::env::split_paths(&search) {
            let candidate = dir.join(command);
            match executable(&candidate) {
                FileCheck::Yes => return Ok(candidate),
                FileCheck::NotExec => {
                    found_but_not_executable.get_or_insert(candidate);
                }
                FileCheck::Missing | FileCheck::NotAFile => {}
            }
        }
        Err(match found_but_not_executable {
            Some(path) => format!(
                "`{command}` is found on PATH at `{}` but is not executable",
                path.display()
            ),
            None => format!("`{command}` is not found on PATH"),
        })
    }

    /// The command line of the replica `index` of the policy `policy`: the command, then
    /// the arguments with their placeholders filled in.
    pub fn argv(&self, policy: &str, index: u32) -> Vec<String> {
        let index = index.to_string();
        std::iter::once(self.command.clone())
            .chain(
                self.args
                    .iter()
                    .map(|a| a.replace("{index}", &index).replace("{policy}", policy)),
            )
            .collect()
    }
}

/// Parses and checks a `target` block of `type: process`: every problem, each with its
/// `target.<field>` path.
pub fn check(target: &serde_json::Map<String, serde_json::Value>) -> Vec<TargetProblem> {
    match ProcessConfig::from_target(target) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

enum FileCheck {
    Yes,
    NotExec,
    NotAFile,
    Missing,
}

fn executable(path: &Path) -> FileCheck {
    match std::fs::metadata(path) {
        Err(_) => FileCheck::Missing,
        Ok(m) if !m.is_file() => FileCheck::NotAFile,
        Ok(m) if m.permissions().mode() & 0o111 == 0 => FileCheck::NotExec,
        Ok(_) => FileCheck::Yes,
    }
}

fn existing_absolute_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_absolute() {
        return Err(format!("`{}` is not an absolute path", dir.display()));
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("`{}` is not a directory", dir.display())),
        Err(e) => Err(format!("`{}`: {e}", dir.display())),
    }
}

/// The file name of a policy's records: the name with every byte outside
/// `[A-Za-z0-9._-]` written as `%XX`, so two policies never share a file.
pub(crate) fn records_file_name(policy: &str) -> String {
    let mut name = String::from("process-");
    for b in policy.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".json");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().expect("an object").clone()
    }

    fn paths(problems: &[TargetProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn a_minimal_block_takes_the_defaults() {
        let c = ProcessConfig::from_target(&block(
            serde_json::json!({"type": "process", "command": "sleep", "args": ["1000"]}),
        ))
        .expect("valid");
        assert_eq!(c.grace(), Ok(DEFAULT_GRACE_PERIOD));
        assert_eq!(c.restart, Restart::OnFailure);
        assert!(c.resolve_command().expect("sleep is on PATH").is_absolute());
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_named() {
        let p = check(&block(
            serde_json::json!({"type": "process", "command": "sleep", "argz": []}),
        ));
        assert_eq!(paths(&p), ["target.argz"]);
        let p = check(&block(
            serde_json::json!({"type": "process", "command": "sleep", "restart": "always"}),
        ));
        assert_eq!(paths(&p), ["target.restart"]);
        assert!(p[0].reason.contains("always"), "{}", p[0]);
        let p = check(&block(serde_json::json!({"type": "process"})));
        assert_eq!(paths(&p), ["target.command"]);
    }

    #[test]
    fn semantic_problems_are_all_reported_with_their_paths() {
        let p = check(&block(serde_json::json!({
            "type": "process",
            "command": "  ",
            "grace_period": "ten seconds",
            "working_dir": "relative/dir",
            "state_dir": "also/relative",
            "env": {"BALLAST_REPLICA_INDEX": "7", "A=B": "x"},
        })));
        assert_eq!(
            paths(&p),
            [
                "target.command",
                "target.env.A=B",
                "target.env.BALLAST_REPLICA_INDEX",
                "target.working_dir",
                "target.state_dir",
                "target.grace_period",
            ],
            "{p:?}"
        );
        assert!(p[0].reason.contains("empty"), "{}", p[0]);
        assert!(p[5].reason.contains("ten seconds"), "{}", p[5]);
    }

    #[test]
    fn a_command_not_on_path_or_not_executable_is_a_problem() {
        let p = check(&block(serde_json::json!({
            "type": "process", "command": "ballast-no-such-program-xyz",
        })));
        assert_eq!(paths(&p), ["target.command"]);
        assert!(p[0].reason.contains("not found on PATH"), "{}", p[0]);

        let dir = tempfile::tempdir().expect("a temporary directory");
        let script = dir.path().join("tool");
        std::fs::write(&script, "#!/bin/sh\n").expect("written");
        let p = check(&block(serde_json::json!({
            "type": "process", "command": script.to_str().expect("utf-8"),
        })));
        assert_eq!(paths(&p), ["target.command"]);
        assert!(p[0].reason.contains("not executable"), "{}", p[0]);
        let p = check(&block(serde_json::json!({
            "type": "process", "command": "tool",
            "env": {"PATH": dir.path().to_str().expect("utf-8")},
        })));
        assert_eq!(paths(&p), ["target.command"]);
        assert!(p[0].reason.contains("not executable"), "{}", p[0]);

        let p = check(&block(serde_json::json!({
            "type": "process", "command": "./tool",
        })));
        assert!(p[0].reason.contains("relative"), "{}", p[0]);
    }

    #[test]
    fn placeholders_are_filled_in_the_arguments() {
        let c: ProcessConfig = parse_target(&block(serde_json::json!({
            "type": "process", "command": "worker",
            "args": ["--port", "80{index}", "{policy}-{index}", "{other}"],
        })))
        .expect("parsed");
        assert_eq!(
            c.argv("web", 3),
            ["worker", "--port", "803", "web-3", "{other}"]
        );
    }

    #[test]
    fn record_file_names_keep_policies_apart() {
        assert_eq!(records_file_name("web-1"), "process-web-1.json");
        assert_eq!(records_file_name("a/b c"), "process-a%2Fb%20c.json");
        assert_ne!(records_file_name("a/b"), records_file_name("a%2Fb"));
    }
}
