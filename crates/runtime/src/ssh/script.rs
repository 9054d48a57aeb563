//! The shell scripts an SSH run executes on the other machine: the lines every one starts with
//! (into the workspace copy, the run's variables, its venv), and the session that runs the
//! environment's command and tools until the local `ssh` goes away.
//!
//! Everything is POSIX `sh`, whatever the user's login shell is: the remote command is always
//! `sh -c 'SCRIPT'` or `sh FILE`, with every value single-quoted.

use std::collections::BTreeMap;

/// `text` as one `sh` word: single quotes, an embedded `'` written as `'\''`.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The remote command that runs `script` with `sh`, whatever the login shell is.
pub fn sh_c(script: &str) -> String {
    format!("sh -c {}", quote(script))
}

/// Where a run lives on the other machine.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The workspace copy, an absolute path there.
    pub dir: String,
    /// The venv's folder relative to `dir`, when the environment has one.
    pub venv: Option<String>,
}

/// Into the workspace copy, with the run's variables and its venv first on `PATH`. Variables
/// whose names `sh` cannot export are left out (they could not be set there anyway).
pub fn prelude(remote: &Remote, vars: &BTreeMap<String, String>) -> String {
    let dir = quote(&remote.dir);
    let mut s = format!(
        "cd {dir} || {{ echo \"[aienv] the workspace copy {} is missing on this machine\"; \
         exit 1; }}\n",
        remote.dir.replace(['"', '$', '`', '\\'], "_")
    );
    for (k, v) in vars.iter().filter(|(k, _)| is_name(k)) {
        s.push_str(&format!("export {k}={}\n", quote(v)));
    }
    // The thread count is the other machine's, unless the manifest fixed it.
    if !vars.contains_key("OMP_NUM_THREADS") {
        s.push_str(
            "[ -n \"${OMP_NUM_THREADS:-}\" ] || export OMP_NUM_THREADS=\"$(nproc 2>/dev/null \
             || echo 1)\"\n",
        );
    }
    if let Some(v) = &remote.venv {
        s.push_str(&format!(
            "export VIRTUAL_ENV=\"$PWD\"/{}\nexport PATH=\"$VIRTUAL_ENV/bin:$PATH\"\n",
            quote(v)
        ));
    }
    s
}

/// The session: every command in the background, all in the script's process group, so that
/// one signal reaches them all. The local `ssh` holds a terminal for it (`-tt`): when that
/// `ssh` ends (the run is stopped, the node's machine goes away), the terminal hangs up, the
/// shell gets SIGHUP and takes the whole group with it. A command that fails ends the session
/// the same way, so the run fails at once rather than when a readiness wait runs out.
pub fn session(
    remote: &Remote,
    vars: &BTreeMap<String, String>,
    cmds: &[(String, String)],
) -> String {
    let mut s = String::from(
        "rm -f \"$0\"\n\
         # The terminal must not turn every newline of the log into CR LF.\n\
         stty -onlcr -echo 2>/dev/null\n",
    );
    s.push_str(&prelude(remote, vars));
    s.push_str(
        "trap 'trap \"\" HUP INT TERM USR1; kill -TERM 0 2>/dev/null; exit 143' HUP INT TERM\n\
         trap 'trap \"\" HUP INT TERM USR1; kill -TERM 0 2>/dev/null; exit 1' USR1\n",
    );
    for (label, cmd) in cmds {
        let said = quote(&format!("[aienv] starting {label}: {cmd}"));
        let failed = quote(&format!("[aienv] {label} exited with code "));
        s.push_str(&format!(
            "printf '%s\\n' {said}\n\
             ( sh -c {}; c=$?; if [ \"$c\" -ne 0 ]; then printf '%s%s\\n' {failed} \"$c\"; \
             kill -USR1 $$; fi; exit \"$c\" ) &\n",
            quote(cmd)
        ));
    }
    s.push_str("wait\n");
    s
}

/// One `setup` command of the environment, in the workspace copy with the run's variables.
pub fn setup(remote: &Remote, vars: &BTreeMap<String, String>, cmd: &str) -> String {
    format!("{}exec sh -c {}\n", prelude(remote, vars), quote(cmd))
}

/// A variable name `sh` can export.
fn is_name(k: &str) -> bool {
    let mut c = k.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> std::process::Output {
        Command::new("sh").arg("-c").arg(script).output().unwrap()
    }

    #[test]
    fn quoted_words_survive_the_shell_byte_for_byte() {
        for text in ["plain", "it's", "$HOME `id` \"x\" \\n", "a\nb", "'"] {
            let out = sh(&format!("printf %s {}", quote(text)));
            assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        }
    }

    #[test]
    fn the_prelude_enters_the_copy_with_the_variables_and_the_venv() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote {
            dir: dir.path().display().to_string(),
            venv: Some(".aienv/venv/my env".into()),
        };
        let vars = BTreeMap::from([
            ("AIENV_TOKEN".to_string(), "t'ok $x".to_string()),
            ("not-a-name".to_string(), "skipped".to_string()),
        ]);
        let script = format!(
            "{}printf '%s|%s|%s|%s' \"$PWD\" \"$AIENV_TOKEN\" \"$VIRTUAL_ENV\" \"$OMP_NUM_THREADS\"",
            prelude(&remote, &vars)
        );
        let out = sh(&script);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let parts: Vec<&str> = text.split('|').collect();
        let pwd = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(parts[0], pwd.display().to_string());
        assert_eq!(parts[1], "t'ok $x");
        assert_eq!(parts[2], format!("{}/.aienv/venv/my env", pwd.display()));
        assert!(parts[3].parse::<u32>().is_ok_and(|n| n > 0), "{text}");
    }

    #[test]
    fn a_missing_copy_says_so() {
        let remote = Remote {
            dir: "/no/such/aienv-copy".into(),
            venv: None,
        };
        let out = sh(&prelude(&remote, &BTreeMap::new()));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).contains("is missing"));
    }

    /// Run locally: the session's commands start, a failure ends it with the command named,
    /// and nothing of it is left.
    #[test]
    fn a_failing_command_ends_the_session_and_takes_the_others_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote {
            dir: dir.path().display().to_string(),
            venv: None,
        };
        let file = dir.path().join("session.sh");
        let cmds = vec![
            ("server".to_string(), "sleep 30".to_string()),
            ("broken".to_string(), "sleep 0.3; exit 3".to_string()),
        ];
        std::fs::write(&file, session(&remote, &BTreeMap::new(), &cmds)).unwrap();
        let start = std::time::Instant::now();
        let out = Command::new("setsid")
            .arg("-w")
            .arg("sh")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{text}"
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("[aienv] starting server: sleep 30"), "{text}");
        assert!(text.contains("[aienv] broken exited with code 3"), "{text}");
        assert!(!file.exists(), "the script removes itself");
    }
}
