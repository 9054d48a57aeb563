//! The few API calls the tray makes (start, stop, pause sharing) and the state it reads, over
//! the node's HTTP API like every other client.

use std::time::Duration;

use aienv_core::WorkspaceSummary;
use aienv_core::clone::CloneJob;
use aienv_core::peer::Peer;
use aienv_core::run::Run;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(url: &str, key: Option<String>) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Api {
            url: url.to_string(),
            key,
            http,
        }
    }

    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn send<T: DeserializeOwned>(&self, r: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let res = r.send().await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("the node refused");
            anyhow::bail!("{message}");
        }
        Ok(serde_json::from_value(body)?)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn workspaces(&self) -> anyhow::Result<Vec<WorkspaceSummary>> {
        self.get("/workspaces").await
    }
    pub async fn runs(&self) -> anyhow::Result<Vec<Run>> {
        self.get("/runs").await
    }
    pub async fn clones(&self) -> anyhow::Result<Vec<CloneJob>> {
        self.get("/clones").await
    }
    pub async fn peers(&self) -> anyhow::Result<Vec<Peer>> {
        self.get("/peers").await
    }
    pub async fn sharing_paused(&self) -> anyhow::Result<bool> {
        let v: Value = self.get("/sharing").await?;
        Ok(v["paused"].as_bool().unwrap_or(false))
    }

    pub async fn start(&self, workspace: &str, environment: &str) -> anyhow::Result<Run> {
        let body = json!({ "workspace": workspace, "environment": environment });
        self.send(self.request(reqwest::Method::POST, "/runs").json(&body))
            .await
    }
    pub async fn stop(&self, run: &str) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::DELETE, &format!("/runs/{run}")))
            .await
    }
    pub async fn access_requests(&self) -> anyhow::Result<Vec<aienv_core::access::AccessRequest>> {
        self.get("/access-requests").await
    }
    pub async fn decide(&self, request: &str, approve: bool) -> anyhow::Result<Value> {
        let body = json!({ "approve": approve });
        let path = format!("/access-requests/{request}");
        self.send(self.request(reqwest::Method::POST, &path).json(&body))
            .await
    }
    pub async fn pause_sharing(&self, paused: bool) -> anyhow::Result<Value> {
        let body = json!({ "paused": paused });
        self.send(self.request(reqwest::Method::PUT, "/sharing").json(&body))
            .await
    }

    /// The event stream's WebSocket URL (with the key as `access_token`, as browsers send it).
    pub fn events_url(&self) -> String {
        let ws = self.url.replacen("http", "ws", 1);
        match &self.key {
            Some(k) => format!("{ws}/api/v1/events?access_token={k}"),
            None => format!("{ws}/api/v1/events"),
        }
    }
}
