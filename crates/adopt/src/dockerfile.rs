//! A `Dockerfile` to a container environment built from it. `EXPOSE`d ports become tools; a
//! CUDA base image asks for a GPU (and runs without one when the machine has none).

use aienv_core::{EnvKind, Environment, Fallback, FallbackWhen, ImageBuild, ManifestError};

use crate::source::Source;
use crate::{Adopted, port_tool};

pub(crate) fn adopt(src: &Source, name: &str) -> Result<Adopted, ManifestError> {
    let mut env = Environment::new(name, EnvKind::Container);
    let mut a = Adopted::new(Environment::new(name, EnvKind::Container), &src.rel);
    let lines = instructions(&src.text);
    if !lines.iter().any(|(i, _)| i == "FROM") {
        return Err(src.error_at(
            0,
            format!("{} has no FROM line; is it a Dockerfile?", src.rel),
        ));
    }
    let folder = src.folder();
    env.build = Some(ImageBuild {
        dockerfile: src.rel.clone(),
        context: (!folder.is_empty()).then(|| folder.clone()),
        args: Default::default(),
        target: None,
    });
    for (instruction, rest) in &lines {
        match instruction.as_str() {
            "EXPOSE" => {
                for word in rest.split_whitespace() {
                    match word.split('/').next().and_then(|p| p.parse::<u16>().ok()) {
                        Some(p) if !env.ports.contains(&p) => env.ports.push(p),
                        Some(_) => {}
                        None => a
                            .unsupported
                            .push(format!("EXPOSE {word}: not a port number; not published")),
                    }
                }
            }
            "FROM" if rest.to_ascii_lowercase().contains("cuda") => {
                env.requires.gpus = Some(1);
                env.gpus = Some("all".into());
                env.fallback = Some(Fallback {
                    when: FallbackWhen::NoGpu,
                    env: Default::default(),
                });
            }
            _ => {}
        }
    }
    if env.gpus.is_some() {
        a.notes.push(
            "the base image is a CUDA image: the environment asks for a GPU and starts without one where there is none"
                .into(),
        );
    }
    for p in env.ports.clone() {
        env.tools.push(port_tool(format!("port {p}"), p));
    }
    a.environment = env;
    Ok(a)
}

/// The instructions of a Dockerfile with their arguments, continuation lines joined and comments
/// dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') && current.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let whole = std::mem::take(&mut current);
                if let Some((i, rest)) = whole.trim().split_once(char::is_whitespace) {
                    out.push((i.to_ascii_uppercase(), rest.trim().to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn continuation_lines_and_comments() {
        let got = super::instructions("# c\nFROM x\nRUN a \\\n  b\nexpose 80 443/tcp\n");
        assert_eq!(got[0], ("FROM".into(), "x".into()));
        assert_eq!(got[1].0, "RUN");
        assert_eq!(got[2], ("EXPOSE".into(), "80 443/tcp".into()));
    }
}
