//! The resource probe: what this machine has (CPUs, memory, disk, GPUs, container engine,
//! hypervisor), fast enough to ask on every run and every UI refresh.
//!
//! Memory and disk are read fresh each time through one kept `sysinfo` handle; the slow parts
//! (running `nvidia-smi`, asking the container engine, `qemu --version`) are cached and, once
//! older than a few seconds, refreshed in the background while the cached answer is served, so
//! no caller but the very first waits for them (a run's start included).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aienv_core::resources::{ContainerEngine, Disk, Gpu, Hypervisor, Resources};
use sysinfo::{CpuRefreshKind, Disks, RefreshKind, System};

use crate::{engine, gpu};

/// How old GPU, engine and hypervisor findings may get before a background refresh.
const SLOW_TTL: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Probe {
    /// Where workspaces live: its file system is the disk reported.
    data_path: PathBuf,
    sys: Mutex<System>,
    disks: Mutex<Disks>,
    cpu_model: String,
    slow: Arc<Mutex<Option<(Instant, Slow)>>>,
    refreshing: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
struct Slow {
    gpus: Result<Vec<Gpu>, String>,
    engine: Result<ContainerEngine, String>,
    hypervisor: Result<Hypervisor, String>,
}

impl Probe {
    pub fn new(data_path: &Path) -> Probe {
        let sys =
            System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
        let cpu_model = sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .unwrap_or_default();
        Probe {
            data_path: data_path.to_path_buf(),
            sys: Mutex::new(sys),
            disks: Mutex::new(Disks::new_with_refreshed_list()),
            cpu_model,
            slow: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// What this machine has now.
    pub async fn resources(&self) -> Resources {
        let slow = self.slow().await;
        let (ram_total, ram_available) = {
            let mut sys = self.sys.lock().unwrap_or_else(|e| e.into_inner());
            sys.refresh_memory();
            (sys.total_memory(), sys.available_memory())
        };
        let disk = {
            let mut disks = self.disks.lock().unwrap_or_else(|e| e.into_inner());
            disks.refresh(false);
            let path = std::fs::canonicalize(&self.data_path).unwrap_or(self.data_path.clone());
            disks
                .list()
                .iter()
                .filter(|d| path.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len())
                .map(|d| Disk {
                    mount_point: d.mount_point().display().to_string(),
                    total_bytes: d.total_space(),
                    available_bytes: d.available_space(),
                })
        };
        let (gpus, gpu_note) = split(slow.gpus);
        let (container_engine, container_note) = split(slow.engine.map(Some));
        let (hypervisor, hypervisor_note) = split(slow.hypervisor.map(Some));
        #[allow(unused_mut)]
        let mut found = Resources {
            os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.into()),
            arch: std::env::consts::ARCH.into(),
            cpu_model: self.cpu_model.clone(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            ram_total_bytes: ram_total,
            ram_available_bytes: ram_available,
            disk,
            gpus: gpus.unwrap_or_default(),
            gpu_note,
            container_engine: container_engine.flatten(),
            container_note,
            hypervisor: hypervisor.flatten(),
            hypervisor_note,
        };
        #[cfg(feature = "test-hooks")]
        test_hook::apply(&mut found);
        found
    }

    /// Forgets cached findings (e.g. after the container engine was started).
    pub fn refresh(&self) {
        *self.slow.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn slow(&self) -> Slow {
        let cached = self.slow.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match cached {
            Some((at, slow)) => {
                if at.elapsed() >= SLOW_TTL && !self.refreshing.swap(true, Ordering::SeqCst) {
                    let (cache, busy) = (self.slow.clone(), self.refreshing.clone());
                    tokio::spawn(async move {
                        let fresh = probe_slow().await;
                        *cache.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((Instant::now(), fresh));
                        busy.store(false, Ordering::SeqCst);
                    });
                }
                slow
            }
            None => {
                let fresh = probe_slow().await;
                *self.slow.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), fresh.clone()));
                fresh
            }
        }
    }
}

async fn probe_slow() -> Slow {
    let gpus = tokio::task::spawn_blocking(gpu::probe);
    let hypervisor = tokio::task::spawn_blocking(hypervisor);
    let engine = engine::detect().await.map(|(_, e)| e);
    Slow {
        gpus: gpus.await.unwrap_or_else(|e| Err(e.to_string())),
        engine,
        hypervisor: hypervisor.await.unwrap_or_else(|e| Err(e.to_string())),
    }
}

fn split<T>(r: Result<T, String>) -> (Option<T>, Option<String>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

/// The QEMU of this machine's architecture, if installed.
pub fn qemu_binary() -> String {
    format!("qemu-system-{}", std::env::consts::ARCH)
}

fn hypervisor() -> Result<Hypervisor, String> {
    let qemu = qemu_binary();
    let out = std::process::Command::new(&qemu)
        .arg("--version")
        .output()
        .map_err(|_| {
            format!("{qemu} is not installed; VMs cannot run (Debian: apt install qemu-system-x86)")
        })?;
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.split("version ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("unknown")
        .to_string();
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    Ok(Hypervisor { qemu, version, kvm })
}

/// Compiled only with the `test-hooks` feature (tests, never a release): `AIENV_TEST_RESOURCES`
/// holds JSON that replaces what the probe found, e.g.
/// `{"cpus": 32, "ram_gb": 128, "ram_free_gb": 100, "gpus": [{"name": "H100", "memory_gb": 80,
/// "free_gb": 79}]}`. Placement tests give each node the machine they need this way.
#[cfg(feature = "test-hooks")]
mod test_hook {
    use aienv_core::resources::{Gpu, Resources};

    #[derive(serde::Deserialize)]
    struct Fake {
        cpus: Option<u32>,
        ram_gb: Option<f64>,
        ram_free_gb: Option<f64>,
        gpus: Option<Vec<FakeGpu>>,
    }

    #[derive(serde::Deserialize)]
    struct FakeGpu {
        name: String,
        memory_gb: f64,
        free_gb: Option<f64>,
    }

    pub fn apply(r: &mut Resources) {
        let Ok(text) = std::env::var("AIENV_TEST_RESOURCES") else {
            return;
        };
        let fake: Fake = serde_json::from_str(&text).expect("AIENV_TEST_RESOURCES is JSON");
        let gb = |g: f64| (g * 1e9) as u64;
        if let Some(c) = fake.cpus {
            r.cpus = c;
        }
        if let Some(t) = fake.ram_gb {
            r.ram_total_bytes = gb(t);
        }
        if let Some(f) = fake.ram_free_gb {
            r.ram_available_bytes = gb(f);
        }
        if let Some(gpus) = fake.gpus {
            r.gpu_note = None;
            r.gpus = gpus
                .into_iter()
                .enumerate()
                .map(|(i, g)| Gpu {
                    index: i as u32,
                    vendor: "NVIDIA".into(),
                    name: g.name,
                    memory_total_mb: (g.memory_gb * 1000.0) as u64,
                    memory_used_mb: g.free_gb.map(|f| ((g.memory_gb - f) * 1000.0) as u64),
                    driver: Some("test-hook".into()),
                    cuda: Some("12.4".into()),
                })
                .collect();
        }
    }
}
