//! Tool templates: `{host}`, `{port}`, `{token}` and `{workspace}` in commands and links.
//!
//! The manifest validator already refused unknown placeholders; anything else in braces (shell
//! `${VAR}`, JSON) passes through untouched.

/// What a template's placeholders stand for in one run of one tool.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
    pub token: &'a str,
    pub workspace: &'a str,
}

pub fn fill(template: &str, v: &Vars<'_>) -> String {
    let port = v.port.map(|p| p.to_string()).unwrap_or_default();
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let hit = [
            ("{host}", v.host),
            ("{port}", port.as_str()),
            ("{token}", v.token),
            ("{workspace}", v.workspace),
        ]
        .into_iter()
        .find(|(k, _)| after.starts_with(k));
        match hit {
            // `${port}` is the shell's, not ours.
            Some((k, val)) if !out.ends_with('$') => {
                out.push_str(val);
                rest = &after[k.len()..];
            }
            _ => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A random token for one run: 128 bits from the OS, as 32 hex digits.
pub fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_other_braces_pass() {
        let v = Vars {
            host: "127.0.0.1",
            port: Some(8888),
            token: "t0k",
            workspace: "/w",
        };
        assert_eq!(
            fill("http://{host}:{port}/lab?token={token}", &v),
            "http://127.0.0.1:8888/lab?token=t0k"
        );
        assert_eq!(
            fill("cd {workspace} && echo ${port} '{\"a\":1}' {other}", &v),
            "cd /w && echo ${port} '{\"a\":1}' {other}"
        );
        assert_ne!(token(), token());
        assert_eq!(token().len(), 32);
    }
}
