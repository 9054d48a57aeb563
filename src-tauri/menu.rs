//! The tray menu as data, built from what the node reports: peers waiting for the owner's yes
//! (Approve / Deny), recent environments with start or stop and their tool links, running clones
//! with progress, the peers count, and the app's own items. Kept free of Tauri so it is tested without a tray host; `tray.rs` turns it into a menu.

use aienv_core::WorkspaceSummary;
use aienv_core::access::AccessRequest;
use aienv_core::clone::{CloneJob, CloneState};
use aienv_core::run::Run;

/// How many environments the menu lists (recent ones first, then the rest by name).
pub const ENVIRONMENTS: usize = 8;

/// What the menu is built from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub workspaces: Vec<WorkspaceSummary>,
    /// Newest first.
    pub runs: Vec<Run>,
    pub clones: Vec<CloneJob>,
    pub peers: usize,
    /// Access requests waiting for an answer, oldest first.
    pub access: Vec<AccessRequest>,
    pub sharing_paused: bool,
    /// The node is reachable; when not, the menu says so and offers only the app's items.
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Item {
        id: String,
        label: String,
        enabled: bool,
    },
    Check {
        id: String,
        label: String,
        checked: bool,
    },
    Submenu {
        label: String,
        items: Vec<Entry>,
    },
    Separator,
}

/// What a click on a menu item asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    OpenWindow,
    OpenView(String),
    Start {
        workspace: String,
        environment: String,
    },
    Stop {
        run: String,
    },
    OpenLink(String),
    PauseSharing(bool),
    /// Answer an access request.
    Decide {
        request: String,
        approve: bool,
    },
    Quit,
}

impl Action {
    /// The menu item id for this action.
    pub fn id(&self) -> String {
        match self {
            Action::OpenWindow => "open".into(),
            Action::OpenView(v) => format!("view:{v}"),
            Action::Start {
                workspace,
                environment,
            } => format!("start:{workspace}:{environment}"),
            Action::Stop { run } => format!("stop:{run}"),
            Action::OpenLink(url) => format!("link:{url}"),
            Action::PauseSharing(p) => format!("pause:{p}"),
            Action::Decide { request, approve } => format!("access:{approve}:{request}"),
            Action::Quit => "quit".into(),
        }
    }

    pub fn parse(id: &str) -> Option<Action> {
        let (kind, rest) = id.split_once(':').unwrap_or((id, ""));
        Some(match kind {
            "open" => Action::OpenWindow,
            "quit" => Action::Quit,
            "view" => Action::OpenView(rest.to_string()),
            "stop" => Action::Stop { run: rest.into() },
            "link" => Action::OpenLink(rest.into()),
            "pause" => Action::PauseSharing(rest == "true"),
            "access" => {
                let (approve, request) = rest.split_once(':')?;
                Action::Decide {
                    request: request.into(),
                    approve: approve == "true",
                }
            }
            "start" => {
                // Workspace ids have no ':'; environment names cannot have one either.
                let (workspace, environment) = rest.split_once(':')?;
                Action::Start {
                    workspace: workspace.into(),
                    environment: environment.into(),
                }
            }
            _ => return None,
        })
    }
}

fn item(action: Action, label: impl Into<String>) -> Entry {
    Entry::Item {
        id: action.id(),
        label: label.into(),
        enabled: true,
    }
}

fn note(label: impl Into<String>) -> Entry {
    Entry::Item {
        id: "note".into(),
        label: label.into(),
        enabled: false,
    }
}

