//! The VM backend: QEMU as a process group of its own (so everything the process backend knows,
//! stop, logs, finding it again after a restart, applies), its serial console as the run's log.
//!
//! The disk in the workspace is never written: each environment boots from a qcow2 overlay in
//! `.aienv/vm/ENV/` whose backing file is the shared disk (made anew when the base disk is newer,
//! e.g. after a pull). Ports are forwarded from 127.0.0.1 with QEMU's user network.
//!
//! Acceleration: KVM when `/dev/kvm` opens, else software emulation (TCG). An openable
//! `/dev/kvm` does not prove KVM boots (on some hosts it hangs at "Booting from ROM"), so a
//! direct-kernel boot under KVM that prints nothing past the firmware for [`KVM_SILENCE`] is
//! restarted under TCG; the run's notes say so and the node remembers it for later runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::RunError;
use crate::plan::RunPlan;
use crate::process::{Cmd, Group, stop_group};

/// How long a KVM boot may stay silent after the firmware before TCG is used instead.
pub const KVM_SILENCE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    fn arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The started VM, and what the user should know about how (acceleration used).
#[derive(Debug)]
pub struct Started {
    pub group: Group,
    pub accel: Accel,
    pub notes: Vec<String>,
}

pub async fn start(plan: &RunPlan, accel: Accel) -> Result<Started, RunError> {
    let qemu = crate::resources::qemu_binary();
    let ws = &plan.workspace;
    let env = &plan.env;
    let file = |rel: &String, what: &str| -> Result<PathBuf, RunError> {
        let p = ws.join(rel);
        if p.is_file() {
            Ok(p)
        } else {
            Err(RunError::Disk(format!(
                "the VM's {what} {} is missing; fix `{what}` in aienv.toml or put the file there",
                p.display()
            )))
        }
    };
    let overlay = match &env.disk {
        Some(disk) => Some(overlay(ws, &env.name, &file(disk, "disk")?).await?),
        None => None,
    };
    let mut argv: Vec<String> = vec![
        qemu.clone(),
        "-name".into(),
        format!("aienv-{}", plan.run_id),
        "-m".into(),
        format!("{}", env.memory_gb.map_or(512, |g| (g * 1024.0) as u64)),
        "-smp".into(),
        env.cpus.unwrap_or(1).to_string(),
        "-nographic".into(),
        "-no-reboot".into(),
    ];
    if let Some(k) = &env.kernel {
        argv.extend(["-kernel".into(), file(k, "kernel")?.display().to_string()]);
        if let Some(i) = &env.initrd {
            argv.extend(["-initrd".into(), file(i, "initrd")?.display().to_string()]);
        }
        let args = env
            .kernel_args
            .as_deref()
            .unwrap_or("console=ttyS0 panic=-1");
        argv.extend(["-append".into(), args.to_string()]);
    }
    if let Some(o) = &overlay {
        argv.extend([
            "-drive".into(),
            format!("file={},format=qcow2,if=virtio", o.display()),
        ]);
    }
    let mut net = "user,id=n0".to_string();
    for (host, inside) in &plan.publish {
        net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{inside}"));
    }
    // e1000: the NIC nearly every guest kernel drives without extra modules.
    argv.extend([
        "-netdev".into(),
        net,
        "-device".into(),
        "e1000,netdev=n0".into(),
    ]);

    let launch = |accel: Accel| {
        let mut a = argv.clone();
        a.extend(["-accel".into(), accel.arg().into()]);
        Group::spawn(
            &[("qemu".into(), Cmd::Argv(a))],
            ws,
            &Default::default(),
            &plan.log,
        )
    };
    let group = launch(accel)?;
    if accel == Accel::Kvm && env.kernel.is_some() && !boots(&group, &plan.log).await {
        stop_group(group.pgid, Duration::from_secs(2)).await;
        let group = launch(Accel::Tcg)?;
        return Ok(Started {
            group,
            accel: Accel::Tcg,
            notes: vec![format!(
                "KVM did not boot the VM (no output for {} s after the firmware); it runs \
                 under software emulation (TCG), which is much slower",
                KVM_SILENCE.as_secs()
            )],
        });
    }
    let notes = match accel {
        Accel::Kvm => vec!["the VM runs with KVM".into()],
        Accel::Tcg => {
            vec!["the VM runs under software emulation (TCG): no usable KVM on this machine".into()]
        }
    };
    Ok(Started {
        group,
        accel,
        notes,
    })
}

/// Whether the guest kernel printed anything in time. The firmware ("Booting from ROM") and the
/// kernel's real-mode setup ("Probing EDD", then a clear-screen) print under a KVM that then
/// hangs; so only text after the setup's clear-screen counts.
async fn boots(group: &Group, log: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < KVM_SILENCE {
        let text = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        if let Some(rom) = text.find("Booting from ROM")
            && let Some(clear) = text[rom..].rfind("\x1b[2J")
            && text[rom + clear + 4..].chars().any(|c| c.is_alphanumeric())
        {
            return true;
        }
        if group.is_gone() {
            // It failed by itself; the readiness check reports it with the log.
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The environment's overlay on `base`, made when missing or older than `base`.
async fn overlay(ws: &Path, env: &str, base: &Path) -> Result<PathBuf, RunError> {
    let info = tokio::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(base)
        .output()
        .await
        .map_err(|e| RunError::Engine(format!("qemu-img is not installed ({e}); install QEMU")))?;
    if !info.status.success() {
        return Err(RunError::Disk(format!(
            "{} is not a usable disk image ({}); replace it with a working image",
            base.display(),
            String::from_utf8_lossy(&info.stderr).trim()
        )));
    }
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap_or_default();
    let format = info["format"].as_str().unwrap_or("raw").to_string();
    if format == "raw" {
        // qemu-img calls any file raw; a "disk" of text or zeros would boot into nothing.
        let head = std::fs::read(base).map(|b| b.len()).unwrap_or(0);
        if head < 512 {
            return Err(RunError::Disk(format!(
                "{} is too small to be a disk image ({head} bytes)",
                base.display()
            )));
        }
    }
    let dir = ws.join(".aienv").join("vm").join(env);
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunError::io(format!("cannot create {}", dir.display()), e))?;
    let overlay = dir.join("overlay.qcow2");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if overlay.exists() && modified(&overlay) >= modified(base) {
        return Ok(overlay);
    }
    let _ = std::fs::remove_file(&overlay);
    let made = tokio::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", &format, "-b"])
        .arg(base)
        .arg(&overlay)
        .output()
        .await
        .map_err(|e| RunError::io("qemu-img create", e))?;
    if !made.status.success() {
        return Err(RunError::Disk(format!(
            "cannot make an overlay on {}: {}",
            base.display(),
            String::from_utf8_lossy(&made.stderr).trim()
        )));
    }
    Ok(overlay)
}
