//! Each fixture of `tests/fixtures/adopt/` proposed, and the proposal checked field by field:
//! what a user reads before accepting, and what the node will run.

use std::path::{Path, PathBuf};

use aienv_adopt::{Adopted, Proposal, propose, render, resolve_manifest};
use aienv_core::{EnvKind, FallbackWhen, manifest};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/adopt")
        .join(name)
}

fn proposal(name: &str) -> Proposal {
    let p = propose(&fixture(name));
    assert!(p.problems.is_empty(), "{name}: {:?}", p.problems);
    p
}

fn only(p: &Proposal) -> &Adopted {
    assert_eq!(p.environments.len(), 1, "{:#?}", p.environments);
    &p.environments[0]
}

fn mentions(list: &[String], what: &str) -> bool {
    list.iter().any(|l| l.contains(what))
}

/// The rendered manifest parses, and resolving it gives back the proposed environments.
fn round_trip(name: &str, p: &Proposal) {
    let dir = fixture(name);
    let text = render(&dir, p);
    let parsed = manifest::parse(&text, &dir.join("aienv.toml"))
        .unwrap_or_else(|e| panic!("{name}: the proposed manifest is invalid: {e}\n{text}"));
    let resolved = resolve_manifest(&dir, parsed).unwrap();
    let mut want: Vec<_> = p
        .environments
        .iter()
        .map(|a| a.environment.clone())
        .collect();
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(resolved.environments, want, "{name}:\n{text}");
}

#[test]
fn a_devcontainer_with_comments_a_build_with_args_ports_and_lifecycle_commands() {
    let p = proposal("devcontainer");
    let a = only(&p);
    let e = &a.environment;
    assert_eq!(e.name, "devcontainer");
    assert_eq!(e.kind, EnvKind::Container);
    assert_eq!(e.from.as_deref(), Some(".devcontainer/devcontainer.json"));
    assert_eq!(e.description.as_deref(), Some("Web dev"));
    let b = e.build.as_ref().expect("built from its Dockerfile");
    assert_eq!(
        b.dockerfile, ".devcontainer/Dockerfile",
        "relative to the json's folder"
    );
    assert_eq!(
        b.context_dir(),
        ".",
        "context `..` of .devcontainer/ is the workspace"
    );
    assert_eq!(b.args["GREETING"], "hello from the build");
    assert_eq!(e.ports, [8000]);
    assert_eq!(e.tools.len(), 1);
    assert_eq!(e.tools[0].name, "Web", "labelled by portsAttributes");
    assert_eq!(e.tools[0].port, Some(8000));
    assert!(e.tools[0].ready.as_ref().unwrap().optional);
    assert_eq!(e.env["APP_MODE"], "dev");
    assert_eq!(
        e.env["DATA"], "/workspace/site",
        "${{containerWorkspaceFolder}} expanded"
    );
    assert!(!e.env.contains_key("HOST_HOME"));
    assert_eq!(
        e.setup,
        [
            "sh -c 'cp /srv/greeting /workspace/site/greeting.txt'",
            "httpd -p 8000 -h /workspace/site"
        ],
        "postCreate (a list, quoted) then postStart"
    );
    assert_eq!(e.command.as_deref(), Some("while sleep 1000; do :; done"));
    assert_eq!(e.requires.cpus, Some(1));
    assert_eq!(e.requires.ram_gb, Some(1.0));
    assert_eq!(e.requires.gpus, Some(1));
    assert_eq!(
        e.fallback.as_ref().unwrap().when,
        FallbackWhen::NoGpu,
        "gpu: optional"
    );
    for what in [
        "db:5432",
        "localEnv",
        "postAttachCommand",
        "SYS_PTRACE",
        "features (ghcr.io/devcontainers/features/python:1)",
        "customizations",
        "mounts",
    ] {
        assert!(
            mentions(&a.unsupported, what),
            "{what} is not listed in {:#?}",
            a.unsupported
        );
    }
    assert_eq!(
        a.files,
        [
            ".devcontainer/devcontainer.json",
            ".devcontainer/Dockerfile"
        ]
    );
    round_trip("devcontainer", &p);
    let text = render(&fixture("devcontainer"), &p);
    assert!(
        text.contains("#   - mounts: extra mounts are not made"),
        "{text}"
    );
    assert!(
        text.contains("from = \".devcontainer/devcontainer.json\""),
        "{text}"
    );
    assert!(
        !text.contains("\nsetup =") && !text.contains("\nbuild ="),
        "the manifest points at the file, it does not copy it: {text}"
    );
}

#[test]
fn a_dockerfile_with_a_cuda_base_continuations_and_lower_case_expose() {
    let p = proposal("dockerfile");
    let e = &only(&p).environment;
    assert_eq!(e.name, "docker");
    assert_eq!(e.build.as_ref().unwrap().dockerfile, "Dockerfile");
    assert_eq!(e.build.as_ref().unwrap().context_dir(), "");
    assert_eq!(e.ports, [8888, 6006]);
    assert_eq!(
        e.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["port 8888", "port 6006"]
    );
    assert_eq!(e.gpus.as_deref(), Some("all"));
    assert_eq!(e.requires.gpus, Some(1));
    assert!(
        e.fallback.is_some(),
        "runs without a GPU where there is none"
    );
    assert_eq!(e.command, None, "the image's CMD runs");
    round_trip("dockerfile", &p);
}

