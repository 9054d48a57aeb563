//! `aienv share token ...`, `aienv access ...`, `aienv audit`: who gets into this node's shares.

use aienv_core::access::AccessRequest;
use aienv_trust::{AuditRecord, NewToken, TokenInfo};
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::{Client, seg};
use crate::output::table;

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Make a token for a workspace shared with `access = "token"`. Its secret is shown once.
    Create {
        workspace: String,
        /// Who it is for, to recognise it later.
        #[arg(long)]
        label: Option<String>,
        /// How long it works: 90s, 30m, 12h, 7d (default: until revoked).
        #[arg(long, value_parser = parse_duration)]
        expires: Option<u64>,
    },
    /// The workspace's tokens (never their secrets).
    #[command(alias = "ls")]
    List { workspace: String },
    /// Revoke a token: peers presenting it are refused from now on.
    Revoke { workspace: String, id: String },
}

impl TokenCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        match self {
            TokenCmd::Create {
                workspace,
                label,
                expires,
            } => {
                let body = json!({ "label": label, "expires_in_s": expires });
                let t: NewToken = c
                    .send(
                        Method::POST,
                        &format!("/workspaces/{}/tokens", seg(&workspace)),
                        Some(&body),
                    )
                    .await?;
                c.print(&t, |t| {
                    println!(
                        "token {} for {workspace:?} (shown once; keep it safe):",
                        t.info.id
                    );
                    println!("  {}", t.secret);
                    println!(
                        "The peer clones with: aienv clone PEER/{workspace} --token {}",
                        t.secret
                    );
                    if let Some(e) = t.info.expires_ms {
                        println!("It stops working in {}.", until(e));
                    }
                });
            }
            TokenCmd::List { workspace } => {
                let list: Vec<TokenInfo> = c
                    .get(&format!("/workspaces/{}/tokens", seg(&workspace)))
                    .await?;
                c.print(&list, |list| {
                    if list.is_empty() {
                        println!("no tokens for {workspace:?}; make one with `aienv share token create {workspace}`");
                        return;
                    }
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.clone(),
                                t.label.clone().unwrap_or_else(|| "-".into()),
                                state(t),
                                t.last_used_ms.map_or("never".into(), ago),
                            ]
                        })
                        .collect();
                    table(&["ID", "LABEL", "STATE", "LAST USED"], &rows);
                });
            }
            TokenCmd::Revoke { workspace, id } => {
                let t: TokenInfo = c
                    .send(
                        Method::DELETE,
                        &format!("/workspaces/{}/tokens/{}", seg(&workspace), seg(&id)),
                        None::<&()>,
                    )
                    .await?;
                c.print(&t, |t| println!("revoked token {} of {workspace:?}", t.id));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum AccessCmd {
    /// Requests waiting for your answer (shares with `access = "approve"`).
    #[command(alias = "ls")]
    List,
    /// Let the peer in: it gets a token of its own, which you can revoke later.
    Approve { id: String },
    /// Refuse the request.
    Deny { id: String },
}

impl AccessCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        let (id, approve) = match self {
            AccessCmd::List => {
                let list: Vec<AccessRequest> = c.get("/access-requests").await?;
                c.print(&list, |list| {
                    if list.is_empty() {
                        println!("no access requests are waiting");
                        return;
                    }
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.clone(),
                                r.peer_name.clone().unwrap_or_else(|| "?".into()),
                                r.from.clone(),
                                r.workspace.clone(),
                                until(r.expires_ms),
                            ]
                        })
                        .collect();
                    table(&["ID", "PEER", "FROM", "WORKSPACE", "EXPIRES IN"], &rows);
                });
                return Ok(());
            }
            AccessCmd::Approve { id } => (id, true),
            AccessCmd::Deny { id } => (id, false),
        };
        let r: AccessRequest = c
            .send(
                Method::POST,
                &format!("/access-requests/{}", seg(&id)),
                Some(&json!({ "approve": approve })),
            )
            .await?;
        c.print(&r, |r| {
            let who = r.peer_name.as_deref().unwrap_or(&r.from);
            if approve {
                println!(
                    "approved: {who} may clone {:?} (revoke with `aienv share token list {}`)",
                    r.workspace, r.workspace
                );
            } else {
                println!("refused {who}'s request for {:?}", r.workspace);
            }
        });
        Ok(())
    }
}

/// `aienv audit`: what peers asked of this node's shares, newest first.
pub async fn audit(c: &Client, limit: usize) -> anyhow::Result<()> {
    let list: Vec<AuditRecord> = c.get(&format!("/audit?limit={limit}")).await?;
    c.print(&list, |list| {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|r| {
                vec![
                    ago(r.time_ms),
                    r.peer_name.clone().unwrap_or_else(|| "-".into()),
                    r.from.clone(),
                    r.workspace.clone(),
                    r.action.clone(),
                    if r.allowed { "allowed" } else { "refused" }.into(),
                    r.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            &[
                "WHEN",
                "PEER",
                "FROM",
                "WORKSPACE",
                "ACTION",
                "RESULT",
                "DETAIL",
            ],
            &rows,
        );
    });
    Ok(())
}

fn state(t: &TokenInfo) -> String {
    if t.revoked_ms.is_some() {
        "revoked".into()
    } else if t.expires_ms.is_some_and(|e| e <= now_ms()) {
        "expired".into()
    } else if let Some(e) = t.expires_ms {
        format!("valid for {}", until(e))
    } else if let Some(p) = &t.granted_to {
        format!("granted to {p}")
    } else {
        "valid".into()
    }
}

/// `90s`, `30m`, `12h`, `7d` (or plain seconds) in seconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    if secs == 0 {
        return Err("a token must last at least a second".into());
    }
    Ok(secs)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn ago(ms: u64) -> String {
    format!("{} ago", span(now_ms().saturating_sub(ms) / 1000))
}

fn until(ms: u64) -> String {
    span(ms.saturating_sub(now_ms()) / 1000)
}

fn span(s: u64) -> String {
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(super::parse_duration("90s"), Ok(90));
        assert_eq!(super::parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(super::parse_duration("45"), Ok(45));
        assert!(super::parse_duration("0").is_err());
        assert!(super::parse_duration("3w").unwrap_err().contains("unit"));
        assert!(super::parse_duration("soon").is_err());
    }
}
