//! Throughput of the exposition parser (`cargo bench -p vigil --bench exposition`).
//!
//! Plain `fn main` with `std::time::Instant`, no bench framework. Measures
//! samples per second on one core for
//! - each shared fixture (../shared/data/exposition/*.prom), parse only;
//! - a synthetic 100k-series payload (Triton / vLLM-like names, 3-5 labels,
//!   histograms), parse only and parse + a cache lookup in a
//!   `HashMap<&str, u64>` keyed by the raw series text, which is what the
//!   scraper does per sample (with std's SipHash and with a simple
//!   multiplicative hasher, to show what the hash costs).
//!
//! The parser is compiled in from its source file so the bench does not
//! depend on the crate's module visibility.

#[path = "../src/collect/exposition.rs"]
#[allow(dead_code)]
mod exposition;

use exposition::{Entry, Format, Parser, parse};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs `f` (which parses the payload once and returns the number of samples)
/// repeatedly for about `budget`, in several rounds, and returns the best and
/// the median samples per second over the rounds.
fn measure(budget: Duration, mut f: impl FnMut() -> usize) -> (f64, f64) {
    // Warm up and size the rounds.
    let t = Instant::now();
    let mut warm = 0;
    while t.elapsed() < budget / 10 {
        black_box(f());
        warm += 1;
    }
    let per_call = t.elapsed().as_secs_f64() / warm as f64;
    let rounds = 7;
    let iters = ((budget.as_secs_f64() / rounds as f64 / per_call).ceil() as usize).max(1);
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut samples = 0usize;
        for _ in 0..iters {
            samples += black_box(f());
        }
        rates.push(samples as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (rates[rounds - 1], rates[rounds / 2])
}

fn fmt_rate(r: f64) -> String {
    format!("{:>7.2} M samples/s", r / 1e6)
}

/// FxHash-style hasher (std only): one multiply per 8 bytes.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A synthetic scrape payload with `target` sample lines: Triton per-model
/// counters and gauges, Triton GPU gauges, vLLM histograms and counters.
fn synthetic(target: usize) -> String {
    let mut out = String::with_capacity(target * 110);
    let mut n = 0usize;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let llms = [
        "meta-llama/Llama-3.1-8B-Instruct",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "Qwen/Qwen2.5-14B-Instruct",
        "google/gemma-2-9b-it",
    ];
    let les = [
        "0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75",
        "1.0", "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0", "+Inf",
    ];
    let triton_counters = [
        (
            "nv_inference_request_success",
            "Number of successful inference requests, all batch sizes",
        ),
        (
            "nv_inference_count",
            "Number of inferences performed (does not include cached requests)",
        ),
        (
            "nv_inference_exec_count",
            "Number of model executions performed (does not include cached requests)",
        ),
        (
            "nv_inference_request_duration_us",
            "Cumulative inference request duration in microseconds",
        ),
        (
            "nv_inference_queue_duration_us",
            "Cumulative inference queuing duration in microseconds",
        ),
        (
            "nv_inference_compute_infer_duration_us",
            "Cumulative compute inference duration in microseconds",
        ),
    ];
    for block in 0usize.. {
        let models: Vec<String> = (0..400)
            .map(|i| format!("resnet50_onnx_{block}_{i:03}"))
            .collect();
        // Triton per-model counters: model, version, pod (+ reason on failures).
        for (name, help) in triton_counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for m in &models {
                let v = rnd() % 10_000_000;
                let _ = writeln!(
                    out,
                    "{name}{{model=\"{m}\",version=\"1\",pod=\"triton-7f9c4d-x2k8p\"}} {v}"
                );
                n += 1;
            }
        }
        let _ = writeln!(
            out,
            "# HELP nv_inference_request_failure Number of failed inference requests\n# TYPE nv_inference_request_failure counter"
        );
        for m in &models {
            for reason in ["OTHER", "CANCELED", "BACKEND", "REJECTED"] {
                let _ = writeln!(
                    out,
                    "nv_inference_request_failure{{model=\"{m}\",reason=\"{reason}\",version=\"1\",pod=\"triton-7f9c4d-x2k8p\"}} {}",
                    rnd() % 100
                );
                n += 1;
            }
        }
        // GPU gauges with float values.
        let _ = writeln!(
            out,
            "# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)\n# TYPE nv_gpu_utilization gauge"
        );
        for g in 0..8 {
            let _ = writeln!(
                out,
                "nv_gpu_utilization{{gpu_uuid=\"GPU-4f3c{g}a1e-7d2b-11ee-9c4a-0242ac12000{g}\",pod=\"triton-7f9c4d-x2k8p\",node=\"gpu-node-{block}\"}} 0.{}",
                rnd() % 1000
            );
            n += 1;
        }
        // vLLM histograms: engine, le, model_name, pod (4 labels on buckets).
        for hist in [
            "vllm:time_to_first_token_seconds",
            "vllm:time_per_output_token_seconds",
            "vllm:e2e_request_latency_seconds",
            "vllm:request_queue_time_seconds",
        ] {
            let _ = writeln!(
                out,
                "# HELP {hist} Histogram of latency in seconds.\n# TYPE {hist} histogram"
            );
            for (i, llm) in llms.iter().enumerate() {
                for pod in 0..25 {
                    let mut c = 0u64;
                    for le in les {
                        c += rnd() % 50;
                        let _ = writeln!(
                            out,
                            "{hist}_bucket{{engine=\"{i}\",le=\"{le}\",model_name=\"{llm}\",pod=\"vllm-{block}-{pod:02}-6d5f8b\"}} {c}.0"
                        );
                    }
                    let sum = (rnd() % 1_000_000) as f64 / 997.0;
                    let _ = writeln!(
                        out,
                        "{hist}_sum{{engine=\"{i}\",model_name=\"{llm}\",pod=\"vllm-{block}-{pod:02}-6d5f8b\"}} {sum:e}"
                    );
                    let _ = writeln!(
                        out,
                        "{hist}_count{{engine=\"{i}\",model_name=\"{llm}\",pod=\"vllm-{block}-{pod:02}-6d5f8b\"}} {c}.0"
                    );
                    n += les.len() + 2;
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n# TYPE vllm:prompt_tokens_total counter"
        );
        for llm in llms {
            for pod in 0..25 {
                let _ = writeln!(
                    out,
                    "vllm:prompt_tokens_total{{model_name=\"{llm}\",pod=\"vllm-{block}-{pod:02}-6d5f8b\",engine=\"0\"}} {}.0",
                    rnd() % 100_000_000
                );
                n += 1;
            }
        }
        if n >= target {
            break;
        }
        // The next block uses new model and pod names, so series stay unique.
    }
    out
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("EXPO_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    println!(
        "exposition parser throughput (one core, {} ms per case)",
        budget.as_millis()
    );

    // (a) The shared fixtures.
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/exposition"
    ));
    if dir.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "prom"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Ok(stats) = parse(&text, Format::PrometheusText, |_| {}) else {
                println!("  {name:<40} (rejected, as expected for the malformed fixture)");
                continue;
            };
            let (best, median) = measure(budget / 4, || {
                let mut acc = 0.0;
                let stats =
                    parse(black_box(&text), Format::PrometheusText, |s| acc += s.value).unwrap();
                black_box(acc);
                stats.samples
            });
            let mb = best / stats.samples as f64 * text.len() as f64 / 1e6;
            println!(
                "  {name:<40} {:>4} samples  parse: best {} (median {}), {:>6.0} MB/s",
                stats.samples,
                fmt_rate(best),
                fmt_rate(median),
                mb
            );
        }
    } else {
        println!("  skipped fixtures: ../shared/data/exposition not found");
    }

    // (b) The synthetic payload.
    let text = synthetic(100_000);
    let om_text = format!("{text}# EOF\n");
    let mut keys: Vec<&str> = Vec::new();
    let stats = parse(&text, Format::PrometheusText, |s| keys.push(s.series)).unwrap();
    let label_counts: usize = keys.iter().map(|k| k.matches("=\"").count()).sum();
    println!(
        "synthetic payload: {} samples, {} families, {:.1} MB, {:.1} labels/series, {:.0} bytes/line",
        stats.samples,
        stats.metadata / 2,
        text.len() as f64 / 1e6,
        label_counts as f64 / stats.samples as f64,
        text.len() as f64 / stats.lines as f64
    );
    let mut sip: HashMap<&str, u64> = HashMap::with_capacity(keys.len());
    let mut fast: HashMap<&str, u64, BuildHasherDefault<FastHasher>> =
        HashMap::with_capacity_and_hasher(keys.len(), Default::default());
    for (i, k) in keys.iter().enumerate() {
        sip.insert(k, i as u64);
        fast.insert(k, i as u64);
    }
    assert_eq!(sip.len(), stats.samples, "synthetic series must be unique");

    let report = |label: &str, (best, median): (f64, f64)| {
        println!(
            "  {label:<44} best {}  median {}",
            fmt_rate(best),
            fmt_rate(median)
        );
    };
    report(
        "parse only (callback)",
        measure(budget, || {
            let mut acc = 0.0;
            let stats =
                parse(black_box(&text), Format::PrometheusText, |s| acc += s.value).unwrap();
            black_box(acc);
            stats.samples
        }),
    );
    report(
        "parse only (iterator)",
        measure(budget, || {
            let mut acc = 0.0;
            let mut n = 0;
            for e in Parser::new(black_box(&text), Format::PrometheusText) {
                if let Entry::Sample(s) = e.unwrap() {
                    acc += s.value;
                    n += 1;
                }
            }
            black_box(acc);
            n
        }),
    );
    report(
        "parse only (OpenMetrics)",
        measure(budget, || {
            let mut acc = 0.0;
            let stats =
                parse(black_box(&om_text), Format::OpenMetrics, |s| acc += s.value).unwrap();
            black_box(acc);
            stats.samples
        }),
    );
    report(
        "parse + HashMap<&str,u64> lookup (SipHash)",
        measure(budget, || {
            let mut hits = 0u64;
            let stats = parse(black_box(&text), Format::PrometheusText, |s| {
                if let Some(id) = sip.get(s.series) {
                    hits = hits.wrapping_add(*id ^ s.value.to_bits());
                }
            })
            .unwrap();
            black_box(hits);
            stats.samples
        }),
    );
    report(
        "parse + HashMap<&str,u64> lookup (Fx-style)",
        measure(budget, || {
            let mut hits = 0u64;
            let stats = parse(black_box(&text), Format::PrometheusText, |s| {
                if let Some(id) = fast.get(s.series) {
                    hits = hits.wrapping_add(*id ^ s.value.to_bits());
                }
            })
            .unwrap();
            black_box(hits);
            stats.samples
        }),
    );
    // Cold cache: every series is a miss and goes through parse_series.
    report(
        "parse + parse_series on every sample (miss)",
        measure(budget, || {
            let mut n = 0usize;
            parse(black_box(&text), Format::PrometheusText, |s| {
                let (name, labels) = exposition::parse_series(s.series).unwrap();
                n += name.len() + labels.len();
            })
            .unwrap();
            black_box(n);
            stats.samples
        }),
    );
}
