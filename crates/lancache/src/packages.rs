//! Python distributions a node holds: its store (`DATA_DIR/packages/`, filled with what its
//! builds fetched) and the wheel folders its owner configured (`[cache] wheel_dirs`), listed by
//! project the way a PEP 503 simple index lists them, each with its SHA-256.
//!
//! Files enter the store only through [`Incoming`], which hashes while it writes and keeps the file
//! only when the hash is the one the listing promised: a peer or mirror that serves other bytes
//! than it listed changes nothing here.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// One distribution file (a wheel or an sdist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dist {
    pub filename: String,
    /// The SHA-256 of the file, lowercase hex.
    pub sha256: String,
    pub size: u64,
    /// The `Requires-Python` the upstream index gave, when the file came from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    /// The SHA-256 of the wheel's core metadata (`FILE.metadata`, PEP 658), when it can be
    /// served apart: installers then resolve without downloading the whole wheel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_sha256: Option<String>,
}

/// A project's files as a peer lists them (`GET /api/v1/cache/packages/{project}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    /// The normalised project name (PEP 503).
    pub project: String,
    pub files: Vec<Dist>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} is not a Python distribution's file name (a wheel or an sdist)")]
    BadName(String),
    #[error(
        "{filename}: its SHA-256 is {got}, but {source_name} listed {expected}; the file was not \
         kept (a damaged download or a peer serving other bytes than it lists)"
    )]
    HashMismatch {
        filename: String,
        source_name: String,
        expected: String,
        got: String,
    },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// A file's size and modification time when it was hashed, its SHA-256, and its wheel's core
/// metadata with that file's SHA-256.
type Hashed = (u64, Option<SystemTime>, String, Option<Metadata>);

/// A wheel's core metadata (`*.dist-info/METADATA`) and its SHA-256.
pub type Metadata = (std::sync::Arc<Vec<u8>>, String);

/// The node's packages: its store and the configured wheel folders.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    extra: Vec<PathBuf>,
    /// Hashes already computed, by path, valid while size and modification time stay.
    hashes: Mutex<HashMap<PathBuf, Hashed>>,
}

