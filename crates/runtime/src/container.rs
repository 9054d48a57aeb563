//! The container backend: the Docker Engine API through bollard (Podman answers the same API on
//! its compatible socket).
//!
//! A run is one container named `aienv-RUN`, labelled so the node finds it again after a restart
//! (`aienv.run`, `aienv.environment`, `aienv.workspace`). The workspace is mounted at
//! `/workspace`; ports are published on 127.0.0.1 only; GPUs are requested when the environment
//! asks for them and the machine has them. The node copies the container's output into the run's
//! log file, so logs look the same for every backend.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::StartExecOptions;
use bollard::models::{ContainerCreateBody, DeviceRequest, ExecConfig, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::error::RunError;
use crate::logs;
use crate::plan::RunPlan;

/// Where projects appear inside the container.
pub const MOUNT: &str = "/workspace";

/// A container of a run, and its exit code once it ended.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    docker: Docker,
    pub id: String,
    pub endpoint: String,
    exit: watch::Receiver<Option<i64>>,
}

/// Creates and starts the run's container. `use_gpus`: pass the machine's GPUs in.
pub async fn start(plan: &RunPlan, use_gpus: bool) -> Result<ContainerRun, RunError> {
    let (docker, engine) = crate::engine::detect().await.map_err(RunError::Engine)?;
    let image = plan.env.image.clone().unwrap_or_default();
    if !crate::image::has(&docker, &image).await? {
        return Err(RunError::Image(format!(
            "the image {image:?} is not on this machine's {}; get it with `{} pull {image}` \
             (or clone the environment from a peer that has it)",
            engine.name, engine.name
        )));
    }
    let mut out = logs::open_append(&plan.log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", plan.log.display()), e))?;
    let _ = writeln!(
        out,
        "[aienv] starting a container from {image} ({})",
        engine.name
    );

    let ports: HashMap<String, Option<Vec<PortBinding>>> = plan
        .publish
        .iter()
        .map(|(host, inside)| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host.to_string()),
            };
            (format!("{inside}/tcp"), Some(vec![binding]))
        })
        .collect();
    let env: Vec<String> = plan
        .vars
        .iter()
        // The host's PATH and venv mean nothing inside the image.
        .filter(|(k, _)| !matches!(k.as_str(), "PATH" | "VIRTUAL_ENV"))
        .map(|(k, v)| match k.as_str() {
            "AIENV_WORKSPACE" => format!("{k}={MOUNT}"),
            _ => format!("{k}={v}"),
        })
        .collect();
    let device_requests = (use_gpus && plan.env.gpus.is_some()).then(|| {
        let count = match plan.env.gpus.as_deref() {
            Some("all") | None => -1,
            Some(n) => n.parse().unwrap_or(-1),
        };
        vec![DeviceRequest {
            count: Some(count),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }]
    });
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: plan
            .env
            .command
            .as_ref()
            .map(|c| vec!["sh".into(), "-c".into(), c.clone()]),
        env: Some(env),
        working_dir: Some(MOUNT.into()),
        labels: Some(HashMap::from([
            ("aienv.run".to_string(), plan.run_id.clone()),
            ("aienv.environment".to_string(), plan.env.name.clone()),
            (
                "aienv.workspace".to_string(),
                plan.workspace.display().to_string(),
            ),
        ])),
        exposed_ports: Some(ports.keys().map(|k| (k.clone(), HashMap::new())).collect()),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:{MOUNT}", plan.workspace.display())]),
            port_bindings: Some(ports),
            memory: plan
                .env
                .memory_gb
                .map(|gb| (gb * (1u64 << 30) as f64) as i64),
            nano_cpus: plan.env.cpus.map(|c| i64::from(c) * 1_000_000_000),
            device_requests,
            // An init as PID 1 (docker run --init): the command gets SIGTERM on stop (a PID 1
            // without handlers ignores it) and exited children are reaped.
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("aienv-{}", plan.run_id);
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| {
            RunError::Start(format!(
                "the container could not be created: {}",
                message(&e)
            ))
        })?;
    let id = created.id;
    if let Err(e) = docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
    {
        let _ = remove(&docker, &id).await;
        return Err(RunError::Start(format!(
            "the container did not start: {}",
            message(&e)
        )));
    }
    let run = follow(docker, id, engine.endpoint, plan.log.clone(), 0);
    for tool in &plan.tools {
        if let Some(cmd) = &tool.command {
            run.exec(cmd).await?;
        }
    }
    Ok(run)
}

/// Finds a run's container again after a restart. `None`: it is gone.
pub async fn adopt(id: &str, log: std::path::PathBuf) -> Option<ContainerRun> {
    let (docker, engine) = crate::engine::detect().await.ok()?;
    let c = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .ok()?;
    if !c.state.and_then(|s| s.running).unwrap_or(false) {
        let _ = remove(&docker, id).await;
        return None;
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i32);
    Some(follow(docker, id.to_string(), engine.endpoint, log, since))
}

/// Starts copying the container's output to the log and watching for its end.
fn follow(
    docker: Docker,
    id: String,
    endpoint: String,
    log: std::path::PathBuf,
    since: i32,
) -> ContainerRun {
    let (tx, exit) = watch::channel(None);
    let (d, i) = (docker.clone(), id.clone());
    tokio::spawn(async move {
        let Ok(mut out) = logs::open_append(&log) else {
            return;
        };
        let opts = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            ..Default::default()
        };
        let mut stream = d.logs(&i, Some(opts));
        while let Some(Ok(chunk)) = stream.next().await {
            let _ = out.write_all(chunk.as_ref());
        }
    });
    let (d, i) = (docker.clone(), id.clone());
    tokio::spawn(async move {
        let opts = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let code = match d.wait_container(&i, Some(opts)).next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
            _ => -1,
        };
        let _ = tx.send(Some(code));
    });
    ContainerRun {
        docker,
        id,
        endpoint,
        exit,
    }
}

impl ContainerRun {
    /// Runs a tool's command inside the container, its output going to the container's log.
    async fn exec(&self, cmd: &str) -> Result<(), RunError> {
        let config = ExecConfig {
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("({cmd}) >/proc/1/fd/1 2>/proc/1/fd/2"),
            ]),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(&self.id, config)
            .await
            .map_err(|e| RunError::Start(format!("cannot start {cmd:?} in the container: {e}")))?;
        self.docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| RunError::Start(format!("cannot start {cmd:?} in the container: {e}")))?;
        Ok(())
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.exit.borrow().map(|c| c as i32)
    }

    pub fn failure(&self) -> Option<String> {
        self.exit_code()
            .map(|c| format!("the container exited with code {c}"))
    }

    pub async fn wait_gone(&self) {
        let mut exit = self.exit.clone();
        let _ = exit.wait_for(Option::is_some).await;
    }

    /// Stops the container (TERM, KILL after `grace`) and removes it.
    pub async fn stop(&self, grace: Duration) -> Result<(), RunError> {
        let opts = StopContainerOptions {
            t: Some(grace.as_secs().max(1) as i32),
            ..Default::default()
        };
        match self.docker.stop_container(&self.id, Some(opts)).await {
            Ok(()) => {}
            Err(e) if matches!(status(&e), Some(304 | 404)) => {}
            Err(e) => return Err(RunError::Engine(format!("the container did not stop: {e}"))),
        }
        remove(&self.docker, &self.id)
            .await
            .map_err(|e| RunError::Engine(format!("the container could not be removed: {e}")))
    }
}

async fn remove(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(opts)).await {
        Err(e) if status(&e) == Some(404) => Ok(()),
        other => other,
    }
}

fn status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
