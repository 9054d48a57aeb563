//! Any text a user (or a hand edit picked up by the watcher) may put in `aienv.toml`: parsing
//! never panics and every error renders. What parses also survives what the node does with a
//! valid manifest: the edit document reads it and renders it back to the same manifest, the
//! shared view (what a peer receives) is a valid, unshared manifest, and an edit that puts back
//! a project, an environment or the sharing settings as they are leaves the manifest as it was.
#![no_main]

use std::path::Path;

use aienv_core::manifest::{self, ManifestDoc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/fuzz/aienv.toml");
    let m = match manifest::parse(text, file) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    let doc = ManifestDoc::parse(text, file).expect("a valid manifest is a TOML document");
    assert_eq!(
        doc.validated().expect("rendering keeps a manifest valid"),
        m
    );

    let view = manifest::shared_view(text, file, &m).expect("a valid manifest has a shared view");
    let v = manifest::parse(&view, file).expect("the shared view parses");
    assert!(!v.sharing.enabled);

    let mut d = doc.clone();
    d.set_sharing(&m.sharing);
    assert_eq!(d.validated().expect("same sharing, valid"), m);

    for p in &m.projects {
        let mut d = doc.clone();
        d.replace_project(&p.name, p)
            .expect("the project is in the document");
        assert_eq!(d.validated().expect("same project, valid"), m);
    }
    for e in &m.environments {
        let mut d = doc.clone();
        d.replace_environment(&e.name, e)
            .expect("the environment is in the document");
        assert_eq!(d.validated().expect("same environment, valid"), m);
    }
});
