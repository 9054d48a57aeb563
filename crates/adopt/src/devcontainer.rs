//! `devcontainer.json` (the Dev Container standard of VS Code, Codespaces and DevPod) to a
//! container environment.
//!
//! What maps: `image`; `build` (`dockerfile`, `context`, `args`, `target`; paths are relative to
//! the json file's folder) and the legacy `dockerFile`/`context`; `forwardPorts` and `appPort`
//! (tools, labelled by `portsAttributes`); `containerEnv` and `remoteEnv`; the lifecycle commands
//! `onCreateCommand`, `updateContentCommand`, `postCreateCommand`, `postStartCommand` (setup,
//! in that order: every aienv run starts a fresh container); `hostRequirements` (cpus, memory,
//! storage, gpu); `--gpus`, `--cpus` and `--memory` in `runArgs`; `overrideCommand`.
//! Everything else is reported as unsupported, with what it means.

use aienv_core::{EnvKind, Environment, Fallback, FallbackWhen, ImageBuild, ManifestError};
use serde_json::Value;

use crate::keys::Keys;
use crate::source::Source;
use crate::{Adopted, port_tool, quote};

/// What a dev container runs when the image's own command is overridden (the default): it
/// keeps the container up until it is stopped, as the Dev Containers CLI does.
pub(crate) const KEEP_ALIVE: &str = "while sleep 1000; do :; done";

