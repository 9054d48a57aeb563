//! Where should an environment run? Each node of the LAN (this one and every peer) is judged by
//! what it announces it has free ([`PeerResources`]) against what the environment requires, and
//! the candidates are ordered best first, each with its reason in words ("gpu-box: 2 free GPUs,
//! 79 GB free"; "laptop: no GPU"). The same inputs always give the same order.
//!
//! Order: nodes where it fits first; among those, fewer live runs, then more free GPU memory on
//! the GPUs it would get, then more free memory, then this node (no transfer), then the name.

use aienv_core::Environment;
use aienv_core::peer::{PeerGpu, PeerResources};
use serde::Serialize;
use utoipa::ToSchema;

/// A node to judge.
#[derive(Debug, Clone)]
pub struct NodeView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// This node (no transfer needed, and its own rules for runs do not apply).
    pub local: bool,
    pub resources: Option<&'a PeerResources>,
}

/// One node's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Candidate {
    pub node_id: String,
    pub name: String,
    pub local: bool,
    pub fits: bool,
    /// Why, in words: "gpu-box: 2 free GPUs, 79 GB free" or "laptop: no GPU".
    pub reason: String,
    /// The GPUs it would get (their indices on that node).
    pub gpus: Vec<u32>,
    #[serde(skip)]
    key: SortKey,
}

impl Candidate {
    /// A node the user named: it decides itself whether the run fits.
    pub fn named(id: &str, name: &str) -> Candidate {
        Candidate {
            node_id: id.to_string(),
            name: name.to_string(),
            local: false,
            fits: true,
            reason: format!("{name}: named by you"),
            gpus: Vec::new(),
            key: SortKey::default(),
        }
    }
}

/// Bigger is better, compared field by field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
struct SortKey {
    fits: bool,
    fewer_runs: std::cmp::Reverse<u32>,
    gpu_free_mb: u64,
    memory_free_mb: u64,
    local: bool,
}

/// What an environment asks of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Needs {
    pub gpus: u32,
    pub vram_mb: u64,
    pub memory_mb: u64,
    pub cpus: u32,
}

impl Needs {
    pub fn of(env: &Environment) -> Needs {
        let r = &env.requires;
        Needs {
            gpus: r
                .gpus
                .or(r.vram_gb.map(|_| 1))
                .or(env.gpus.as_ref().map(|_| 1))
                .unwrap_or(0),
            vram_mb: r.vram_gb.map_or(0, |gb| (gb * 1000.0) as u64),
            memory_mb: r.ram_gb.map_or(0, |gb| (gb * 1000.0) as u64),
            cpus: r.cpus.unwrap_or(0),
        }
    }
}

/// The candidates for `env`, best first.
pub fn place(env: &Environment, nodes: &[NodeView]) -> Vec<Candidate> {
    let needs = Needs::of(env);
    let mut out: Vec<Candidate> = nodes.iter().map(|n| judge(&needs, n)).collect();
    out.sort_by(|a, b| b.key.cmp(&a.key).then_with(|| a.name.cmp(&b.name)));
    out
}