impl Store {
    /// The store at `dir` (created on first insert), plus the wheel folders `extra`.
    pub fn new(dir: PathBuf, extra: Vec<PathBuf>) -> Store {
        Store {
            dir,
            extra,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files of `project` (any spelling of its name), the store's first.
    pub fn list(&self, project: &str) -> Vec<Dist> {
        let want = normalize(project);
        let mut seen = std::collections::HashSet::new();
        self.files()
            .filter(|(_, name)| project_of(name).is_some_and(|p| p == want))
            .filter(|(_, name)| seen.insert(name.clone()))
            .filter_map(|(path, filename)| {
                let (size, sha256, metadata) = self.hash(&path)?;
                Some(Dist {
                    filename,
                    sha256,
                    size,
                    requires_python: None,
                    metadata_sha256: metadata.map(|(_, h)| h),
                })
            })
            .collect()
    }

    /// Every project with at least one file, normalised and sorted.
    pub fn projects(&self) -> Vec<String> {
        let mut p: Vec<String> = self.files().filter_map(|(_, n)| project_of(&n)).collect();
        p.sort();
        p.dedup();
        p
    }

    /// Where the file called `filename` is, if this node has it.
    pub fn find(&self, filename: &str) -> Option<PathBuf> {
        if !is_dist_name(filename) {
            return None;
        }
        std::iter::once(&self.dir)
            .chain(&self.extra)
            .map(|d| d.join(filename))
            .find(|p| p.is_file())
    }

    /// Starts receiving `filename`, which must hash to `sha256` (as `source_name` listed it).
    pub fn incoming(
        &self,
        filename: &str,
        sha256: &str,
        source_name: &str,
    ) -> Result<Incoming, StoreError> {
        if !is_dist_name(filename) {
            return Err(StoreError::BadName(filename.to_string()));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StoreError::Io(format!("cannot create {}", self.dir.display()), e))?;
        let partial = self.dir.join(format!(".{filename}.partial"));
        let file = std::fs::File::create(&partial)
            .map_err(|e| StoreError::Io(format!("cannot write {}", partial.display()), e))?;
        Ok(Incoming {
            file,
            hasher: Sha256::new(),
            size: 0,
            partial,
            target: self.dir.join(filename),
            filename: filename.to_string(),
            expected: sha256.to_ascii_lowercase(),
            source_name: source_name.to_string(),
        })
    }

    /// The files of the store, then of the wheel folders: (path, file name).
    fn files(&self) -> impl Iterator<Item = (PathBuf, String)> + '_ {
        std::iter::once(&self.dir)
            .chain(&self.extra)
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                (is_dist_name(&name) && e.file_type().ok()?.is_file()).then(|| (e.path(), name))
            })
    }

    /// The core metadata of the wheel called `filename`, if this node has it.
    pub fn metadata(&self, filename: &str) -> Option<Metadata> {
        let path = self.find(filename)?;
        self.hash(&path)?.2
    }

    /// The size and SHA-256 of `path` (and its wheel metadata), computed once per version of
    /// the file.
    fn hash(&self, path: &Path) -> Option<(u64, String, Option<Metadata>)> {
        let meta = std::fs::metadata(path).ok()?;
        let (size, mtime) = (meta.len(), meta.modified().ok());
        if let Some((s, m, h, md)) = lock(&self.hashes).get(path)
            && *s == size
            && *m == mtime
        {
            return Some((size, h.clone(), md.clone()));
        }
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::fs::File::open(path).ok()?, &mut hasher).ok()?;
        let h = hex(&hasher.finalize());
        let md = wheel_metadata(path).map(|bytes| {
            let sha = sha256_hex(&bytes);
            (std::sync::Arc::new(bytes), sha)
        });
        lock(&self.hashes).insert(path.to_path_buf(), (size, mtime, h.clone(), md.clone()));
        Some((size, h, md))
    }
}

/// A file being received into the store; dropped unfinished, it leaves nothing.
#[derive(Debug)]
pub struct Incoming {
    file: std::fs::File,
    hasher: Sha256,
    size: u64,
    partial: PathBuf,
    target: PathBuf,
    filename: String,
    expected: String,
    source_name: String,
}

impl Incoming {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .map_err(|e| StoreError::Io(format!("cannot write {}", self.partial.display()), e))
    }

    /// Keeps the file if its hash is the one listed; returns where it is now.
    pub fn finish(self) -> Result<(PathBuf, Dist), StoreError> {
        let got = hex(&self.hasher.clone().finalize());
        if got != self.expected {
            return Err(StoreError::HashMismatch {
                filename: self.filename.clone(),
                source_name: self.source_name.clone(),
                expected: self.expected.clone(),
                got,
            });
        }
        self.file
            .sync_all()
            .map_err(|e| StoreError::Io(format!("cannot write {}", self.partial.display()), e))?;
        std::fs::rename(&self.partial, &self.target)
            .map_err(|e| StoreError::Io(format!("cannot keep {}", self.target.display()), e))?;
        let dist = Dist {
            filename: self.filename.clone(),
            sha256: got,
            size: self.size,
            requires_python: None,
            metadata_sha256: None,
        };
        Ok((self.target.clone(), dist))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // After `finish` renamed it this finds nothing; otherwise the partial file goes.
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// The core metadata of the wheel at `path`: its `NAME.dist-info/METADATA` (`None` for an
/// sdist, or a wheel without one).
pub fn wheel_metadata(path: &Path) -> Option<Vec<u8>> {
    if path.extension().is_none_or(|e| e != "whl") {
        return None;
    }
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
    let name = zip
        .file_names()
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)?
        .to_string();
    let mut entry = zip.by_name(&name).ok()?;
    // Core metadata is a few KB; a "METADATA" of many MB is not one.
    if entry.size() > 16 << 20 {
        return None;
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    std::io::Read::read_to_end(&mut entry, &mut out).ok()?;
    Some(out)
}

/// A project name as PEP 503 compares them: lowercase, each run of `-`, `_`, `.` one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The normalised project a distribution file belongs to: a wheel's first field
/// (`numpy-2.1.0-cp312-...whl`), an sdist's name before its version (`my-pkg-1.0.tar.gz`).
pub fn project_of(filename: &str) -> Option<String> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let name = stem.split('-').next()?;
        return (stem.split('-').count() >= 5 && !name.is_empty()).then(|| normalize(name));
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2"]
        .iter()
        .find_map(|s| filename.strip_suffix(s))?;
    let (name, version) = stem.rsplit_once('-')?;
    (!name.is_empty() && version.starts_with(|c: char| c.is_ascii_digit())).then(|| normalize(name))
}

