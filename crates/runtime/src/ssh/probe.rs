//! The first `ssh` of a run: does it log in, where does the workspace copy go, and what does
//! the other machine have (`python3`, `uv`, `tar`)? Connection and login problems are said here,
//! before anything is copied.

use std::path::Path;
use std::time::Duration;

use super::connect;
use super::script::{quote, sh_c};
use super::target::SshTarget;
use crate::error::RunError;

/// Where the copies of workspaces live on the other machine, relative to the login folder.
pub const BASE: &str = ".cache/aienv-ssh";

/// What the other machine has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The workspace copy (made if missing), an absolute path there.
    pub dir: String,
    pub python3: bool,
    /// Where `uv` is, when it is installed (also in `~/.local/bin`, which a non-login shell's
    /// `PATH` often lacks).
    pub uv: Option<String>,
    pub tar: bool,
}

/// Logs in, makes the copy's folder and looks around.
pub async fn probe(target: &SshTarget, folder: &str) -> Result<Found, RunError> {
    let d = quote(&format!("{BASE}/{folder}"));
    let script = format!(
        "mkdir -p {d}/.aienv/ssh && cd {d} || exit 3\n\
         echo \"dir=$PWD\"\n\
         command -v python3 >/dev/null 2>&1 && echo python3=yes\n\
         command -v tar >/dev/null 2>&1 && echo tar=yes\n\
         for u in \"$(command -v uv 2>/dev/null)\" \"$HOME/.local/bin/uv\" \"$HOME/.cargo/bin/uv\"; do\n\
           if [ -n \"$u\" ] && [ -x \"$u\" ]; then echo \"uv=$u\"; break; fi\n\
         done\n\
         # Session scripts remove themselves; these are of starts given up before it began.\n\
         find .aienv/ssh -name '*.sh' -mtime +1 -exec rm -f {{}} + 2>/dev/null\n\
         exit 0\n"
    );
    let out = connect::capture(target, &sh_c(&script), None, Duration::from_secs(60)).await?;
    let found = parse(&out);
    if found.dir.is_empty() {
        return Err(RunError::Ssh(format!(
            "{target} did not say where the workspace copy goes (it printed {:?}); check that \
             its login shell runs commands (`{} true`)",
            out.trim(),
            target.command_line()
        )));
    }
    if !found.tar {
        return Err(RunError::Ssh(format!(
            "{target} has no `tar`, which copying the workspace there needs: install it there \
             (e.g. `apt install tar`)"
        )));
    }
    Ok(found)
}

fn parse(out: &str) -> Found {
    let mut f = Found::default();
    for line in out.lines() {
        match line.split_once('=') {
            Some(("dir", d)) => f.dir = d.to_string(),
            Some(("python3", _)) => f.python3 = true,
            Some(("tar", _)) => f.tar = true,
            Some(("uv", u)) => f.uv = Some(u.to_string()),
            _ => {}
        }
    }
    f
}

/// The copy's folder for a workspace: its folder name (what a user recognises when looking
/// there) and a hash of this machine and its path, so that a second run reuses the copy and two
/// workspaces of the same name do not share one.
pub fn folder(workspace: &Path) -> String {
    let name: String = workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let key = format!("{}\0{}", host.trim(), workspace.display());
    let name = name.trim_start_matches('.');
    format!(
        "{}-{:016x}",
        if name.is_empty() { "workspace" } else { name },
        fnv1a(key.as_bytes())
    )
}

/// FNV-1a, 64 bits: stable across builds and platforms, which `std`'s hasher is not.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_machine_has_is_read_from_its_answer() {
        let f = parse("dir=/home/ann/.cache/aienv-ssh/w-1\npython3=yes\ntar=yes\nuv=/x/uv\n");
        assert_eq!(
            f,
            Found {
                dir: "/home/ann/.cache/aienv-ssh/w-1".into(),
                python3: true,
                uv: Some("/x/uv".into()),
                tar: true,
            }
        );
        assert_eq!(parse("motd line\n"), Found::default());
    }

    #[test]
    fn a_workspace_keeps_its_folder_and_others_get_their_own() {
        let a = folder(Path::new("/home/ann/llm finetune"));
        assert_eq!(a, folder(Path::new("/home/ann/llm finetune")));
        assert!(a.starts_with("llm_finetune-"), "{a}");
        assert_ne!(a, folder(Path::new("/srv/llm finetune")));
        assert!(folder(Path::new("/")).starts_with("workspace-"));
        assert!(folder(Path::new("/x/..hidden")).starts_with("hidden-"));
    }
}
