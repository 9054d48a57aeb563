//! Two discoveries on one machine, pinned to 127.0.0.1 on a group port of their own: they find
//! each other, drop bad datagrams by reason, and notice a goodbye.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use aienv_discovery::datagram::Drop;
use aienv_discovery::{Announce, Discovery, DiscoveryConfig, LeftReason, PeerEvent};
use tokio::sync::mpsc::UnboundedReceiver;

fn config(port: u16) -> DiscoveryConfig {
    DiscoveryConfig {
        group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), port),
        interfaces: vec!["127.0.0.1".into()],
        ..DiscoveryConfig::default()
    }
}

/// A period far longer than any wait in these tests: whatever arrives was sent at once.
fn slow(port: u16) -> DiscoveryConfig {
    DiscoveryConfig {
        interval: Duration::from_secs(60),
        expiry: Duration::from_secs(180),
        ..config(port)
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn me(id: &str, port: u16) -> Announce {
    Announce {
        id: id.into(),
        name: format!("node-{id}"),
        port,
        scheme: "http".into(),
        fingerprint: None,
        rev: "r1".into(),
        shared: 0,
        version: "0.1.0".into(),
        resources: None,
    }
}

async fn next(rx: &mut UnboundedReceiver<PeerEvent>) -> PeerEvent {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("an event in time")
        .expect("open")
}

#[tokio::test]
async fn two_nodes_find_each_other_and_a_goodbye_removes_at_once() {
    let port = free_udp_port();
    let (a, mut a_rx) = Discovery::start(slow(port), me("a", 1001)).await.unwrap();
    let (b, mut b_rx) = Discovery::start(slow(port), me("b", 1002)).await.unwrap();
    match next(&mut a_rx).await {
        PeerEvent::Joined(p) => {
            assert_eq!(p.id, "b");
            assert_eq!(p.url, "http://127.0.0.1:1002");
        }
        e => panic!("expected b to join, got {e:?}"),
    }
    assert!(matches!(next(&mut b_rx).await, PeerEvent::Joined(p) if p.id == "a"));

    // A catalog change goes out at once: with a one-minute period, only an immediate
    // announcement can bring the update within the wait.
    b.set_announce(Announce {
        rev: "r2".into(),
        shared: 4,
        ..me("b", 1002)
    });
    match next(&mut a_rx).await {
        PeerEvent::Updated(p) => assert_eq!((p.rev.as_str(), p.shared), ("r2", 4)),
        e => panic!("expected an update, got {e:?}"),
    }

    b.stop().await;
    assert!(matches!(
        next(&mut a_rx).await,
        PeerEvent::Left {
            reason: LeftReason::Goodbye,
            ..
        }
    ));
    assert!(a.peers().is_empty());
    let st = a.status();
    assert!(
        st.dropped.get(&Drop::Own).copied().unwrap_or(0) > 0,
        "our own looped-back datagrams are dropped: {st:?}"
    );
    a.stop().await;
}

#[tokio::test]
async fn garbage_is_dropped_and_counted_and_discovery_goes_on() {
    let port = free_udp_port();
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), port);
    let (a, mut a_rx) = Discovery::start(config(port), me("a", 1001)).await.unwrap();

    let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    raw.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    raw.set_multicast_loop_v4(true).unwrap();
    let raw: UdpSocket = raw.into();
    let liar = |extra: &str| {
        format!(
            r#"{{"aienv":1,"kind":"announce","id":"liar","name":"x","port":9,"scheme":"http","rev":"1","shared":0,"version":"0"{extra}}}"#
        )
    };
    raw.send_to(b"\x00\xffnot json", group).unwrap();
    raw.send_to(&vec![b'{'; 1400], group).unwrap();
    raw.send_to(br#"{"aienv":2,"kind":"whatever"}"#, group)
        .unwrap();
    for _ in 0..200 {
        raw.send_to(liar("").as_bytes(), group).unwrap();
    }
    // A 10 KB name does not fit a datagram: refused as oversized, never stored.
    raw.send_to(
        liar(&format!(r#","name2":"{}""#, "n".repeat(10_000))).as_bytes(),
        group,
    )
    .unwrap();

    assert!(matches!(next(&mut a_rx).await, PeerEvent::Joined(p) if p.id == "liar"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = a.status();
    assert_eq!(st.dropped.get(&Drop::Malformed), Some(&1), "{st:?}");
    assert_eq!(st.dropped.get(&Drop::Oversized), Some(&2), "{st:?}");
    assert_eq!(st.dropped.get(&Drop::Version), Some(&1), "{st:?}");
    assert!(
        st.dropped.get(&Drop::RateLimited).copied().unwrap_or(0) >= 100,
        "a flood is cut: {st:?}"
    );

    // The liar never announces again: it expires.
    match tokio::time::timeout(Duration::from_secs(6), a_rx.recv())
        .await
        .unwrap()
        .unwrap()
    {
        PeerEvent::Left {
            peer,
            reason: LeftReason::Expired,
        } => assert_eq!(peer.id, "liar"),
        e => panic!("expected the liar to expire, got {e:?}"),
    }
    a.stop().await;
}
