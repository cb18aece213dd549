//! The running system: collectors, rule tasks, receivers, the plugin
//! watcher, the API server, and reloads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::plugins::Catalog;
use super::rule::{RuleCommand, RuleCore, RuleTask};
use super::{Compiled, Shared, compile, retention};
use crate::collect::scrape::{ScrapeLanded, Scraper, TargetStatus, now_ms};
use crate::config::{self, Config, ConfigErrors, TargetConfig};
use crate::notify::transport::{HttpTransport, Reqwest};
use crate::notify::{Notifier, Settings as NotifySettings};
use crate::sandbox::{Limits, Sandbox};
use crate::store::SeriesStore;
use crate::store::durable::Durable;
use crate::telemetry::events;

/// How often the plugin directory and the config file are checked.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Series garbage collection runs every this many watch ticks.
const GC_EVERY_TICKS: u64 = 60;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("plugin sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::PluginError),
    #[error("{0}")]
    Durable(#[from] crate::store::durable::DurableError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Transport(String),
}

/// Builds the sandbox for a config.
pub fn sandbox_for(cfg: &Config) -> Result<Sandbox, crate::sandbox::PluginError> {
    Sandbox::new(
        Some(&cfg.data_dir.join("cache")),
        Limits {
            timeout: cfg.sandbox.timeout,
            memory_bytes: cfg.sandbox.memory_limit_bytes,
        },
    )
}

struct RuleHandle {
    commands: mpsc::Sender<RuleCommand>,
    task: JoinHandle<()>,
}

/// A running Vigil.
pub struct Runtime {
    cfg: Config,
    shared: Arc<Shared>,
    sandbox: Sandbox,
    store: Arc<SeriesStore>,
    durable: Arc<Durable>,
    http: reqwest::Client,
    landed: broadcast::Sender<ScrapeLanded>,
    catalog_tx: watch::Sender<Arc<Catalog>>,
    notifier: Notifier,
    scrapers: Vec<(TargetConfig, Arc<Mutex<TargetStatus>>, JoinHandle<()>)>,
    rules: HashMap<String, RuleHandle>,
    pub local_addr: SocketAddr,
    api: JoinHandle<()>,
    config_stamp: Option<SystemTime>,
}

impl Runtime {
    /// Starts everything. Every config and plugin error is reported at once.
    pub async fn start(cfg: Config) -> Result<Runtime, StartError> {
        let shared = Arc::new(Shared::default());
        let sandbox = sandbox_for(&cfg)?;
        let (catalog, _) = Catalog::scan(&cfg.plugin_dir, &sandbox, &Catalog::default());
        let compiled = compile(&cfg, &catalog, &sandbox)?;
        let durable = Arc::new(Durable::open(&cfg.data_dir)?);
        let store = Arc::new(SeriesStore::default());
        store.set_retention_policy(retention(compiled.rules.iter().map(|(s, _)| s)));
        shared.set_store(store.clone());
        let catalog = Arc::new(catalog);
        shared.set_catalog(catalog.clone());
        let transport: Arc<dyn HttpTransport> =
            Arc::new(Reqwest::new().map_err(|e| StartError::Transport(e.to_string()))?);
        let http = reqwest::Client::builder()
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartError::Transport(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: cfg.listen,
            source,
        })?;
        let app = crate::api::app(shared.clone());
        let api = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "API server stopped");
            }
        });
        let (landed, _) = broadcast::channel(1024);
        let (catalog_tx, _) = watch::channel(catalog);
        let Compiled { rules, receivers } = compiled;
        let notifier = Notifier::start(
            durable.clone(),
            notify_settings(&cfg),
            receivers,
            transport.clone(),
        );
        shared.set_notifier(notifier.clone());
        shared.set_api_token(cfg.api_token.clone());
        let config_stamp = std::fs::metadata(&cfg.file).and_then(|m| m.modified()).ok();
        let mut rt = Runtime {
            cfg,
            shared,
            sandbox,
            store,
            durable,
            http,
            landed,
            catalog_tx,
            notifier,
            scrapers: Vec::new(),
            rules: HashMap::new(),
            local_addr,
            api,
            config_stamp,
        };
        rt.shared.set_rules(&rt.cfg.rules);
        for (spec, check) in rules {
            rt.spawn_rule(spec, check, true);
        }
        rt.restart_scrapers();
        rt.shared.set_ready(true);
        tracing::info!(
            listen = %rt.local_addr,
            rules = rt.rules.len(),
            targets = rt.scrapers.len(),
            plugins = rt.catalog_tx.borrow().by_name.len(),
            "vigil running"
        );
        Ok(rt)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn spawn_rule(
        &mut self,
        spec: super::RuleSpec,
        check: Option<crate::sandbox::CheckInstance>,
        restore: bool,
    ) {
        let name = spec.cfg.name.clone();
        let mut core = RuleCore::new(Arc::new(spec), check);
        if restore {
            core.restore(&self.durable);
        }
        core.backfill(&self.store, now_ms());
        let (tx, rx) = mpsc::channel(4);
        let task = RuleTask {
            core: Some(core),
            store: self.store.clone(),
            durable: self.durable.clone(),
            shared: self.shared.clone(),
            sandbox: self.sandbox.clone(),
            notifier: self.notifier.clone(),
            catalog: self.catalog_tx.subscribe(),
            landed: self.landed.subscribe(),
            commands: rx,
            external_url: self.cfg.external_url.clone(),
        };
        let handle = tokio::spawn(task.run());
        self.rules.insert(
            name,
            RuleHandle {
                commands: tx,
                task: handle,
            },
        );
    }

    fn restart_scrapers(&mut self) {
        let mut old = std::mem::take(&mut self.scrapers);
        for t in self.cfg.targets.clone() {
            // An unchanged target keeps its loop (and its staleness tracking).
            if let Some(pos) = old.iter().position(|(c, _, _)| same_target(c, &t)) {
                self.scrapers.push(old.swap_remove(pos));
                continue;
            }
            let status = Arc::new(Mutex::new(TargetStatus::default()));
            let scraper = Scraper::new(
                t.clone(),
                self.http.clone(),
                self.store.clone(),
                self.landed.clone(),
                status.clone(),
            );
            self.scrapers.push((t, status, tokio::spawn(scraper.run())));
        }
        for (_, _, h) in old {
            h.abort();
        }
        self.shared
            .set_targets(self.scrapers.iter().map(|(_, s, _)| s.clone()).collect());
    }

    /// Drops series nobody wrote to within the retention.
    fn collect_series(&self) {
        let n = self.store.gc(now_ms());
        if n > 0 {
            tracing::debug!(series = n, "collected series that left every target");
            crate::telemetry::counter(
                "vigil_store_series_collected_total",
                "Series dropped because no target exposed them within the retention.",
                &[],
                n as f64,
            );
        }
    }

    /// Rescans the plugin directory; rules and receivers pick up changes.
    pub fn rescan_plugins(&mut self) {
        let previous = self.catalog_tx.borrow().clone();
        let (catalog, changed) = Catalog::scan(&self.cfg.plugin_dir, &self.sandbox, &previous);
        if changed {
            let catalog = Arc::new(catalog);
            self.shared.set_catalog(catalog.clone());
            let _ = self.catalog_tx.send(catalog);
            self.rebuild_receivers();
        }
    }

    fn rebuild_receivers(&mut self) {
        let catalog = self.catalog_tx.borrow().clone();
        let mut receivers = Vec::new();
        for r in &self.cfg.receivers {
            match crate::notify::Renderer::for_receiver(r, &self.sandbox, &catalog.by_name) {
                Ok(renderer) => receivers.push((r.clone(), renderer)),
                Err(e) => {
                    tracing::error!(receiver = %r.name, error = %e, "receiver unavailable after plugin change");
                }
            }
        }
        self.notifier
            .configure(notify_settings(&self.cfg), receivers);
    }

    /// Loads the config file again; on any error the running config stays.
    pub fn reload_config(&mut self) -> Result<(), ConfigErrors> {
        let file = self.cfg.file.clone();
        let result = config::load(&file).and_then(|cfg| {
            let catalog = self.catalog_tx.borrow().clone();
            let compiled = compile(&cfg, &catalog, &self.sandbox)?;
            Ok((cfg, compiled))
        });
        let (cfg, compiled) = match result {
            Ok(x) => x,
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                events::ConfigReloaded {
                    file: &file.display().to_string(),
                    ok: false,
                }
                .emit();
                return Err(e);
            }
        };
        if cfg.listen != self.cfg.listen
            || cfg.data_dir != self.cfg.data_dir
            || cfg.plugin_dir != self.cfg.plugin_dir
        {
            tracing::warn!(
                "listen, data_dir and plugin_dir changes take effect at the next restart"
            );
        }
        self.store
            .set_retention_policy(retention(compiled.rules.iter().map(|(s, _)| s)));
        let Compiled { rules, receivers } = compiled;
        self.notifier.configure(notify_settings(&cfg), receivers);
        self.shared.set_api_token(cfg.api_token.clone());
        let mut old = std::mem::take(&mut self.rules);
        self.cfg = cfg;
        self.shared.set_rules(&self.cfg.rules);
        for (spec, check) in rules {
            let name = spec.cfg.name.clone();
            match old.remove(&name) {
                Some(h) => {
                    // The surviving rule keeps its windows, state and alerts.
                    if h.commands
                        .try_send(RuleCommand::Update(Box::new(spec), check))
                        .is_err()
                    {
                        tracing::error!(rule = %name, "rule task busy during reload; its update waits for the next reload");
                    }
                    self.rules.insert(name, h);
                }
                None => self.spawn_rule(spec, check, true),
            }
        }
        for (name, h) in old {
            // Closing its channel stops the task after it saves its state.
            drop(h.commands);
            tracing::info!(rule = %name, "rule removed");
        }
        self.restart_scrapers();
        events::ConfigReloaded {
            file: &file.display().to_string(),
            ok: true,
        }
        .emit();
        Ok(())
    }

    /// Runs until SIGINT or SIGTERM; SIGHUP or a changed config file reloads.
    pub async fn run_until_signal(mut self) {
        let mut ticks: u64 = 0;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let hup_fut = async {
                match hup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(unix)]
            let term_fut = async {
                match term.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {
                    ticks += 1;
                    if ticks.is_multiple_of(GC_EVERY_TICKS) {
                        self.collect_series();
                    }
                    self.rescan_plugins();
                    let stamp = std::fs::metadata(&self.cfg.file).and_then(|m| m.modified()).ok();
                    if stamp != self.config_stamp {
                        self.config_stamp = stamp;
                        let _ = self.reload_config();
                    }
                }
                _ = hup_fut => { let _ = self.reload_config(); }
                _ = term_fut => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        self.shutdown().await;
    }

    /// Stops rules (saving their learned state), scrapers and the API.
    pub async fn shutdown(mut self) {
        self.shared.set_ready(false);
        for (_, _, h) in self.scrapers.drain(..) {
            h.abort();
        }
        for (_, h) in self.rules.drain() {
            drop(h.commands);
            let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
        }
        self.api.abort();
        tracing::info!("vigil stopped");
    }
}

fn same_target(a: &TargetConfig, b: &TargetConfig) -> bool {
    a.job == b.job
        && a.url == b.url
        && a.interval == b.interval
        && a.timeout == b.timeout
        && a.labels == b.labels
}

/// The notification pipeline's part of the config.
fn notify_settings(cfg: &Config) -> NotifySettings {
    NotifySettings {
        route: cfg.route.clone(),
        external_url: cfg.external_url.clone(),
        inhibit_rules: cfg.inhibit_rules.clone(),
        time_intervals: cfg.time_intervals.clone(),
        flap_damping: cfg.flap_damping,
    }
}
