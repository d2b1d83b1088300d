//! The `authwatch` binary: parse the command line, set up logging,
//! dispatch. Errors become exit codes here: 2 for usage and configuration
//! mistakes, 1 for everything else.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use authwatch::cli::{Cli, Command, RulesArgs, RulesCommand};
use authwatch::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_MAX_LINE_BYTES};
use authwatch::ip::Allowlist;
use authwatch::proxy::TrustedProxies;
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

/// The configuration's rules, trusting its proxies.
fn load_rules_for(config: &Config) -> anyhow::Result<RuleSet> {
    let mut set = load_rules(&config.rules_dir)?;
    set.trust_proxies(config.trusted_proxies.clone(), config.proxies_by_source());
    Ok(set)
}

/// Rules and allowlist from `--config` or `--rules`; with neither, the
/// default configuration file.
fn rules_from(args: &RulesArgs) -> anyhow::Result<(RuleSet, Allowlist, usize)> {
    match (&args.config, &args.rules) {
        (_, Some(dir)) => {
            let mut set = load_rules(dir)?;
            let proxies = args.trusted_proxies.clone();
            set.trust_proxies(TrustedProxies::new(proxies.clone()), Vec::new());
            // As a configuration does: a trusted proxy is never blocked.
            Ok((set, Allowlist::new(proxies), DEFAULT_MAX_LINE_BYTES))
        }
        (Some(c), None) => {
            let config = load_config(c)?;
            Ok((
                load_rules_for(&config)?,
                config.allowlist,
                config.max_line_bytes,
            ))
        }
        (None, None) => {
            let config = load_config(DEFAULT_CONFIG_PATH.as_ref())?;
            Ok((
                load_rules_for(&config)?,
                config.allowlist,
                config.max_line_bytes,
            ))
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config, allow_root } => {
            authwatch::privilege::refuse_root(allow_root).map_err(|e| Usage(e.to_string()))?;
            run_daemon(&config)
        }
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
            // Written, not println!'d: `rules check | head` closes the pipe
            // early, which is a success (main sees the BrokenPipe), not a
            // panic.
            let mut out = io::stdout().lock();
            writeln!(
                out,
                "ok: {} rules, {} examples pass",
                set.rules().len(),
                examples
            )?;
            for r in set.rules() {
                writeln!(
                    out,
                    "  {:<24} threshold {} in {}, block for {}, {} examples  ({}:{})",
                    r.id,
                    r.threshold,
                    authwatch::duration::format(r.window),
                    authwatch::duration::format(r.block_for),
                    r.examples.len(),
                    r.file.display(),
                    r.line
                )?;
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
            io::stdout().write_all(report.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Blocks { command } => {
            let config = load_config(command.config())?;
            let action = command.action();
            operator_command(authwatch::api::commands::blocks(
                &config,
                &action,
                &mut io::stdout(),
                &mut io::stderr(),
            ))
        }
        Command::Status { config, json } => {
            let config = load_config(&config.config)?;
            operator_command(authwatch::api::commands::status(
                &config,
                json,
                &mut io::stdout(),
                &mut io::stderr(),
            ))
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Generated into memory: clap_complete panics on a write
            // error, and a closed pipe is not a failure.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "authwatch", &mut script);
            io::stdout().write_all(&script)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpage => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            io::stdout().write_all(&page)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_daemon(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    authwatch::reload::take_applied_mark();
    let config = load_config(path)?;
    let rules = Arc::new(load_rules_for(&config)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("authwatch")
        .build()
        .context("cannot start the runtime")?;
    let config_path = path.to_owned();
    let reload = rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let signals = shutdown.clone();
        let waiter = tokio::spawn(async move {
            let reload = wait_for_signal(&config_path).await;
            signals.cancel();
            reload
        });
        authwatch::daemon::run(config, rules, shutdown, || {}).await?;
        Ok::<bool, anyhow::Error>(waiter.await.unwrap_or(false))
    })?;
    drop(rt);
    if reload {
        reexec()
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// A reload is a clean stop and an exec of ourselves with the same
/// arguments: the same pid for systemd, and every window rebuilt from the
/// lines the checkpoints make us read again — under the new rules, so a
/// changed threshold applies to the counts already there.
fn reexec() -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find our own executable to reload")?;
    tracing::info!("reloading: starting again with the new configuration and rules");
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1));
    authwatch::reload::mark_applied(&mut command);
    let err = command.exec();
    Err(anyhow::Error::new(err).context("cannot exec ourselves to reload"))
}

/// Waits for SIGTERM or SIGINT (returns false: stop), or for a SIGHUP whose
/// new configuration and rules are valid (returns true: reload). A SIGHUP
/// with a broken configuration or rule is reported and the running rules
/// stay in place.
async fn wait_for_signal(config: &std::path::Path) -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return false;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); return false; }
            _ = int.recv() => { tracing::info!("SIGINT received"); return false; }
            _ = hup.recv() => {
                tracing::info!("SIGHUP received: checking the new configuration and rules");
                match Config::load(config).map_err(|e| e.to_string()).and_then(|c| RuleSet::load_dir(&c.rules_dir).map_err(|e| e.to_string())) {
                    Ok(set) => {
                        tracing::info!(rules = set.rules().len(), "reload: new configuration and rules are valid");
                        authwatch::systemd::reloading();
                        return true;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reload refused: the running rules stay in place");
                        authwatch::reload::refused(&e);
                        authwatch::systemd::status(&format!("reload refused: {}", e.lines().next().unwrap_or("")));
                    }
                }
            }
        }
    }
}

/// Runs a `blocks` or `status` command on a small runtime and turns its
/// outcome into the exit code: 1 for "no such block", 3 for "no daemon".
fn operator_command(
    command: impl std::future::Future<
        Output = Result<authwatch::api::commands::Outcome, authwatch::api::commands::CommandError>,
    >,
) -> anyhow::Result<ExitCode> {
    use authwatch::api::commands::{CommandError, Outcome};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(command) {
        Ok(Outcome::Done) => Ok(ExitCode::SUCCESS),
        Ok(Outcome::NotFound) => Ok(ExitCode::from(1)),
        Ok(Outcome::NotRunning) => Ok(ExitCode::from(3)),
        // Unwrapped so that main sees a broken pipe for what it is.
        Err(CommandError::Io(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}
