//! Platform directories and the machine's name.

use std::path::PathBuf;

/// The default data dir: `~/.local/share/aienv` on Linux, `~/Library/Application Support/aienv`
/// on macOS, `%APPDATA%\aienv\data` on Windows. `--data-dir` / `AIENV_DATA_DIR` override it.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aienv").map(|d| d.data_dir().to_path_buf())
}

/// This machine's host name, the default node name.
pub fn host_name() -> String {
    let from_os = {
        #[cfg(target_os = "linux")]
        {
            std::fs::read_to_string("/proc/sys/kernel/hostname").ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            std::env::var("COMPUTERNAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .ok()
        }
    };
    from_os
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "aienv".to_string())
}
