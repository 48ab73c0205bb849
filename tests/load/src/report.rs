//! Turning finished executions into figures, and printing them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::baselines::Baselines;
use crate::{Args, WorkflowKind};

pub struct Figures {
    pub executions: usize,
    pub succeeded: usize,
    pub steps_per_execution: usize,
    /// Executions finished per second, first creation to last end.
    pub throughput: f64,
    pub enqueue_to_start_ms: Percentiles,
    pub end_to_end_ms: Percentiles,
    pub cpu_ms_per_execution: f64,
    pub wall: Duration,
    pub submitted: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

impl Percentiles {
    pub(crate) fn of(mut samples: Vec<f64>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |quantile: f64| {
            let index = ((samples.len() as f64 - 1.0) * quantile).round() as usize;
            samples[index.min(samples.len() - 1)]
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

pub(crate) fn time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str()?.parse().ok()
}

pub(crate) fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

impl Figures {
    pub fn from_executions(
        executions: &[Value],
        kind: WorkflowKind,
        wall: Duration,
        submitted: Duration,
        cpu_seconds: f64,
    ) -> Figures {
        let mut enqueue_to_start = Vec::new();
        let mut end_to_end = Vec::new();
        let mut first_created: Option<DateTime<Utc>> = None;
        let mut last_ended: Option<DateTime<Utc>> = None;
        let mut succeeded = 0;
        for execution in executions {
            if execution["status"] == "EXECUTION_STATUS_SUCCEEDED" {
                succeeded += 1;
            }
            let Some(created) = time(&execution["createTime"]) else {
                continue;
            };
            first_created = Some(first_created.map_or(created, |first| first.min(created)));
            // The first node a worker ran: the earliest start among runs
            // that are not the trigger (which is recorded at admission).
            let first_start = execution["nodeRuns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|run| run["attempt"].as_u64().unwrap_or(0) >= 1)
                .filter_map(|run| time(&run["startTime"]))
                .filter(|start| *start > created)
                .min();
            if let Some(start) = first_start {
                enqueue_to_start.push(millis(created, start));
            }
            if let Some(ended) = time(&execution["endTime"]) {
                end_to_end.push(millis(created, ended));
                last_ended = Some(last_ended.map_or(ended, |last| last.max(ended)));
            }
        }
        let span = match (first_created, last_ended) {
            (Some(first), Some(last)) => millis(first, last) / 1000.0,
            _ => wall.as_secs_f64(),
        };
        Figures {
            executions: executions.len(),
            succeeded,
            steps_per_execution: match kind {
                WorkflowKind::Noop => 1,
                WorkflowKind::Webhook3 => 2,
                WorkflowKind::Chain40 => 40,
            },
            throughput: executions.len() as f64 / span.max(1e-9),
            enqueue_to_start_ms: Percentiles::of(enqueue_to_start),
            end_to_end_ms: Percentiles::of(end_to_end),
            cpu_ms_per_execution: cpu_seconds * 1000.0 / executions.len().max(1) as f64,
            wall,
            submitted,
        }
    }

    /// Milliseconds of wall time per persisted step at the measured rate.
    pub fn ms_per_step(&self) -> f64 {
        1000.0 / (self.throughput * self.steps_per_execution as f64).max(1e-9)
    }

    pub fn print(&self, args: &Args, load: &str) {
        println!("workflow            {:?}{load}", args.workflow);
        println!(
            "executions          {} ({} succeeded), started in {:.2} s, all finished in {:.2} s",
            self.executions,
            self.succeeded,
            self.submitted.as_secs_f64(),
            self.wall.as_secs_f64()
        );
        println!("throughput          {:.1} executions/s", self.throughput);
        println!(
            "steps               {} per execution, {:.2} ms per step",
            self.steps_per_execution,
            self.ms_per_step()
        );
        if self.steps_per_execution > 1 {
            println!(
                "sequential          {:.2} ms per step (end-to-end p50 ÷ {} steps)",
                self.end_to_end_ms.p50 / self.steps_per_execution as f64,
                self.steps_per_execution
            );
        }
        println!(
            "enqueue-to-start    p50 {:.2} ms   p99 {:.2} ms",
            self.enqueue_to_start_ms.p50, self.enqueue_to_start_ms.p99
        );
        println!(
            "end-to-end          p50 {:.2} ms   p99 {:.2} ms",
            self.end_to_end_ms.p50, self.end_to_end_ms.p99
        );
        println!(
            "cpu                 {:.2} ms per execution (processes measured: {})",
            self.cpu_ms_per_execution,
            if args.pids.is_empty() || args.edge.is_none() {
                "this one".to_owned()
            } else {
                format!("{:?}", args.pids)
            }
        );
    }
}

pub fn print_ratios(figures: &Figures, baselines: &Baselines) {
    println!();
    println!(
        "baseline            redis-benchmark XADD {:.0} ops/s, pgbench single-row INSERT {:.0} tps",
        baselines.redis_xadd_per_second, baselines.postgres_inserts_per_second
    );
    println!(
        "ratio               executions/s ÷ pgbench inserts/s = {:.3}",
        figures.throughput / baselines.postgres_inserts_per_second.max(1e-9)
    );
    println!(
        "ratio               steps/s ÷ pgbench inserts/s = {:.3}",
        figures.throughput * figures.steps_per_execution as f64
            / baselines.postgres_inserts_per_second.max(1e-9)
    );
    println!(
        "ratio               steps/s ÷ redis XADD/s = {:.4}",
        figures.throughput * figures.steps_per_execution as f64
            / baselines.redis_xadd_per_second.max(1e-9)
    );
}

/// User + system CPU seconds of `pids`, from /proc (Linux).
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    // Kernel clock ticks; 100 on every Linux configuration in practice.
    const TICKS_PER_SECOND: f64 = 100.0;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesised command name; utime and stime
            // are the 14th and 15th fields of the whole line.
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / TICKS_PER_SECOND)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_ranks() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let found = Percentiles::of(samples);
        assert_eq!(found.p50, 51.0);
        assert_eq!(found.p99, 99.0);
        assert_eq!(Percentiles::of(Vec::new()).p50, 0.0);
    }

    #[test]
    fn this_process_uses_some_cpu() {
        // The kernel counts CPU time in clock ticks: spin until at least one
        // has been charged, however fast the machine, within a bound.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut spin = 0u64;
        while cpu_seconds(&[std::process::id()]) <= 0.0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no CPU time charged after 10 s of spinning"
            );
            spin = (0..200_000u64).fold(spin, |sum, n| sum.wrapping_add(n ^ (n >> 3)));
            std::hint::black_box(spin);
        }
    }
}