/// A plain file name (no folders, no tricks) of a wheel or sdist.
pub fn is_dist_name(filename: &str) -> bool {
    !filename.is_empty()
        && filename.len() <= 255
        && !filename.starts_with('.')
        && !filename.contains(['/', '\\', '\0'])
        && project_of(filename).is_some()
}

/// Whether `s` is a SHA-256 in hex.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A PEP 503 project page: one link per file, with its hash (which pip and uv check) and its
/// `Requires-Python` where known. `href` says where each file is fetched from.
pub fn simple_page(project: &str, files: &[Dist], href: impl Fn(&Dist) -> String) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Links for {p}</title></head><body><h1>Links for {p}</h1>\n",
        p = escape(project)
    );
    for f in files {
        let mut attrs = f.requires_python.as_deref().map_or(String::new(), |r| {
            format!(" data-requires-python=\"{}\"", escape(r))
        });
        // PEP 714's name, and PEP 658's older one for older installers.
        if let Some(m) = f.metadata_sha256.as_deref().filter(|m| is_sha256(m)) {
            attrs.push_str(&format!(
                " data-core-metadata=\"sha256={m}\" data-dist-info-metadata=\"sha256={m}\""
            ));
        }
        page.push_str(&format!(
            "<a href=\"{}#sha256={}\"{attrs}>{}</a><br/>\n",
            escape(&href(f)),
            f.sha256,
            escape(&f.filename)
        ));
    }
    page.push_str("</body></html>\n");
    page
}

