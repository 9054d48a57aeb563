//! The models an environment uses (`models = ["ORG/NAME", "ORG/NAME@REV"]`), brought from the LAN
//! before it starts: each one is pulled from a peer's Hugging Face cache into this machine's
//! (verified; files already here are not fetched again). The run inherits the node's
//! environment, so its tools look in the same cache (`HF_HUB_CACHE`, `HF_HOME` or
//! `~/.cache/huggingface`) and find them as if downloaded. A model no peer has is left to the
//! tool (which downloads it from the hub if it can), and the run's notes say so.

use std::time::Duration;

use aienv_core::Environment;
use aienv_core::run::SetupProgress;

use crate::models::{ModelPullRequest, PullState};
use crate::{Node, NodeError};

impl Node {
    /// Brings `env`'s models here for run `id`; returns notes for the run.
    pub(crate) async fn ensure_models(&self, id: &str, env: &Environment) -> Vec<String> {
        let mut notes = Vec::new();
        for model in &env.models {
            let (repo, revision) = model.split_once('@').unwrap_or((model, "main"));
            self.models_setup(id, format!("model {repo}: asking the LAN"));
            let req = ModelPullRequest {
                repo: repo.to_string(),
                revision: Some(revision.to_string()),
                from: None,
                kind: None,
            };
            match self.pull_model(req).await {
                Ok(mut pull) => {
                    while pull.state == PullState::Running {
                        let pct = if pull.bytes_total > 0 {
                            pull.bytes_fetched as f64 * 100.0 / pull.bytes_total as f64
                        } else {
                            100.0
                        };
                        self.models_setup(
                            id,
                            format!("model {repo}: from {} {pct:.0}%", pull.peer_name),
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        match self.model_pull(&pull.id) {
                            Ok(p) => pull = p,
                            Err(_) => break,
                        }
                    }
                    notes.push(match pull.state {
                        PullState::Done => format!(
                            "model {repo}@{revision}: from {} ({} of {} files fetched, verified)",
                            pull.peer_name, pull.files_fetched, pull.files
                        ),
                        _ => format!(
                            "model {repo}@{revision} could not be brought from {}: {}",
                            pull.peer_name,
                            pull.error.unwrap_or_default()
                        ),
                    });
                }
                Err(e) if self.has_model(repo, revision) => {
                    tracing::debug!("model {repo}: no peer offers it, and it is here: {e}");
                }
                Err(e) => notes.push(not_on_lan(model, &e)),
            }
        }
        notes
    }

    /// Whether this machine's cache has `repo` at `revision` (a ref or a commit).
    fn has_model(&self, repo: &str, revision: &str) -> bool {
        self.local_models().is_ok_and(|models| {
            models.iter().any(|m| {
                m.repo == repo
                    && (m.refs.contains_key(revision) || m.revisions.iter().any(|c| c == revision))
            })
        })
    }

    fn models_setup(&self, id: &str, message: String) {
        self.update_run(id, |r| {
            r.setup = Some(SetupProgress {
                step: "models".into(),
                message,
                ..Default::default()
            });
        });
    }
}

fn not_on_lan(model: &str, e: &NodeError) -> String {
    format!("model {model} is not on the LAN ({e}); the tool downloads it from the hub if it can")
}
