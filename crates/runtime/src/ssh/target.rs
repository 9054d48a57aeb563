//! Where an SSH run goes: `user@host[:port]` as the user typed it, checked before anything runs,
//! and the options every `ssh` of the run is given.

use std::fmt;

/// A machine reached through the system's `ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// What `ssh` is given: `user@host` or `host` (an IPv6 address without its brackets).
    pub destination: String,
    /// `-p PORT`; `None` leaves it to ssh's config (22 by default).
    pub port: Option<u16>,
}

impl SshTarget {
    /// Reads `user@host`, `host`, `user@host:port`, `user@[v6 address]:port` or
    /// `ssh://user@host:port`.
    pub fn parse(text: &str) -> Result<SshTarget, String> {
        let t = text.trim();
        let t = t.strip_prefix("ssh://").unwrap_or(t);
        let bad = |why: &str| {
            Err(format!(
                "{text:?} is not an SSH destination: {why}; write it as user@host or \
                 user@host:port"
            ))
        };
        if t.is_empty() {
            return bad("it is empty");
        }
        // A leading dash would reach ssh as an option, whatever else guards against that.
        if t.starts_with('-') {
            return bad("it starts with '-'");
        }
        if let Some(c) = t.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return bad(&format!("it contains {c:?}"));
        }
        let (user, rest) = match t.rsplit_once('@') {
            Some(("", _)) => return bad("the user before '@' is empty"),
            Some((u, r)) => (Some(u), r),
            None => (None, t),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((host, after)) = inner.split_once(']') else {
                return bad("'[' has no closing ']'");
            };
            match after {
                "" => (host, None),
                p => match p.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return bad("only ':port' may follow ']'"),
                },
            }
        } else {
            match rest.matches(':').count() {
                0 => (rest, None),
                1 => {
                    let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
                    (h, Some(p))
                }
                _ => return bad("an IPv6 address goes in brackets, as [fe80::1]:22"),
            }
        };
        if host.is_empty() {
            return bad("the host is empty");
        }
        if host.contains(['/', '@', '[', ']']) {
            return bad("the host contains '/', '@' or brackets");
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return bad(&format!("{p:?} is not a port (1 to 65535)")),
                Ok(p) => Some(p),
            },
        };
        let destination = match user {
            Some(u) => format!("{u}@{host}"),
            None => host.to_string(),
        };
        Ok(SshTarget { destination, port })
    }

    /// The options every `ssh` of a run gets: never ask anything (keys come from the agent or
    /// ssh's config), give up on a dead link, print only errors (no "Connection closed" lines in
    /// the run's log).
    pub fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "BatchMode=yes",
            "ConnectTimeout=15",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "LogLevel=ERROR",
        ]
        .iter()
        .flat_map(|opt| ["-o".to_string(), opt.to_string()])
        .collect();
        if let Some(p) = self.port {
            o.extend(["-p".to_string(), p.to_string()]);
        }
        o
    }

    /// How to log in by hand, for messages: `ssh -p 2222 user@host`.
    pub fn command_line(&self) -> String {
        match self.port {
            Some(p) => format!("ssh -p {p} {}", self.destination),
            None => format!("ssh {}", self.destination),
        }
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self
            .destination
            .rsplit_once('@')
            .map_or(self.destination.as_str(), |(_, h)| h);
        match (self.port, host.contains(':')) {
            (Some(p), true) => {
                let user = self.destination.strip_suffix(host).unwrap_or_default();
                write!(f, "{user}[{host}]:{p}")
            }
            (Some(p), false) => write!(f, "{}:{p}", self.destination),
            (None, _) => f.write_str(&self.destination),
        }
    }
}

impl std::str::FromStr for SshTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SshTarget::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> SshTarget {
        SshTarget::parse(s).unwrap()
    }

    #[test]
    fn the_forms_users_write_are_read() {
        assert_eq!(
            ok("alice@gpu-box"),
            SshTarget {
                destination: "alice@gpu-box".into(),
                port: None
            }
        );
        assert_eq!(ok("gpu-box").destination, "gpu-box");
        assert_eq!(ok("root@10.0.0.2:2222").port, Some(2222));
        assert_eq!(ok("ssh://bob@host:22").destination, "bob@host");
        let v6 = ok("me@[fe80::1]:2200");
        assert_eq!(
            (v6.destination.as_str(), v6.port),
            ("me@fe80::1", Some(2200))
        );
        assert_eq!(v6.to_string(), "me@[fe80::1]:2200");
        assert_eq!(ok("root@10.0.0.2:2222").to_string(), "root@10.0.0.2:2222");
        assert_eq!(ok("[::1]").destination, "::1");
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        for (input, why) in [
            ("", "it is empty"),
            ("-oProxyCommand=x", "starts with '-'"),
            ("a b@host", "contains ' '"),
            ("@host", "user before '@' is empty"),
            ("user@", "host is empty"),
            ("user@host:", "is not a port"),
            ("user@host:99999", "is not a port"),
            ("user@host:0", "is not a port"),
            ("fe80::1", "in brackets"),
            ("user@[fe80::1", "no closing"),
            ("user@host/x", "contains '/'"),
        ] {
            let e = SshTarget::parse(input).unwrap_err();
            assert!(e.contains(why), "{input:?}: {e}");
            assert!(e.contains("user@host:port"), "{e}");
        }
    }

    #[test]
    fn every_ssh_never_prompts_and_gets_the_port() {
        let o = ok("u@h:2222").options();
        assert!(o.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
        assert!(o.windows(2).any(|w| w == ["-p", "2222"]));
        assert_eq!(ok("u@h:2222").command_line(), "ssh -p 2222 u@h");
    }
}
