//! What a run uses right now: CPU over a short sample and resident memory, summed over its
//! process group (process and VM runs, from /proc), or the engine's own figures for a container.

use std::time::{Duration, Instant};

use aienv_core::run::RunUsage;
use bollard::query_parameters::StatsOptions;
use futures_util::StreamExt;

use crate::backend::Running;

/// How long CPU time is sampled over.
const SAMPLE: Duration = Duration::from_millis(300);

pub async fn usage(running: &Running) -> Option<RunUsage> {
    match running {
        Running::Group(g) => group(g.pgid).await,
        Running::Container(c) => container(&c.id).await,
    }
}

/// Linux counts CPU time in clock ticks of 1/100 s on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

async fn group(pgid: u32) -> Option<RunUsage> {
    let before = ticks(pgid);
    let t0 = Instant::now();
    tokio::time::sleep(SAMPLE).await;
    let after = ticks(pgid);
    let members = crate::process::group_members(pgid);
    if members.is_empty() {
        return None;
    }
    // Processes that ended during the sample leave; ones that started count from zero.
    let used: u64 = after
        .iter()
        .map(|(pid, t)| {
            t - before
                .iter()
                .find(|(p, _)| p == pid)
                .map_or(0, |(_, b)| *b)
                .min(*t)
        })
        .sum();
    let cpu_percent = used as f64 / TICKS_PER_SECOND / t0.elapsed().as_secs_f64() * 100.0;
    let memory_bytes = members.iter().map(|p| rss_kb(*p) * 1024).sum();
    Some(RunUsage {
        cpu_percent: (cpu_percent * 10.0).round() / 10.0,
        memory_bytes,
        processes: members.len() as u32,
    })
}

/// (pid, user + system ticks) of each live member of the group.
fn ticks(pgid: u32) -> Vec<(u32, u64)> {
    crate::process::group_members(pgid)
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
            // cmajflt utime stime.
            let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
            let utime: u64 = f.get(11)?.parse().ok()?;
            let stime: u64 = f.get(12)?.parse().ok()?;
            Some((pid, utime + stime))
        })
        .collect()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

async fn container(id: &str) -> Option<RunUsage> {
    let (docker, _) = crate::engine::detect().await.ok()?;
    // Not one-shot: the engine samples for about a second and fills in the previous reading.
    let opts = StatsOptions {
        stream: false,
        one_shot: false,
    };
    let s = docker.stats(id, Some(opts)).next().await?.ok()?;
    let (cpu, pre) = (s.cpu_stats?, s.precpu_stats?);
    let used = cpu.cpu_usage.as_ref()?.total_usage? as f64
        - pre
            .cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0) as f64;
    let system = cpu.system_cpu_usage? as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
    let cpus = f64::from(cpu.online_cpus.unwrap_or(1));
    let cpu_percent = if system > 0.0 {
        used / system * cpus * 100.0
    } else {
        0.0
    };
    Some(RunUsage {
        cpu_percent: (cpu_percent * 10.0).round() / 10.0,
        memory_bytes: s.memory_stats.and_then(|m| m.usage).unwrap_or(0),
        processes: s.pids_stats.and_then(|p| p.current).unwrap_or(0) as u32,
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use crate::process::{Cmd, Group};

    #[tokio::test]
    async fn a_busy_group_shows_its_cpu_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // One process spinning, one sleeping.
        let cmds = vec![
            ("spin".to_string(), Cmd::Shell("while :; do :; done".into())),
            ("idle".to_string(), Cmd::Shell("sleep 30".into())),
        ];
        let g = Group::spawn(&cmds, dir.path(), &Default::default(), &log).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let u = super::group(g.pgid).await.expect("the group is alive");
        crate::process::stop_group(g.pgid, std::time::Duration::from_secs(1)).await;
        assert!(u.processes >= 2, "{u:?}");
        assert!(u.cpu_percent > 20.0, "a spinning shell uses CPU: {u:?}");
        assert!(u.memory_bytes > 100_000, "{u:?}");
        assert!(
            super::group(g.pgid).await.is_none(),
            "a group that is gone uses nothing"
        );
    }
}
