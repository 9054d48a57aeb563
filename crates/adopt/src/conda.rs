//! conda/mamba's `environment.yml` to a process environment built from it. The interpreter
//! version comes from the `python=X.Y` dependency; CUDA packages ask for a GPU.

use aienv_core::{EnvKind, Environment, Fallback, FallbackWhen, ManifestError, PythonSetup};
use serde_json::Value;

use crate::Adopted;
use crate::keys::Keys;
use crate::source::Source;

pub(crate) fn adopt(src: &Source, name: &str) -> Result<Adopted, ManifestError> {
    let root = src.yaml()?;
    let k = Keys::of(src, &root, "environment.yml")?;
    let mut env = Environment::new(name, EnvKind::Process);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Process), &src.rel);
    // The conda tool reads these from the file itself (the environment is built at a prefix, so
    // its `name` is not used to find it).
    k.understood(&["name", "channels"]);
    let mut version = None;
    let mut packages = Vec::new();
    match k.get("dependencies") {
        None => {}
        Some(Value::Array(deps)) => {
            for d in deps {
                match d {
                    Value::String(s) => packages.push(s.clone()),
                    Value::Object(o) if o.contains_key("pip") => {
                        for p in o["pip"].as_array().into_iter().flatten() {
                            packages.extend(p.as_str().map(str::to_string));
                        }
                    }
                    other => a
                        .unsupported
                        .push(format!("dependency {other}: not understood")),
                }
            }
        }
        Some(_) => {
            return Err(src.key_error("dependencies", "`dependencies` must be a list".into()));
        }
    }
    for p in &packages {
        let (pkg, ver) = split_spec(p);
        if pkg == "python" && !ver.is_empty() {
            version = Some(
                ver.trim_start_matches(['=', '>', '<', '~'])
                    .split(['.', ','])
                    .take(2)
                    .collect::<Vec<_>>()
                    .join("."),
            );
        }
        if pkg.contains("cuda") || pkg == "cudatoolkit" {
            env.requires.gpus = Some(1);
            env.fallback = Some(Fallback {
                when: FallbackWhen::NoGpu,
                env: [("CUDA_VISIBLE_DEVICES".to_string(), String::new())].into(),
            });
        }
    }
    if env.requires.gpus.is_some() {
        a.notes.push("it installs CUDA packages: the environment asks for a GPU and runs on the CPU where there is none".into());
    }
    env.python = Some(PythonSetup {
        version,
        conda: Some(src.rel.clone()),
        ..Default::default()
    });
    env.tools = crate::python::tools_for(&packages);
    for key in k.unused() {
        a.unsupported.push(match key.as_str() {
            "prefix" => "prefix: the environment is built in the workspace's .aienv/conda/".into(),
            _ => format!("{key}: not supported"),
        });
    }
    a.notes
        .push("building it needs micromamba, mamba or conda on the machine that runs it".into());
    a.environment = env;
    Ok(a)
}

/// `numpy>=1.26` -> (`numpy`, `>=1.26`); `python=3.11` -> (`python`, `=3.11`).
pub(crate) fn split_spec(spec: &str) -> (String, &str) {
    let spec = spec.trim();
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = spec[..end].to_ascii_lowercase().replace('_', "-");
    // Extras (`pkg[gpu]`) are part of neither.
    let rest = spec[end..].trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').map_or("", |(_, r)| r),
        None => rest,
    };
    (name, rest.trim())
}
