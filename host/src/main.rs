//! The `vigil` command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use vigil::engine::plugins::Catalog;
use vigil::engine::runtime::{Runtime, StartError, sandbox_for};
use vigil::sandbox::{Limits, Sandbox};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Watches ML model services: scrape, check with Wasm plugins, alert, notify."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run with a config file.
    Run {
        #[arg(long, short, default_value = "vigil.toml")]
        config: PathBuf,
    },
    /// Validate a config file and every plugin it references; print every error.
    Check {
        #[arg(long, short, default_value = "vigil.toml")]
        config: PathBuf,
    },
    /// Run rule unit tests (like `promtool test rules`): exit 0 when all pass, 1 when a test
    /// fails, 2 when a file is invalid.
    Test {
        /// Test files (TOML); see the README's "Rule unit tests".
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Directory of check plugins, overriding the files' `plugin_dir`.
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Create, list or expire silences on a running Vigil.
    Silence {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: SilenceAction,
    },
    /// Acknowledge a firing alert on a running Vigil: its notifications stop repeating until
    /// it resolves.
    Ack {
        #[command(flatten)]
        api: ApiArgs,
        /// The alert's fingerprint (16 hex digits, as `/api/v1/alerts` and notifications show).
        fingerprint: String,
        #[arg(long, short, default_value = "")]
        comment: String,
        #[arg(long, env = "USER", default_value = "vigil")]
        author: String,
    },
    /// List the plugins in a directory: name, version, kind, parameters, or why a file failed.
    Plugins {
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
    /// Run the built-in demo: a simulated Triton server with faults, the bundled plugins and rules.
    Demo {
        /// Where the bundled `.wasm` plugins are (built by `cargo xtask build-plugins`).
        #[arg(long, env = "VIGIL_PLUGIN_DIR", default_value = "target/plugins")]
        plugin_dir: PathBuf,
        /// Where the API and status page listen.
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: SocketAddr,
        /// State directory (default: a fresh temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// How to reach a running Vigil's API.
#[derive(clap::Args)]
struct ApiArgs {
    /// The API's base URL.
    #[arg(long, env = "VIGIL_URL", default_value = "http://127.0.0.1:9464")]
    url: String,
    /// A file holding the API token (see `[api]` in the config).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl ApiArgs {
    /// The token from `--token-file` or `VIGIL_API_TOKEN`.
    fn client(&self) -> anyhow::Result<vigil::api::client::Client> {
        let token = match &self.token_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var("VIGIL_API_TOKEN").ok(),
        };
        Ok(vigil::api::client::Client::new(&self.url, token)?)
    }
}

#[derive(Subcommand)]
enum SilenceAction {
    /// Silence alerts matching every matcher, like `alertname="ModelLatencyHigh"`.
    Add {
        /// Matchers in Alertmanager syntax: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long from now (or from --start) the silence lasts, like `2h`.
        #[arg(long, short, default_value = "1h")]
        duration: String,
        /// When it starts (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
        #[arg(long, short, default_value = "")]
        comment: String,
        #[arg(long, env = "USER", default_value = "vigil")]
        author: String,
    },
    /// List silences, optionally only those matching matchers.
    List { filter: Vec<String> },
    /// Expire silences now.
    Expire {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

async fn silence(api: ApiArgs, action: SilenceAction) -> anyhow::Result<()> {
    let client = api.client()?;
    match action {
        SilenceAction::Add {
            matchers,
            duration,
            start,
            comment,
            author,
        } => {
            let d = vigil::config::parse_duration(&duration)
                .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
            let start_ms = match start {
                Some(s) => vigil::notify::silence::parse_rfc3339(&s)
                    .map_err(|e| anyhow::anyhow!("--start: {e}"))?,
                None => vigil::collect::scrape::now_ms(),
            };
            let end_ms = start_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let id = client
                .add_silence(&matchers, start_ms, end_ms, &author, &comment)
                .await?;
            println!("{id}");
        }
        SilenceAction::List { filter } => {
            print!(
                "{}",
                vigil::api::client::silence_table(&client.list_silences(&filter).await?)
            );
        }
        SilenceAction::Expire { ids } => {
            for id in ids {
                client.expire_silence(&id).await?;
                println!("expired {id}");
            }
        }
    }
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Plugins { dir } => list_plugins(&dir),
        Command::Test { files, plugin_dir } => ExitCode::from(vigil::ruletest::run_files(
            &files,
            plugin_dir.as_deref(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Silence { api, action } => {
            report(runtime().and_then(|rt| rt.block_on(silence(api, action))))
        }
        Command::Ack {
            api,
            fingerprint,
            comment,
            author,
        } => report(runtime().and_then(|rt| {
            rt.block_on(async {
                api.client()?.ack(&fingerprint, &author, &comment).await?;
                println!("acknowledged {fingerprint}");
                Ok(())
            })
        })),
        Command::Run { config } => {
            init_logging();
            report(runtime().and_then(|rt| rt.block_on(run(&config))))
        }
        Command::Demo {
            plugin_dir,
            listen,
            data_dir,
        } => {
            init_logging();
            report(runtime().and_then(|rt| rt.block_on(demo(plugin_dir, listen, data_dir))))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &Path) -> anyhow::Result<()> {
    let cfg = match vigil::config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            anyhow::bail!("{} error(s) in {}", errors.0.len(), config.display());
        }
    };
    start(cfg).await
}

async fn start(cfg: vigil::config::Config) -> anyhow::Result<()> {
    match Runtime::start(cfg).await {
        Ok(rt) => {
            rt.run_until_signal().await;
            Ok(())
        }
        Err(StartError::Config(errors)) => {
            eprintln!("{errors}");
            anyhow::bail!("{} error(s) in the configuration", errors.0.len())
        }
        Err(e) => Err(e.into()),
    }
}

fn check(config: &Path) -> ExitCode {
    let cfg = match vigil::config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", config.display(), errors.0.len());
            return ExitCode::FAILURE;
        }
    };
    let sandbox = match sandbox_for(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: plugin sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (catalog, _) = Catalog::scan(&cfg.plugin_dir, &sandbox, &Catalog::default());
    match vigil::engine::compile(&cfg, &catalog, &sandbox) {
        Ok(c) => {
            println!(
                "{}: OK ({} targets, {} rules, {} receivers)",
                config.display(),
                cfg.targets.len(),
                c.rules.len(),
                c.receivers.len()
            );
            let promql: Vec<&str> = c
                .rules
                .iter()
                .filter(|(_, check)| check.is_none())
                .map(|(spec, _)| spec.cfg.name.as_str())
                .collect();
            if !promql.is_empty() {
                println!(
                    "  without a check (every series the query returns fires): {}",
                    promql.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", config.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

fn list_plugins(dir: &Path) -> ExitCode {
    let sandbox = match Sandbox::new(None, Limits::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: plugin sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !dir.is_dir() {
        eprintln!("error: {} is not a directory", dir.display());
        return ExitCode::FAILURE;
    }
    let (catalog, _) = Catalog::scan(dir, &sandbox, &Catalog::default());
    let mut broken = 0;
    for f in catalog.files.values() {
        let file = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &f.result {
            Ok(p) => {
                println!(
                    "{} {} ({}) [{}]",
                    p.info.name, p.info.version, p.info.kind, file
                );
                if !p.info.description.is_empty() {
                    println!("    {}", p.info.description);
                }
                for param in &p.info.params {
                    println!(
                        "    - {}: {}{}  {}",
                        param.name,
                        param.type_name,
                        if param.required { " (required)" } else { "" },
                        param.description
                    );
                }
            }
            Err(e) => {
                broken += 1;
                println!("BROKEN [{file}]: {e}");
            }
        }
    }
    if catalog.files.is_empty() {
        println!("no .wasm files in {}", dir.display());
    }
    if broken > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn demo(
    plugin_dir: PathBuf,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let plugin_dir = std::fs::canonicalize(&plugin_dir).with_context(|| {
        format!("plugin directory {} not found: build the plugins first with `cargo xtask build-plugins`", plugin_dir.display())
    })?;
    let data_dir = match data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the simulated service")?;
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the webhook sink")?;
    let (target_addr, sink_addr) = (target.local_addr()?, sink.local_addr()?);
    tokio::spawn(vigil::demo::service::serve(
        target,
        vigil::demo::service::Schedule::default(),
    ));
    tokio::spawn(vigil::demo::sink::serve(sink));
    let text = vigil::demo::config_text(&data_dir, &plugin_dir, listen, target_addr, sink_addr);
    let config_path = data_dir.join("vigil.toml");
    std::fs::write(&config_path, text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    tracing::info!(
        "simulated Triton server at http://{target_addr}/metrics (faults: error spike at 8s, latency climb at 31s, outage at 59s, every 71s)"
    );
    tracing::info!(
        "webhook sink at http://{sink_addr}/hook; config in {}",
        config_path.display()
    );
    tracing::info!("status page: http://{listen}/  (Ctrl-C to stop)");
    let cfg = match vigil::config::load(&config_path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            anyhow::bail!("the demo config is invalid");
        }
    };
    start(cfg).await
}