pub fn build(s: &Snapshot) -> Vec<Entry> {
    let mut menu = vec![
        item(Action::OpenWindow, "Open AI Environment Manager"),
        Entry::Separator,
    ];
    if !s.connected {
        menu.push(note("The node does not answer"));
    } else {
        for r in &s.access {
            let who = r.peer_name.as_deref().unwrap_or(&r.from);
            let answer = |approve| Action::Decide {
                request: r.id.clone(),
                approve,
            };
            menu.push(Entry::Submenu {
                label: format!("{who} asks to clone {}", r.workspace),
                items: vec![
                    note(format!("from {}", r.from)),
                    item(answer(true), "Approve"),
                    item(answer(false), "Deny"),
                ],
            });
        }
        if !s.access.is_empty() {
            menu.push(Entry::Separator);
        }
        menu.extend(environments(s));
        let running: Vec<&CloneJob> = s
            .clones
            .iter()
            .filter(|c| c.state == CloneState::Running)
            .collect();
        if !running.is_empty() {
            menu.push(Entry::Separator);
            for c in running {
                let p = &c.progress;
                let pct = (p.bytes_done * 100).checked_div(p.bytes_total).unwrap_or(0);
                menu.push(item(
                    Action::OpenView("clones".into()),
                    format!("Cloning {} from {}: {pct}%", c.workspace_name, c.peer_name),
                ));
            }
        }
        menu.push(Entry::Separator);
        menu.push(item(
            Action::OpenView("peers".into()),
            match s.peers {
                0 => "No peers on the LAN".to_string(),
                1 => "1 peer on the LAN".to_string(),
                n => format!("{n} peers on the LAN"),
            },
        ));
        menu.push(Entry::Check {
            id: Action::PauseSharing(!s.sharing_paused).id(),
            label: "Pause sharing".into(),
            checked: s.sharing_paused,
        });
    }
    menu.push(Entry::Separator);
    menu.push(item(Action::Quit, "Quit"));
    menu
}

/// Recent environments (by their last run) first, then the others by name; each a submenu with
/// Start, or Stop and its tool links when it runs.
fn environments(s: &Snapshot) -> Vec<Entry> {
    let mut order: Vec<(String, String, String)> = Vec::new(); // (workspace id, name, env)
    for r in &s.runs {
        if !order
            .iter()
            .any(|(w, _, e)| *w == r.workspace_id && *e == r.environment)
        {
            order.push((
                r.workspace_id.clone(),
                r.workspace_name.clone(),
                r.environment.clone(),
            ));
        }
    }
    let mut rest: Vec<(String, String, String)> = s
        .workspaces
        .iter()
        .flat_map(|w| {
            w.environments
                .iter()
                .map(|e| (w.id.clone(), w.name.clone(), e.clone()))
        })
        .filter(|(w, _, e)| !order.iter().any(|(ow, _, oe)| ow == w && oe == e))
        .collect();
    rest.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    // Environments of workspaces that are gone are not offered; names are the current ones.
    order.retain_mut(
        |(w, name, _)| match s.workspaces.iter().find(|x| x.id == *w) {
            Some(x) => {
                name.clone_from(&x.name);
                true
            }
            None => false,
        },
    );
    order.extend(rest);
    if order.is_empty() {
        return vec![note("No environments yet")];
    }
    order
        .into_iter()
        .take(ENVIRONMENTS)
        .map(|(ws, ws_name, env)| {
            let live = s
                .runs
                .iter()
                .find(|r| r.workspace_id == ws && r.environment == env && !r.state.is_final());
            let mut items = Vec::new();
            let label = match live {
                Some(run) => {
                    items.push(note(format!(
                        "{} ({})",
                        run.state.describe(),
                        run.kind.as_str()
                    )));
                    for t in &run.tools {
                        if let Some(url) = &t.url {
                            items.push(item(
                                Action::OpenLink(url.clone()),
                                format!("Open {}", t.name),
                            ));
                        }
                    }
                    items.push(item(
                        Action::Stop {
                            run: run.id.clone(),
                        },
                        "Stop",
                    ));
                    format!("● {ws_name} / {env}")
                }
                None => {
                    items.push(item(
                        Action::Start {
                            workspace: ws.clone(),
                            environment: env.clone(),
                        },
                        "Start",
                    ));
                    format!("{ws_name} / {env}")
                }
            };
            Entry::Submenu { label, items }
        })
        .collect()
}

#[cfg(test)]
mod tests;
