//! Manifest parsing, validation and edits: what a user writing `aienv.toml` sees.

use std::path::Path;

use super::*;
use crate::model::{Access, EnvKind, Environment, Project, Tool};

const FULL: &str = r#"
[workspace]
name = "llm-finetune"
description = "LoRA fine-tuning of a 7B model"

[sharing]
enabled = true
access = "token"                 # open | token | approve
exclude = [".venv/", "*.ckpt"]

[[project]]
name = "trainer"
path = "trainer"
git = { remote = "https://example.org/trainer.git", rev = "main" }

[environment.notebook]
kind = "process"
projects = ["trainer"]
python = { version = "3.11", requirements = "trainer/requirements.txt" }
requires = { gpus = 1, vram_gb = 16, ram_gb = 32 }
fallback = { when = "no-gpu", env = { CUDA_VISIBLE_DEVICES = "" } }

[[environment.notebook.tool]]
name = "JupyterLab"
command = "jupyter lab --no-browser --port {port} --IdentityProvider.token={token}"
url = "http://{host}:{port}/lab?token={token}"
ready = { http = "/api/status" }

[environment.serve]
kind = "container"
image = "vllm/vllm-openai:latest"
ports = [8000]
gpus = "all"

[environment.sandbox]
kind = "vm"
disk = "images/ubuntu.qcow2"
memory_gb = 8
cpus = 4
"#;

fn file() -> &'static Path {
    Path::new("/ws/aienv.toml")
}

fn err(text: &str) -> ManifestError {
    parse(text, file()).expect_err("this manifest must be refused")
}

/// The line and column (1-based) of the first occurrence of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn the_architecture_example_parses_into_the_model() {
    let m = parse(FULL, file()).unwrap();
    assert_eq!(m.workspace.name, "llm-finetune");
    assert!(m.sharing.enabled);
    assert_eq!(m.sharing.access, Access::Token);
    assert_eq!(m.sharing.exclude, [".venv/", "*.ckpt"]);
    assert_eq!(m.projects.len(), 1);
    assert_eq!(
        m.projects[0].git.as_ref().unwrap().rev.as_deref(),
        Some("main")
    );
    let names: Vec<_> = m.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["notebook", "sandbox", "serve"],
        "environments are listed by name"
    );
    let nb = m.environment("notebook").unwrap();
    assert_eq!(nb.kind, EnvKind::Process);
    assert_eq!(nb.requires.gpus, Some(1));
    assert_eq!(nb.requires.vram_gb, Some(16.0));
    assert_eq!(nb.tools[0].name, "JupyterLab");
    assert_eq!(
        nb.tools[0].ready.as_ref().unwrap().http.as_deref(),
        Some("/api/status")
    );
    assert_eq!(m.environment("serve").unwrap().ports, [8000]);
    assert_eq!(m.environment("sandbox").unwrap().cpus, Some(4));
}

#[test]
fn the_starter_manifest_parses_and_keeps_a_name_with_quotes() {
    let text = starter_manifest("my \"odd\" ws", Some("first try"));
    let err = parse(&text, file()).unwrap_err();
    assert!(
        err.message.contains("invalid workspace name"),
        "names are checked: {err}"
    );
    let text = starter_manifest("demo", Some("a \"quoted\" description"));
    let m = parse(&text, file()).unwrap();
    assert_eq!(m.workspace.name, "demo");
    assert_eq!(
        m.workspace.description.as_deref(),
        Some("a \"quoted\" description")
    );
    assert!(
        !m.sharing.enabled,
        "a new workspace is not shared until the owner says so"
    );
    assert!(
        text.contains("# [environment.notebook]"),
        "the starter shows what can be added"
    );
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let text = "[workspace]\nname = \"x\"\ndescription = \"unterminated\n";
    let e = err(text);
    assert_eq!(e.file, file());
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().starts_with("/ws/aienv.toml:3:"), "{e}");
}

