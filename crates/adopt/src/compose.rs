//! One service of a `compose.yaml` to a container environment. A compose file with several
//! services becomes one environment per service (`from = "compose.yaml#SERVICE"`); they run as
//! separate containers without the network compose would give them, which the proposal says.

use aienv_core::{EnvKind, Environment, ImageBuild, ManifestError};
use serde_json::Value;

use crate::keys::Keys;
use crate::source::Source;
use crate::{Adopted, port_tool};

/// The service names of a compose file, in the file's order.
pub(crate) fn services(src: &Source) -> Result<Vec<String>, ManifestError> {
    let root = src.yaml()?;
    match root.get("services") {
        Some(Value::Object(m)) if !m.is_empty() => Ok(m.keys().cloned().collect()),
        _ => Err(src.error_at(0, format!("{} has no `services`", src.rel))),
    }
}

pub(crate) fn adopt(
    src: &Source,
    service: Option<&str>,
    name: &str,
) -> Result<Adopted, ManifestError> {
    let root = src.yaml()?;
    let all = services(src)?;
    let service = match service {
        Some(s) if all.iter().any(|x| x == s) => s.to_string(),
        Some(s) => {
            return Err(src.key_error(
                "services",
                format!(
                    "there is no service {s:?}; the services are {}",
                    all.join(", ")
                ),
            ));
        }
        None if all.len() == 1 => all[0].clone(),
        None => {
            return Err(src.key_error(
                "services",
                format!(
                    "it has {} services ({}); name one: `from = \"{}#SERVICE\"`",
                    all.len(),
                    all.join(", "),
                    src.rel
                ),
            ));
        }
    };
    let k = Keys::of(
        src,
        &root["services"][&service],
        &format!("service {service}"),
    )?;
    let mut env = Environment::new(name, EnvKind::Container);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Container), &src.rel);
    env.image = k.str("image")?;
    match k.get("build") {
        None => {}
        Some(Value::String(ctx)) => {
            let context = src.beside("build", ctx)?;
            env.build = Some(ImageBuild {
                dockerfile: join(&context, "Dockerfile"),
                context: Some(dot(context)),
                args: Default::default(),
                target: None,
            });
        }
        Some(b) => {
            let b = Keys::of(src, b, "build")?;
            let context = src.beside("build", &b.str("context")?.unwrap_or_else(|| ".".into()))?;
            let dockerfile = b.str("dockerfile")?.unwrap_or_else(|| "Dockerfile".into());
            let dockerfile =
                crate::source::normalise(std::path::Path::new(&join(&context, &dockerfile)))
                    .ok_or_else(|| {
                        src.key_error("dockerfile", "leads outside the workspace".into())
                    })?;
            env.build = Some(ImageBuild {
                dockerfile,
                context: Some(dot(context)),
                args: b.vars("args")?.into_iter().collect(),
                target: b.str("target")?,
            });
            for key in b.unused() {
                a.unsupported.push(format!(
                    "services.{service}.build.{key}: not passed to the build"
                ));
            }
        }
    }
    if let Some(b) = &env.build {
        a.files.push(b.dockerfile.clone());
    }
    if env.image.is_none() && env.build.is_none() {
        return Err(src.key_error(
            &service,
            format!("service {service} has neither `image` nor `build`"),
        ));
    }
    for p in ports(src, k.get("ports"))? {
        if !env.ports.contains(&p) {
            env.ports.push(p);
            env.tools.push(port_tool(format!("port {p}"), p));
        }
    }
    env.env.extend(k.vars("environment")?);
    env.command = match k.get("command") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => Some(
            k.strings("command")?
                .iter()
                .map(|w| crate::quote(w))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    };
    if let Some(g) = k.get("gpus") {
        env.gpus = Some(if g.as_str() == Some("all") {
            "all".into()
        } else {
            g.to_string()
        });
    }
    if let Some(deploy) = k.keys("deploy")? {
        resources(src, &deploy, &mut env)?;
    }
    if all.len() > 1 {
        a.notes.push(format!(
            "{} has {} services; each runs as its own environment, without compose's network \
             (services that call each other by name will not find each other)",
            src.rel,
            all.len()
        ));
    }
    for key in k.unused() {
        let what = match key.as_str() {
            "volumes" => "only the workspace is mounted (at /workspace)",
            "env_file" => "variables from files are not read; set them in aienv.toml",
            "depends_on" | "links" | "networks" => "services are started one at a time, by you",
            "healthcheck" => "readiness is checked on the published ports",
            "container_name" => "aienv names each run's container aienv-RUN",
            "restart" => "a run that ends is not restarted; start it again",
            _ => "not supported",
        };
        a.unsupported
            .push(format!("services.{service}.{key}: {what}"));
    }
    a.environment = env;
    Ok(a)
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

fn dot(context: String) -> String {
    if context.is_empty() {
        ".".into()
    } else {
        context
    }
}

/// The container side of each published port: `"8080:80"`, `"127.0.0.1:8080:80/tcp"`, `"80"`,
/// `80`, or `{ target: 80, published: 8080 }`.
fn ports(src: &Source, v: Option<&Value>) -> Result<Vec<u16>, ManifestError> {
    let Some(Value::Array(list)) = v else {
        return Ok(Vec::new());
    };
    let bad = |p: &Value| src.key_error("ports", format!("cannot read the port {p}"));
    list.iter()
        .map(|p| match p {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| bad(p)),
            Value::String(s) => {
                let inside = s.rsplit(':').next().unwrap_or(s);
                let inside = inside.split('/').next().unwrap_or(inside);
                // A range ("8000-8001") publishes its first port.
                inside
                    .split('-')
                    .next()
                    .unwrap_or(inside)
                    .parse()
                    .map_err(|_| bad(p))
            }
            Value::Object(o) => o
                .get("target")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| bad(p)),
            _ => Err(bad(p)),
        })
        .collect()
}

/// `deploy.resources`: limits become the container's, a GPU reservation asks for GPUs.
fn resources(src: &Source, deploy: &Keys<'_>, env: &mut Environment) -> Result<(), ManifestError> {
    let Some(r) = deploy.keys("resources")? else {
        return Ok(());
    };
    if let Some(limits) = r.keys("limits")? {
        env.cpus = limits
            .str("cpus")?
            .and_then(|c| c.parse::<f64>().ok())
            .map(|c| c.ceil() as u32);
        env.memory_gb = limits.str("memory")?.and_then(|m| memory(&m));
    }
    if let Some(res) = r.keys("reservations")?
        && let Some(Value::Array(devices)) = res.get("devices")
    {
        for d in devices {
            let is_gpu = d["capabilities"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == "gpu"));
            if !is_gpu {
                continue;
            }
            let count = match &d["count"] {
                Value::Number(n) => n.as_u64().map(|n| n as u32),
                Value::String(s) if s == "all" => None,
                _ => Some(1),
            };
            env.gpus = Some(count.map_or("all".into(), |c| c.to_string()));
            env.requires.gpus = Some(count.unwrap_or(1));
        }
    }
    let _ = src;
    Ok(())
}

/// Compose memory sizes: "512M", "2g", "1gb", bytes as a number.
fn memory(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: f64 = digits.parse().ok()?;
    let gb = match s[digits.len()..].trim_end_matches('b') {
        "g" => n,
        "m" => n / 1024.0,
        "k" => n / (1024.0 * 1024.0),
        "" => n / (1u64 << 30) as f64,
        _ => return None,
    };
    (gb > 0.0).then_some(gb)
}
