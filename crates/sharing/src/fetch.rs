//! Fetching a peer's share list: bounded in time and size, and checked against who we expect.

use std::time::Duration;

use crate::ShareList;

/// A share list larger than this is refused (a real one is kilobytes).
pub const MAX_SHARES_BYTES: usize = 4 << 20;
/// A peer that takes longer than this to answer is skipped for now.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the peer at {url} does not answer ({why})")]
    Unreachable { url: String, why: String },
    #[error("the peer at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("the peer at {url} sent a share list this node cannot read ({why})")]
    Garbage { url: String, why: String },
    /// This node will not talk to the peer (a changed certificate, plain HTTP).
    #[error("{0}")]
    Untrusted(String),
    #[error("the peer at {url} answered as another node (id {got}, expected {expected})")]
    WrongNode {
        url: String,
        got: String,
        expected: String,
    },
}

/// `GET {base}/api/v1/shares`. With `expected_id`, a list from another node is refused.
pub async fn fetch_shares(
    http: &reqwest::Client,
    base: &str,
    expected_id: Option<&str>,
) -> Result<ShareList, FetchError> {
    fetch_shares_from(http, base, expected_id)
        .await
        .map(|(list, _)| list)
}

/// [`fetch_shares`], and the fingerprint of the certificate it came over (when over TLS).
pub async fn fetch_shares_from(
    http: &reqwest::Client,
    base: &str,
    expected_id: Option<&str>,
) -> Result<(ShareList, Option<String>), FetchError> {
    let url = base.trim_end_matches('/').to_string();
    let unreachable = |e: reqwest::Error| FetchError::Unreachable {
        url: url.clone(),
        why: if e.is_timeout() {
            "timed out".into()
        } else {
            // Refused, reset, or a TLS handshake that failed (a certificate that is not the
            // pinned one): the causes say which.
            aienv_trust::describe(&e)
        },
    };
    let mut res = http
        .get(format!("{url}/api/v1/shares"))
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(unreachable)?;
    if !res.status().is_success() {
        return Err(FetchError::Status {
            url,
            status: res.status().as_u16(),
        });
    }
    let fingerprint = aienv_trust::response_fingerprint(&res);
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_SHARES_BYTES {
            return Err(FetchError::Garbage {
                url,
                why: format!("more than {MAX_SHARES_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    let list: ShareList = serde_json::from_slice(&body).map_err(|e| FetchError::Garbage {
        url: url.clone(),
        why: e.to_string(),
    })?;
    if let Some(expected) = expected_id
        && list.node.id != expected
    {
        return Err(FetchError::WrongNode {
            url,
            got: list.node.id,
            expected: expected.to_string(),
        });
    }
    Ok((list, fingerprint))
}
