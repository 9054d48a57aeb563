//! Does an environment fit this machine? Each shortfall becomes a sentence a user can act on
//! ("needs 1 GPU with 16 GB; this machine has none"); a `no-gpu` fallback covers shortfalls that
//! are about GPUs only.

use std::collections::BTreeMap;

use aienv_core::resources::Resources;
use aienv_core::{Environment, FallbackWhen};

const GB: f64 = 1_000_000_000.0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fit {
    /// What this machine lacks, one sentence each. Empty: it fits (possibly through the fallback).
    pub missing: Vec<String>,
    /// What the fallback changes, when it is used.
    pub fallback_env: Option<BTreeMap<String, String>>,
    /// Said to the user when the fallback is used.
    pub note: Option<String>,
}

impl Fit {
    pub fn fits(&self) -> bool {
        self.missing.is_empty()
    }
}

pub fn check(env: &Environment, r: &Resources) -> Fit {
    let req = &env.requires;
    let mut general = Vec::new();
    let mut gpu = Vec::new();
    if let Some(n) = req.cpus
        && r.cpus < n
    {
        general.push(format!("needs {n} CPUs; this machine has {}", r.cpus));
    }
    if let Some(gb) = req.ram_gb
        && (r.ram_total_bytes as f64) < gb * GB
    {
        general.push(format!(
            "needs {gb} GB of memory; this machine has {:.1} GB",
            r.ram_total_bytes as f64 / GB
        ));
    }
    if let (Some(gb), Some(d)) = (req.disk_gb, &r.disk)
        && (d.available_bytes as f64) < gb * GB
    {
        general.push(format!(
            "needs {gb} GB of free disk; {:.1} GB free on {}",
            d.available_bytes as f64 / GB,
            d.mount_point
        ));
    }
    let want_gpus = req
        .gpus
        .or(req.vram_gb.map(|_| 1))
        .or(env.gpus.as_ref().map(|_| 1))
        .unwrap_or(0);
    if want_gpus > 0 {
        let need_mb = req.vram_gb.map_or(0.0, |gb| gb * 1000.0);
        let usable = r
            .gpus
            .iter()
            .filter(|g| g.memory_total_mb as f64 >= need_mb * 0.97)
            .count() as u32;
        if usable < want_gpus {
            let with = req
                .vram_gb
                .map(|gb| format!(" with {gb} GB"))
                .unwrap_or_default();
            let plural = if want_gpus == 1 { "GPU" } else { "GPUs" };
            let has = if r.gpus.is_empty() {
                "none".to_string()
            } else {
                r.gpus
                    .iter()
                    .map(|g| format!("{} ({:.0} GB)", g.name, g.memory_total_mb as f64 / 1000.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            gpu.push(format!(
                "needs {want_gpus} {plural}{with}; this machine has {has}"
            ));
        }
    }
    if let Some(cuda) = &req.cuda {
        match r.gpus.iter().filter_map(|g| g.cuda.as_deref()).next() {
            Some(have) if version_lt(have, cuda) => gpu.push(format!(
                "needs CUDA {cuda}; the driver here supports CUDA {have} (update the NVIDIA driver)"
            )),
            Some(_) => {}
            None if gpu.is_empty() => {
                gpu.push(format!("needs CUDA {cuda}; this machine has no NVIDIA GPU"))
            }
            None => {}
        }
    }
    let fallback = env
        .fallback
        .as_ref()
        .filter(|f| f.when == FallbackWhen::NoGpu && !gpu.is_empty() && general.is_empty());
    match fallback {
        Some(f) => Fit {
            missing: Vec::new(),
            note: Some(format!(
                "{}: using the no-gpu fallback{}",
                gpu.join("; "),
                if f.env.is_empty() {
                    String::new()
                } else {
                    let vars: Vec<_> = f.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" ({})", vars.join(" "))
                }
            )),
            fallback_env: Some(f.env.clone()),
        },
        None => Fit {
            missing: general.into_iter().chain(gpu).collect(),
            ..Fit::default()
        },
    }
}

/// "11.8" < "12.1", numerically part by part.
fn version_lt(a: &str, b: &str) -> bool {
    let parts = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a) < parts(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aienv_core::resources::Gpu;

    fn machine(gpus: Vec<Gpu>) -> Resources {
        Resources {
            os: "Linux".into(),
            arch: "x86_64".into(),
            cpu_model: "cpu".into(),
            cpus: 2,
            ram_total_bytes: 24_000_000_000,
            ram_available_bytes: 20_000_000_000,
            disk: None,
            gpus,
            gpu_note: None,
            container_engine: None,
            container_note: None,
            hypervisor: None,
            hypervisor_note: None,
        }
    }

    fn env(toml_env: serde_json::Value) -> Environment {
        let mut v = serde_json::json!({"name": "e", "kind": "process"});
        v.as_object_mut()
            .unwrap()
            .extend(toml_env.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn t4() -> Gpu {
        Gpu {
            index: 0,
            vendor: "NVIDIA".into(),
            name: "Tesla T4".into(),
            memory_total_mb: 15360,
            memory_used_mb: Some(0),
            driver: Some("535.104.05".into()),
            cuda: Some("12.2".into()),
        }
    }

    #[test]
    fn says_exactly_what_is_missing() {
        let e = env(serde_json::json!({"requires": {"gpus": 1, "vram_gb": 16, "cpus": 8}}));
        let fit = check(&e, &machine(vec![]));
        assert_eq!(
            fit.missing,
            [
                "needs 8 CPUs; this machine has 2",
                "needs 1 GPU with 16 GB; this machine has none"
            ]
        );
        // A 15 GB card is not a 16 GB card.
        let fit = check(&e, &machine(vec![t4()]));
        assert!(
            fit.missing[1].contains("Tesla T4 (15 GB)"),
            "{:?}",
            fit.missing
        );
        let cuda = env(serde_json::json!({"requires": {"gpus": 1, "cuda": "12.4"}}));
        let fit = check(&cuda, &machine(vec![t4()]));
        assert_eq!(
            fit.missing,
            ["needs CUDA 12.4; the driver here supports CUDA 12.2 (update the NVIDIA driver)"]
        );
        assert!(
            check(
                &env(serde_json::json!({"requires": {"gpus": 1}})),
                &machine(vec![t4()])
            )
            .fits()
        );
    }

    #[test]
    fn the_no_gpu_fallback_covers_only_gpu_shortfalls() {
        let e = env(serde_json::json!({
            "requires": {"gpus": 1},
            "fallback": {"when": "no-gpu", "env": {"DEVICE": "cpu"}}
        }));
        let fit = check(&e, &machine(vec![]));
        assert!(fit.fits());
        assert_eq!(fit.fallback_env.unwrap()["DEVICE"], "cpu");
        assert!(
            fit.note
                .unwrap()
                .contains("using the no-gpu fallback (DEVICE=cpu)")
        );
        let e = env(serde_json::json!({
            "requires": {"gpus": 1, "ram_gb": 512},
            "fallback": {"when": "no-gpu"}
        }));
        let fit = check(&e, &machine(vec![]));
        assert_eq!(fit.missing.len(), 2, "{:?}", fit.missing);
    }
}
