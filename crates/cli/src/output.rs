//! Plain-text tables for people (scripts use `--json`).

/// Prints rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

/// Requirements in a few words: "1 gpu, 16 GB vram".
pub fn requires(r: &aienv_core::Requirements) -> String {
    let mut parts = Vec::new();
    if let Some(n) = r.gpus {
        parts.push(format!("{n} gpu"));
    }
    if let Some(v) = r.vram_gb {
        parts.push(format!("{v} GB vram"));
    }
    if let Some(v) = r.ram_gb {
        parts.push(format!("{v} GB ram"));
    }
    if let Some(v) = r.cpus {
        parts.push(format!("{v} cpu"));
    }
    if let Some(v) = &r.cuda {
        parts.push(format!("cuda {v}"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// A byte count for people: "1.6 GB".
pub fn bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// A bar of bytes moved (clones, model pulls), hidden for `--json`.
pub fn bytes_bar(json: bool, message: String) -> indicatif::ProgressBar {
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}
