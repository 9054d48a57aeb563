//! The catalog as a user browses it: each entry with whether it fits this machine and, when it
//! does not, why ("needs 1 GPU with 16 GB; this machine has none"), from the same fit check a
//! run uses.

use aienv_core::Environment;
use aienv_sharing::CatalogEntry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::Node;

/// A catalog entry and how it fits here.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatalogItem {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub fit: FitSummary,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FitSummary {
    pub fits: bool,
    /// What this machine lacks, one sentence each.
    pub missing: Vec<String>,
    /// When it fits only through its fallback (no GPU here): what changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Node {
    /// [`Node::catalog`], each entry checked against this machine's resources.
    pub async fn catalog_with_fit(&self) -> Vec<CatalogItem> {
        let machine = self.resources().await;
        self.catalog()
            .into_iter()
            .map(|entry| {
                // A workspace without environments is files: it fits anywhere with the disk.
                let Some(kind) = entry.kind else {
                    return CatalogItem {
                        fit: FitSummary {
                            fits: true,
                            missing: Vec::new(),
                            note: None,
                        },
                        entry,
                    };
                };
                let env = Environment {
                    requires: entry.requires.clone(),
                    fallback: entry.fallback.clone(),
                    ..Environment::new(entry.name.clone(), kind)
                };
                let fit = aienv_runtime::fit::check(&env, &machine);
                CatalogItem {
                    fit: FitSummary {
                        fits: fit.fits(),
                        missing: fit.missing,
                        note: fit.note,
                    },
                    entry,
                }
            })
            .collect()
    }
}