pub(crate) fn adopt(src: &Source, name: &str) -> Result<Adopted, ManifestError> {
    let root = src.jsonc()?;
    let k = Keys::of(src, &root, "devcontainer.json")?;
    let mut env = Environment::new(name, EnvKind::Container);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Container), &src.rel);
    k.understood(&["$schema"]);
    env.description = k.str("name")?;
    env.image = k.str("image")?;

    // The build: `build.dockerfile` (or the legacy top-level `dockerFile`), relative to the json.
    let build = k.keys("build")?;
    let dockerfile = match &build {
        Some(b) => b.str("dockerfile")?.or(b.str("dockerFile")?),
        None => None,
    }
    .or(k.str("dockerFile")?);
    if let Some(df) = dockerfile {
        let context = match &build {
            Some(b) => b.str("context")?,
            None => None,
        }
        .or(k.str("context")?)
        .unwrap_or_else(|| ".".into());
        let dockerfile = src.beside("dockerfile", &df)?;
        let context = src.beside("context", &context)?;
        let mut image_build = ImageBuild {
            dockerfile: dockerfile.clone(),
            context: Some(if context.is_empty() {
                ".".into()
            } else {
                context
            }),
            args: Default::default(),
            target: None,
        };
        if let Some(b) = &build {
            image_build.args = b.vars("args")?.into_iter().collect();
            image_build.target = b.str("target")?;
            for key in b.unused() {
                a.unsupported
                    .push(format!("build.{key}: not passed to the image build"));
            }
        }
        a.files.push(dockerfile);
        env.build = Some(image_build);
    } else if let Some(b) = &build {
        for key in b.unused() {
            a.unsupported.push(format!(
                "build.{key}: ignored (the build has no dockerfile)"
            ));
        }
    }
    if env.image.is_none() && env.build.is_none() {
        if k.get("dockerComposeFile").is_some() {
            return Err(src.key_error(
                "dockerComposeFile",
                "a devcontainer that runs a compose file is not adopted as one environment; \
                 adopt the compose file itself (`from = \"compose.yaml#SERVICE\"`)"
                    .into(),
            ));
        }
        return Err(src.error_at(
            0,
            format!(
                "{} names neither an `image` nor a `build.dockerfile`",
                src.rel
            ),
        ));
    }

    // Ports: numbers are ports of the container; "service:port" strings point at other
    // containers of a compose setup, which a single environment does not have.
    let labels = k.keys("portsAttributes")?;
    let mut ports = Vec::new();
    for key in ["forwardPorts", "appPort"] {
        for p in k.strings(key)? {
            let port = p.parse::<u16>().ok().or_else(|| {
                // appPort may be "HOST:CONTAINER"; the container's side is what we publish.
                p.rsplit_once(':')
                    .filter(|_| key == "appPort")
                    .and_then(|(_, c)| c.parse().ok())
            });
            match port {
                Some(port) if !ports.contains(&port) => ports.push(port),
                Some(_) => {}
                None => a.unsupported.push(format!(
                    "{key} {p:?}: only ports of this container are published"
                )),
            }
        }
    }
    for port in &ports {
        let label = labels
            .as_ref()
            .and_then(|l| l.get(&port.to_string()))
            .and_then(|v| v.get("label"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("port {port}"), str::to_string);
        env.tools.push(port_tool(label, *port));
    }
    env.ports = ports;

    // Variables: both apply to what aienv starts in the container.
    for key in ["containerEnv", "remoteEnv"] {
        for (name, value) in k.vars(key)? {
            if value.contains("${localEnv:") || value.contains("${env:") {
                a.unsupported.push(format!(
                    "{key}.{name} = {value:?}: variables of the host are not expanded; set the value in aienv.toml"
                ));
                continue;
            }
            let value = value
                .replace(
                    "${containerWorkspaceFolder}",
                    aienv_core::CONTAINER_WORKSPACE,
                )
                .replace("${remoteEnv:PATH}", "$PATH")
                .replace("${containerEnv:PATH}", "$PATH");
            env.env.insert(name, value);
        }
    }

    // Lifecycle: all of them run at every start, because every start is a new container.
    for key in [
        "onCreateCommand",
        "updateContentCommand",
        "postCreateCommand",
        "postStartCommand",
    ] {
        let cmds = lifecycle(src, key, k.get(key))?;
        if cmds.len() > 1 && matches!(k.get(key), Some(Value::Object(_))) {
            a.notes.push(format!(
                "{key} runs its commands in parallel in VS Code; aienv runs them one after another"
            ));
        }
        env.setup.extend(cmds);
    }
    if k.get("postAttachCommand").is_some() {
        a.unsupported
            .push("postAttachCommand: aienv does not attach an editor; it is not run".into());
    }
    if k.get("initializeCommand").is_some() {
        a.unsupported.push(
            "initializeCommand: it would run on the host, which aienv never does for an adopted file; run it yourself"
                .into(),
        );
    }

    if let Some(h) = k.keys("hostRequirements")? {
        host_requirements(&h, &mut env, &mut a)?;
        for key in h.unused() {
            a.unsupported
                .push(format!("hostRequirements.{key}: not checked"));
        }
    }
    let run_args = k.strings("runArgs")?;
    run_args_into(&run_args, &mut env, &mut a);

    // The image's own command is replaced by a keep-alive, unless the file says not to.
    let override_command = k
        .get("overrideCommand")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if override_command {
        env.command = Some(KEEP_ALIVE.into());
    }
    if let Some(folder) = k.str("workspaceFolder")?
        && folder.trim_end_matches('/') != aienv_core::CONTAINER_WORKSPACE
    {
        a.unsupported.push(format!(
            "workspaceFolder {folder:?}: aienv mounts the workspace at {}",
            aienv_core::CONTAINER_WORKSPACE
        ));
    }
    k.understood(&["init"]);
    if k.get("features")
        .is_some_and(|f| f.as_object().is_some_and(|o| !o.is_empty()))
    {
        let names: Vec<&String> = root["features"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        a.unsupported.push(format!(
            "features ({}): Dev Container Features are not installed; add what they install to the Dockerfile",
            names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if k.get("customizations").is_some() {
        a.unsupported
            .push("customizations: editor settings, for the editor only".into());
    }
    for key in k.unused() {
        let what = match key.as_str() {
            "mounts" | "workspaceMount" => {
                "extra mounts are not made; only the workspace is mounted"
            }
            "remoteUser" | "containerUser" | "updateRemoteUserUID" => {
                "commands run as the image's user"
            }
            "privileged" | "capAdd" | "securityOpt" => "the container gets no extra privileges",
            "otherPortsAttributes" => "only the listed ports are published",
            _ => "not supported",
        };
        a.unsupported.push(format!("{key}: {what}"));
    }
    a.environment = env;
    Ok(a)
}

/// A lifecycle command: a string (run by a shell), a list (one command, no shell), or an object
/// of named commands.
fn lifecycle(src: &Source, key: &str, v: Option<&Value>) -> Result<Vec<String>, ManifestError> {
    let bad = || {
        src.key_error(
            key,
            format!("`{key}` must be a string, a list, or an object of commands"),
        )
    };
    let one = |v: &Value| -> Result<String, ManifestError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(quote).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(|parts| parts.join(" ")),
            _ => Err(bad()),
        }
    };
    match v {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => m.values().map(one).collect(),
        Some(v) => one(v).map(|c| vec![c]),
    }
}

fn host_requirements(
    h: &Keys<'_>,
    env: &mut Environment,
    a: &mut Adopted,
) -> Result<(), ManifestError> {
    if let Some(c) = h.get("cpus") {
        env.requires.cpus = c.as_u64().map(|c| c as u32);
    }
    env.requires.ram_gb = h.str("memory")?.as_deref().and_then(gigabytes);
    env.requires.disk_gb = h.str("storage")?.as_deref().and_then(gigabytes);
    match h.get("gpu") {
        Some(Value::Bool(true)) => {
            env.requires.gpus = Some(1);
            env.gpus = Some("all".into());
        }
        Some(Value::String(s)) if s == "optional" => {
            env.requires.gpus = Some(1);
            env.gpus = Some("all".into());
            env.fallback = Some(Fallback {
                when: FallbackWhen::NoGpu,
                env: Default::default(),
            });
            a.notes
                .push("the GPU is optional: without one the container starts without it".into());
        }
        Some(Value::Object(g)) => {
            env.requires.gpus = Some(g.get("cores").and_then(Value::as_u64).map_or(1, |_| 1));
            env.requires.vram_gb = g.get("memory").and_then(Value::as_str).and_then(gigabytes);
            env.gpus = Some("all".into());
        }
        _ => {}
    }
    Ok(())
}

/// "8gb", "512mb", "1.5tb" -> gigabytes.
fn gigabytes(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: f64 = digits.trim().parse().ok()?;
    let unit = &s[digits.len()..];
    let gb = match unit {
        "tb" | "t" => n * 1024.0,
        "gb" | "g" | "" => n,
        "mb" | "m" => n / 1024.0,
        "kb" | "k" => n / (1024.0 * 1024.0),
        _ => return None,
    };
    (gb > 0.0).then_some(gb)
}

/// `docker run` arguments aienv can honour: GPUs, CPUs, memory. Others are listed.
fn run_args_into(args: &[String], env: &mut Environment, a: &mut Adopted) {
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (args[i].as_str(), None),
        };
        let takes_value = matches!(flag, "--gpus" | "--cpus" | "--memory" | "-m");
        let value = if takes_value {
            inline.or_else(|| {
                i += 1;
                args.get(i).cloned()
            })
        } else {
            None
        };
        match (flag, value) {
            ("--gpus", Some(v)) => {
                env.gpus = Some(if v == "all" {
                    v
                } else {
                    v.trim_start_matches("count=").to_string()
                })
            }
            ("--cpus", Some(v)) => env.cpus = v.parse::<f64>().ok().map(|c| c.ceil() as u32),
            ("--memory" | "-m", Some(v)) => env.memory_gb = gigabytes(&v),
            _ => a
                .unsupported
                .push(format!("runArgs {:?}: not passed to the engine", args[i])),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::gigabytes;
    use crate::quote;

    #[test]
    fn sizes_and_quoting() {
        assert_eq!(gigabytes("8gb"), Some(8.0));
        assert_eq!(gigabytes("512MB"), Some(0.5));
        assert_eq!(gigabytes("lots"), None);
        assert_eq!(quote("pip"), "pip");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