/// The root page of a simple index: one link per project.
pub fn simple_root(projects: &[String]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Simple index</title></head><body>\n",
    );
    for p in projects {
        page.push_str(&format!("<a href=\"{0}/\">{0}</a><br/>\n", escape(p)));
    }
    page.push_str("</body></html>\n");
    page
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_pep_503_says() {
        assert_eq!(normalize("Scikit_Learn"), "scikit-learn");
        assert_eq!(normalize("zope..interface"), "zope-interface");
        assert_eq!(
            project_of("scikit_learn-1.5.2-cp312-cp312-manylinux_2_17_x86_64.whl"),
            Some("scikit-learn".into())
        );
        assert_eq!(
            project_of("my.pkg-0.1-py3-none-any.whl"),
            Some("my-pkg".into())
        );
        assert_eq!(project_of("my-pkg-1.0.tar.gz"), Some("my-pkg".into()));
        assert_eq!(project_of("README.md"), None);
        assert_eq!(project_of("x.whl"), None, "a wheel name has five fields");
        for bad in [
            "../numpy-1-py3-none-any.whl",
            "a/b-1-py3-none-any.whl",
            ".x-1.tar.gz",
        ] {
            assert!(!is_dist_name(bad), "{bad}");
        }
    }

    #[test]
    fn lists_by_project_from_the_store_and_the_wheel_folders() {
        let store_dir = tempfile::tempdir().unwrap();
        let wheels = tempfile::tempdir().unwrap();
        std::fs::write(wheels.path().join("Demo_Pkg-1.0-py3-none-any.whl"), b"one").unwrap();
        std::fs::write(wheels.path().join("other-2.0.tar.gz"), b"two").unwrap();
        std::fs::write(wheels.path().join("notes.txt"), b"no").unwrap();
        let s = Store::new(
            store_dir.path().to_path_buf(),
            vec![wheels.path().to_path_buf()],
        );
        let files = s.list("demo.pkg");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].sha256, sha256_hex(b"one"));
        assert_eq!(files[0].size, 3);
        assert_eq!(s.projects(), ["demo-pkg", "other"]);
        assert!(s.find("other-2.0.tar.gz").is_some());
        assert!(s.find("../other-2.0.tar.gz").is_none());
        // A changed file is hashed again.
        std::fs::write(wheels.path().join("Demo_Pkg-1.0-py3-none-any.whl"), b"one!").unwrap();
        assert_eq!(s.list("demo-pkg")[0].sha256, sha256_hex(b"one!"));
    }

    #[test]
    fn a_file_enters_the_store_only_with_the_listed_hash() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path().join("packages"), vec![]);
        let name = "demo-1.0-py3-none-any.whl";
        let mut bad = s
            .incoming(name, &sha256_hex(b"good"), "peer \"a\"")
            .unwrap();
        bad.write(b"evil").unwrap();
        let e = bad.finish().unwrap_err().to_string();
        assert!(
            e.contains("peer \"a\" listed") && e.contains("not kept"),
            "{e}"
        );
        assert!(s.list("demo").is_empty());
        assert_eq!(
            std::fs::read_dir(s.dir()).unwrap().count(),
            0,
            "nothing left"
        );

        let mut good = s.incoming(name, &sha256_hex(b"good"), "peer").unwrap();
        good.write(b"go").unwrap();
        good.write(b"od").unwrap();
        let (path, dist) = good.finish().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"good");
        assert_eq!(s.list("demo")[0].sha256, dist.sha256);
        assert!(matches!(
            s.incoming("../x-1.0.tar.gz", "00", "peer"),
            Err(StoreError::BadName(_))
        ));
    }

    #[test]
    fn a_wheels_metadata_is_served_apart_with_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo_pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("demo_pkg/__init__.py", opts).unwrap();
        std::io::Write::write_all(&mut zip, b"").unwrap();
        zip.start_file("demo_pkg-1.0.dist-info/METADATA", opts)
            .unwrap();
        std::io::Write::write_all(&mut zip, b"Metadata-Version: 2.1\nName: demo-pkg\n").unwrap();
        zip.finish().unwrap();
        std::fs::write(dir.path().join("demo_pkg-1.0.tar.gz"), b"sdist").unwrap();
        let s = Store::new(dir.path().to_path_buf(), vec![]);
        let (bytes, sha) = s.metadata("demo_pkg-1.0-py3-none-any.whl").unwrap();
        assert_eq!(&bytes[..], b"Metadata-Version: 2.1\nName: demo-pkg\n");
        assert_eq!(sha, sha256_hex(&bytes));
        let listed = s.list("demo-pkg");
        let wheel = listed
            .iter()
            .find(|d| d.filename.ends_with(".whl"))
            .unwrap();
        assert_eq!(wheel.metadata_sha256.as_deref(), Some(sha.as_str()));
        let sdist = listed
            .iter()
            .find(|d| d.filename.ends_with(".tar.gz"))
            .unwrap();
        assert_eq!(sdist.metadata_sha256, None);
        let page = simple_page("demo-pkg", &listed, |f| f.filename.clone());
        assert!(
            page.contains(&format!("data-core-metadata=\"sha256={sha}\"")),
            "{page}"
        );
    }

    #[test]
    fn the_simple_page_carries_hashes_and_escapes_what_it_shows() {
        let d = Dist {
            filename: "a-1.0-py3-none-any.whl".into(),
            sha256: "ab".repeat(32),
            size: 1,
            requires_python: Some(">=3.9".into()),
            metadata_sha256: None,
        };
        let page = simple_page("a", &[d], |f| format!("../../files/{}", f.filename));
        assert!(page.contains(&format!(
            "href=\"../../files/a-1.0-py3-none-any.whl#sha256={}\" data-requires-python=\"&gt;=3.9\"",
            "ab".repeat(32)
        )));
    }
}