fn judge(needs: &Needs, node: &NodeView) -> Candidate {
    let verdict = |fits: bool, reason: String, gpus: Vec<u32>, key: SortKey| Candidate {
        node_id: node.id.to_string(),
        name: node.name.to_string(),
        local: node.local,
        fits,
        reason: format!("{}: {reason}", node.name),
        gpus,
        key,
    };
    let Some(r) = node.resources else {
        return verdict(
            false,
            "does not announce its resources (an older aienv?)".into(),
            vec![],
            SortKey::default(),
        );
    };
    if !node.local && !r.accepts_runs {
        return verdict(
            false,
            "takes no runs from peers".into(),
            vec![],
            SortKey::default(),
        );
    }
    let mut missing = Vec::new();
    // GPUs: free (not held by a run there), with enough memory, most free memory first.
    let mut usable: Vec<&PeerGpu> = r.free_gpus().filter(|g| enough(g, needs.vram_mb)).collect();
    usable.sort_by_key(|g| (std::cmp::Reverse(free_mb(g)), g.index));
    usable.truncate(needs.gpus as usize);
    if needs.gpus > 0 && (usable.len() as u32) < needs.gpus {
        missing.push(gpu_shortfall(needs, r));
    }
    if needs.memory_mb > 0 && r.memory_free_mb < needs.memory_mb {
        missing.push(format!(
            "{} free memory, needs {}",
            gb(r.memory_free_mb),
            gb(needs.memory_mb)
        ));
    }
    if needs.cpus > 0 && r.cpus < needs.cpus {
        missing.push(format!("{} CPUs, needs {}", r.cpus, needs.cpus));
    }
    let gpu_free_mb: u64 = usable.iter().map(|g| free_mb(g)).sum();
    let key = SortKey {
        fits: missing.is_empty(),
        fewer_runs: std::cmp::Reverse(r.runs),
        gpu_free_mb,
        memory_free_mb: r.memory_free_mb,
        local: node.local,
    };
    if !missing.is_empty() {
        return verdict(false, missing.join("; "), vec![], key);
    }
    let mut said = Vec::new();
    if needs.gpus > 0 {
        let n = r.free_gpus().count();
        said.push(format!(
            "{n} free GPU{}, {} free",
            if n == 1 { "" } else { "s" },
            gb(gpu_free_mb)
        ));
    } else {
        said.push(format!(
            "{} CPUs, {} free memory",
            r.cpus,
            gb(r.memory_free_mb)
        ));
    }
    if r.runs > 0 {
        said.push(format!(
            "{} run{} live",
            r.runs,
            if r.runs == 1 { "" } else { "s" }
        ));
    }
    let gpus = usable.iter().map(|g| g.index).collect();
    verdict(true, said.join(", "), gpus, key)
}

/// Why a node's GPUs do not do, most telling first.
fn gpu_shortfall(needs: &Needs, r: &PeerResources) -> String {
    let plural = |n: u32| if n == 1 { "GPU" } else { "GPUs" };
    if r.gpus.is_empty() {
        return "no GPU".into();
    }
    let free: Vec<&PeerGpu> = r.free_gpus().collect();
    if free.is_empty() {
        return format!(
            "all {} {} held by runs there",
            r.gpus.len(),
            plural(r.gpus.len() as u32)
        );
    }
    let big = free.iter().filter(|g| enough(g, needs.vram_mb)).count() as u32;
    if big == 0 {
        let most = free.iter().map(|g| free_mb(g)).max().unwrap_or(0);
        return format!(
            "its free GPUs have {} free, needs {}",
            gb(most),
            gb(needs.vram_mb)
        );
    }
    format!(
        "{big} free {} with enough memory, needs {}",
        plural(big),
        needs.gpus
    )
}

fn free_mb(g: &PeerGpu) -> u64 {
    g.memory_free_mb.unwrap_or(g.memory_mb)
}

/// Whether `g` has `need_mb` free (3% slack: an "80 GB" card reports a little less).
fn enough(g: &PeerGpu, need_mb: u64) -> bool {
    free_mb(g) as f64 >= need_mb as f64 * 0.97
}

