//! Which of an environment's Python variants (`python.variant`: CUDA, ROCm and CPU builds of,
//! say, torch) fits this machine, with a sentence that says why for the run's notes.
//!
//! The rules, in order:
//! - an NVIDIA GPU whose driver supports CUDA X (`nvidia-smi`'s banner): the `cuda` variant with
//!   the highest version that is at most X (versions compare as numbers: 12.10 > 12.4);
//! - an AMD GPU: the `rocm` variant with the highest version. The probe ([`crate::gpu`]) asks
//!   only `nvidia-smi` so far, so no AMD GPU is listed yet and the installed ROCm version is not
//!   known: a `rocm` variant is picked only for a GPU whose vendor is AMD, without a comparison;
//! - otherwise the first variant with neither `cuda` nor `rocm` (a CPU build);
//! - otherwise the `python` table's own `requirements`/`lock` when it names one, or an error that
//!   says why each variant does not fit and what to do.
//!
//! [`pick`] is pure, so it is tested on recorded machines; [`choose`] turns the pick into the
//! set-up the build uses.

use std::fmt;

use aienv_core::resources::Gpu;
use aienv_core::{PythonSetup, PythonVariant};

use crate::error::RunError;

/// The variant that fits, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick<'a> {
    pub variant: &'a PythonVariant,
    /// `python variant "cu124": the NVIDIA driver 550.54 supports CUDA up to 12.4`.
    pub reason: String,
}

/// No variant fits: why not, one sentence part per variant, and whether a newer NVIDIA driver
/// would help.
#[derive(Debug, Clone, PartialEq)]
pub struct NoFit {
    pub why: Vec<String>,
    pub update_driver: bool,
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no python variant fits this machine: {}; add a variant without `cuda` or `rocm` (a \
             CPU build) in aienv.toml{}",
            self.why.join("; "),
            if self.update_driver {
                ", or update the NVIDIA driver"
            } else {
                ""
            }
        )
    }
}

/// The variant of `variants` for a machine with `gpus` (see the module's rules).
pub fn pick<'a>(variants: &'a [PythonVariant], gpus: &[Gpu]) -> Result<Pick<'a>, NoFit> {
    let m = Machine::of(gpus);
    let say = |v: &'a PythonVariant, why: String| Pick {
        variant: v,
        reason: format!("python variant {:?}: {why}", v.name),
    };
    if let Some(cuda) = &m.cuda {
        let fits = variants.iter().filter(|v| {
            v.cuda
                .as_deref()
                .is_some_and(|c| version(c) <= cuda.version)
        });
        if let Some(v) = highest(fits, |v| v.cuda.as_deref()) {
            let mut why = format!("{} supports CUDA up to {}", cuda.driver, cuda.text);
            // The closest variant that needs more, so that the user sees what a driver update buys.
            let newer = variants
                .iter()
                .filter(|v| v.cuda.as_deref().is_some_and(|c| version(c) > cuda.version))
                .min_by_key(|v| version(v.cuda.as_deref().unwrap_or_default()));
            if let Some(n) = newer {
                why += &format!(
                    ", too old for {:?} ({})",
                    n.name,
                    n.cuda.as_deref().unwrap_or_default()
                );
            }
            return Ok(say(v, why));
        }
    }
    if let Some(amd) = m.amd
        && let Some(v) = highest(variants.iter().filter(|v| v.rocm.is_some()), |v| {
            v.rocm.as_deref()
        })
    {
        return Ok(say(
            v,
            format!(
                "an AMD GPU ({}); its ROCm version is not probed, so the variant with the \
                 highest `rocm` is used",
                amd.name
            ),
        ));
    }
    let why: Vec<String> = variants.iter().filter_map(|v| m.unfit(v)).collect();
    if let Some(v) = variants
        .iter()
        .find(|v| v.cuda.is_none() && v.rocm.is_none())
    {
        let because = if gpus.is_empty() {
            "no GPU on this machine".to_string()
        } else if why.is_empty() {
            format!("no variant is for the GPU here ({})", m.names())
        } else {
            format!("no GPU variant fits: {}", why.join("; "))
        };
        return Ok(say(v, because));
    }
    Err(NoFit {
        update_driver: m.nvidia && variants.iter().any(|v| v.cuda.is_some()),
        why,
    })
}

