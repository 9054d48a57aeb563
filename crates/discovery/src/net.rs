//! Sockets and interfaces: which addresses discovery uses, and the multicast sockets on them.
//!
//! Receiving: one socket bound to the group's port on every address, with SO_REUSEADDR and
//! SO_REUSEPORT so several nodes on one machine can listen at once, joined to the group on each
//! chosen interface address (never on INADDR_ANY, which would follow the default route onto the
//! real network). Sending: one socket per interface, bound to that interface's address, with
//! IP_MULTICAST_IF set to it, TTL 1 (the datagram never leaves the link) and loopback on (other
//! nodes on this machine must hear us; our own datagrams are recognised by id and dropped).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use crate::DiscoveryError;

/// An interface address discovery uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Interface {
    pub name: String,
    #[schema(value_type = String)]
    pub addr: Ipv4Addr,
}

/// Resolves the configured interfaces (names or IPv4 addresses). An empty list means every up
/// IPv4 interface with a private or link-local address.
pub fn choose_interfaces(wanted: &[String]) -> Result<Vec<Interface>, DiscoveryError> {
    // (interface, whether it is up). An interface named explicitly is used even while it is down
    // (a cable unplugged, a veth whose peer is not up yet): sending then fails and is counted,
    // and it works again once the link comes back.
    let all: Vec<(Interface, bool)> = if_addrs::get_if_addrs()
        .map_err(|e| DiscoveryError::Interfaces(e.to_string()))?
        .into_iter()
        .filter_map(|i| {
            let up = i.is_oper_up() || i.is_loopback();
            match i.addr {
                if_addrs::IfAddr::V4(v4) => Some((
                    Interface {
                        name: i.name,
                        addr: v4.ip,
                    },
                    up,
                )),
                if_addrs::IfAddr::V6(_) => None,
            }
        })
        .collect();
    if wanted.is_empty() {
        return Ok(all
            .into_iter()
            .filter(|(i, up)| {
                *up && !i.addr.is_loopback() && (i.addr.is_private() || i.addr.is_link_local())
            })
            .map(|(i, _)| i)
            .collect());
    }
    let all: Vec<Interface> = all.into_iter().map(|(i, _)| i).collect();
    let mut chosen = Vec::new();
    for w in wanted {
        let matches: Vec<_> = match w.parse::<Ipv4Addr>() {
            Ok(ip) => all.iter().filter(|i| i.addr == ip).cloned().collect(),
            Err(_) => all.iter().filter(|i| &i.name == w).cloned().collect(),
        };
        if matches.is_empty() {
            let known: Vec<String> = all
                .iter()
                .map(|i| format!("{} ({})", i.name, i.addr))
                .collect();
            return Err(DiscoveryError::NoSuchInterface {
                wanted: w.clone(),
                known: known.join(", "),
            });
        }
        for m in matches {
            if !chosen.contains(&m) {
                chosen.push(m);
            }
        }
    }
    Ok(chosen)
}

/// The receiving socket: the group's port, joined on each interface.
pub fn receiver(
    group: SocketAddrV4,
    interfaces: &[Interface],
) -> Result<std::net::UdpSocket, DiscoveryError> {
    let bind = |e: std::io::Error| {
        DiscoveryError::Socket(format!("cannot listen on UDP port {}: {e}", group.port()))
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(bind)?;
    s.set_reuse_address(true).map_err(bind)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    s.set_reuse_port(true).map_err(bind)?;
    s.set_nonblocking(true).map_err(bind)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port())).into())
        .map_err(bind)?;
    for i in interfaces {
        s.join_multicast_v4(group.ip(), &i.addr).map_err(|e| {
            DiscoveryError::Socket(format!(
                "cannot join multicast group {} on {} ({}): {e}",
                group.ip(),
                i.name,
                i.addr
            ))
        })?;
    }
    Ok(s.into())
}

/// A sending socket for one interface.
pub fn sender(interface: &Interface, ttl: u32) -> Result<std::net::UdpSocket, DiscoveryError> {
    let fail = |e: std::io::Error| {
        DiscoveryError::Socket(format!(
            "cannot send multicast on {} ({}): {e}",
            interface.name, interface.addr
        ))
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(fail)?;
    s.set_nonblocking(true).map_err(fail)?;
    s.bind(&SocketAddr::from((interface.addr, 0)).into())
        .map_err(fail)?;
    s.set_multicast_if_v4(&interface.addr).map_err(fail)?;
    s.set_multicast_ttl_v4(ttl).map_err(fail)?;
    s.set_multicast_loop_v4(true).map_err(fail)?;
    Ok(s.into())
}
