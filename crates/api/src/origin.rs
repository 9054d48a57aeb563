//! Only the node's own pages, its CLI and its peers may drive it: a web page from elsewhere that
//! the user happens to have open must not (drive-by requests to 127.0.0.1), and neither may one
//! that makes its own domain point at this machine (DNS rebinding).
//!
//! - `Host` must name this machine by address (`127.0.0.1:47478`, `192.168.1.20:47478`, `[::1]`),
//!   as `localhost`, or by this machine's host name: a rebinding page's requests carry its own
//!   domain there.
//! - `Origin`, when a browser sends one, must be the node's own (the same scheme, host and port
//!   as `Host`), or the desktop app's (`tauri://localhost`, `http://tauri.localhost`).
//!   Programs that are not browsers (the CLI, peers, curl) send no `Origin`.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn same_origin(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    if let Some(host) = &host
        && !host_is_this_machine(host)
    {
        return refuse(format!(
            "the Host {host:?} does not name this machine; open the node by its address \
             (e.g. http://127.0.0.1:PORT) or as localhost"
        ));
    }
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        && !origin_allowed(origin, host.as_deref())
    {
        return refuse(format!(
            "requests from pages of {origin} are refused: only the node's own web UI and the \
             desktop app may use this API from a browser"
        ));
    }
    next.run(req).await
}

fn refuse(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "foreign_origin", message).into_response()
}

/// `HOST[:PORT]` names this machine: an IP address, `localhost`, or this host's name.
pub(crate) fn host_is_this_machine(host: &str) -> bool {
    let name = strip_port(host);
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    static HOST_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let own = HOST_NAME.get_or_init(|| aienv_core::dirs::host_name().to_ascii_lowercase());
    name == "localhost" || name.ends_with(".localhost") || name == *own
}

/// `[::1]:80` -> `::1`, `127.0.0.1:80` -> `127.0.0.1`, `name` -> `name`.
fn strip_port(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

pub(crate) fn origin_allowed(origin: &str, host: Option<&str>) -> bool {
    if matches!(
        origin,
        "tauri://localhost" | "http://tauri.localhost" | "https://tauri.localhost"
    ) {
        return true;
    }
    let Some(host) = host else { return false };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::{host_is_this_machine, origin_allowed};

    #[test]
    fn hosts_that_name_this_machine() {
        for ok in [
            "127.0.0.1:47478",
            "192.168.1.20:47478",
            "[::1]:47478",
            "localhost:8080",
            "localhost",
            "10.0.0.7",
        ] {
            assert!(host_is_this_machine(ok), "{ok}");
        }
        for bad in [
            "evil.example:47478",
            "attacker.test",
            "127.0.0.1.nip.io:47478",
        ] {
            assert!(!host_is_this_machine(bad), "{bad}");
        }
    }

    #[test]
    fn origins_of_the_node_itself_and_the_desktop_app() {
        assert!(origin_allowed(
            "http://127.0.0.1:47478",
            Some("127.0.0.1:47478")
        ));
        assert!(origin_allowed("tauri://localhost", Some("127.0.0.1:5")));
        assert!(
            !origin_allowed("http://127.0.0.1:3000", Some("127.0.0.1:47478")),
            "another local port"
        );
        assert!(!origin_allowed(
            "https://evil.example",
            Some("127.0.0.1:47478")
        ));
        assert!(!origin_allowed("null", Some("127.0.0.1:47478")));
    }
}
