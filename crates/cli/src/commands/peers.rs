//! `aienv peers`, `aienv catalog`, `aienv discovery status`.

use aienv_core::peer::Peer;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, seg};
use crate::output::{bytes, requires, table};

#[derive(Debug, Args)]
pub struct PeersArgs {
    #[command(subcommand)]
    pub command: Option<PeersCmd>,
}

#[derive(Debug, Subcommand)]
pub enum PeersCmd {
    /// List the peers this node knows (the default).
    #[command(alias = "ls")]
    List,
    /// Add a peer by the address of its API (HOST:PORT), for networks that block multicast.
    Add { address: String },
    /// Remove a peer added by address.
    #[command(alias = "rm")]
    Remove { address: String },
    /// List the peers added by address.
    Static,
    /// Trust the certificate a peer presents now, replacing the one pinned when it was first
    /// seen. Do this only when you know why it changed (the peer was reinstalled).
    Trust { peer: String },
    /// The peers whose certificates this node pinned.
    Trusted,
}

impl PeersCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        match self {
            PeersCmd::List => {
                let peers: Vec<Peer> = c.get("/peers").await?;
                c.print(&peers, |peers| {
                    if peers.is_empty() {
                        println!("no peers yet. Other nodes appear within a second when multicast works on this network;");
                        println!("`aienv discovery status` shows what discovery sees, `aienv peers add HOST:PORT` adds one by address");
                        return;
                    }
                    let rows: Vec<Vec<String>> = peers
                        .iter()
                        .map(|p| {
                            let via = serde_json::to_value(p.via).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                            vec![p.name.clone(), short(&p.id), p.url.clone(), p.version.clone(), p.shared.to_string(), via]
                        })
                        .collect();
                    table(&["NAME", "ID", "ADDRESS", "VERSION", "SHARED", "VIA"], &rows);
                });
            }
            PeersCmd::Add { address } => {
                let v: Value = c
                    .send(Method::POST, "/peers", Some(&json!({ "address": address })))
                    .await?;
                c.print(&v, |v| {
                    println!(
                        "added peer {}; it shows in `aienv peers` once it answers",
                        v["address"].as_str().unwrap_or("")
                    )
                });
            }
            PeersCmd::Remove { address } => {
                let v: Value = c
                    .send(
                        Method::DELETE,
                        &format!("/peers/static/{}", seg(&address)),
                        None::<&()>,
                    )
                    .await?;
                c.print(&v, |v| {
                    println!("removed peer {}", v["address"].as_str().unwrap_or(""))
                });
            }
            PeersCmd::Static => {
                let list: Vec<String> = c.get("/peers/static").await?;
                c.print(&list, |list| {
                    for a in list {
                        println!("{a}");
                    }
                });
            }
            PeersCmd::Trust { peer } => {
                let t: aienv_trust::TrustedPeer = c
                    .send(
                        reqwest::Method::POST,
                        &format!("/peers/{}/trust", crate::client::seg(&peer)),
                        None::<&()>,
                    )
                    .await?;
                c.print(&t, |t| {
                    println!(
                        "now trusting {:?} ({}) with certificate {}",
                        t.name, t.id, t.fingerprint
                    )
                });
            }
            PeersCmd::Trusted => {
                let list: Vec<aienv_trust::TrustedPeer> = c.get("/peers/trusted").await?;
                c.print(&list, |list| {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|t| vec![t.name.clone(), t.id.clone(), t.fingerprint.clone()])
                        .collect();
                    crate::output::table(&["NAME", "ID", "CERTIFICATE (SHA-256)"], &rows);
                });
            }
        }
        Ok(())
    }
}

pub async fn catalog(c: &Client) -> anyhow::Result<()> {
    let entries: Vec<Value> = c.get("/catalog").await?;
    c.print(&entries, |entries| {
        if entries.is_empty() {
            println!("the catalog is empty: nothing is shared here or by any peer (`aienv share WORKSPACE` shares one)");
            return;
        }
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let owner = e["owner"]["name"].as_str().unwrap_or("").to_string();
                let owner = if e["owner"]["local"] == true { format!("{owner} (here)") } else { owner };
                let req = serde_json::from_value(e["requires"].clone()).map(|r| requires(&r)).unwrap_or_default();
                vec![
                    owner,
                    e["workspace"].as_str().unwrap_or("").into(),
                    // A workspace shared without environments: files only.
                    match e["kind"].as_str() {
                        Some(_) => e["name"].as_str().unwrap_or("").into(),
                        None => "-".into(),
                    },
                    e["kind"].as_str().unwrap_or("files").into(),
                    bytes(e["size_bytes"].as_u64().unwrap_or(0)),
                    req,
                    e["access"].as_str().unwrap_or("").into(),
                ]
            })
            .collect();
        table(&["OWNER", "WORKSPACE", "ENVIRONMENT", "KIND", "SIZE", "REQUIRES", "ACCESS"], &rows);
    });
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum DiscoveryCmd {
    /// Interfaces in use, datagrams sent and received, drops by reason, static peers.
    Status,
}

impl DiscoveryCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        let DiscoveryCmd::Status = self;
        let r: Value = c.get("/discovery").await?;
        c.print(&r, |r| {
            println!("instance id: {}", r["instance_id"].as_str().unwrap_or(""));
            let s = &r["status"];
            if s.is_null() {
                println!("discovery is not running (the node is not online yet)");
            } else {
                println!("group: {}  every {} ms, peers expire after {} ms", s["group"].as_str().unwrap_or(""), s["interval_ms"], s["expiry_ms"]);
                let ifaces: Vec<String> = s["interfaces"]
                    .as_array()
                    .map(|a| a.iter().map(|i| format!("{} ({})", i["name"].as_str().unwrap_or(""), i["addr"].as_str().unwrap_or(""))).collect())
                    .unwrap_or_default();
                if ifaces.is_empty() {
                    println!("interfaces: none (no up interface with a private address): multicast discovery is off, use `aienv peers add`");
                } else {
                    println!("interfaces: {}", ifaces.join(", "));
                }
                println!("peers: {}", s["peers"]);
                println!("sent: {} datagrams ({} errors{})", s["sent"], s["send_errors"], s["last_send_error"].as_str().map(|e| format!(", last: {e}")).unwrap_or_default());
                println!("received: {} (accepted {})", s["received"], s["accepted"]);
                let drops: Vec<String> = s["dropped"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect()).unwrap_or_default();
                println!("dropped: {}", if drops.is_empty() { "none".to_string() } else { drops.join(", ") });
            }
            let statics: Vec<&str> = r["static_peers"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            println!("static peers: {}", if statics.is_empty() { "none".to_string() } else { statics.join(", ") });
            for cat in r["catalogs"].as_array().into_iter().flatten() {
                if let Some(err) = cat["error"].as_str() {
                    println!("catalog of {}: {err}", cat["name"].as_str().unwrap_or(""));
                }
            }
        });
        Ok(())
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}
