//! Bad input: each error names the file, the line where it can be fixed, and what to do.

use std::path::Path;

use aienv_adopt::{adopt, propose, resolve_manifest};
use aienv_core::manifest;

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_syntax_error_in_a_devcontainer_points_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".devcontainer/devcontainer.json",
        "{\n  // ok\n  \"image\": \"x\",\n  \"forwardPorts\": [8000 8001 }\n",
    );
    let e = adopt(dir.path(), ".devcontainer/devcontainer.json", "dev").unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("not valid JSON"), "{e}");
    assert!(e.file.ends_with(".devcontainer/devcontainer.json"));
    // The proposal shows the problem instead of failing as a whole.
    let p = propose(dir.path());
    assert!(p.environments.is_empty());
    assert_eq!(p.problems.len(), 1);
}

#[test]
fn a_wrong_type_points_at_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".devcontainer.json",
        "{\n  \"image\": \"x\",\n\n  \"containerEnv\": 7\n}\n",
    );
    let e = adopt(dir.path(), ".devcontainer.json", "dev").unwrap_err();
    assert_eq!((e.line, e.column), (4, 3), "{e}");
    assert!(e.message.contains("`containerEnv` must be a table"), "{e}");
}

#[test]
fn a_build_context_outside_the_workspace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".devcontainer/devcontainer.json",
        r#"{ "build": { "dockerfile": "Dockerfile", "context": "../.." } }"#,
    );
    let e = adopt(dir.path(), ".devcontainer/devcontainer.json", "dev").unwrap_err();
    assert!(e.message.contains("leads outside the workspace"), "{e}");
}

#[test]
fn a_devcontainer_without_image_or_build_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".devcontainer.json", r#"{ "name": "x" }"#);
    let e = adopt(dir.path(), ".devcontainer.json", "dev").unwrap_err();
    assert!(
        e.message
            .contains("names neither an `image` nor a `build.dockerfile`"),
        "{e}"
    );
    write(
        dir.path(),
        ".devcontainer.json",
        r#"{ "dockerComposeFile": "compose.yaml", "service": "app" }"#,
    );
    let e = adopt(dir.path(), ".devcontainer.json", "dev").unwrap_err();
    assert!(e.message.contains("compose.yaml#SERVICE"), "{e}");
}

#[test]
fn a_compose_file_with_several_services_needs_one_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x\n  b:\n    image: y\n",
    );
    let e = adopt(dir.path(), "compose.yaml", "a").unwrap_err();
    assert!(
        e.message
            .contains("name one: `from = \"compose.yaml#SERVICE\"`"),
        "{e}"
    );
    assert_eq!(e.line, 1);
    let e = adopt(dir.path(), "compose.yaml#c", "c").unwrap_err();
    assert!(
        e.message
            .contains("there is no service \"c\"; the services are a, b"),
        "{e}"
    );
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  a:\n    image: [unclosed\n",
    );
    let e = adopt(dir.path(), "compose.yaml#a", "a").unwrap_err();
    assert!(e.message.contains("not valid YAML"), "{e}");
    assert!(e.line >= 3, "{e}");
}

#[test]
fn a_poetry_1_project_says_how_to_adopt_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pyproject.toml",
        "[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies]\npython = \"^3.10\"\n",
    );
    let e = adopt(dir.path(), "pyproject.toml", "python").unwrap_err();
    assert!(
        e.message.contains("poetry export -o requirements.txt"),
        "{e}"
    );
}

#[test]
fn unknown_formats_and_missing_files_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let e = adopt(dir.path(), "setup.py", "x").unwrap_err();
    assert!(
        e.message
            .contains("aienv cannot adopt \"setup.py\": it reads devcontainer.json"),
        "{e}"
    );
    let e = adopt(dir.path(), "requirements.txt", "x").unwrap_err();
    assert!(
        e.message
            .contains("requirements.txt is gone; restore it, or remove `from"),
        "{e}"
    );
}

#[test]
fn manifest_keys_override_the_adopted_file_and_kinds_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".devcontainer/devcontainer.json",
        r#"{ "image": "base:1", "forwardPorts": [8000], "containerEnv": { "A": "1", "B": "2" } }"#,
    );
    let text = r#"
[workspace]
name = "w"

[environment.dev]
kind = "container"
from = ".devcontainer/devcontainer.json"
image = "mine:2"
env = { B = "from the manifest" }

[[environment.dev.tool]]
name = "port 8000"
url = "http://{host}:{port}/docs"
port = 8000
"#;
    let m = manifest::parse(text, &dir.path().join("aienv.toml")).unwrap();
    let m = resolve_manifest(dir.path(), m).unwrap();
    let e = &m.environments[0];
    assert_eq!(e.image.as_deref(), Some("mine:2"));
    assert_eq!(e.env["A"], "1");
    assert_eq!(e.env["B"], "from the manifest");
    assert_eq!(e.tools.len(), 1);
    assert_eq!(e.tools[0].url.as_deref(), Some("http://{host}:{port}/docs"));
    assert_eq!(e.ports, [8000]);

    let wrong = text
        .replace("kind = \"container\"\nfrom", "kind = \"process\"\nfrom")
        .replace("image = \"mine:2\"\n", "");
    let m = manifest::parse(&wrong, &dir.path().join("aienv.toml")).unwrap();
    let e = resolve_manifest(dir.path(), m).unwrap_err();
    assert!(
        e.message.contains(
            "describes a container environment, but the manifest says kind = \"process\""
        ),
        "{e}"
    );
}

#[test]
fn an_empty_folder_gets_a_proposal_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = propose(dir.path());
    assert!(p.environments.is_empty());
    assert!(
        p.notes[0].contains("nothing to adopt here"),
        "{:?}",
        p.notes
    );
    let text = aienv_adopt::render(dir.path(), &p);
    manifest::parse(&text, &dir.path().join("aienv.toml")).unwrap();
}