/// What the build uses: the set-up with the picked variant's file in place of its own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chosen {
    /// Has no variants left, so the builders need not know about them.
    pub setup: PythonSetup,
    /// The picked variant's name, kept in the build's stamp: a machine whose GPU picks another
    /// variant builds again, even when two variants share a file.
    pub variant: Option<String>,
    /// Why, for the run's notes; `None` without variants.
    pub note: Option<String>,
}

/// The set-up of environment `env` to build on a machine with `gpus`.
pub(crate) fn choose(env: &str, py: &PythonSetup, gpus: &[Gpu]) -> Result<Chosen, RunError> {
    if py.variants.is_empty() {
        return Ok(Chosen {
            setup: py.clone(),
            variant: None,
            note: None,
        });
    }
    let base = PythonSetup {
        variants: Vec::new(),
        ..py.clone()
    };
    match pick(&py.variants, gpus) {
        Ok(p) => Ok(Chosen {
            setup: PythonSetup {
                requirements: p.variant.requirements.clone(),
                lock: p.variant.lock.clone(),
                ..base
            },
            variant: Some(p.variant.name.clone()),
            note: Some(p.reason),
        }),
        // The table's own file is the build for machines no variant is for.
        Err(no) if base.lock.is_some() || base.requirements.is_some() => {
            let (key, file) = match (&base.lock, &base.requirements) {
                (Some(lock), _) => ("lock", lock),
                (None, Some(req)) => ("requirements", req),
                (None, None) => unreachable!("matched on one being set"),
            };
            let note = format!(
                "python: no variant fits this machine ({}), so its own {key} {file:?} is \
                 installed",
                no.why.join("; ")
            );
            Ok(Chosen {
                setup: base,
                variant: None,
                note: Some(note),
            })
        }
        Err(no) => Err(RunError::Setup(format!("environment {env:?}: {no}"))),
    }
}

/// What the rules need to know about the GPUs.
struct Machine<'g> {
    gpus: &'g [Gpu],
    /// Has an NVIDIA GPU.
    nvidia: bool,
    /// The highest CUDA version an NVIDIA driver here supports.
    cuda: Option<Cuda>,
    amd: Option<&'g Gpu>,
}

struct Cuda {
    version: Vec<u32>,
    /// As `nvidia-smi` printed it, "12.4".
    text: String,
    /// "the NVIDIA driver 550.54".
    driver: String,
}

impl<'g> Machine<'g> {
    fn of(gpus: &'g [Gpu]) -> Machine<'g> {
        let nvidia = gpus
            .iter()
            .filter(|g| g.vendor.eq_ignore_ascii_case("nvidia"));
        let cuda = nvidia
            .clone()
            .filter_map(|g| g.cuda.as_deref().map(|c| (g, c)))
            .max_by_key(|(_, c)| version(c))
            .map(|(g, c)| Cuda {
                version: version(c),
                text: c.to_string(),
                driver: driver(g),
            });
        Machine {
            gpus,
            nvidia: nvidia.clone().next().is_some(),
            cuda,
            amd: gpus.iter().find(|g| is_amd(&g.vendor)),
        }
    }

    /// Why a GPU variant does not fit; `None` for one that fits or is a CPU build.
    fn unfit(&self, v: &PythonVariant) -> Option<String> {
        let name = &v.name;
        if let Some(c) = &v.cuda {
            let why = match &self.cuda {
                Some(have) if version(c) <= have.version => return None,
                Some(have) => format!("{} supports CUDA up to {}", have.driver, have.text),
                None if self.nvidia => {
                    "nvidia-smi did not say which CUDA version the NVIDIA driver supports".into()
                }
                None => "needs an NVIDIA GPU, and this machine has none".into(),
            };
            return Some(format!("{name:?} (CUDA {c}): {why}"));
        }
        let r = v.rocm.as_ref()?;
        if self.amd.is_some() {
            return None;
        }
        Some(format!(
            "{name:?} (ROCm {r}): needs an AMD GPU, and none is listed (aienv finds only NVIDIA \
             GPUs so far)"
        ))
    }

    /// "NVIDIA H200, NVIDIA H200".
    fn names(&self) -> String {
        let names: Vec<&str> = self.gpus.iter().map(|g| g.name.as_str()).collect();
        names.join(", ")
    }
}

fn driver(g: &Gpu) -> String {
    match &g.driver {
        Some(d) => format!("the NVIDIA driver {d}"),
        None => "the NVIDIA driver".into(),
    }
}

/// "AMD", "Advanced Micro Devices, Inc. [AMD/ATI]": how AMD tools name the vendor.
fn is_amd(vendor: &str) -> bool {
    let v = vendor.to_ascii_lowercase();
    v.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "amd")
        || v.contains("advanced micro devices")
}