#[test]
fn an_unknown_key_is_refused_at_its_position_with_the_keys_that_are_known() {
    let text =
        "[workspace]\nname = \"x\"\n\n[environment.a]\nkind = \"process\"\nimgae = \"typo\"\n";
    let e = err(text);
    assert_eq!((e.line, e.column), position_of(text, "imgae"), "{e}");
    assert!(
        e.message.contains("unknown field `imgae`") && e.message.contains("image"),
        "{e}"
    );
}

#[test]
fn an_unknown_kind_or_access_lists_the_choices() {
    let e = err("[workspace]\nname = \"x\"\n[environment.a]\nkind = \"lambda\"\n");
    assert_eq!(e.line, 4);
    assert!(
        e.message.contains("process")
            && e.message.contains("container")
            && e.message.contains("vm"),
        "{e}"
    );
    let e = err("[workspace]\nname = \"x\"\n[sharing]\naccess = \"public\"\n");
    assert!(
        e.message.contains("open") && e.message.contains("approve"),
        "{e}"
    );
}

#[test]
fn a_missing_workspace_table_or_name_is_explained() {
    let e = err("[sharing]\nenabled = true\n");
    assert!(e.message.contains("missing [workspace]"), "{e}");
    let e = err("[workspace]\ndescription = \"no name\"\n");
    assert!(e.message.contains("needs a `name`"), "{e}");
}

#[test]
fn duplicate_names_are_refused_at_the_second_one() {
    let text = "[workspace]\nname = \"x\"\n[[project]]\nname = \"a\"\n[[project]]\nname = \"a\"\n";
    let e = err(text);
    assert_eq!(e.line, 6, "points at the second project: {e}");
    assert!(e.message.contains("two projects are named \"a\""), "{e}");

    let text = "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"process\"\n[environment.a]\nkind = \"vm\"\n";
    let e = err(text);
    assert_eq!(e.line, 5, "{e}");

    let text = "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"process\"\n[[environment.a.tool]]\nname = \"t\"\n[[environment.a.tool]]\nname = \"t\"\n";
    let e = err(text);
    assert!(e.message.contains("two tools named \"t\""), "{e}");
}

#[test]
fn paths_that_escape_the_workspace_are_refused() {
    for (path, why) in [
        ("../elsewhere", "outside"),
        ("/etc", "absolute"),
        ("a/../../b", "outside"),
    ] {
        let text =
            format!("[workspace]\nname = \"x\"\n[[project]]\nname = \"p\"\npath = \"{path}\"\n");
        let e = err(&text);
        assert_eq!((e.line, e.column), (5, 8), "{e}");
        assert!(e.message.contains(why), "{path}: {e}");
    }
    // Going down and up again stays inside.
    let ok = "[workspace]\nname = \"x\"\n[[project]]\nname = \"p\"\npath = \"a/../b\"\n";
    parse(ok, file()).unwrap();

    let text =
        "[workspace]\nname = \"x\"\n[environment.v]\nkind = \"vm\"\ndisk = \"../../disk.qcow2\"\n";
    assert!(err(text).message.contains("outside"));
    let text = "[workspace]\nname = \"x\"\n[sharing]\nexclude = [\"/home\"]\n";
    assert!(err(text).message.contains("absolute"));
    let text = "[workspace]\nname = \"x\"\n[environment.p]\nkind = \"process\"\npython = { requirements = \"../r.txt\" }\n";
    assert!(err(text).message.contains("outside"));
}

#[test]
fn references_to_unknown_projects_are_refused_with_the_known_ones() {
    let text = "[workspace]\nname = \"x\"\n[[project]]\nname = \"trainer\"\n[environment.a]\nkind = \"process\"\nprojects = [\"trainr\"]\n";
    let e = err(text);
    assert_eq!((e.line, e.column), position_of(text, "\"trainr\""), "{e}");
    assert!(e.message.contains("known projects: trainer"), "{e}");
}

