//! The commented manifest that `aienv workspace create` writes.

/// A starter `aienv.toml` for a new workspace. Everything past `[workspace]` is commented out, so
/// the file parses as it is and shows what can be added.
pub fn starter_manifest(name: &str, description: Option<&str>) -> String {
    // TOML string literals, quoted and escaped by toml_edit.
    let name = toml_edit::Value::from(name).to_string();
    let description = toml_edit::Value::from(description.unwrap_or("")).to_string();
    format!(
        r#"# aienv workspace manifest: the workspace, its projects, and the environments they run in.
# The node picks up every save of this file; an invalid edit is reported with its line and
# column and the last good version stays in effect. Reference: docs/manifest.md

[workspace]
name = {name}
description = {description}

# Sharing with peers on the LAN. Secrets (.env, keys, tokens) and caches are never shared unless
# listed in `include`.
[sharing]
enabled = false
access = "token"   # open | token | approve
exclude = []       # e.g. ["data/raw/", "*.ckpt"]

# A project is a folder of this workspace: code, data, configs.
# [[project]]
# name = "trainer"
# path = "trainer"                # defaults to the name
# git = {{ remote = "https://example.org/trainer.git", rev = "main" }}

# An environment says how projects run: kind = "process" | "container" | "vm".
# [environment.notebook]
# kind = "process"
# projects = ["trainer"]
# python = {{ version = "3.11", requirements = "trainer/requirements.txt" }}
# requires = {{ gpus = 1, vram_gb = 16, ram_gb = 32 }}
# fallback = {{ when = "no-gpu", env = {{ CUDA_VISIBLE_DEVICES = "" }} }}
#
# [[environment.notebook.tool]]
# name = "JupyterLab"
# command = "jupyter lab --no-browser --port {{port}} --IdentityProvider.token={{token}}"
# url = "http://{{host}}:{{port}}/lab?token={{token}}"
# ready = {{ http = "/api/status" }}
"#
    )
}