#[test]
fn a_compose_file_with_three_services_becomes_three_environments() {
    let p = proposal("compose");
    let names: Vec<&str> = p
        .environments
        .iter()
        .map(|a| a.environment.name.as_str())
        .collect();
    assert_eq!(names, ["db", "web", "worker"]);
    let web = &p.environments[1];
    let e = &web.environment;
    assert_eq!(e.from.as_deref(), Some("compose.yaml#web"));
    let b = e.build.as_ref().unwrap();
    assert_eq!(
        (b.dockerfile.as_str(), b.context_dir().as_str()),
        ("web/Dockerfile.dev", "web")
    );
    assert_eq!(b.args["PYTHON_VERSION"], "3.11", "list-form args");
    assert_eq!(
        e.ports,
        [80, 9000],
        "the container side of 127.0.0.1:8080:80, and 9000"
    );
    assert_eq!(e.env["DB_URL"], "postgres://db:5432/app");
    assert!(mentions(&web.unsupported, "depends_on"));
    assert!(mentions(&web.notes, "without compose's network"));
    assert_eq!(web.files, ["compose.yaml", "web/Dockerfile.dev"]);

    let db = &p.environments[0];
    assert_eq!(db.environment.image.as_deref(), Some("postgres:16"));
    assert_eq!(
        db.environment.env["POSTGRES_PASSWORD"], "example",
        "map-form environment"
    );
    assert!(mentions(&db.unsupported, "volumes"));
    assert!(
        mentions(&db.unsupported, "container_name"),
        "{:?}",
        db.unsupported
    );
    assert!(mentions(&db.unsupported, "restart"), "{:?}", db.unsupported);

    let w = &p.environments[2].environment;
    assert_eq!(
        w.command.as_deref(),
        Some("python -m worker --queue 'gpu jobs'")
    );
    assert_eq!(w.gpus.as_deref(), Some("1"));
    assert_eq!(w.requires.gpus, Some(1));
    assert_eq!(w.cpus, Some(2), "1.5 CPUs round up");
    assert_eq!(w.memory_gb, Some(2.0));
    round_trip("compose", &p);
}

#[test]
fn a_conda_environment_file_with_pip_dependencies_and_cuda() {
    let p = proposal("conda");
    let a = only(&p);
    let e = &a.environment;
    assert_eq!(e.kind, EnvKind::Process);
    let py = e.python.as_ref().unwrap();
    assert_eq!(py.conda.as_deref(), Some("environment.yml"));
    assert_eq!(py.version.as_deref(), Some("3.11"));
    let tools: Vec<&str> = e.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["JupyterLab", "TensorBoard"], "from the pip section");
    assert_eq!(e.requires.gpus, Some(1), "pytorch-cuda");
    assert_eq!(e.fallback.as_ref().unwrap().env["CUDA_VISIBLE_DEVICES"], "");
    assert!(mentions(&a.notes, "micromamba"));
    round_trip("conda", &p);
}

#[test]
fn a_pixi_manifest_with_tasks_and_a_cuda_requirement() {
    let p = proposal("pixi");
    let a = only(&p);
    let py = a.environment.python.as_ref().unwrap();
    assert_eq!(py.pixi.as_deref(), Some("pixi.toml"));
    assert_eq!(py.version.as_deref(), Some("3.12"));
    assert_eq!(
        a.environment.tools[0].name, "JupyterLab",
        "from pypi-dependencies"
    );
    assert_eq!(a.environment.requires.gpus, Some(1));
    assert!(mentions(&a.notes, "pixi run TASK"));
    round_trip("pixi", &p);
}

#[test]
fn a_pyproject_with_optional_groups_and_a_notebooks_folder() {
    let p = proposal("pyproject");
    let a = only(&p);
    let e = &a.environment;
    let py = e.python.as_ref().unwrap();
    assert_eq!(py.requirements.as_deref(), Some("pyproject.toml"));
    assert_eq!(py.version.as_deref(), Some("3.10"));
    assert_eq!(
        py.extras,
        ["notebook"],
        "the group that brings JupyterLab is installed"
    );
    assert_eq!(e.tools.len(), 1);
    assert_eq!(e.tools[0].name, "JupyterLab");
    assert_eq!(
        e.description.as_deref(),
        Some("Fine-tunes a small text classifier")
    );
    assert!(mentions(
        &a.notes,
        "optional dependencies gpu are not installed"
    ));
    assert!(mentions(&a.notes, "dependency groups (PEP 735) dev"));
    assert!(mentions(&a.notes, "scripts classify"));
    round_trip("pyproject", &p);
}

#[test]
fn requirements_files_with_includes_and_a_dev_variant() {
    let p = proposal("requirements");
    let a = only(&p);
    assert_eq!(
        a.environment
            .python
            .as_ref()
            .unwrap()
            .requirements
            .as_deref(),
        Some("requirements.txt")
    );
    assert_eq!(a.environment.tools[0].name, "TensorBoard");
    assert!(mentions(&a.notes, "-r requirements-base.txt"));
    assert!(mentions(
        &p.notes,
        "requirements-base.txt, requirements-dev.txt"
    ));
    round_trip("requirements", &p);
}

#[test]
fn a_folder_of_notebooks_gets_jupyterlab() {
    let p = proposal("notebooks");
    let a = only(&p);
    assert_eq!(a.environment.name, "notebooks");
    assert_eq!(
        a.environment.from, None,
        "no file to follow: the tool is written out"
    );
    assert_eq!(a.environment.tools[0].name, "JupyterLab");
    let text = render(&fixture("notebooks"), &p);
    assert!(text.contains("[[environment.notebooks.tool]]"), "{text}");
    round_trip("notebooks", &p);
}