#[test]
fn keys_that_do_not_apply_to_the_kind_are_refused() {
    let e =
        err("[workspace]\nname = \"x\"\n[environment.a]\nkind = \"process\"\nimage = \"ubuntu\"\n");
    assert_eq!(e.line, 5);
    assert!(
        e.message
            .contains("`image` applies only to container environments"),
        "{e}"
    );
    let e = err("[workspace]\nname = \"x\"\n[environment.a]\nkind = \"container\"\n");
    assert!(e.message.contains("needs `image"), "{e}");
    let e = err("[workspace]\nname = \"x\"\n[environment.a]\nkind = \"vm\"\n");
    assert!(e.message.contains("needs `disk"), "{e}");
    let e = err(
        "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"container\"\nimage = \"u\"\ngpus = \"some\"\n",
    );
    assert!(e.message.contains("\"all\" or a count"), "{e}");
}

#[test]
fn invalid_names_and_numbers_are_refused() {
    let e = err("[workspace]\nname = \"x\"\n[environment.\"has space\"]\nkind = \"process\"\n");
    assert!(e.message.contains("invalid environment name"), "{e}");
    let e = err("[workspace]\nname = \"\"\n");
    assert!(e.message.contains("cannot be empty"), "{e}");
    let e = err(
        "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"process\"\nrequires = { ram_gb = -1 }\n",
    );
    assert!(e.message.contains("ram_gb must be more than 0"), "{e}");
    let e = err(
        "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"container\"\nimage = \"u\"\nports = [70000]\n",
    );
    assert_eq!(e.line, 6, "{e}");
}

#[test]
fn tool_templates_may_only_use_known_placeholders_but_shell_variables_pass() {
    let text = "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"process\"\n[[environment.a.tool]]\nname = \"t\"\nurl = \"http://{hots}:{port}/\"\n";
    let e = err(text);
    assert!(
        e.message.contains("unknown placeholder {hots}") && e.message.contains("{host}"),
        "{e}"
    );
    assert_eq!(e.line, 7);
    let ok = "[workspace]\nname = \"x\"\n[environment.a]\nkind = \"process\"\n[[environment.a.tool]]\nname = \"t\"\ncommand = \"serve --dir ${HOME} --cfg '{\\\"a\\\": 1}' --port {port}\"\n";
    parse(ok, file()).unwrap();
}

