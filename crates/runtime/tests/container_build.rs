//! Container environments built from a Dockerfile and prepared by `setup` commands, on this
//! machine's Docker, through the same start path the node uses (plan, then `Backends::start`).
//!
//! Needs a running Docker and the local test image `aienv-test/busybox:1` (built here by
//! `tests/fixtures/runtime/make-image.sh` when missing; nothing is pulled). Without them each test
//! prints why and skips; with `CI` set it fails instead. Containers and images the tests make are
//! removed again, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aienv_core::{EnvKind, Environment, ImageBuild};
use aienv_runtime::image_build;

mod common;
use common::start;

const BASE: &str = "aienv-test/busybox:1";

fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why these tests cannot run here, if they cannot.
fn docker_missing() -> Option<String> {
    if docker(&["info", "--format", "{{.ServerVersion}}"]).is_none() {
        return Some("no running Docker daemon (scripts/start-docker.sh starts one)".into());
    }
    if docker(&["image", "inspect", BASE]).is_some() {
        return None;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("tests/fixtures/runtime/make-image.sh");
    match Command::new("bash").arg(&script).arg(BASE).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "cannot build {BASE}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run {}: {e}", script.display())),
    }
}

/// True when the test must skip (after saying why); fails instead when `CI` is set.
fn skip(test: &str) -> bool {
    let Some(why) = docker_missing() else {
        return false;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs everything, but {test} cannot run here: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    true
}

/// The containers of a run, by the label the runtime gives them.
fn containers_of(run_id: &str) -> String {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=aienv.run={run_id}"),
    ])
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// Removes what a test made, however it ended.
struct Cleanup {
    run_id: String,
    tag: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in containers_of(&self.run_id).split_whitespace() {
            let _ = docker(&["rm", "-f", id]);
        }
        if let Some(tag) = &self.tag {
            let _ = docker(&["rmi", "-f", tag]);
        }
    }
}

/// A unique run id, so that parallel tests and earlier runs never see each other's containers.
fn run_id(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{test}-{}-{nanos:x}", std::process::id())
}

fn write(ws: &Path, file: &str, text: &str) {
    let path = ws.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn built_env(args: &[(&str, &str)]) -> Environment {
    Environment {
        build: Some(ImageBuild {
            dockerfile: "Dockerfile".into(),
            context: None,
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target: None,
        }),
        ..Environment::new("built", EnvKind::Container)
    }
}

/// Waits up to 10 s for a file to have content.
async fn content(path: PathBuf) -> String {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&path)
            && !text.is_empty()
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never got written", path.display());
}

