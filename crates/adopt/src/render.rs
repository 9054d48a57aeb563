//! The `aienv.toml` an accepted proposal writes: commented, pointing at the original files
//! (`from = "..."`) rather than copying what they say, so the project's own tooling keeps working
//! and an edit of the original reaches the environment.

use std::path::Path;

use aienv_core::manifest::{MANIFEST_FILE, ManifestDoc};
use aienv_core::{Environment, Tool};

use crate::Proposal;

/// The manifest text for `proposal` (made for the folder `dir`).
pub fn render(dir: &Path, proposal: &Proposal) -> String {
    let file = dir.join(MANIFEST_FILE);
    let name = toml_str(&proposal.name);
    let header = format!(
        r#"# aienv workspace manifest, proposed by `aienv workspace add` from the files already here.
# An environment with `from` is read from that file every time the file changes: keep editing
# the original (devcontainer.json, compose.yaml, pyproject.toml...) as before. A key written
# here overrides what the file says. Reference: docs/manifest.md and docs/adopt.md

[workspace]
name = {name}

# Sharing with peers on the LAN. Secrets (.env, keys, tokens) and caches are never shared unless
# listed in `include`.
[sharing]
enabled = false
access = "token"   # open | token | approve
"#
    );
    let mut doc = ManifestDoc::parse(&header, &file).expect("the header is a valid manifest");
    let mut comments = Vec::new();
    for a in &proposal.environments {
        let env = &a.environment;
        let written = match &env.from {
            // Only what the file does not say: the tools the proposal added.
            Some(from) => {
                let derived = crate::adopt(dir, from, &env.name).ok();
                let extra: Vec<Tool> = env
                    .tools
                    .iter()
                    .filter(|t| {
                        !derived
                            .as_ref()
                            .is_some_and(|d| d.environment.tools.contains(t))
                    })
                    .cloned()
                    .collect();
                Environment {
                    from: Some(from.clone()),
                    tools: extra,
                    ..Environment::new(env.name.clone(), env.kind)
                }
            }
            None => env.clone(),
        };
        if doc.add_environment(&written).is_ok() {
            comments.push((env.name.clone(), comment(a)));
        }
    }
    let mut text = doc.render();
    for (name, block) in comments {
        let table = format!("[environment.{name}]");
        if let Some(at) = text.find(&table) {
            text.insert_str(at, &block);
        }
    }
    // One blank line between blocks, whatever toml_edit and the comments left.
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text
}

fn comment(a: &crate::Adopted) -> String {
    let env = &a.environment;
    let mut lines = Vec::new();
    let what = match (&env.image, &env.build, &env.python) {
        (_, Some(b), _) => format!("a container built from {}", b.dockerfile),
        (Some(i), None, _) => format!("a container from the image {i}"),
        (_, _, Some(py)) => match py.files().next() {
            Some(f) => format!("Python set up from {f}"),
            None => "Python".into(),
        },
        _ => format!("a {} environment", env.kind.as_str()),
    };
    lines.push(match &env.from {
        Some(from) => format!("From {from}: {what}."),
        None => {
            let mut w = what.clone();
            w[..1].make_ascii_uppercase();
            format!("{w}.")
        }
    });
    if !env.tools.is_empty() {
        let names: Vec<&str> = env.tools.iter().map(|t| t.name.as_str()).collect();
        lines.push(format!("Tools: {}.", names.join(", ")));
    }
    if !env.setup.is_empty() {
        lines.push(format!("Setup at each start: {}.", env.setup.join("; ")));
    }
    for n in &a.notes {
        lines.push(format!("Note: {n}."));
    }
    if !a.unsupported.is_empty() {
        lines.push("Not acted on:".into());
        lines.extend(a.unsupported.iter().map(|u| format!("  - {u}")));
    }
    let mut block = String::new();
    for l in lines {
        block.push_str("# ");
        block.push_str(&l);
        block.push('\n');
    }
    block
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
