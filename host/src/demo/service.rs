//! A simulated Triton inference server with a fault schedule.
//!
//! It serves Triton's metric names (`nv_inference_*`, `nv_gpu_*`, see
//! `shared/data/exposition/triton.prom`) for two models, and replays a
//! cycle of faults so the demo shows alerts firing and resolving within a
//! minute: an error-rate spike, a latency climb, then an outage during
//! which `/metrics` answers 503.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Phases of the fault cycle, in seconds from the cycle's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Normal,
    ErrorSpike,
    LatencyClimb,
    Outage,
}

/// The fault schedule: how long each phase lasts, in order.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub phases: Vec<(Phase, Duration)>,
}

impl Default for Schedule {
    fn default() -> Self {
        let s = Duration::from_secs;
        Schedule {
            phases: vec![
                (Phase::Normal, s(8)),
                (Phase::ErrorSpike, s(15)),
                (Phase::Normal, s(8)),
                (Phase::LatencyClimb, s(20)),
                (Phase::Normal, s(8)),
                (Phase::Outage, s(12)),
            ],
        }
    }
}

impl Schedule {
    fn cycle(&self) -> Duration {
        self.phases.iter().map(|(_, d)| *d).sum()
    }

    /// The phase at `elapsed` and how far into it (0..1).
    pub fn at(&self, elapsed: Duration) -> (Phase, f64) {
        let cycle = self.cycle().as_secs_f64().max(1e-9);
        let mut t = elapsed.as_secs_f64() % cycle;
        for (phase, d) in &self.phases {
            let d = d.as_secs_f64();
            if t < d {
                return (*phase, t / d);
            }
            t -= d;
        }
        (Phase::Normal, 0.0)
    }
}

const MODELS: [&str; 2] = ["densenet_onnx", "resnet50_trt"];

struct Counters {
    success: [f64; 2],
    failure: [f64; 2],
    duration_us: [f64; 2],
    queue_us: [f64; 2],
    last: Instant,
    seed: u64,
}

/// A deterministic pseudo-random number in [0, 1) (xorshift).
fn noise(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 10_000) as f64 / 10_000.0
}

struct Sim {
    started: Instant,
    schedule: Schedule,
    counters: Mutex<Counters>,
}

