//! The command line: clap definitions only. `main.rs` dispatches them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "authwatch",
    version,
    about = "Blocks IPs that brute-force SSH or forge JWTs, from their log lines, through Redis"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: follow the sources, block through Redis, alert.
    Run {
        /// Configuration file.
        #[arg(long, short, env = "AUTHWATCH_CONFIG", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Replay log files through the rules from their start, at their own
    /// event times, and print every block decision (nothing is written to
    /// Redis). `-` reads standard input.
    Replay {
        #[command(flatten)]
        rules: RulesArgs,
        /// Override every rule's threshold.
        #[arg(long)]
        threshold: Option<u32>,
        /// Override every rule's window (e.g. 60s, 10m).
        #[arg(long, value_parser = parse_duration)]
        window: Option<std::time::Duration>,
        /// One JSON object per decision.
        #[arg(long)]
        json: bool,
        /// Apply only the rules that read this source.
        #[arg(long)]
        source: Option<String>,
        /// Files to replay, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Inspect rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Inspect current blocks.
    Blocks {
        #[command(subcommand)]
        command: BlocksCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate every rule and run its examples; exit 0 or 1.
    Check {
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Show what the rules make of one line: which rule, which IP, which
    /// time, and whether it would count.
    Test {
        #[command(flatten)]
        rules: RulesArgs,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// The log line.
        line: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlocksCommand {
    /// Current blocks from Redis, with the time left.
    List {
        #[arg(long, short, env = "AUTHWATCH_CONFIG", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Where the rules come from: a configuration file, or a directory.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Configuration file (its rules_dir and allowlist are used).
    #[arg(long, short, env = "AUTHWATCH_CONFIG", conflicts_with = "rules")]
    pub config: Option<PathBuf>,
    /// A rules directory; with it and no --config, the allowlist is empty.
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}
