//! What a machine has to run environments with: CPUs, memory, disk, GPUs, container engine and
//! hypervisor. Probed by the runtime; shown to users and (later) advertised to peers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resources {
    pub os: String,
    pub arch: String,
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpus: u32,
    pub ram_total_bytes: u64,
    pub ram_available_bytes: u64,
    /// The disk that holds this node's workspaces (the data dir's file system).
    pub disk: Option<Disk>,
    pub gpus: Vec<Gpu>,
    /// Why no GPU is listed when the probe could not run (no `nvidia-smi`, or it failed).
    pub gpu_note: Option<String>,
    pub container_engine: Option<ContainerEngine>,
    /// Why no container engine is usable, in a sentence that says what to do.
    pub container_note: Option<String>,
    pub hypervisor: Option<Hypervisor>,
    pub hypervisor_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Disk {
    pub mount_point: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Gpu {
    pub index: u32,
    pub vendor: String,
    pub name: String,
    pub memory_total_mb: u64,
    pub memory_used_mb: Option<u64>,
    pub driver: Option<String>,
    /// The highest CUDA version the driver supports, e.g. "12.4".
    pub cuda: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerEngine {
    /// "docker" or "podman".
    pub name: String,
    pub version: String,
    /// Where the node talks to it, e.g. `unix:///var/run/docker.sock`.
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hypervisor {
    /// The QEMU binary.
    pub qemu: String,
    pub version: String,
    /// `/dev/kvm` can be opened. Whether KVM really boots is only known at the first boot: the
    /// VM backend falls back to software emulation when it does not and says so.
    pub kvm: bool,
}