/// Runs the simulated service on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, schedule: Schedule) -> std::io::Result<()> {
    let now = Instant::now();
    let sim = Arc::new(Sim {
        started: now,
        schedule,
        counters: Mutex::new(Counters {
            success: [1200.0, 800.0],
            failure: [3.0, 1.0],
            duration_us: [0.0; 2],
            queue_us: [0.0; 2],
            last: now,
            seed: 0x9E37_79B9_7F4A_7C15,
        }),
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(sim);
    axum::serve(listener, app).await
}

async fn metrics(State(sim): State<Arc<Sim>>) -> Response {
    let (phase, progress) = sim.schedule.at(sim.started.elapsed());
    if phase == Phase::Outage {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "model repository unavailable\n",
        )
            .into_response();
    }
    let body = render(&sim, phase, progress);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// p99 latency in microseconds for a model in a phase.
fn p99_us(model: usize, phase: Phase, progress: f64) -> f64 {
    let base = [42_000.0, 18_000.0][model];
    match phase {
        // The first model's latency climbs to about 9x its normal p99.
        Phase::LatencyClimb if model == 0 => base * (1.0 + 8.0 * progress),
        _ => base,
    }
}

fn render(sim: &Sim, phase: Phase, progress: f64) -> String {
    let mut c = sim.counters.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let dt = now.duration_since(c.last).as_secs_f64();
    c.last = now;
    for m in 0..2 {
        let rps = [40.0, 25.0][m];
        // About 0.2% errors normally; the first model fails a third of its
        // requests during the spike.
        let err_ratio = if phase == Phase::ErrorSpike && m == 0 {
            0.35
        } else {
            0.002
        };
        c.success[m] += (rps * dt * (1.0 - err_ratio)).round();
        c.failure[m] += (rps * dt * err_ratio).round();
        let mean_us = p99_us(m, phase, progress) * 0.45;
        c.duration_us[m] += (rps * dt * mean_us).round();
        c.queue_us[m] += (rps * dt * mean_us * 0.05).round();
    }
    let mut out = String::with_capacity(4096);
    let family = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    // A per-model counter family: one line per model.
    let per_model = |out: &mut String, name: &str, help: &str, value: &dyn Fn(usize) -> f64| {
        family(out, name, help, "counter");
        for (m, model) in MODELS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{model=\"{model}\",version=\"1\"}} {}",
                value(m)
            );
        }
    };
    per_model(
        &mut out,
        "nv_inference_request_success",
        "Number of successful inference requests, all batch sizes",
        &|m| c.success[m],
    );
    per_model(
        &mut out,
        "nv_inference_request_failure",
        "Number of failed inference requests, all batch sizes",
        &|m| c.failure[m],
    );
    per_model(
        &mut out,
        "nv_inference_count",
        "Number of inferences performed (does not include cached requests)",
        &|m| c.success[m] + c.failure[m],
    );
    per_model(
        &mut out,
        "nv_inference_request_duration_us",
        "Cumulative inference request duration in microseconds (includes cached requests)",
        &|m| c.duration_us[m],
    );
    per_model(
        &mut out,
        "nv_inference_queue_duration_us",
        "Cumulative inference queuing duration in microseconds (includes cached requests)",
        &|m| c.queue_us[m],
    );
    family(
        &mut out,
        "nv_inference_request_summary_us",
        "Summary of inference request duration in microseconds (includes cached requests)",
        "summary",
    );
    for (m, model) in MODELS.iter().enumerate() {
        // ±4% scrape-to-scrape jitter, as a real p99 has.
        let p99 = p99_us(m, phase, progress) * (1.0 + 0.08 * (noise(&mut c.seed) - 0.5));
        for (q, f) in [("0.5", 0.4), ("0.9", 0.75), ("0.99", 1.0)] {
            let _ = writeln!(
                out,
                "nv_inference_request_summary_us{{model=\"{model}\",version=\"1\",quantile=\"{q}\"}} {}",
                (p99 * f).round()
            );
        }
        let _ = writeln!(
            out,
            "nv_inference_request_summary_us_sum{{model=\"{model}\",version=\"1\"}} {}",
            c.duration_us[m]
        );
        let _ = writeln!(
            out,
            "nv_inference_request_summary_us_count{{model=\"{model}\",version=\"1\"}} {}",
            c.success[m] + c.failure[m]
        );
    }
    family(
        &mut out,
        "nv_inference_pending_request_count",
        "Instantaneous number of pending requests awaiting execution per-model.",
        "gauge",
    );
    for (m, model) in MODELS.iter().enumerate() {
        let pending = if phase == Phase::LatencyClimb && m == 0 {
            (12.0 * progress).round()
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "nv_inference_pending_request_count{{model=\"{model}\",version=\"1\"}} {pending}"
        );
    }
    family(
        &mut out,
        "nv_gpu_utilization",
        "GPU utilization rate [0.0 - 1.0)",
        "gauge",
    );
    let util = if phase == Phase::LatencyClimb {
        0.62 + 0.35 * progress
    } else {
        0.58
    };
    let _ = writeln!(
        out,
        "nv_gpu_utilization{{gpu_uuid=\"GPU-951eeeeb-d284-d263-688e-d98a5306389b\"}} {util}"
    );
    family(
        &mut out,
        "nv_gpu_memory_used_bytes",
        "GPU used memory, in bytes",
        "gauge",
    );
    let _ = writeln!(
        out,
        "nv_gpu_memory_used_bytes{{gpu_uuid=\"GPU-951eeeeb-d284-d263-688e-d98a5306389b\"}} 9865003008"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_cycles_through_phases() {
        let s = Schedule::default();
        assert_eq!(s.at(Duration::from_secs(1)).0, Phase::Normal);
        assert_eq!(s.at(Duration::from_secs(10)).0, Phase::ErrorSpike);
        assert_eq!(s.at(Duration::from_secs(35)).0, Phase::LatencyClimb);
        assert_eq!(s.at(Duration::from_secs(66)).0, Phase::Outage);
        assert_eq!(s.at(s.cycle() + Duration::from_secs(1)).0, Phase::Normal);
    }
}
