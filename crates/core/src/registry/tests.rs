//! The registry on disk: it survives crashes and never overwrites what it cannot read.

use super::*;

fn entries(n: usize) -> Vec<RegistryEntry> {
    (0..n)
        .map(|i| RegistryEntry::new(format!("id{i}"), PathBuf::from(format!("/ws/{i}"))))
        .collect()
}

#[test]
fn a_saved_registry_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        load(dir.path()).unwrap().entries.is_empty(),
        "no file is an empty registry"
    );
    save(dir.path(), &entries(3)).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(
        loaded.entries,
        entries(3)
            .into_iter()
            .map(|mut e| {
                e.added = loaded.entries[0].added;
                e
            })
            .collect::<Vec<_>>()
    );
    assert!(loaded.warning.is_none());
}

#[test]
fn a_crash_before_the_rename_leaves_the_previous_registry_intact() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), &entries(2)).unwrap();
    // The process dies after the temp file was written in part, before it was renamed.
    let crash = save_with(dir.path(), &entries(5), |tmp| {
        let bytes = std::fs::read(tmp)?;
        std::fs::write(tmp, &bytes[..bytes.len() / 2])?;
        // Leave a torn temp file behind the way a killed process would.
        std::fs::copy(tmp, tmp.with_file_name(".registry.json.tmp-99999"))?;
        Err(std::io::Error::other("simulated crash"))
    });
    assert!(crash.is_err());
    let loaded = load(dir.path()).unwrap();
    assert_eq!(
        loaded.entries.len(),
        2,
        "the registry from before the crash is what loads"
    );
    assert!(loaded.warning.is_none());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "torn temp files are cleaned up at load: {leftovers:?}"
    );
}

#[test]
fn a_corrupt_registry_is_kept_aside_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"{\"format\": 1, \"workspaces\": [{\"id\": \"a\"";
    std::fs::write(dir.path().join(REGISTRY_FILE), garbage).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert!(loaded.entries.is_empty());
    let warning = loaded.warning.expect("the user is told");
    assert!(
        warning.contains("could not be read") && warning.contains("aienv workspace add"),
        "{warning}"
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registry.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "exactly one copy kept aside");
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        garbage,
        "byte for byte"
    );
    assert!(
        warning.contains(&aside[0].path().display().to_string()),
        "the warning says where: {warning}"
    );
    // Saving now creates a new registry beside the kept one, not over it.
    save(dir.path(), &entries(1)).unwrap();
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), garbage);
}

#[test]
fn a_registry_from_a_newer_aienv_stops_the_load_and_stays_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = b"{\"format\": 7, \"workspaces\": [], \"shiny\": true}";
    std::fs::write(dir.path().join(REGISTRY_FILE), newer).unwrap();
    let e = load(dir.path()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("newer aienv") && text.contains("format 7"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(REGISTRY_FILE)).unwrap(),
        newer
    );
}
