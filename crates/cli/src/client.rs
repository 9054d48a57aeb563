//! The HTTP client of the client commands: finds the node, sends requests, and turns failures
//! into sentences that say what to do.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug)]
pub struct Client {
    pub base: String,
    /// Where the URL came from, for error messages.
    source: String,
    api_key: Option<String>,
    pub json: bool,
    http: reqwest::Client,
}

impl Client {
    pub fn new(
        node: Option<String>,
        data_dir: Option<PathBuf>,
        api_key: Option<String>,
        json: bool,
    ) -> anyhow::Result<Self> {
        let (base, source) = match node {
            Some(url) => (url, "--node / AIENV_NODE".to_string()),
            None => {
                let dir = data_dir
                    .or_else(aienv_core::dirs::default_data_dir)
                    .ok_or_else(|| anyhow!("no node to talk to: pass --node URL"))?;
                let record = aienv_node::read_record(&dir).ok_or_else(|| {
                    anyhow!(
                        "no aienv node is running for data dir {} (it has no {}); start one with `aienv serve`, or point --node / AIENV_NODE at one",
                        dir.display(),
                        aienv_node::NODE_FILE
                    )
                })?;
                (
                    record.url,
                    format!("{}/{}", dir.display(), aienv_node::NODE_FILE),
                )
            }
        };
        let http = reqwest::Client::builder()
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            source,
            api_key,
            json,
            http,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(Method::GET, path, None::<&()>).await
    }

    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let text = self
            .send_raw(
                method,
                path,
                body.map(|b| serde_json::to_vec(b).expect("request serialises")),
                "application/json",
            )
            .await?;
        serde_json::from_str(&text).with_context(|| {
            format!("the node sent an answer this aienv does not understand: {text}")
        })
    }

    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> anyhow::Result<String> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let res = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = res.status();
        let text = res.text().await.context("the node's answer broke off")?;
        if status.is_success() {
            return Ok(text);
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{status}: {text}"));
        bail!("{message}")
    }

    /// The WebSocket URL of the event stream.
    pub fn events_url(&self) -> String {
        let ws = self.base.replacen("http", "ws", 1);
        match &self.api_key {
            Some(k) => format!("{ws}/api/v1/events?access_token={k}"),
            None => format!("{ws}/api/v1/events"),
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let why = if e.is_connect() {
            "nothing answers there"
        } else if e.is_timeout() {
            "it did not answer in time"
        } else {
            "the request failed"
        };
        anyhow!(
            "cannot reach the aienv node at {} ({why}; the address came from {}). Is it running? Start one with `aienv serve`, or point --node / AIENV_NODE at one",
            self.base,
            self.source
        )
    }

    /// Prints `value` as JSON when `--json` was given; otherwise runs `human`.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T)) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("output serialises")
            );
        } else {
            human(value);
        }
    }
}

/// A path segment, escaped for use in a URL.
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