#[test]
fn a_huge_or_binary_file_is_refused_before_parsing() {
    let big = "#".repeat(MAX_MANIFEST_BYTES + 1);
    assert!(err(&big).message.contains("limit"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(MANIFEST_FILE), [0xff, 0xfe, 0x00]).unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(e.message.contains("not UTF-8"), "{e}");
    let e = load(&dir.path().join("missing")).unwrap_err();
    assert!(
        e.message.contains("no aienv.toml") && e.message.contains("aienv workspace create"),
        "{e}"
    );
}

fn tool(name: &str) -> Tool {
    Tool {
        name: name.into(),
        command: Some("run --port {port}".into()),
        port: None,
        url: None,
        ready: None,
    }
}

fn process_env(name: &str) -> Environment {
    Environment {
        projects: vec!["trainer".into()],
        env: [("OMP_NUM_THREADS".to_string(), "4".to_string())].into(),
        tools: vec![tool("board"), tool("lab")],
        ..Environment::new(name, EnvKind::Process)
    }
}

#[test]
fn edits_keep_comments_and_round_trip_through_the_parser() {
    let mut doc = ManifestDoc::parse(FULL, file()).unwrap();
    doc.add_project(&Project {
        name: "data".into(),
        path: Some("datasets/main".into()),
        description: None,
        git: None,
    })
    .unwrap();
    doc.add_environment(&process_env("train")).unwrap();
    doc.set_description(Some("changed"));
    let m = doc.validated().unwrap();
    let text = doc.render();
    assert!(
        text.contains("# open | token | approve"),
        "comments survive an edit:\n{text}"
    );
    assert!(
        text.contains("[[environment.train.tool]]"),
        "tools are written as tables:\n{text}"
    );
    assert_eq!(m.project("data").unwrap().dir(), "datasets/main");
    assert_eq!(
        m.environment("train").unwrap(),
        &process_env("train"),
        "what was added is what is read back"
    );
    assert_eq!(m.workspace.description.as_deref(), Some("changed"));

    let mut doc = ManifestDoc::parse(&text, file()).unwrap();
    let mut renamed = process_env("train");
    renamed.name = "fit".into();
    renamed.tools.pop();
    doc.replace_environment("train", &renamed).unwrap();
    doc.remove_environment("sandbox").unwrap();
    let m = doc.validated().unwrap();
    assert!(m.environment("train").is_none() && m.environment("sandbox").is_none());
    assert_eq!(m.environment("fit").unwrap().tools.len(), 1);
}

#[test]
fn edits_that_break_the_rules_are_caught_before_writing() {
    let mut doc = ManifestDoc::parse(FULL, file()).unwrap();
    assert_eq!(
        doc.add_environment(&process_env("notebook")).unwrap_err(),
        edit::EditError::Exists {
            what: "environment",
            name: "notebook".into()
        }
    );
    assert!(matches!(
        doc.remove_project("nope"),
        Err(edit::EditError::NotFound { .. })
    ));
    // Removing a project an environment uses is an edit the validator refuses.
    doc.remove_project("trainer").unwrap();
    let e = doc.validated().unwrap_err();
    assert!(e.message.contains("unknown project \"trainer\""), "{e}");
    let mut doc = ManifestDoc::parse(FULL, file()).unwrap();
    let mut bad = process_env("x");
    bad.image = Some("ubuntu".into());
    doc.add_environment(&bad).unwrap();
    assert!(
        doc.validated()
            .unwrap_err()
            .message
            .contains("applies only to container")
    );
}

#[test]
fn sharing_some_environments_shares_them_with_their_projects_and_files_only() {
    let text = r#"[workspace]
name = "lab"

[sharing]
enabled = true
environments = ["train"]   # only this one

[[project]]
name = "trainer"

[[project]]
name = "secret-research"

[environment.train]
kind = "process"
projects = ["trainer"]
python = { requirements = "trainer/requirements.txt" }

# internal: not for peers
[environment.internal]
kind = "process"
projects = ["secret-research", "trainer"]
env = { API_KEY = "hunter2" }
"#;
    let m = parse(text, Path::new("aienv.toml")).unwrap();
    let names: Vec<&str> = m.shared_environments().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["train"]);
    assert_eq!(
        m.shared_paths().unwrap(),
        ["aienv.toml", "trainer", "trainer/requirements.txt"]
    );
    let view = shared_view(text, Path::new("aienv.toml"), &m).unwrap();
    assert!(
        !view.contains("internal")
            && !view.contains("hunter2")
            && !view.contains("secret-research"),
        "{view}"
    );
    assert!(
        !view.contains("# internal") && view.contains("[environment.train]"),
        "{view}"
    );
    let seen = parse(&view, Path::new("aienv.toml")).unwrap();
    assert_eq!(seen.environments.len(), 1);
    assert_eq!(seen.projects.len(), 1);
    assert!(
        !seen.sharing.enabled,
        "a clone is not shared until its owner says so"
    );
    assert!(seen.sharing.environments.is_empty());

    // The whole workspace: every file, and the manifest as it is but not shared.
    let whole = text.replace("environments = [\"train\"]   # only this one\n", "");
    let all = parse(&whole, Path::new("aienv.toml")).unwrap();
    assert!(all.shared_paths().is_none());
    let view = shared_view(&whole, Path::new("aienv.toml"), &all).unwrap();
    assert_eq!(
        view,
        whole.replace("enabled = true", "enabled = false\naccess = \"token\"")
    );

    // Naming an environment that is not there is an error at its position.
    let e = parse(
        &text.replace("[\"train\"]", "[\"trian\"]"),
        Path::new("aienv.toml"),
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("\"trian\", which is not an environment here (known: internal, train)"),
        "{e}"
    );
    assert_eq!(e.line, 6);
}

