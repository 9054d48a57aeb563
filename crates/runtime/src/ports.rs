//! Ports for tools: free on this machine, and never handed to two runs at once.
//!
//! A free port is found by binding port 0 on loopback and reading what the kernel gave; it stays
//! reserved in this table until the run ends, so two runs started together never collide even
//! before their tools have bound. A fixed port from the manifest is checked the same way, and a
//! port some other program holds is refused with a message that says what to do.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

use crate::error::RunError;

#[derive(Debug, Default)]
pub struct Ports {
    taken: Mutex<HashSet<u16>>,
}

impl Ports {
    /// A port for a tool: `fixed` when the manifest names one, else a free one.
    pub fn allocate(&self, tool: &str, fixed: Option<u16>) -> Result<u16, RunError> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(port) = fixed {
            if taken.contains(&port) || !bindable(port) {
                return Err(RunError::PortTaken(format!(
                    "port {port} of tool {tool:?} is in use by another run or program; stop \
                     that, or remove `port` from the tool so that a free port is picked"
                )));
            }
            taken.insert(port);
            return Ok(port);
        }
        // The kernel hands out ports round-robin, so a just-released port is rarely given again;
        // the loop only guards against a port that another run reserved but has not bound yet.
        for _ in 0..64 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| RunError::PortTaken(format!("no free port on 127.0.0.1: {e}")))?
                .port();
            if taken.insert(port) {
                return Ok(port);
            }
        }
        Err(RunError::PortTaken("no free port on 127.0.0.1".into()))
    }

    /// Takes back ports a run held (or held after a restart: `reserve`).
    pub fn release(&self, ports: impl IntoIterator<Item = u16>) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        for p in ports {
            taken.remove(&p);
        }
    }

    /// Marks ports of runs found again after a restart as taken.
    pub fn reserve(&self, ports: impl IntoIterator<Item = u16>) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.extend(ports);
    }
}

fn bindable(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_a_held_port_is_refused() {
        let ports = Ports::default();
        let a = ports.allocate("a", None).unwrap();
        let b = ports.allocate("b", None).unwrap();
        assert_ne!(a, b);
        // Reserved by a run: a second run asking for it by number is refused.
        let e = ports.allocate("c", Some(a)).unwrap_err().to_string();
        assert!(
            e.contains(&a.to_string()) && e.contains("remove `port`"),
            "{e}"
        );
        // Held by another program.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let held = l.local_addr().unwrap().port();
        assert!(ports.allocate("d", Some(held)).is_err());
        drop(l);
        ports.release([a]);
        assert_eq!(ports.allocate("c", Some(a)).unwrap(), a);
    }
}
