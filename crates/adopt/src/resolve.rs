//! Filling in adopted environments each time a manifest is loaded: the environment the `from`
//! file describes, with the keys written in `aienv.toml` on top.

use std::path::Path;

use aienv_core::{Environment, Manifest, ManifestError, Requirements};

/// Replaces every environment with a `from` by what its file says, overridden by the keys the
/// manifest gives. Errors point into the adopted file.
pub fn resolve_manifest(dir: &Path, mut m: Manifest) -> Result<Manifest, ManifestError> {
    for env in &mut m.environments {
        let Some(from) = env.from.clone() else {
            continue;
        };
        let derived = crate::adopt(dir, &from, &env.name)?.environment;
        if derived.kind != env.kind {
            return Err(ManifestError::whole_file(
                &dir.join(aienv_core::MANIFEST_FILE),
                format!(
                    "environment '{}': {from} describes a {} environment, but the manifest says kind = {:?}",
                    env.name,
                    derived.kind.as_str(),
                    env.kind.as_str()
                ),
            ));
        }
        *env = overlay(derived, env.clone());
    }
    Ok(m)
}

/// The files (relative to the workspace) that the manifest's environments are read from: a
/// change to one of them changes the manifest in effect.
pub fn followed_files(m: &Manifest) -> Vec<String> {
    let mut files: Vec<String> = m
        .environments
        .iter()
        .filter(|e| e.from.is_some())
        .flat_map(|e| {
            let from = e
                .from
                .as_deref()
                .map(|f| f.split('#').next().unwrap_or(f).to_string());
            let dockerfile = e.build.as_ref().map(|b| b.dockerfile.clone());
            let lock = e.python.as_ref().and_then(|p| p.lock.clone());
            from.into_iter().chain(dockerfile).chain(lock)
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

fn pick<T>(a: &mut Option<T>, b: Option<T>) {
    if b.is_some() {
        *a = b;
    }
}

/// `base` with every key `over` sets put on top. Lists replace lists (`setup`, `ports`,
/// `projects`); variables and tools merge by name.
fn overlay(base: Environment, over: Environment) -> Environment {
    let mut env = base;
    env.from = over.from;
    pick(&mut env.description, over.description);
    if !over.projects.is_empty() {
        env.projects = over.projects;
    }
    env.env.extend(over.env);
    env.requires = requirements(env.requires, over.requires);
    pick(&mut env.fallback, over.fallback);
    pick(&mut env.python, over.python);
    if !over.setup.is_empty() {
        env.setup = over.setup;
    }
    pick(&mut env.command, over.command);
    pick(&mut env.image, over.image);
    pick(&mut env.build, over.build);
    if !over.ports.is_empty() {
        env.ports = over.ports;
    }
    pick(&mut env.gpus, over.gpus);
    pick(&mut env.disk, over.disk);
    pick(&mut env.kernel, over.kernel);
    pick(&mut env.initrd, over.initrd);
    pick(&mut env.kernel_args, over.kernel_args);
    pick(&mut env.memory_gb, over.memory_gb);
    pick(&mut env.cpus, over.cpus);
    for t in over.tools {
        match env.tools.iter_mut().find(|x| x.name == t.name) {
            Some(x) => *x = t,
            None => env.tools.push(t),
        }
    }
    env
}

fn requirements(base: Requirements, over: Requirements) -> Requirements {
    Requirements {
        cpus: over.cpus.or(base.cpus),
        ram_gb: over.ram_gb.or(base.ram_gb),
        gpus: over.gpus.or(base.gpus),
        vram_gb: over.vram_gb.or(base.vram_gb),
        cuda: over.cuda.or(base.cuda),
        disk_gb: over.disk_gb.or(base.disk_gb),
    }
}