/// Found by the `manifest` fuzz target (fuzz/): projects as an inline array and environments as
/// an inline table are valid TOML for the same lists, but the edits looked only for
/// `[[project]]` and `[environment.NAME]` tables, so the shared view of such a manifest (what a
/// peer cloning some environments receives) panicked on "the project is in the manifest".
#[test]
fn the_shared_view_of_inline_projects_and_environments_does_not_panic() {
    let inline_projects = r#"project = [{ name = "p" }, { name = "q" }]
[workspace]
name = "w"
[sharing]
environments = ["a"]
[environment.a]
kind = "process"
projects = ["p"]
"#;
    let inline_environments = r#"environment = { a = { kind = "process" }, b = { kind = "process" } }
[workspace]
name = "w"
[sharing]
environments = ["a"]
"#;
    for text in [inline_projects, inline_environments] {
        let m = parse(text, file()).unwrap();
        let view = shared_view(text, file(), &m).unwrap();
        let seen = parse(&view, file()).unwrap();
        let envs: Vec<&str> = seen.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(envs, ["a"], "{view}");
        let projects: Vec<&str> = seen.projects.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            projects,
            m.project("p").map_or(vec![], |_| vec!["p"]),
            "{view}"
        );
        assert!(!seen.sharing.enabled);
    }
}

/// The same inline forms under every edit: found, replaced, added to and removed like tables.
#[test]
fn edits_find_projects_and_environments_written_inline() {
    let text = r#"project = [{ name = "trainer" }, { name = "q" }]  # inline
environment = { a = { kind = "process", projects = ["trainer"] } }
[workspace]
name = "w"
"#;
    let m = parse(text, file()).unwrap();
    let mut doc = ManifestDoc::parse(text, file()).unwrap();
    for p in &m.projects {
        doc.replace_project(&p.name, p).unwrap();
    }
    doc.replace_environment("a", &m.environments[0]).unwrap();
    assert_eq!(doc.validated().unwrap(), m, "{}", doc.render());

    doc.add_project(&Project {
        name: "data".into(),
        path: None,
        description: None,
        git: None,
    })
    .unwrap();
    doc.add_environment(&process_env("train")).unwrap();
    doc.remove_project("q").unwrap();
    let m = doc.validated().unwrap();
    let projects: Vec<&str> = m.projects.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(projects, ["trainer", "data"], "{}", doc.render());
    assert_eq!(m.environment("train").unwrap(), &process_env("train"));
    assert!(doc.render().contains("# inline"), "{}", doc.render());

    doc.remove_environment("a").unwrap();
    doc.remove_environment("train").unwrap();
    doc.remove_project("trainer").unwrap();
    doc.remove_project("data").unwrap();
    let m = doc.validated().unwrap();
    assert!(
        m.projects.is_empty() && m.environments.is_empty(),
        "{}",
        doc.render()
    );
}

const VARIANTS: &str = r#"
[workspace]
name = "x"

[environment.train]
kind = "process"
command = "python train.py"

# Not `python = { ... }`: TOML does not let the variant tables below extend an inline table.
[environment.train.python]
requirements = "requirements-cpu.txt"

[[environment.train.python.variant]]
name = "cu124"
cuda = "12.4"
requirements = "requirements-cu124.txt"
[[environment.train.python.variant]]
name = "rocm6"
rocm = "6.0"
lock = "rocm/uv.lock"
[[environment.train.python.variant]]
name = "cpu"
requirements = "requirements-cpu.txt"
"#;

