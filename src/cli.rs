//! The command line: clap definitions only. `main.rs` dispatches them.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::api::commands::BlocksAction;
use crate::api::{parse_subject, Subject};

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
        /// Run even as root. authwatch needs no privilege: run it as a
        /// dedicated user in the `adm` group (the shipped unit does).
        #[arg(long)]
        allow_root: bool,
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
    /// List, show, add and lift blocks. Through the running daemon's API
    /// socket; without a daemon, on Redis directly (stderr says which).
    Blocks {
        #[command(subcommand)]
        command: BlocksCommand,
    },
    /// The daemon's state: sources and their lag, rules, Redis, queues.
    /// Exit 3 if no daemon is running.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// The daemon's status JSON as is.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g.
    /// `authwatch completions bash > /etc/bash_completion.d/authwatch`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `authwatch manpage | man -l -`.
    Manpage,
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
    /// Current blocks, soonest expiry first, with the time left.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One block; exit 1 if there is none.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// An address, or a CIDR network (2001:db8::/64).
        #[arg(value_name = "IP|CIDR", value_parser = parse_subject)]
        ip: Subject,
        /// The block as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Block an address or network by hand (rule "manual"). An existing
    /// longer block is kept.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// An address, or a CIDR network (2001:db8::/64).
        #[arg(value_name = "IP|CIDR", value_parser = parse_subject)]
        ip: Subject,
        /// How long: 90s, 15m, 1h, 7d, 1h30m.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h", value_parser = parse_block_duration)]
        duration: std::time::Duration,
        /// Why, for the record and the logs.
        #[arg(long, value_parser = parse_reason)]
        reason: Option<String>,
    },
    /// Lift a block; the daemon also forgets the failures it counted, so
    /// the next one does not re-block at once. Exit 1 if there was none.
    #[command(visible_alias = "rm")]
    Remove {
        #[command(flatten)]
        config: ConfigArg,
        /// An address, or a CIDR network (2001:db8::/64).
        #[arg(value_name = "IP|CIDR", value_parser = parse_subject)]
        ip: Subject,
    },
}

impl BlocksCommand {
    /// The configuration file named for this command.
    pub fn config(&self) -> &Path {
        match self {
            BlocksCommand::List { config, .. }
            | BlocksCommand::Show { config, .. }
            | BlocksCommand::Add { config, .. }
            | BlocksCommand::Remove { config, .. } => &config.config,
        }
    }

    /// What to do, without the configuration.
    pub fn action(&self) -> BlocksAction {
        match self {
            BlocksCommand::List { json, .. } => BlocksAction::List { json: *json },
            BlocksCommand::Show { ip, json, .. } => BlocksAction::Show {
                subject: *ip,
                json: *json,
            },
            BlocksCommand::Add {
                ip,
                duration,
                reason,
                ..
            } => BlocksAction::Add {
                subject: *ip,
                duration: *duration,
                reason: reason.clone(),
            },
            BlocksCommand::Remove { ip, .. } => BlocksAction::Remove { subject: *ip },
        }
    }
}

/// The configuration file of the commands that talk to the daemon or
/// Redis.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file (its [api] socket and [redis] are used).
    #[arg(long, short, env = "AUTHWATCH_CONFIG", default_value = crate::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
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
    /// With --rules: a reverse proxy whose X-Forwarded-For entries are
    /// believed (and which is allowlisted), as `trusted_proxies` in a
    /// configuration; repeat for several.
    #[arg(long = "trust-proxy", value_name = "CIDR", requires = "rules", value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

fn parse_trusted_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    crate::proxy::parse_trusted(s)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}

fn parse_block_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::api::parse_block_duration(s)
}

fn parse_reason(s: &str) -> Result<String, String> {
    crate::api::check_reason(s).map(|()| s.to_owned())
}
