//! aienv sharing: what this node offers its peers ([`shares`]), and the [`Catalog`] that merges
//! local and remote shared environments into one list.
//!
//! The repository half lives here now: share lists and the catalog. Packing, streaming and
//! verifying files for clones come with the clone flow. Depends on `aienv-core`; talks HTTP to
//! peers (reqwest) but serves nothing itself (the API crate serves `GET /api/v1/shares`).

mod catalog;
pub mod exclude;
mod fetch;
pub mod index;
pub mod secrets;
pub mod shares;
mod size;
pub mod transfer;
pub mod watch;

pub use catalog::{Catalog, CatalogEntry, MIN_REFETCH, Owner, RemoteStatus};
pub use exclude::Filter;
pub use fetch::{FetchError, fetch_shares, fetch_shares_from};
pub use index::{EntryKind, FileEntry, FileManifest, HashCache, ShareIndex};
pub use secrets::SecretFinding;
pub use shares::{ShareList, ShareOwner, SharedEnvironment, SharedWorkspace};
pub use size::SizeCache;
