//! `aienv workspace add DIR` on a folder without an `aienv.toml`: show what the node proposes
//! from the files there, then write it only when the user accepts (or edits and accepts).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use aienv_core::Workspace;
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;

/// What to do with the proposal without asking.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Ask,
    Yes,
    DryRun,
}

pub async fn add_folder(c: &Client, path: &Path, answer: Answer) -> anyhow::Result<()> {
    let proposal: Value = c
        .send(
            Method::POST,
            "/workspaces/proposal",
            Some(&json!({ "path": path })),
        )
        .await?;
    if c.json && !matches!(answer, Answer::Yes) {
        println!("{}", serde_json::to_string_pretty(&proposal)?);
        return Ok(());
    }
    let mut manifest = proposal["manifest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !c.json {
        show(path, &proposal, &manifest);
    }
    loop {
        let accepted = match answer {
            Answer::DryRun => {
                println!("nothing written (--dry-run)");
                return Ok(());
            }
            Answer::Yes => true,
            Answer::Ask if !std::io::stdin().is_terminal() => bail!(
                "nothing written: accept the proposal with `aienv workspace add {} --yes`",
                path.display()
            ),
            Answer::Ask => {
                match ask("Write this aienv.toml and add the workspace? [y]es / [e]dit / [N]o: ")?
                    .as_str()
                {
                    "y" | "yes" => true,
                    "e" | "edit" => {
                        manifest = edit(&manifest)?;
                        println!("{manifest}");
                        continue;
                    }
                    _ => {
                        println!("nothing written");
                        return Ok(());
                    }
                }
            }
        };
        if !accepted {
            return Ok(());
        }
        let body = json!({ "path": path, "create": true, "manifest": manifest });
        match c
            .send::<Workspace>(Method::POST, "/workspaces", Some(&body))
            .await
        {
            Ok(ws) => {
                c.print(&ws, |ws| {
                    println!(
                        "wrote {} and added workspace {:?} ({}) with environments: {}",
                        ws.path.join(aienv_core::MANIFEST_FILE).display(),
                        ws.name,
                        ws.id,
                        ws.manifest
                            .as_ref()
                            .map(|m| m
                                .environments
                                .iter()
                                .map(|e| e.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "none".into())
                    )
                });
                return Ok(());
            }
            // An edit that does not validate: say why and offer to edit again.
            Err(e) if matches!(answer, Answer::Ask) => {
                eprintln!("{e:#}");
            }
            Err(e) => return Err(e),
        }
    }
}

fn show(path: &Path, p: &Value, manifest: &str) {
    let envs = p["environments"].as_array().cloned().unwrap_or_default();
    println!(
        "{} has no aienv.toml. From the files there, aienv proposes {} environment{}:",
        path.display(),
        envs.len(),
        if envs.len() == 1 { "" } else { "s" }
    );
    for a in &envs {
        let e = &a["environment"];
        println!(
            "\n  {}  ({}{})",
            e["name"].as_str().unwrap_or("?"),
            e["kind"].as_str().unwrap_or("?"),
            e["from"]
                .as_str()
                .map_or(String::new(), |f| format!(", from {f}"))
        );
        let tools: Vec<String> = e["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        if !tools.is_empty() {
            println!("    tools: {}", tools.join(", "));
        }
        for s in e["setup"].as_array().into_iter().flatten() {
            println!("    setup: {}", s.as_str().unwrap_or_default());
        }
        for n in a["notes"].as_array().into_iter().flatten() {
            println!("    note: {}", n.as_str().unwrap_or_default());
        }
        let unsupported = a["unsupported"].as_array().cloned().unwrap_or_default();
        if !unsupported.is_empty() {
            println!("    not acted on:");
            for u in unsupported {
                println!("      - {}", u.as_str().unwrap_or_default());
            }
        }
    }
    for problem in p["problems"].as_array().into_iter().flatten() {
        println!(
            "\n  cannot adopt {}:{}:{}: {}",
            problem["file"].as_str().unwrap_or_default(),
            problem["line"],
            problem["column"],
            problem["message"].as_str().unwrap_or_default()
        );
    }
    for n in p["notes"].as_array().into_iter().flatten() {
        println!("\n  {}", n.as_str().unwrap_or_default());
    }
    println!("\nThe aienv.toml it would write:\n\n{manifest}");
}

fn ask(question: &str) -> anyhow::Result<String> {
    print!("{question}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_ascii_lowercase())
}

/// Opens the text in `$VISUAL`/`$EDITOR` (vi when neither is set) and returns what was saved.
fn edit(text: &str) -> anyhow::Result<String> {
    let file = std::env::temp_dir().join(format!("aienv-{}.toml", std::process::id()));
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&file)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?} (set $EDITOR)"))?;
    let edited = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing written");
    }
    Ok(edited?)
}
