//! A scan for secrets in the files a share would send: tokens and keys that the default
//! exclusions (`.env`, `*.pem`, `.ssh/`...) miss because they sit in ordinary files
//! (`config.py`, a notebook). It warns before sharing; it does not decide.
//!
//! Only small text files are read (binary files and files over [`MAX_FILE_BYTES`] are skipped),
//! and the scan stops after [`MAX_FINDINGS`], so it stays quick on a large workspace.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::exclude::Filter;

pub const MAX_FILE_BYTES: u64 = 1 << 20;
pub const MAX_FINDINGS: usize = 100;

/// A line that looks like it holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretFinding {
    /// Relative to the workspace, `/`-separated.
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// What it looks like ("an AWS access key", "a private key"...). The secret itself is never
    /// repeated.
    pub kind: String,
}

static PATTERNS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        ("an AWS access key", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("a GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
        ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}\b"),
        ("an OpenAI-style API key", r"\bsk-(proj-)?[A-Za-z0-9_-]{20,}\b"),
        ("a Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
        ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ("an aienv share token", r"\baienv_st_[0-9a-f]{64}\b"),
        (
            "a password or key assigned in code",
            r#"(?i)\b(api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|password|passwd)\b["']?\s*[:=]\s*["'][^"'\s]{12,}["']"#,
        ),
    ]
    .into_iter()
    .map(|(kind, re)| (kind, Regex::new(re).expect("the secret patterns compile")))
    .collect()
});

/// The files under `root` that `filter` lets out and that look like they hold secrets.
pub fn scan(root: &Path, filter: &Filter) -> Vec<SecretFinding> {
    let mut found = Vec::new();
    walk(root, Path::new(""), filter, &mut found);
    found
}

fn walk(root: &Path, rel: &Path, filter: &Filter, found: &mut Vec<SecretFinding>) {
    let Ok(dir) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    let mut entries: Vec<_> = dir.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if found.len() >= MAX_FINDINGS {
            return;
        }
        let Ok(kind) = e.file_type() else { continue };
        let path = rel.join(e.file_name());
        if kind.is_symlink() || filter.excluded(&path, kind.is_dir()) {
            continue;
        }
        if kind.is_dir() {
            walk(root, &path, filter, found);
        } else if kind.is_file() && e.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES) {
            scan_file(&root.join(&path), &path, found);
        }
    }
}

fn scan_file(file: &Path, rel: &Path, found: &mut Vec<SecretFinding>) {
    let Ok(bytes) = std::fs::read(file) else {
        return;
    };
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return; // binary
    }
    let text = String::from_utf8_lossy(&bytes);
    for (n, line) in text.lines().enumerate() {
        if let Some((kind, _)) = PATTERNS.iter().find(|(_, re)| re.is_match(line)) {
            found.push(SecretFinding {
                path: rel.to_string_lossy().replace('\\', "/"),
                line: n as u32 + 1,
                kind: (*kind).to_string(),
            });
            if found.len() >= MAX_FINDINGS {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aienv_core::Sharing;

    #[test]
    fn secrets_in_ordinary_files_are_found_and_excluded_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let files = [
            ("train.py", "lr = 0.1\nAWS = 'AKIAIOSFODNN7EXAMPLE'\n"),
            ("notes.md", "nothing here, only the word password\n"),
            ("conf/app.yaml", "db:\n  password: \"hunter2-but-longer\"\n"),
            (
                "keys/deploy.txt",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n",
            ),
            (".env", "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789\n"),
            ("model.bin", "\0\0AKIAIOSFODNN7EXAMPLE"),
        ];
        for (p, body) in files {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), body).unwrap();
        }
        let filter = Filter::new(root, &Sharing::default()).unwrap();
        let got = scan(root, &filter);
        let summary: Vec<(String, u32, String)> =
            got.into_iter().map(|f| (f.path, f.line, f.kind)).collect();
        assert_eq!(
            summary,
            [
                (
                    "conf/app.yaml".into(),
                    2,
                    "a password or key assigned in code".into()
                ),
                ("keys/deploy.txt".into(), 1, "a private key".into()),
                ("train.py".into(), 2, "an AWS access key".into()),
            ]
        );
    }
}