#[test]
fn python_variants_parse_and_their_files_count_as_the_environments_files() {
    let m = parse(VARIANTS, file()).unwrap();
    let py = m.environments[0].python.as_ref().unwrap();
    let names: Vec<&str> = py.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["cu124", "rocm6", "cpu"]);
    assert_eq!(py.variants[0].cuda.as_deref(), Some("12.4"));
    assert_eq!(py.variants[1].lock.as_deref(), Some("rocm/uv.lock"));
    let files: Vec<&str> = py.files().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "requirements-cpu.txt",
            "requirements-cu124.txt",
            "rocm/uv.lock",
            "requirements-cpu.txt"
        ]
    );
    // Sharing only this environment shares every variant's files, since a peer's GPU may pick
    // another variant than this machine's.
    let text = VARIANTS.replace(
        "name = \"x\"\n",
        "name = \"x\"\n[sharing]\nenvironments = [\"train\"]\n",
    );
    let m = parse(&text, file()).unwrap();
    assert_eq!(
        m.shared_paths().unwrap(),
        [
            "aienv.toml",
            "requirements-cpu.txt",
            "requirements-cu124.txt",
            "rocm/pyproject.toml",
            "rocm/uv.lock"
        ]
    );
}

#[test]
fn python_variants_that_break_the_rules_are_refused_with_what_to_do() {
    let with = |from: &str, to: &str| {
        assert!(VARIANTS.contains(from), "{from}");
        err(&VARIANTS.replacen(from, to, 1)).message
    };
    let e = with("name = \"cpu\"", "name = \"cu124\"");
    assert!(e.contains("two python variants are named \"cu124\""), "{e}");
    let e = with("name = \"cpu\"", "name = \"c p u\"");
    assert!(e.contains("invalid python variant name \"c p u\""), "{e}");
    let e = with("cuda = \"12.4\"", "cuda = \"12.4\"\nrocm = \"6.0\"");
    assert!(e.contains("gives both `cuda` and `rocm`"), "{e}");
    for bad in ["12.x", "", "12.", "v12"] {
        let e = with("cuda = \"12.4\"", &format!("cuda = {bad:?}"));
        assert!(e.contains(&format!("cuda {bad:?} is not a version")), "{e}");
    }
    let e = with("requirements = \"requirements-cu124.txt\"", "");
    assert!(e.contains("python variant \"cu124\" names no file"), "{e}");
    let e = with(
        "lock = \"rocm/uv.lock\"",
        "lock = \"a\"\nrequirements = \"b\"",
    );
    assert!(e.contains("gives both `requirements` and `lock`"), "{e}");
    let e = with("lock = \"rocm/uv.lock\"", "lock = \"../uv.lock\"");
    assert!(
        e.contains("\"../uv.lock\" leads outside the workspace"),
        "{e}"
    );
    let e = with(
        "requirements = \"requirements-cpu.txt\"\n\n[[",
        "conda = \"environment.yml\"\n\n[[",
    );
    assert!(e.contains("not to conda or pixi"), "{e}");
    let e = with("cuda = \"12.4\"", "cuda = \"12.4\"\ngpu = \"a100\"");
    assert!(e.contains("gpu"), "{e}");
}

#[test]
fn models_and_outputs_are_checked_where_they_are_written() {
    let base = "[workspace]\nname = \"w\"\n\n[environment.e]\nkind = \"process\"\n";
    let ok = parse(
        &format!("{base}models = [\"acme/tiny-llm\", \"acme/x.y@v1.0\"]\noutputs = [\"out/\"]\n"),
        file(),
    )
    .unwrap();
    let env = &ok.environments[0];
    assert_eq!(env.models, ["acme/tiny-llm", "acme/x.y@v1.0"]);
    assert_eq!(env.outputs, ["out/"]);
    let text = format!("{base}models = [\"tiny-llm\"]\n");
    let e = err(&text);
    assert!(
        e.message
            .contains("\"tiny-llm\" is not ORG/NAME or ORG/NAME@REVISION"),
        "{e}"
    );
    assert_eq!((e.line, e.column), position_of(&text, "\"tiny-llm\""));
    let e = err(&format!("{base}outputs = [\"../elsewhere\"]\n"));
    assert!(e.message.contains("output"), "{e}");
}
