//! The rules serde cannot express: names, uniqueness, references between tables, paths that must
//! stay inside the workspace, and which keys apply to which kind of environment.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use toml::Spanned;

use super::ManifestError;
use super::raw::{RawEnvironment, RawManifest, RawProject, RawTool};
use crate::model::{
    EnvKind, Environment, Manifest, Project, PythonSetup, Sharing, Tool, WorkspaceInfo,
};

/// Placeholders a tool's command and URL may use; the runtime fills them in.
pub const TOOL_PLACEHOLDERS: &[&str] = &["host", "port", "token", "workspace"];

pub(super) fn validate(
    raw: RawManifest,
    text: &str,
    file: &Path,
) -> Result<Manifest, ManifestError> {
    let v = Validator { text, file };
    let Some(ws) = raw.workspace else {
        return Err(v.at(
            0,
            "missing [workspace] table: add `[workspace]` with `name = \"...\"`".into(),
        ));
    };
    let ws_span = ws.span().start;
    let ws = ws.into_inner();
    let Some(name) = ws.name else {
        return Err(v.at(ws_span, "[workspace] needs a `name`".into()));
    };
    v.name("workspace name", &name)?;

    let mut shared_envs = Vec::new();
    let sharing = match raw.sharing {
        None => Sharing::default(),
        Some(s) => {
            for pattern in s.exclude.iter().chain(&s.include) {
                v.relative_path("sharing pattern", pattern)?;
            }
            shared_envs = s.environments;
            Sharing {
                enabled: s.enabled,
                access: s.access,
                exclude: s.exclude.into_iter().map(Spanned::into_inner).collect(),
                include: s.include.into_iter().map(Spanned::into_inner).collect(),
                environments: shared_envs.iter().map(|e| e.get_ref().clone()).collect(),
                python_envs: s.python_envs,
            }
        }
    };

    let mut projects = Vec::with_capacity(raw.project.len());
    let mut project_names = BTreeSet::new();
    for p in raw.project {
        let at = p.get_ref().name.span().start;
        let p = v.project(p)?;
        if projects.iter().any(|q: &Project| q.name == p.name) {
            return Err(v.at(
                at,
                format!(
                    "two projects are named {:?}; project names must be unique",
                    p.name
                ),
            ));
        }
        projects.push(p);
    }
    for p in &projects {
        project_names.insert(p.name.as_str());
    }

    let mut environments = Vec::with_capacity(raw.environment.len());
    for (name, env) in raw.environment {
        environments.push(v.environment(name, env, &project_names)?);
    }

    for e in &shared_envs {
        if !environments
            .iter()
            .any(|env: &Environment| &env.name == e.get_ref())
        {
            let known: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
            return Err(v.at(
                e.span().start,
                format!(
                    "[sharing] environments names {:?}, which is not an environment here (known: {})",
                    e.get_ref(),
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ),
            ));
        }
    }

    Ok(Manifest {
        workspace: WorkspaceInfo {
            name: name.into_inner(),
            description: ws.description,
        },
        sharing,
        projects,
        environments,
    })
}

