//! GPUs through `nvidia-smi`: its CSV query for the cards, its banner for the CUDA version.
//!
//! Parsing is separate from running so it is tested on outputs recorded from real machines
//! (`tests/fixtures/nvidia-smi/`); this build machine has no GPU.

use std::process::Command;

use aienv_core::resources::Gpu;

/// The query `probe` runs; the parser expects its columns in this order.
pub const QUERY: &str = "index,name,memory.total,memory.used,driver_version";

/// Asks `nvidia-smi`. `Err` says why no GPU could be listed (not installed, driver not loaded).
pub fn probe() -> Result<Vec<Gpu>, String> {
    let run = |args: &[&str]| {
        let out = Command::new("nvidia-smi")
            .args(args)
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "no NVIDIA driver tools (nvidia-smi not found); no GPU is used".to_string()
                }
                _ => format!("nvidia-smi could not run: {e}"),
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let msg = String::from_utf8_lossy(&out.stdout);
            return Err(format!(
                "nvidia-smi failed ({}): {}",
                out.status,
                first_line(&err).or(first_line(&msg)).unwrap_or("no output")
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let csv = run(&[
        &format!("--query-gpu={QUERY}"),
        "--format=csv,noheader,nounits",
    ])?;
    let banner = run(&[]).unwrap_or_default();
    Ok(parse(&csv, cuda_version(&banner).as_deref()))
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Cards from `nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits`. Lines that do not
/// parse are skipped (a card in a bad state prints `[Unknown Error]`, `[N/A]`).
pub fn parse(csv: &str, cuda: Option<&str>) -> Vec<Gpu> {
    csv.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 5 {
                return None;
            }
            Some(Gpu {
                index: f[0].parse().ok()?,
                vendor: "NVIDIA".into(),
                name: f[1].to_string(),
                memory_total_mb: f[2].parse().ok()?,
                memory_used_mb: f[3].parse().ok(),
                driver: Some(f[4].to_string()).filter(|d| !d.starts_with('[')),
                cuda: cuda.map(str::to_string),
            })
        })
        .collect()
}

/// `CUDA Version: 12.4` from the banner of plain `nvidia-smi`.
pub fn cuda_version(banner: &str) -> Option<String> {
    let at = banner.find("CUDA Version:")? + "CUDA Version:".len();
    let v: String = banner[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `NAME.csv` + `NAME.txt` pair recorded with `bench/record-gpu.sh` on a machine
    /// with GPUs: the query output and the banner of plain `nvidia-smi`.
    #[test]
    fn recorded_outputs_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nvidia-smi");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let csv_path = entry.unwrap().path();
            if csv_path.extension().is_none_or(|e| e != "csv") {
                continue;
            }
            let csv = std::fs::read_to_string(&csv_path).unwrap();
            let banner = std::fs::read_to_string(csv_path.with_extension("txt")).unwrap();
            let cuda = cuda_version(&banner);
            let gpus = parse(&csv, cuda.as_deref());
            assert_eq!(gpus.len(), csv.lines().count(), "{csv_path:?}");
            for g in &gpus {
                assert!(g.memory_total_mb > 1_000, "{g:?}");
                assert!(g.driver.is_some() && g.cuda.is_some(), "{g:?}");
                assert!(banner.contains(g.driver.as_deref().unwrap()), "{g:?}");
            }
            seen += 1;
        }
        assert!(seen > 0, "no recorded nvidia-smi output in {dir}");
    }

    #[test]
    fn broken_lines_are_skipped() {
        let csv = "0, Tesla T4, 15360, 0, 535.104.05\n1, [Unknown Error], [N/A], [N/A], [N/A]\n";
        let gpus = parse(csv, None);
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].memory_total_mb, 15360);
        assert_eq!(
            cuda_version(
                "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2     |"
            )
            .as_deref(),
            Some("12.2")
        );
        assert_eq!(cuda_version("no banner"), None);
    }
}
