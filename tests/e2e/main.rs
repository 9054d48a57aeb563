//! End-to-end tests: real `aienv serve` processes on 127.0.0.1, driven by the real CLI, HTTP and
//! the WebSocket event stream.

mod adopt; // folders without a manifest: proposals, accepted and run for real, adopted files followed
mod backends; // container and VM runs: Docker and QEMU for real, their failures
mod clone; // cloning between real nodes: verified, incremental, resumed, cancelled, a full disk
mod desktop; // the desktop app under Xvfb: its window, its node, attaching to a running node, a clean quit
mod federation; // runs on peers: placement by announced resources, reservations, refusals, a lost peer, batch jobs
mod lan; // discovery between real nodes on 127.0.0.1: join, goodbye, crash, restart, catalog, static peers
mod models; // Hugging Face models pulled between real nodes: verified, once; a changed blob, the cache off
mod netns; // three hosts in network namespaces on a bridge: discovery, catalog, a host cut off and back
mod pyenv; // Python envs rebuilt from a peer's packages on a host with no other route; who may read the cache
mod runs;
mod security; // share access (token, approve), audit log, pinned TLS, impostors, API key, secret scan // process runs: a cloned JupyterLab, failures, restarts, logs over the WebSocket
mod serve; // starting, stopping and refusing to start: ports, data dirs, registries
mod ssh; // runs over SSH on a namespaced host with the system's sshd: copy, venv, forwarded tool, clean stop
mod workspaces; // CRUD through the CLI and HTTP, and hand edits seen live over the WebSocket
