//! Points the installers at the node's package index (its LAN cache), so that a build fetches
//! from this node and its peers before the internet, and works with no internet at all when the
//! LAN has the packages.
//!
//! The index replaces the installers' default index only: extra indexes a user configured for
//! uv or pip stay as they are.

use std::collections::BTreeMap;

/// The variables that make uv and pip use `index` as their default index.
pub(crate) fn vars(index: &str) -> BTreeMap<String, String> {
    [
        ("UV_DEFAULT_INDEX", index),
        ("PIP_INDEX_URL", index),
        // pip asks PyPI for its own newest version on every run; offline that is a wait.
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_installers_get_the_index() {
        let v = super::vars("http://127.0.0.1:1/api/v1/index/simple");
        assert_eq!(
            v["UV_DEFAULT_INDEX"],
            "http://127.0.0.1:1/api/v1/index/simple"
        );
        assert_eq!(v["PIP_INDEX_URL"], v["UV_DEFAULT_INDEX"]);
    }
}