struct Validator<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Validator<'_> {
    fn at(&self, at: usize, message: String) -> ManifestError {
        ManifestError::at(self.file, self.text, at, message)
    }

    /// Names are used in URLs, paths and commands: keep them to a safe, portable set.
    fn name(&self, what: &str, name: &Spanned<String>) -> Result<(), ManifestError> {
        match name_problem(name.get_ref()) {
            None => Ok(()),
            Some(why) => Err(self.at(
                name.span().start,
                format!("invalid {what} {:?}: {why}", name.get_ref()),
            )),
        }
    }

    /// A path relative to the workspace root that does not climb out of it.
    fn relative_path(&self, what: &str, path: &Spanned<String>) -> Result<(), ManifestError> {
        match path_problem(path.get_ref()) {
            None => Ok(()),
            Some(why) => Err(self.at(
                path.span().start,
                format!("{what} {:?} {why}", path.get_ref()),
            )),
        }
    }

    fn project(&self, p: Spanned<RawProject>) -> Result<Project, ManifestError> {
        let p = p.into_inner();
        self.name("project name", &p.name)?;
        if let Some(path) = &p.path {
            self.relative_path("project path", path)?;
        }
        Ok(Project {
            name: p.name.into_inner(),
            path: p.path.map(Spanned::into_inner),
            description: p.description,
            git: p.git,
        })
    }

    fn environment(
        &self,
        name: String,
        env: Spanned<RawEnvironment>,
        projects: &BTreeSet<&str>,
    ) -> Result<Environment, ManifestError> {
        let at = env.span().start;
        if let Some(why) = name_problem(&name) {
            return Err(self.at(at, format!("invalid environment name {name:?}: {why}")));
        }
        let e = env.into_inner();
        let ctx = format!("environment '{name}'");
        for p in &e.projects {
            if !projects.contains(p.get_ref().as_str()) {
                let known = if projects.is_empty() {
                    "this manifest declares no [[project]]".to_string()
                } else {
                    format!(
                        "known projects: {}",
                        projects.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(self.at(
                    p.span().start,
                    format!("{ctx} uses unknown project {:?} ({known})", p.get_ref()),
                ));
            }
        }
        // Which keys make sense for which kind: a key that would be silently ignored is an error.
        self.only_for(
            &ctx,
            e.kind,
            "python",
            e.python.as_ref().map(|s| s.span().start),
            &[EnvKind::Process],
        )?;
        self.only_for(
            &ctx,
            e.kind,
            "image",
            e.image.as_ref().map(|s| s.span().start),
            &[EnvKind::Container],
        )?;
        self.only_for(
            &ctx,
            e.kind,
            "build",
            e.build.as_ref().map(|s| s.span().start),
            &[EnvKind::Container],
        )?;
        for output in &e.outputs {
            self.relative_path("output", output)?;
        }
        for model in &e.models {
            let (repo, rev) = model
                .get_ref()
                .split_once('@')
                .unwrap_or((model.get_ref(), "main"));
            let ok = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            let good = repo.split_once('/').is_some_and(|(o, n)| ok(o) && ok(n))
                && !rev.is_empty()
                && !rev.contains(char::is_whitespace);
            if !good {
                return Err(self.at(
                    model.span().start,
                    format!(
                        "model {:?} is not ORG/NAME or ORG/NAME@REVISION (a Hugging Face repo id)",
                        model.get_ref()
                    ),
                ));
            }
        }
        self.only_for(
            &ctx,
            e.kind,
            "setup",
            e.setup.as_ref().map(|s| s.span().start),
            &[EnvKind::Process, EnvKind::Container],
        )?;
        self.only_for(
            &ctx,
            e.kind,
            "gpus",
            e.gpus.as_ref().map(|s| s.span().start),
            &[EnvKind::Container],
        )?;
        for (key, at) in [
            ("disk", e.disk.as_ref().map(|s| s.span().start)),
            ("kernel", e.kernel.as_ref().map(|s| s.span().start)),
            ("initrd", e.initrd.as_ref().map(|s| s.span().start)),
            (
                "kernel_args",
                e.kernel_args.as_ref().map(|s| s.span().start),
            ),
        ] {
            self.only_for(&ctx, e.kind, key, at, &[EnvKind::Vm])?;
        }
        let limits = [EnvKind::Container, EnvKind::Vm];
        self.only_for(
            &ctx,
            e.kind,
            "ports",
            e.ports.as_ref().map(|s| s.span().start),
            &limits,
        )?;
        self.only_for(
            &ctx,
            e.kind,
            "memory_gb",
            e.memory_gb.as_ref().map(|s| s.span().start),
            &limits,
        )?;
        self.only_for(
            &ctx,
            e.kind,
            "cpus",
            e.cpus.as_ref().map(|s| s.span().start),
            &limits,
        )?;
        match e.kind {
            // An adopted environment gets its image from its source, checked once it is read.
            EnvKind::Container if e.image.is_none() && e.build.is_none() && e.from.is_none() => {
                return Err(self.at(
                    at,
                    format!(
                        "{ctx} is a container and needs `image = \"...\"` \
                         (or `build = {{ dockerfile = \"Dockerfile\" }}`)"
                    ),
                ));
            }
            EnvKind::Vm if e.disk.is_none() && e.kernel.is_none() => {
                return Err(self.at(
                    at,
                    format!(
                        "{ctx} is a vm and needs `disk = \"path/to/image.qcow2\"` \
                         (or `kernel = \"path/to/vmlinuz\"` to boot a kernel directly)"
                    ),
                ));
            }
            _ => {}
        }
        if let Some(from) = &e.from {
            let file = from.get_ref().split('#').next().unwrap_or_default();
            if let Some(why) = path_problem(file) {
                return Err(self.at(from.span().start, format!("{ctx}: from {file:?} {why}")));
            }
        }
        if let Some(build) = &e.build {
            let b = build.get_ref();
            for (key, file) in [
                ("dockerfile", Some(&b.dockerfile)),
                ("context", b.context.as_ref()),
            ] {
                if let Some(why) = file.and_then(|f| path_problem(f)) {
                    return Err(self.at(
                        build.span().start,
                        format!(
                            "{ctx}: build.{key} {:?} {why}",
                            file.unwrap_or(&String::new())
                        ),
                    ));
                }
            }
        }
        if let Some(python) = &e.python {
            let py = python.get_ref();
            let sources = [&py.requirements, &py.lock, &py.conda, &py.pixi];
            if sources.iter().filter(|s| s.is_some()).count() > 1
                && !(py.conda.is_none() && py.pixi.is_none())
            {
                return Err(self.at(
                    python.span().start,
                    format!("{ctx}: python takes one of `conda`, `pixi`, or `requirements`/`lock`"),
                ));
            }
            if let Some(why) = variants_problem(py) {
                return Err(self.at(python.span().start, format!("{ctx}: {why}")));
            }
            for file in py.files() {
                if let Some(why) = path_problem(file) {
                    return Err(self.at(
                        python.span().start,
                        format!("{ctx}: python file {file:?} {why}"),
                    ));
                }
            }
        }
        for (key, path) in [
            ("disk", &e.disk),
            ("kernel", &e.kernel),
            ("initrd", &e.initrd),
        ] {
            if let Some(path) = path {
                self.relative_path(&format!("{ctx}: {key}"), path)?;
            }
        }
        if e.kernel_args.is_some() && e.kernel.is_none() {
            let at = e.kernel_args.as_ref().map_or(at, |s| s.span().start);
            return Err(self.at(at, format!("{ctx}: kernel_args needs `kernel`")));
        }
        if e.initrd.is_some() && e.kernel.is_none() {
            let at = e.initrd.as_ref().map_or(at, |s| s.span().start);
            return Err(self.at(at, format!("{ctx}: initrd needs `kernel`")));
        }
        if let Some(gpus) = &e.gpus
            && gpus.get_ref() != "all"
            && gpus.get_ref().parse::<u32>().is_err()
        {
            return Err(self.at(
                gpus.span().start,
                format!("{ctx}: gpus must be \"all\" or a count such as \"1\""),
            ));
        }
        if let Some(m) = &e.memory_gb
            && !positive(*m.get_ref())
        {
            return Err(self.at(
                m.span().start,
                format!("{ctx}: memory_gb must be more than 0"),
            ));
        }
        if let Some(r) = &e.requires {
            let req = r.get_ref();
            let sizes = [
                ("ram_gb", req.ram_gb),
                ("vram_gb", req.vram_gb),
                ("disk_gb", req.disk_gb),
            ];
            if let Some((key, _)) = sizes.iter().find(|(_, v)| v.is_some_and(|v| !positive(v))) {
                return Err(self.at(
                    r.span().start,
                    format!("{ctx}: requires.{key} must be more than 0"),
                ));
            }
        }
        let mut tools = Vec::with_capacity(e.tool.len());
        let mut tool_names = BTreeSet::new();
        for t in e.tool {
            let at = t.span().start;
            let tool = self.tool(&ctx, t.into_inner())?;
            if !tool_names.insert(tool.name.clone()) {
                return Err(self.at(
                    at,
                    format!(
                        "{ctx} has two tools named {:?}; tool names must be unique",
                        tool.name
                    ),
                ));
            }
            tools.push(tool);
        }
        Ok(Environment {
            name,
            kind: e.kind,
            from: e.from.map(Spanned::into_inner),
            description: e.description,
            projects: e.projects.into_iter().map(Spanned::into_inner).collect(),
            env: e.env,
            requires: e.requires.map(Spanned::into_inner).unwrap_or_default(),
            fallback: e.fallback,
            python: e.python.map(Spanned::into_inner),
            setup: e.setup.map(Spanned::into_inner).unwrap_or_default(),
            outputs: e.outputs.into_iter().map(Spanned::into_inner).collect(),
            models: e.models.into_iter().map(Spanned::into_inner).collect(),
            command: e.command,
            image: e.image.map(Spanned::into_inner),
            build: e.build.map(Spanned::into_inner),
            ports: e.ports.map(Spanned::into_inner).unwrap_or_default(),
            gpus: e.gpus.map(Spanned::into_inner),
            disk: e.disk.map(Spanned::into_inner),
            kernel: e.kernel.map(Spanned::into_inner),
            initrd: e.initrd.map(Spanned::into_inner),
            kernel_args: e.kernel_args.map(Spanned::into_inner),
            memory_gb: e.memory_gb.map(Spanned::into_inner),
            cpus: e.cpus.map(Spanned::into_inner),
            tools,
        })
    }

    fn only_for(
        &self,
        ctx: &str,
        kind: EnvKind,
        key: &str,
        at: Option<usize>,
        kinds: &[EnvKind],
    ) -> Result<(), ManifestError> {
        match at {
            Some(at) if !kinds.contains(&kind) => {
                let allowed = kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ");
                Err(self.at(
                    at,
                    format!(
                        "{ctx} is a {} environment; `{key}` applies only to {allowed} environments",
                        kind.as_str()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn tool(&self, ctx: &str, t: RawTool) -> Result<Tool, ManifestError> {
        if t.name.get_ref().trim().is_empty() {
            return Err(self.at(
                t.name.span().start,
                format!("{ctx}: a tool needs a non-empty name"),
            ));
        }
        for template in [&t.command, &t.url].into_iter().flatten() {
            if let Some(unknown) = unknown_placeholder(template.get_ref()) {
                return Err(self.at(
                    template.span().start,
                    format!(
                        "{ctx}, tool {:?}: unknown placeholder {{{unknown}}}; known: {}",
                        t.name.get_ref(),
                        TOOL_PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(Tool {
            name: t.name.into_inner(),
            command: t.command.map(Spanned::into_inner),
            port: t.port,
            url: t.url.map(Spanned::into_inner),
            ready: t.ready,
        })
    }
}

/// What is wrong with `python.variant`, if anything: each variant has a unique name, one file,
/// and at most one of `cuda`/`rocm` written as a version the runtime can compare.
fn variants_problem(py: &PythonSetup) -> Option<String> {
    if !py.variants.is_empty() && (py.conda.is_some() || py.pixi.is_some()) {
        return Some(
            "python.variant applies to `requirements`/`lock` set-ups, not to conda or pixi; \
             remove the variants or give `python` a requirements file"
                .into(),
        );
    }
    let mut names = BTreeSet::new();
    for v in &py.variants {
        if let Some(why) = name_problem(&v.name) {
            return Some(format!("invalid python variant name {:?}: {why}", v.name));
        }
        if !names.insert(v.name.as_str()) {
            return Some(format!(
                "two python variants are named {:?}; variant names must be unique",
                v.name
            ));
        }
        let what = format!("python variant {:?}", v.name);
        if v.cuda.is_some() && v.rocm.is_some() {
            return Some(format!(
                "{what} gives both `cuda` and `rocm`; a variant is for one kind of GPU, so split \
                 it into two variants"
            ));
        }
        for (key, version) in [("cuda", &v.cuda), ("rocm", &v.rocm)] {
            if let Some(version) = version.as_deref().filter(|s| !is_version(s)) {
                return Some(format!(
                    "{what}: {key} {version:?} is not a version; write numbers such as \"12.4\""
                ));
            }
        }
        match (&v.requirements, &v.lock) {
            (None, None) => {
                return Some(format!(
                    "{what} names no file; give it `requirements = \"...\"` or `lock = \"...\"`"
                ));
            }
            (Some(_), Some(_)) => {
                return Some(format!(
                    "{what} gives both `requirements` and `lock`; keep one"
                ));
            }
            _ => {}
        }
    }
    None
}

/// "12", "12.4", "6.0.2": numbers joined by dots, as the runtime compares them part by part.
fn is_version(s: &str) -> bool {
    s.split('.')
        .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// More than zero; `nan` (which TOML can spell) is not.
fn positive(v: f64) -> bool {
    v > 0.0
}

/// Why `name` is not a valid name, if it is not.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("a name cannot be empty"),
        _ if name.len() > 64 => Some("a name has at most 64 characters"),
        Some(c) if !c.is_ascii_alphanumeric() => Some("a name starts with a letter or digit"),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) => {
            Some("use letters, digits, '-', '_' and '.' only")
        }
        _ => None,
    }
}

/// Why `path` may not be used as a path inside the workspace, if it may not.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    let p = Path::new(path);
    if path.is_empty() {
        return Some("is empty");
    }
    let mut depth = 0i32;
    for c in p.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => {
                return Some("is absolute; use a path relative to the workspace");
            }
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Some(
                        "leads outside the workspace; keep it inside the workspace folder",
                    );
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
    }
    None
}

/// The first `{name}` in `template` that is not a known placeholder. Only `{identifier}` counts:
/// shell variables (`${HOME}`) and JSON (`{"a": 1}`) in a command are left alone.
fn unknown_placeholder(template: &str) -> Option<&str> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let shell = rest[..open].ends_with('$');
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        let ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ident && !shell && !TOOL_PLACEHOLDERS.contains(&name) {
            return Some(name);
        }
        rest = &after[close + 1..];
    }
    None
}
