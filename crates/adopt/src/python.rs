//! Python projects to process environments: `pyproject.toml` (PEP 621, uv, Poetry 2, with
//! optional dependency groups), `requirements*.txt`, `pixi.toml`. Tools are proposed from what
//! is installed: JupyterLab for jupyterlab/notebook, TensorBoard for tensorboard.

use std::path::Path;

use aienv_core::{EnvKind, Environment, ManifestError, PythonSetup, Readiness, Tool};
use serde_json::Value;

use crate::Adopted;
use crate::conda::split_spec;
use crate::source::Source;

pub(crate) fn requirements(src: &Source, name: &str) -> Result<Adopted, ManifestError> {
    let mut env = Environment::new(name, EnvKind::Process);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Process), &src.rel);
    let packages: Vec<String> = src
        .text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .map(str::to_string)
        .collect();
    for l in src
        .text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("-r ") || l.starts_with("-c "))
    {
        a.notes.push(format!(
            "{l}: the included file is read by the installer (keep it beside {})",
            src.rel
        ));
    }
    env.python = Some(PythonSetup {
        requirements: Some(src.rel.clone()),
        ..Default::default()
    });
    env.tools = tools_for(&packages);
    a.environment = env;
    Ok(a)
}

pub(crate) fn pyproject(dir: &Path, src: &Source, name: &str) -> Result<Adopted, ManifestError> {
    let root = src.toml()?;
    if root.pointer("/tool/pixi").is_some() {
        return pixi(src, name);
    }
    let mut env = Environment::new(name, EnvKind::Process);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Process), &src.rel);
    let Some(project) = root.get("project") else {
        let what = if root.pointer("/tool/poetry").is_some() {
            "a Poetry 1 project (dependencies only under [tool.poetry]): uv and pip read \
             [project]; run `poetry export -o requirements.txt` and adopt that file, or move to \
             Poetry 2's [project] table"
        } else {
            "it has no [project] table (PEP 621), so there are no dependencies to install"
        };
        return Err(src.error_at(0, format!("{}: {what}", src.rel)));
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut packages = strings(project.get("dependencies"));
    env.description = project
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let version = project
        .get("requires-python")
        .and_then(Value::as_str)
        .and_then(|r| {
            let v: String = r.chars().skip_while(|c| !c.is_ascii_digit()).collect();
            let parts: Vec<&str> = v.split(['.', ',', ' ']).take(2).collect();
            (parts.len() == 2 && parts.iter().all(|p| p.parse::<u32>().is_ok()))
                .then(|| parts.join("."))
        });
    let extras: Vec<String> = project
        .get("optional-dependencies")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    // An optional group that brings a tool (JupyterLab, TensorBoard) is installed, so that the
    // tool works; the others are left to the user.
    let mut with_tools = Vec::new();
    for e in &extras {
        let group = strings(project.pointer(&format!("/optional-dependencies/{e}")));
        if !tools_for(&group).is_empty() {
            with_tools.push(e.clone());
            packages.extend(group);
        }
    }
    let groups: Vec<String> = root
        .get("dependency-groups")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let folder = src.folder();
    let lock = if folder.is_empty() {
        "uv.lock".to_string()
    } else {
        format!("{folder}/uv.lock")
    };
    let chosen = with_tools.clone();
    env.python = Some(if dir.join(&lock).is_file() {
        a.files.push(lock.clone());
        a.notes.push(format!(
            "{lock} is there: the environment is built with `uv sync`, exactly as locked"
        ));
        PythonSetup {
            version,
            lock: Some(lock),
            ..Default::default()
        }
    } else {
        PythonSetup {
            version,
            requirements: Some(src.rel.clone()),
            extras: chosen,
            ..Default::default()
        }
    });
    let others: Vec<&String> = extras.iter().filter(|e| !with_tools.contains(e)).collect();
    if !with_tools.is_empty() {
        a.notes.push(format!(
            "optional dependencies {} are installed for the tools they bring",
            with_tools.join(", ")
        ));
    }
    if !others.is_empty() {
        a.notes.push(format!(
            "optional dependencies {} are not installed; list them in `python.extras` to install them",
            others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if !groups.is_empty() {
        a.notes.push(format!(
            "dependency groups (PEP 735) {} are installed only by `uv sync` from a lock",
            groups.join(", ")
        ));
    }
    if let Some(scripts) = project.get("scripts").and_then(Value::as_object) {
        a.notes.push(format!(
            "scripts {} need the project itself installed; set `command` to run one",
            scripts.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    env.tools = tools_for(&packages);
    a.environment = env;
    Ok(a)
}

pub(crate) fn pixi(src: &Source, name: &str) -> Result<Adopted, ManifestError> {
    let root = src.toml()?;
    let mut env = Environment::new(name, EnvKind::Process);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Process), &src.rel);
    let base = if src.rel.ends_with("pyproject.toml") {
        root.pointer("/tool/pixi").cloned().unwrap_or_default()
    } else {
        root
    };
    let deps = base.get("dependencies").and_then(Value::as_object);
    let mut packages: Vec<String> = deps
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(p) = base.get("pypi-dependencies").and_then(Value::as_object) {
        packages.extend(p.keys().cloned());
    }
    let version = deps
        .and_then(|d| d.get("python"))
        .and_then(Value::as_str)
        .map(|v| {
            v.trim_start_matches(['=', '>', '<', '~'])
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join(".")
        })
        .filter(|v| v.contains('.'));
    env.python = Some(PythonSetup {
        version,
        pixi: Some(src.rel.clone()),
        ..Default::default()
    });
    if let Some(tasks) = base.get("tasks").and_then(Value::as_object) {
        a.notes.push(format!(
            "pixi tasks {}: set `command = \"pixi run TASK\"` to start one",
            tasks.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if base.pointer("/system-requirements/cuda").is_some() {
        env.requires.gpus = Some(1);
    }
    a.notes
        .push("building it needs pixi on the machine that runs it".into());
    env.tools = tools_for(&packages);
    a.environment = env;
    Ok(a)
}

/// The tools a set of Python packages offers.
pub(crate) fn tools_for(packages: &[String]) -> Vec<Tool> {
    let has = |names: &[&str]| {
        packages.iter().any(|p| {
            let (name, _) = split_spec(p);
            names.contains(&name.as_str())
        })
    };
    let mut tools = Vec::new();
    if has(&["jupyterlab", "notebook", "jupyter"]) {
        tools.push(jupyterlab());
    }
    if has(&["tensorboard"]) {
        tools.push(Tool {
            name: "TensorBoard".into(),
            command: Some("tensorboard --logdir {workspace} --host {host} --port {port}".into()),
            port: None,
            url: Some("http://{host}:{port}/".into()),
            ready: Some(Readiness {
                http: Some("/".into()),
                log: None,
                timeout_s: Some(120),
                optional: false,
            }),
        });
    }
    tools
}

pub(crate) fn jupyterlab() -> Tool {
    Tool {
        name: "JupyterLab".into(),
        command: Some(
            "jupyter lab --allow-root --no-browser --ip {host} --port {port} --IdentityProvider.token={token} --ServerApp.root_dir={workspace}"
                .into(),
        ),
        port: None,
        url: Some("http://{host}:{port}/lab?token={token}".into()),
        ready: Some(Readiness { http: Some("/api".into()), log: None, timeout_s: Some(120), optional: false }),
    }
}
