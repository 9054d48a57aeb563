//! What this node tells its peers it has free, in every announcement: CPUs, memory, its GPUs
//! (with their free memory, and whether a run of this node holds them), and its live runs.
//! Peers place runs with it ([`crate::placement`]) without asking first.
//!
//! GPUs are held per run (the reservation): a run that asks for GPUs gets specific ones, named
//! to it in `CUDA_VISIBLE_DEVICES`, and nobody else gets them until it ends. A request that comes
//! when the GPUs it needs are held is refused as `no_capacity`, so two users placing at once do
//! not both get the last GPU.

use std::collections::HashMap;
use std::time::Duration;

use aienv_core::peer::{PeerGpu, PeerResources};
use aienv_core::resources::Resources;

use crate::{Node, NodeError, Result, lock};

/// How often the summary is recomputed (the announcement goes out at once when it changed).
const EVERY: Duration = Duration::from_secs(1);
/// Memory figures are rounded to this, so that small changes do not make news every second.
const ROUND_MB: u64 = 256;

/// GPUs held by runs: run id → GPU indices.
pub(crate) type Held = HashMap<String, Vec<u32>>;

impl Node {
    /// Starts recomputing the summary every second; announcements carry the latest.
    pub(crate) fn spawn_advertiser(&self) {
        let node = self.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            loop {
                tick.tick().await;
                let Some(node) = node.upgrade() else { break };
                node.readvertise().await;
            }
        });
    }

    /// Recomputes the summary and, when it changed, announces it at once.
    pub(crate) async fn readvertise(&self) {
        let summary = self.summary(&self.resources().await);
        let changed = {
            let mut current = lock(&self.inner.advertised);
            let changed = current.as_ref() != Some(&summary);
            *current = Some(summary);
            changed
        };
        if changed {
            self.reannounce();
        }
    }

    /// What this node has free, as announced.
    pub fn advertised(&self) -> Option<PeerResources> {
        lock(&self.inner.advertised).clone()
    }

    fn summary(&self, r: &Resources) -> PeerResources {
        let held: Vec<u32> = lock(&self.inner.held_gpus)
            .values()
            .flatten()
            .copied()
            .collect();
        let round = |mb: u64| mb / ROUND_MB * ROUND_MB;
        PeerResources {
            cpus: r.cpus,
            memory_mb: r.ram_total_bytes / 1_000_000,
            memory_free_mb: round(r.ram_available_bytes / 1_000_000),
            gpus: r
                .gpus
                .iter()
                .take(aienv_discovery::MAX_GPUS)
                .map(|g| PeerGpu {
                    index: g.index,
                    name: g.name.clone(),
                    memory_mb: g.memory_total_mb,
                    memory_free_mb: g
                        .memory_used_mb
                        .map(|used| round(g.memory_total_mb.saturating_sub(used))),
                    held: held.contains(&g.index),
                })
                .collect(),
            runs: lock(&self.inner.runs)
                .values()
                .filter(|r| !r.state.is_final())
                .count() as u32,
            accepts_runs: self.inner.config.remote_runs.access
                != aienv_core::config::RemoteAccess::Off,
        }
    }

    /// Holds `count` GPUs of `machine` (with at least `vram_mb` each) for run `id`, or says
    /// which are taken. Returns their indices (empty when the run wants none).
    pub(crate) fn hold_gpus(
        &self,
        id: &str,
        count: u32,
        vram_mb: u64,
        machine: &Resources,
    ) -> Result<Vec<u32>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut held = lock(&self.inner.held_gpus);
        let taken: Vec<u32> = held.values().flatten().copied().collect();
        let free: Vec<u32> = machine
            .gpus
            .iter()
            .filter(|g| {
                !taken.contains(&g.index) && g.memory_total_mb as f64 >= vram_mb as f64 * 0.97
            })
            .map(|g| g.index)
            .take(count as usize)
            .collect();
        if free.len() < count as usize {
            let holders: Vec<String> = held
                .iter()
                .map(|(run, gpus)| format!("run {run} holds GPU {gpus:?}"))
                .collect();
            return Err(NodeError::Denied {
                code: "no_capacity",
                message: format!(
                    "{:?} has {} free GPU{} of the {count} this run needs ({}); try another node \
                     (`--on auto` does) or wait for a run to end",
                    self.inner.config.name,
                    free.len(),
                    if free.len() == 1 { "" } else { "s" },
                    if holders.is_empty() {
                        "none is held by a run".to_string()
                    } else {
                        holders.join("; ")
                    }
                ),
            });
        }
        held.insert(id.to_string(), free.clone());
        drop(held);
        self.spawn_readvertise();
        Ok(free)
    }

    /// Lets go of the GPUs run `id` held.
    pub(crate) fn release_gpus(&self, id: &str) {
        if lock(&self.inner.held_gpus).remove(id).is_some() {
            self.spawn_readvertise();
        }
    }

    fn spawn_readvertise(&self) {
        let node = self.clone();
        tokio::spawn(async move { node.readvertise().await });
    }
}
