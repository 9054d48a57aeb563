//! What never leaves this machine: secrets and caches by default, plus the manifest's
//! `[sharing] exclude`; `[sharing] include` brings back what a default would leave out.
//! Patterns follow gitignore rules, relative to the workspace root.

use std::path::Path;

use aienv_core::{PythonEnvs, Sharing};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Excluded unless the owner includes them.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    // Secrets: environment files, keys, credentials.
    ".env",
    ".env.*",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".ssh/",
    ".gnupg/",
    ".aws/",
    ".azure/",
    ".kube/",
    ".docker/config.json",
    "gcloud/",
    "huggingface/token",
    ".huggingface/token",
    "wandb/settings",
    // Caches: rebuilt on demand, never worth moving.
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    ".cache/",
    // aienv's own bookkeeping inside cloned workspaces.
    ".aienv/",
];

/// Decides, path by path, what a share leaves out.
#[derive(Debug)]
pub struct Filter {
    rules: Gitignore,
    /// The workspace's root, to look inside folders (is it a Python environment?).
    root: std::path::PathBuf,
    /// Share Python environments (venvs, conda prefixes) byte for byte (`python_envs = "copy"`).
    copy_python_envs: bool,
    /// When only some environments are shared: the paths their share is made of.
    only: Option<Vec<std::path::PathBuf>>,
}

impl Filter {
    pub fn new(root: &Path, sharing: &Sharing) -> Result<Filter, String> {
        let mut b = GitignoreBuilder::new(root);
        let includes = sharing.include.iter().map(|p| format!("!{p}"));
        for line in DEFAULT_EXCLUDES
            .iter()
            .map(|s| s.to_string())
            .chain(sharing.exclude.iter().cloned())
            .chain(includes)
        {
            b.add_line(None, &line)
                .map_err(|e| format!("sharing pattern {line:?}: {e}"))?;
        }
        Ok(Filter {
            rules: b.build().map_err(|e| e.to_string())?,
            root: root.to_path_buf(),
            copy_python_envs: sharing.python_envs == PythonEnvs::Copy,
            only: None,
        })
    }

    /// Narrows the share to `paths` (relative; folders count with all they hold), as
    /// [`aienv_core::Manifest::shared_paths`] lists them. The default exclusions still apply.
    pub fn only(mut self, paths: Option<Vec<String>>) -> Filter {
        self.only = paths.map(|p| p.into_iter().map(std::path::PathBuf::from).collect());
        self
    }

    /// Whether `rel` (relative to the root) stays home.
    pub fn excluded(&self, rel: &Path, is_dir: bool) -> bool {
        if let Some(only) = &self.only {
            // Inside a shared path, or a folder on the way to one.
            let wanted = only
                .iter()
                .any(|p| rel.starts_with(p) || (is_dir && p.starts_with(rel)));
            if !wanted {
                return true;
            }
        }
        self.rules.matched(rel, is_dir).is_ignore()
            || (is_dir && !self.copy_python_envs && is_python_env(&self.root.join(rel)))
    }
}

/// Whether `dir` is a Python environment: a venv (`pyvenv.cfg`) or a conda prefix
/// (`conda-meta/`). Their files name absolute paths of this machine (interpreter, shebangs), so by
/// default they are rebuilt where they are cloned, from the environment's requirements or lock,
/// not copied.
pub fn is_python_env(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file() || dir.join("conda-meta").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(exclude: &[&str], include: &[&str]) -> Filter {
        let sharing = Sharing {
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            include: include.iter().map(|s| s.to_string()).collect(),
            ..Sharing::default()
        };
        Filter::new(Path::new("/ws"), &sharing).unwrap()
    }

    #[test]
    fn secrets_and_caches_stay_home_by_default() {
        let f = filter(&[], &[]);
        for (p, dir) in [
            (".env", false),
            ("app/.env.production", false),
            ("certs/server.pem", false),
            ("home/.ssh", true),
            ("id_ed25519", false),
            (".aws", true),
            ("src/__pycache__", true),
            (".aienv", true),
        ] {
            assert!(f.excluded(Path::new(p), dir), "{p} must not be shared");
        }
        for p in [
            ".env.example",
            "models/model.safetensors",
            "tokenizer.json",
            ".venv/lib/python3.11/site.py",
            "keys.py",
        ] {
            assert!(!f.excluded(Path::new(p), false), "{p} is shared");
        }
    }

    #[test]
    fn python_environments_stay_home_unless_the_owner_copies_them() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join(".venv/lib")).unwrap();
        std::fs::write(ws.path().join(".venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::create_dir_all(ws.path().join("envs/train/conda-meta")).unwrap();
        std::fs::create_dir_all(ws.path().join("src")).unwrap();
        let mut sharing = Sharing::default();
        let f = Filter::new(ws.path(), &sharing).unwrap();
        assert!(f.excluded(Path::new(".venv"), true));
        assert!(f.excluded(Path::new("envs/train"), true));
        assert!(!f.excluded(Path::new("src"), true));
        assert!(!f.excluded(Path::new("envs"), true));
        sharing.python_envs = PythonEnvs::Copy;
        let f = Filter::new(ws.path(), &sharing).unwrap();
        assert!(!f.excluded(Path::new(".venv"), true));
        assert!(!f.excluded(Path::new("envs/train"), true));
    }

    #[test]
    fn the_manifest_adds_exclusions_and_can_include_a_default_one() {
        let f = filter(&["data/raw/", "*.ckpt"], &["deploy.pem"]);
        assert!(f.excluded(Path::new("data/raw"), true));
        assert!(f.excluded(Path::new("runs/last.ckpt"), false));
        assert!(
            !f.excluded(Path::new("deploy.pem"), false),
            "included by the owner"
        );
        assert!(
            f.excluded(Path::new("other.pem"), false),
            "other keys stay excluded"
        );
    }
}
