//! What the runtime's integration tests share: a small machine, and starting an environment the
//! way the node does (fit, plan, then `Backends::start`).

use std::path::Path;

use aienv_core::Environment;
use aienv_core::resources::Resources;
use aienv_runtime::RunError;
use aienv_runtime::backend::{Backends, Running};
use aienv_runtime::fit;
use aienv_runtime::plan::{self, Inputs};
use aienv_runtime::ports::Ports;

pub fn machine() -> Resources {
    Resources {
        os: "Linux".into(),
        arch: "x86_64".into(),
        cpu_model: "cpu".into(),
        cpus: 2,
        ram_total_bytes: 8_000_000_000,
        ram_available_bytes: 4_000_000_000,
        disk: None,
        gpus: Vec::new(),
        gpu_note: None,
        container_engine: None,
        container_note: None,
        hypervisor: None,
        hypervisor_note: None,
    }
}

/// Starts `env` in the workspace `ws` as run `run_id`, its log and files in `run_dir`.
pub async fn start(
    ws: &Path,
    run_dir: &Path,
    run_id: &str,
    env: &Environment,
) -> Result<Running, RunError> {
    let machine = machine();
    let fit = fit::check(env, &machine);
    let plan = plan::make(
        Inputs {
            run_id,
            workspace: ws.to_path_buf(),
            env,
            resources: &machine,
            fit: &fit,
            run_dir: run_dir.to_path_buf(),
            host: None,
        },
        &Ports::default(),
    )?;
    Backends::default()
        .start(&plan, &machine)
        .await
        .map(|(run, _)| run)
}