fn gb(mb: u64) -> String {
    format!("{:.0} GB", mb as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aienv_core::{EnvKind, Requirements};

    fn env(gpus: Option<u32>, vram_gb: Option<f64>, ram_gb: Option<f64>) -> Environment {
        Environment {
            requires: Requirements {
                gpus,
                vram_gb,
                ram_gb,
                ..Default::default()
            },
            ..Environment::new("train", EnvKind::Process)
        }
    }

    fn gpu(index: u32, total_gb: u64, free_gb: u64, held: bool) -> PeerGpu {
        PeerGpu {
            index,
            name: "H100".into(),
            memory_mb: total_gb * 1000,
            memory_free_mb: Some(free_gb * 1000),
            held,
        }
    }

    fn res(gpus: Vec<PeerGpu>, free_gb: u64, runs: u32) -> PeerResources {
        PeerResources {
            cpus: 16,
            memory_mb: 128_000,
            memory_free_mb: free_gb * 1000,
            gpus,
            runs,
            accepts_runs: true,
        }
    }

    fn names(c: &[Candidate]) -> Vec<(&str, bool)> {
        c.iter().map(|c| (c.name.as_str(), c.fits)).collect()
    }

    #[test]
    fn the_node_with_free_gpus_comes_first_and_each_says_why() {
        let big = res(vec![gpu(0, 80, 79, false), gpu(1, 80, 40, false)], 100, 0);
        let small = res(vec![gpu(0, 24, 24, false)], 50, 0);
        let laptop = res(vec![], 8, 0);
        let nodes = [
            NodeView {
                id: "l",
                name: "laptop",
                local: true,
                resources: Some(&laptop),
            },
            NodeView {
                id: "s",
                name: "small-box",
                local: false,
                resources: Some(&small),
            },
            NodeView {
                id: "g",
                name: "gpu-box",
                local: false,
                resources: Some(&big),
            },
        ];
        let c = place(&env(Some(1), Some(30.0), None), &nodes);
        assert_eq!(
            names(&c),
            [("gpu-box", true), ("small-box", false), ("laptop", false)]
        );
        assert_eq!(c[0].reason, "gpu-box: 2 free GPUs, 79 GB free");
        assert_eq!(c[0].gpus, [0], "the GPU with the most free memory");
        assert_eq!(c[2].reason, "laptop: no GPU");
        assert_eq!(
            c[1].reason,
            "small-box: its free GPUs have 24 GB free, needs 30 GB"
        );
        // Deterministic: the same inputs in another order give the same answer.
        let reversed: Vec<NodeView> = nodes.iter().rev().cloned().collect();
        assert_eq!(place(&env(Some(1), Some(30.0), None), &reversed), c);
    }

    #[test]
    fn held_gpus_are_not_free_and_say_so() {
        let busy = res(vec![gpu(0, 80, 80, true), gpu(1, 80, 80, true)], 100, 2);
        let half = res(vec![gpu(0, 80, 80, true), gpu(1, 80, 80, false)], 100, 1);
        let nodes = [
            NodeView {
                id: "b",
                name: "busy",
                local: false,
                resources: Some(&busy),
            },
            NodeView {
                id: "h",
                name: "half",
                local: false,
                resources: Some(&half),
            },
        ];
        let c = place(&env(Some(1), None, None), &nodes);
        assert_eq!(names(&c), [("half", true), ("busy", false)]);
        assert_eq!(c[0].gpus, [1]);
        assert_eq!(c[0].reason, "half: 1 free GPU, 80 GB free, 1 run live");
        assert_eq!(c[1].reason, "busy: all 2 GPUs held by runs there");
        let two = place(&env(Some(2), None, None), &nodes);
        assert_eq!(
            two[0].reason,
            "half: 1 free GPU with enough memory, needs 2"
        );
    }

    #[test]
    fn without_gpu_needs_memory_and_runs_decide_and_refusers_are_last() {
        let a = res(vec![], 30, 1);
        let b = res(vec![], 20, 0);
        let closed = PeerResources {
            accepts_runs: false,
            ..res(vec![], 200, 0)
        };
        let nodes = [
            NodeView {
                id: "a",
                name: "a",
                local: false,
                resources: Some(&a),
            },
            NodeView {
                id: "b",
                name: "b",
                local: false,
                resources: Some(&b),
            },
            NodeView {
                id: "c",
                name: "closed",
                local: false,
                resources: Some(&closed),
            },
            NodeView {
                id: "o",
                name: "old",
                local: false,
                resources: None,
            },
        ];
        let c = place(&env(None, None, Some(16.0)), &nodes);
        assert_eq!(
            names(&c),
            [("b", true), ("a", true), ("closed", false), ("old", false)]
        );
        assert_eq!(c[0].reason, "b: 16 CPUs, 20 GB free memory");
        assert_eq!(c[2].reason, "closed: takes no runs from peers");
        let c = place(&env(None, None, Some(25.0)), &nodes);
        assert_eq!(c[0].name, "a");
        assert!(
            c.iter()
                .any(|c| c.reason == "b: 20 GB free memory, needs 25 GB")
        );
    }
}
