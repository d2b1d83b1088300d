//! The `authwatch` binary: parse the command line, set up logging,
//! dispatch. Errors become exit codes here: 2 for usage and configuration
//! mistakes, 1 for everything else.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use authwatch::cli::{BlocksCommand, Cli, Command, RulesArgs, RulesCommand};
use authwatch::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_MAX_LINE_BYTES};
use authwatch::ip::Allowlist;
use authwatch::rules::RuleSet;

/// A configuration or rule mistake: exit code 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                if io.kind() == io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            if let Some(u) = e.downcast_ref::<Usage>() {
                eprintln!("authwatch: {u}");
                return ExitCode::from(2);
            }
            eprintln!("authwatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr. Under systemd (JOURNAL_STREAM set) journald adds the
/// time and the unit, so the lines carry neither time nor colour.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal());
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| Usage(e.to_string()).into())
}

fn load_rules(dir: &std::path::Path) -> anyhow::Result<RuleSet> {
    RuleSet::load_dir(dir).map_err(|e| Usage(e.to_string()).into())
}

/// Rules and allowlist from `--config` or `--rules`; with neither, the
/// default configuration file.
fn rules_from(args: &RulesArgs) -> anyhow::Result<(RuleSet, Allowlist, usize)> {
    match (&args.config, &args.rules) {
        (_, Some(dir)) => Ok((
            load_rules(dir)?,
            Allowlist::default(),
            DEFAULT_MAX_LINE_BYTES,
        )),
        (Some(c), None) => {
            let config = load_config(c)?;
            Ok((
                load_rules(&config.rules_dir)?,
                config.allowlist,
                config.max_line_bytes,
            ))
        }
        (None, None) => {
            let config = load_config(DEFAULT_CONFIG_PATH.as_ref())?;
            Ok((
                load_rules(&config.rules_dir)?,
                config.allowlist,
                config.max_line_bytes,
            ))
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => run_daemon(&config),
        Command::Replay {
            rules,
            threshold,
            window,
            json,
            source,
            files,
        } => {
            let (mut set, allowlist, max_line_bytes) = rules_from(&rules)?;
            set.override_all(threshold, window);
            let set = Arc::new(set);
            let opts = authwatch::replay::ReplayOptions {
                inputs: files,
                json,
                max_line_bytes,
                source,
            };
            let stdout = io::stdout();
            let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
            let summary = authwatch::replay::run(set.clone(), allowlist, &opts, &mut out)?;
            out.flush()?;
            eprintln!("{}", summary.render(&set));
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            command: RulesCommand::Check { rules },
        } => {
            let (set, _, _) = match rules_from(&rules) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let examples: usize = set.rules().iter().map(|r| r.examples.len()).sum();
            println!(
                "ok: {} rules, {} examples pass",
                set.rules().len(),
                examples
            );
            for r in set.rules() {
                println!(
                    "  {:<24} threshold {} in {}, block for {}, {} examples  ({}:{})",
                    r.id,
                    r.threshold,
                    authwatch::duration::format(r.window),
                    authwatch::duration::format(r.block_for),
                    r.examples.len(),
                    r.file.display(),
                    r.line
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            command: RulesCommand::Test { rules, rule, line },
        } => {
            let (set, allowlist, _) = rules_from(&rules)?;
            let report =
                authwatch::rules::explain(&set, &allowlist, rule.as_deref(), line.as_bytes())
                    .map_err(Usage)?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Blocks {
            command: BlocksCommand::List { config, json },
        } => {
            let config = load_config(&config)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(list_blocks(&config, json))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_daemon(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let rules = Arc::new(load_rules(&config.rules_dir)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("authwatch")
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_stop_signal().await;
            signals.cancel();
        });
        authwatch::daemon::run(config, rules, shutdown, || {}).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

async fn list_blocks(config: &Config, json: bool) -> anyhow::Result<()> {
    use authwatch::sink::blocklist::Blocklist;
    let bl = Blocklist::connect(&config.redis.url, &config.redis.key_prefix).await?;
    let now = authwatch::time::Timestamp::now();
    let blocks = bl.list(now).await?;
    let mut out = io::stdout().lock();
    if json {
        let list: Vec<serde_json::Value> = blocks
            .iter()
            .map(|b| {
                let mut v = b.record.clone();
                if let Some(o) = v.as_object_mut() {
                    o.insert("seconds_left".into(), b.ttl_secs.into());
                }
                v
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(());
    }
    if blocks.is_empty() {
        writeln!(out, "no current blocks")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<40} {:<20} {:>6}  {:<24} {:>10}",
        "IP", "RULE", "COUNT", "EXPIRES", "LEFT"
    )?;
    for b in &blocks {
        let field = |k: &str| {
            b.record
                .get(k)
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_default()
        };
        writeln!(
            out,
            "{:<40} {:<20} {:>6}  {:<24} {:>10}",
            b.ip,
            field("rule"),
            field("count"),
            field("expires_at"),
            authwatch::duration::format(std::time::Duration::from_secs(b.ttl_secs.max(0) as u64))
        )?;
    }
    Ok(())
}
