//! The container backend: the Docker Engine API through bollard (Podman answers the same API on
//! its compatible socket).
//!
//! A run is one container named `aienv-RUN`, labelled so the node finds it again after a restart
//! (`aienv.run`, `aienv.environment`, `aienv.workspace`). The workspace is mounted at
//! `/workspace`; ports are published on 127.0.0.1 only; GPUs are requested when the environment
//! asks for them and the machine has them. The node copies the container's output into the run's
//! log file, so logs look the same for every backend.
//!
//! With `build`, the image is built first ([`crate::image_build`]). The `setup` commands then run
//! in the started container, one after the other, each to its end; a failing one removes the
//! container again. The environment's `command` waits for them (it polls for a file the last step
//! writes), and the tools' commands start only after them. Without a `command` the image's own
//! runs from the start, as it must for the container to be up at all.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use aienv_core::Environment;
use aienv_core::resources::ContainerEngine;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
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
use crate::setup;

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

/// Inside the container: exists once the setup commands succeeded; the command waits for it.
const SETUP_DONE: &str = "/tmp/.aienv-setup-done";

/// Creates and starts the run's container, building its image first when it has `build`, and
/// runs its setup commands and tools in it. `use_gpus`: pass the machine's GPUs in.
pub async fn start(plan: &RunPlan, use_gpus: bool) -> Result<ContainerRun, RunError> {
    let (docker, engine) = crate::engine::detect().await.map_err(RunError::Engine)?;
    let image = image_for(&docker, &engine, plan).await?;
    let mut out = logs::open_append(&plan.log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", plan.log.display()), e))?;
    let _ = writeln!(
        out,
        "[aienv] starting a container from {image} ({})",
        engine.name
    );
    let name = format!("aienv-{}", plan.run_id);
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            create_body(plan, &image, use_gpus),
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
    // A start that fails from here on leaves nothing behind.
    if let Err(e) = run.prepare(plan).await {
        let _ = remove(&run.docker, &run.id).await;
        return Err(e);
    }
    Ok(run)
}

/// The image to run: built from the Dockerfile, or the named one, which must be here already.
async fn image_for(
    docker: &Docker,
    engine: &ContainerEngine,
    plan: &RunPlan,
) -> Result<String, RunError> {
    let env = &plan.env;
    if let Some(build) = &env.build {
        return crate::image_build::build(docker, engine, &plan.workspace, env, build, &plan.log)
            .await;
    }
    let Some(image) = env.image.clone() else {
        return Err(RunError::Image(format!(
            "environment {:?} is a container without an image; set `image = \"...\"` or \
             `build = {{ dockerfile = \"Dockerfile\" }}` in aienv.toml",
            env.name
        )));
    };
    if !crate::image::has(docker, &image).await? {
        return Err(RunError::Image(format!(
            "the image {image:?} is not on this machine's {}; get it with `{} pull {image}` \
             (or clone the environment from a peer that has it)",
            engine.name, engine.name
        )));
    }
    Ok(image)
}

/// The container's command: the environment's, held back until the setup commands succeeded.
fn main_cmd(env: &Environment) -> Option<Vec<String>> {
    let command = env.command.clone()?;
    if env.setup.is_empty() {
        return Some(vec!["sh".into(), "-c".into(), command]);
    }
    // Not every `sleep` takes fractions; the fallback only makes the wait coarser.
    let wait = format!(
        "until [ -e {SETUP_DONE} ]; do sleep 0.1 2>/dev/null || sleep 1; done; exec sh -c \"$1\""
    );
    Some(vec![
        "sh".into(),
        "-c".into(),
        wait,
        "aienv-setup-wait".into(),
        command,
    ])
}

/// The container: the workspace at [`MOUNT`], ports on 127.0.0.1, labels to find it again.
fn create_body(plan: &RunPlan, image: &str, use_gpus: bool) -> ContainerCreateBody {
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
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: main_cmd(&plan.env),
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
    }
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
    /// Runs the setup commands, releases the command, and starts the tools' commands.
    async fn prepare(&self, plan: &RunPlan) -> Result<(), RunError> {
        let env = &plan.env;
        for (i, cmd) in env.setup.iter().enumerate() {
            setup::announce(&plan.log, cmd)?;
            let argv = vec!["sh".into(), "-c".into(), cmd.clone()];
            let code = self
                .exec_to_end(argv, &plan.log)
                .await
                .map_err(|why| setup::not_run(&env.name, i, cmd, &why, &plan.log))?;
            if code != Some(0) {
                return Err(setup::failed(&env.name, i, cmd, code, &plan.log));
            }
        }
        if env.command.is_some() && !env.setup.is_empty() {
            self.release_command(&plan.log).await?;
        }
        for tool in &plan.tools {
            if let Some(cmd) = &tool.command {
                self.exec(cmd).await?;
            }
        }
        Ok(())
    }

    /// Lets the command that waits for the setup go on (see [`main_cmd`]).
    async fn release_command(&self, log: &Path) -> Result<(), RunError> {
        let argv = vec!["sh".into(), "-c".into(), format!(": > {SETUP_DONE}")];
        let why = match self.exec_to_end(argv, log).await {
            Ok(Some(0)) => return Ok(()),
            Ok(Some(code)) => format!("writing it exited with code {code}"),
            Ok(None) => "writing it was ended by a signal".into(),
            Err(e) => e,
        };
        Err(RunError::Start(format!(
            "the setup commands succeeded, but the command waits for {SETUP_DONE}, which could \
             not be written ({why}); the image needs a writable /tmp"
        )))
    }

    /// Runs `argv` in the container to its end, its output appended to `log`. Its exit code.
    async fn exec_to_end(&self, argv: Vec<String>, log: &Path) -> Result<Option<i32>, String> {
        let config = ExecConfig {
            cmd: Some(argv),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(&self.id, config)
            .await
            .map_err(|e| message(&e))?;
        let started = self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
            .map_err(|e| message(&e))?;
        if let StartExecResults::Attached { mut output, .. } = started {
            let mut out = logs::open_append(log).map_err(|e| e.to_string())?;
            while let Some(Ok(chunk)) = output.next().await {
                let _ = out.write_all(&chunk.into_bytes());
            }
        }
        // The output ends with the process; the engine may take a moment to record its code.
        for _ in 0..100 {
            let info = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| message(&e))?;
            if info.running != Some(true) {
                return Ok(info.exit_code.map(|c| c as i32));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("it did not end after its output did".into())
    }

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

/// What the engine said, without the client's wrapping.
pub(crate) fn message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        DockerError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
