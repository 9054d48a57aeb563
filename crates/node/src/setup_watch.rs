//! A run's set-up, watched while it happens: the installers' output streamed as log lines, and
//! the run's `setup` kept current (the step, how many packages the resolver settled on, how many
//! the node's package index fetched, from peers or upstream, and how many bytes).
//!
//! The index counts for the whole node, so two runs setting up at once each see both's fetches;
//! that is rare, and the totals stay right.

use std::sync::{Arc, Mutex};

use aienv_core::Event;
use aienv_core::run::{LogLines, RunState, SetupProgress};
use aienv_runtime::logs::Follower;
use aienv_runtime::python::Progress;
use tokio::sync::oneshot;

use crate::{Node, lock};

/// The watch over one run's set-up; [`SetupWatch::finish`] ends it.
pub(crate) struct SetupWatch {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Follower>,
}

impl SetupWatch {
    /// Ends the watch (after a last look) and hands back the log follower, which has read every
    /// line so far, for whoever follows the log from here.
    pub(crate) async fn finish(self) -> Option<Follower> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}

impl Node {
    /// Starts watching run `id`'s set-up; returns the watch and the callback the Python build
    /// reports its steps to.
    pub(crate) fn watch_setup(&self, id: &str, log: &std::path::Path) -> (SetupWatch, Progress) {
        let step = Arc::new(Mutex::new(String::new()));
        let progress: Progress = {
            let step = step.clone();
            Arc::new(move |p: SetupProgress| *lock(&step) = p.step)
        };
        let (stop, mut stopped) = oneshot::channel();
        let node = self.downgrade();
        let id = id.to_string();
        let mut follower = Follower::new(log.to_path_buf(), true);
        let base = self.inner.index.stats.snapshot();
        let task = tokio::spawn(async move {
            let mut packages = None;
            loop {
                let last = tokio::select! {
                    _ = &mut stopped => true,
                    _ = tokio::time::sleep(super::runs::LOG_EVERY) => false,
                };
                let Some(node) = node.upgrade() else { break };
                let lines = follower.read_new().unwrap_or_default();
                packages = lines.iter().rev().find_map(|l| resolved(l)).or(packages);
                if !lines.is_empty() {
                    node.emit(Event::RunLog {
                        log: LogLines {
                            run_id: id.clone(),
                            lines,
                        },
                    });
                }
                let step = lock(&step).clone();
                if !step.is_empty() {
                    let now = node.setup_progress(step, packages, base);
                    node.update_run(&id, |r| {
                        if r.state == RunState::Starting || last {
                            r.setup = Some(now);
                        }
                    });
                }
                if last {
                    break;
                }
            }
            follower
        });
        (SetupWatch { stop, task }, progress)
    }

    fn setup_progress(
        &self,
        step: String,
        packages: Option<u32>,
        base: (u64, u64, u64),
    ) -> SetupProgress {
        let stats = &self.inner.index.stats;
        let (fetched, from_peers, bytes) = stats.snapshot();
        let (fetched, from_peers, bytes) = (
            (fetched - base.0) as u32,
            (from_peers - base.1) as u32,
            bytes - base.2,
        );
        let mut message = step.clone();
        if let Some(n) = packages {
            message.push_str(&format!(": {n} packages"));
        }
        if fetched > 0 {
            let peer = lock(&stats.last_peer).clone();
            message.push_str(&format!(
                "; fetched {fetched} ({:.1} MB){}",
                bytes as f64 / 1e6,
                match (from_peers, peer) {
                    (0, _) | (_, None) => String::new(),
                    (n, Some(p)) => format!(", {n} from peers (last: {p})"),
                }
            ));
        }
        SetupProgress {
            step,
            packages,
            fetched,
            from_peers,
            bytes,
            message,
        }
    }
}

/// The package count of uv's "Resolved 40 packages in 1.2s" (pip prints nothing like it).
fn resolved(line: &str) -> Option<u32> {
    let rest = line.trim().strip_prefix("Resolved ")?;
    let (n, rest) = rest.split_once(' ')?;
    rest.starts_with("package")
        .then(|| n.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_uvs_package_count() {
        assert_eq!(super::resolved("Resolved 42 packages in 1.03s"), Some(42));
        assert_eq!(super::resolved("Resolved 1 package in 3ms"), Some(1));
        assert_eq!(super::resolved("Installed 42 packages in 80ms"), None);
    }
}