/// The variant with the highest version; the first written wins a tie.
fn highest<'a>(
    variants: impl Iterator<Item = &'a PythonVariant>,
    key: impl Fn(&PythonVariant) -> Option<&str>,
) -> Option<&'a PythonVariant> {
    variants.fold(None, |best, v| match best {
        Some(b) if version(key(b).unwrap_or_default()) >= version(key(v).unwrap_or_default()) => {
            Some(b)
        }
        _ => Some(v),
    })
}

/// "12.4" → [12, 4], compared part by part as numbers; trailing zeros do not count, so that
/// "12" and "12.0" are the same version. The manifest's check lets only digits and dots in.
fn version(s: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = s.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    while parts.last() == Some(&0) {
        parts.pop();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu;

    fn variant(name: &str, cuda: Option<&str>, rocm: Option<&str>) -> PythonVariant {
        PythonVariant {
            name: name.into(),
            cuda: cuda.map(Into::into),
            rocm: rocm.map(Into::into),
            requirements: Some(format!("requirements-{name}.txt")),
            lock: None,
        }
    }

    /// The manifest documentation's example.
    fn torch() -> Vec<PythonVariant> {
        vec![
            variant("cu124", Some("12.4"), None),
            variant("cu118", Some("11.8"), None),
            variant("rocm6", None, Some("6.0")),
            variant("cpu", None, None),
        ]
    }

    /// A card as `nvidia-smi` reports it, through the probe's parser.
    fn nvidia(driver: &str, cuda: &str) -> Vec<Gpu> {
        gpu::parse(&format!("0, Tesla T4, 15360, 0, {driver}\n"), Some(cuda))
    }

    fn amd() -> Vec<Gpu> {
        vec![Gpu {
            index: 0,
            vendor: "AMD".into(),
            name: "Radeon PRO W7900".into(),
            memory_total_mb: 49152,
            memory_used_mb: None,
            driver: None,
            cuda: None,
        }]
    }

    fn picked(variants: &[PythonVariant], gpus: &[Gpu]) -> (String, String) {
        let p = pick(variants, gpus).unwrap();
        (p.variant.name.clone(), p.reason)
    }

    #[test]
    fn a_recorded_h200_gets_the_newest_cuda_build() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nvidia-smi");
        let csv = std::fs::read_to_string(format!("{dir}/nvidia-h200.csv")).unwrap();
        let banner = std::fs::read_to_string(format!("{dir}/nvidia-h200.txt")).unwrap();
        let gpus = gpu::parse(&csv, gpu::cuda_version(&banner).as_deref());
        assert_eq!(
            picked(&torch(), &gpus),
            (
                "cu124".into(),
                "python variant \"cu124\": the NVIDIA driver 580.159.04 supports CUDA up to 13.0"
                    .into()
            )
        );
    }

    #[test]
    fn an_older_driver_gets_the_newest_build_it_supports_and_is_told_what_it_misses() {
        assert_eq!(
            picked(&torch(), &nvidia("535.104.05", "12.2")),
            (
                "cu118".into(),
                "python variant \"cu118\": the NVIDIA driver 535.104.05 supports CUDA up to \
                 12.2, too old for \"cu124\" (12.4)"
                    .into()
            )
        );
        // Exactly the version needed is enough.
        assert_eq!(picked(&torch(), &nvidia("550.54", "12.4")).0, "cu124");
    }

    #[test]
    fn versions_compare_as_numbers() {
        let variants = [
            variant("cu129", Some("12.9"), None),
            variant("cu1210", Some("12.10"), None),
            variant("cu12", Some("12"), None),
        ];
        assert_eq!(picked(&variants, &nvidia("570.1", "12.10")).0, "cu1210");
        assert_eq!(picked(&variants, &nvidia("570.1", "12.9")).0, "cu129");
        // "12.0" is "12"; the first written wins a tie.
        assert_eq!(picked(&variants, &nvidia("525.1", "12.0")).0, "cu12");
        assert_eq!(version("12.0"), version("12"));
        assert!(version("12.10") > version("12.4"));
    }

    #[test]
    fn no_gpu_or_too_old_a_driver_gets_the_cpu_build() {
        assert_eq!(
            picked(&torch(), &[]),
            (
                "cpu".into(),
                "python variant \"cpu\": no GPU on this machine".into()
            )
        );
        let (name, reason) = picked(&torch(), &nvidia("470.82.01", "11.4"));
        assert_eq!(name, "cpu");
        assert_eq!(
            reason,
            "python variant \"cpu\": no GPU variant fits: \"cu124\" (CUDA 12.4): the NVIDIA \
             driver 470.82.01 supports CUDA up to 11.4; \"cu118\" (CUDA 11.8): the NVIDIA \
             driver 470.82.01 supports CUDA up to 11.4; \"rocm6\" (ROCm 6.0): needs an AMD GPU, \
             and none is listed (aienv finds only NVIDIA GPUs so far)"
        );
        let only_cpu = [variant("cpu", None, None)];
        assert_eq!(
            picked(&only_cpu, &nvidia("550.54", "12.4")).1,
            "python variant \"cpu\": no variant is for the GPU here (Tesla T4)"
        );
    }

    #[test]
    fn an_amd_gpu_gets_the_rocm_build() {
        let (name, reason) = picked(&torch(), &amd());
        assert_eq!(name, "rocm6");
        assert!(reason.contains("an AMD GPU (Radeon PRO W7900)"), "{reason}");
        assert!(is_amd("Advanced Micro Devices, Inc. [AMD/ATI]"));
        assert!(!is_amd("NVIDIA") && !is_amd("Diamond"));
    }

    #[test]
    fn when_nothing_fits_each_variant_says_why_and_what_to_do() {
        let gpu_only = [
            variant("cu124", Some("12.4"), None),
            variant("rocm6", None, Some("6.0")),
        ];
        let no = pick(&gpu_only, &nvidia("470.82.01", "11.4")).unwrap_err();
        assert_eq!(
            no.to_string(),
            "no python variant fits this machine: \"cu124\" (CUDA 12.4): the NVIDIA driver \
             470.82.01 supports CUDA up to 11.4; \"rocm6\" (ROCm 6.0): needs an AMD GPU, and \
             none is listed (aienv finds only NVIDIA GPUs so far); add a variant without `cuda` \
             or `rocm` (a CPU build) in aienv.toml, or update the NVIDIA driver"
        );
        let no = pick(&gpu_only, &[]).unwrap_err();
        assert!(!no.update_driver);
        assert!(
            no.why[0].contains("needs an NVIDIA GPU, and this machine has none"),
            "{no}"
        );
    }

    #[test]
    fn choosing_puts_the_variants_file_in_place_and_falls_back_to_the_tables_own() {
        let py = PythonSetup {
            version: Some("3.11".into()),
            requirements: Some("requirements.txt".into()),
            variants: vec![variant("cu124", Some("12.4"), None)],
            ..Default::default()
        };
        let c = choose("train", &py, &nvidia("550.54", "12.4")).unwrap();
        assert_eq!(c.variant.as_deref(), Some("cu124"));
        assert_eq!(
            c.setup,
            PythonSetup {
                version: Some("3.11".into()),
                requirements: Some("requirements-cu124.txt".into()),
                ..Default::default()
            }
        );
        let c = choose("train", &py, &[]).unwrap();
        assert_eq!(
            (c.variant, c.setup.requirements.as_deref()),
            (None, Some("requirements.txt"))
        );
        assert_eq!(
            c.note.as_deref(),
            Some(
                "python: no variant fits this machine (\"cu124\" (CUDA 12.4): needs an NVIDIA \
                 GPU, and this machine has none), so its own requirements \"requirements.txt\" \
                 is installed"
            )
        );
        let e = choose(
            "train",
            &PythonSetup {
                requirements: None,
                ..py.clone()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("environment \"train\": no python variant fits"),
            "{e}"
        );
        let plain = PythonSetup {
            variants: Vec::new(),
            ..py
        };
        let c = choose("train", &plain, &[]).unwrap();
        assert_eq!((c.setup, c.variant, c.note), (plain, None, None));
    }

    /// The whole pip path, offline: each machine installs its variant's file, and a machine whose
    /// GPU picks another variant builds again.
    #[tokio::test]
    async fn the_picked_variants_file_is_installed_and_another_gpu_rebuilds() {
        use crate::python::{Context, Tools, ensure_with, find_in, search_dirs, venv_dir};
        if find_in(&["python3"], &search_dirs(&[])).is_none() {
            eprintln!("SKIPPED the_picked_variants_file_is_installed: no python3 on PATH");
            return;
        }
        let ws = tempfile::tempdir().unwrap();
        let write = |file: &str, text: &str| std::fs::write(ws.path().join(file), text).unwrap();
        // Comments only, so pip installs nothing; cu118's names a package pip cannot find
        // offline, so that pip reading it shows.
        write("requirements-cpu.txt", "# the cpu build\n");
        write("requirements-cu124.txt", "# the cu124 build\n");
        write(
            "requirements-cu118.txt",
            "--no-index\naienv-cu118-stand-in==0\n",
        );
        let env = aienv_core::Environment {
            python: Some(PythonSetup {
                variants: torch(),
                ..Default::default()
            }),
            ..aienv_core::Environment::new("train", aienv_core::EnvKind::Process)
        };
        let log = ws.path().join("run.log");
        let venv = venv_dir(ws.path(), "train");
        let stamp = venv.join(".aienv-built-from");
        let start = |gpus: Vec<Gpu>| {
            let cx = Context {
                gpus,
                ..Context::default()
            };
            let (ws, env, log) = (ws.path().to_path_buf(), env.clone(), log.clone());
            async move { ensure_with(&ws, &env, &log, &Tools::default(), &cx).await }
        };

        let py = start(Vec::new()).await.unwrap();
        assert_eq!(py.notes, ["python variant \"cpu\": no GPU on this machine"]);
        assert_eq!(py.vars["VIRTUAL_ENV"], venv.display().to_string());
        let built = std::fs::read_to_string(&stamp).unwrap();
        assert!(
            built.contains("variant \"cpu\"\n# the cpu build"),
            "{built}"
        );

        // The same machine again: nothing is rebuilt (a rebuild would remove the marker).
        std::fs::write(venv.join("marker"), "").unwrap();
        start(Vec::new()).await.unwrap();
        assert!(
            venv.join("marker").exists(),
            "rebuilt although nothing changed"
        );

        // A CUDA 12.4 GPU picks cu124 and rebuilds.
        let py = start(nvidia("550.54", "12.4")).await.unwrap();
        assert_eq!(
            py.notes,
            ["python variant \"cu124\": the NVIDIA driver 550.54 supports CUDA up to 12.4"]
        );
        assert!(
            !venv.join("marker").exists(),
            "another variant must rebuild"
        );
        let built = std::fs::read_to_string(&stamp).unwrap();
        assert!(
            built.contains("variant \"cu124\"\n# the cu124 build"),
            "{built}"
        );

        // A CUDA 12.2 driver picks cu118, whose file pip reads.
        let e = start(nvidia("535.104.05", "12.2"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("pip install exited with code 1"), "{e}");
        assert!(e.contains("aienv-cu118-stand-in==0"), "{e}");
    }
}