#[tokio::test]
async fn a_built_image_is_prepared_by_setup_before_its_command() {
    if skip("a_built_image_is_prepared_by_setup_before_its_command") {
        return;
    }
    let began = Instant::now();
    let ws = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    write(
        ws.path(),
        "Dockerfile",
        &format!("FROM {BASE}\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\nCOPY app /app\n"),
    );
    write(ws.path(), "app/main.py", "print('hi')\n");
    write(ws.path(), "app/debug.log", "not for the image\n");
    write(ws.path(), ".dockerignore", "app/*.log\n");
    let mut env = built_env(&[("GREETING", "hello from the build")]);
    env.setup = vec![
        "cp /greeting /workspace/out".into(),
        "ls /app > /workspace/app-list".into(),
        "echo setup says hi".into(),
    ];
    // Reads what the setup wrote: only there if the command waited for the setup.
    env.command = Some("cat /workspace/out > /workspace/command-saw; exec sleep 300".into());
    let id = run_id("built");
    let _cleanup = Cleanup {
        run_id: id.clone(),
        tag: Some(image_build::default_tag(ws.path(), "built")),
    };

    let run = start(ws.path(), runs.path(), &id, &env).await.unwrap();
    let started_in = began.elapsed();

    let read = |f: &str| std::fs::read_to_string(ws.path().join(f)).unwrap_or_default();
    assert_eq!(
        read("out"),
        "hello from the build\n",
        "the build arg reached the image"
    );
    assert_eq!(
        read("app-list"),
        "main.py\n",
        "the context left out the ignored log"
    );
    assert_eq!(
        content(ws.path().join("command-saw")).await,
        "hello from the build\n",
        "the command ran after the setup"
    );
    let log = std::fs::read_to_string(runs.path().join("run.log")).unwrap();
    assert!(
        log.contains("[aienv] building the image aienv-build/built-"),
        "{log}"
    );
    assert!(
        log.contains("[aienv] setup: echo setup says hi\nsetup says hi\n"),
        "{log}"
    );
    assert!(!containers_of(&id).is_empty());

    run.stop(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        containers_of(&id),
        "",
        "the stopped run's container is gone"
    );
    eprintln!(
        "build and start took {:.1} s; the whole test {:.1} s",
        started_in.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_failing_setup_command_fails_the_start_and_leaves_no_container() {
    if skip("a_failing_setup_command_fails_the_start_and_leaves_no_container") {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let mut env = Environment::new("prepared", EnvKind::Container);
    env.image = Some(BASE.into());
    env.setup = vec![
        "echo fetching weights".into(),
        "exit 3".into(),
        "touch /workspace/never".into(),
    ];
    env.command = Some("touch /workspace/command-ran; exec sleep 300".into());
    let id = run_id("failing-setup");
    let _cleanup = Cleanup {
        run_id: id.clone(),
        tag: None,
    };

    let err = start(ws.path(), runs.path(), &id, &env)
        .await
        .expect_err("the start fails");
    assert_eq!(err.code(), "setup_failed");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "environment \"prepared\" did not start: setup command 2 (\"exit 3\") exited with \
             code 3."
        ),
        "{msg}"
    );
    assert!(
        msg.contains("  fetching weights\n"),
        "the log is quoted: {msg}"
    );
    assert_eq!(containers_of(&id), "", "no container is left behind");
    assert!(!ws.path().join("never").exists());
    assert!(
        !ws.path().join("command-ran").exists(),
        "the command never ran"
    );
}

#[tokio::test]
async fn a_failing_build_says_why_and_what_to_fix() {
    if skip("a_failing_build_says_why_and_what_to_fix") {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    write(
        ws.path(),
        "Dockerfile",
        &format!("FROM {BASE}\nRUN echo compiling the kernels && exit 7\n"),
    );
    let mut env = built_env(&[]);
    env.command = Some("sleep 300".into());
    let id = run_id("failing-build");
    let tag = image_build::default_tag(ws.path(), "built");
    let _cleanup = Cleanup {
        run_id: id.clone(),
        tag: Some(tag.clone()),
    };

    let err = start(ws.path(), runs.path(), &id, &env)
        .await
        .expect_err("the start fails");
    assert_eq!(err.code(), "build_failed");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "building the image {tag} for environment \"built\" from Dockerfile failed: "
        )),
        "{msg}"
    );
    // The legacy builder's words, or BuildKit's.
    assert!(
        msg.contains("returned a non-zero code: 7") || msg.contains("exit code: 7"),
        "{msg}"
    );
    assert!(
        msg.contains("compiling the kernels"),
        "the build output is quoted: {msg}"
    );
    assert!(
        msg.ends_with(
            "Fix the Dockerfile (or `build` or `image` in aienv.toml) and start it again"
        ),
        "{msg}"
    );
    assert_eq!(containers_of(&id), "");
    assert!(
        docker(&["image", "inspect", &tag]).is_none(),
        "nothing was tagged"
    );
}

/// The engine refuses the build before reading the context (a tag it cannot use): the start
/// fails at once with the engine's reason, rather than hanging while the context is sent.
#[tokio::test]
async fn a_refused_build_fails_promptly_even_with_a_big_context() {
    if skip("a_refused_build_fails_promptly_even_with_a_big_context") {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    write(ws.path(), "Dockerfile", &format!("FROM {BASE}\n"));
    // Far more than is buffered between the archive's writer and the engine.
    std::fs::write(ws.path().join("weights.bin"), vec![7u8; 48 << 20]).unwrap();
    let mut env = built_env(&[]);
    env.image = Some("Not A Valid:Tag".into());
    let id = run_id("refused-build");
    let _cleanup = Cleanup {
        run_id: id.clone(),
        tag: None,
    };
    let began = Instant::now();
    let started = tokio::time::timeout(
        Duration::from_secs(60),
        start(ws.path(), runs.path(), &id, &env),
    )
    .await
    .expect("the start ends");
    let msg = started.expect_err("the start fails").to_string();
    eprintln!(
        "refused after {:.1} s: {msg}",
        began.elapsed().as_secs_f64()
    );
    assert!(
        msg.starts_with("building the image Not A Valid:Tag for environment \"built\""),
        "{msg}"
    );
    assert_eq!(containers_of(&id), "");
}
