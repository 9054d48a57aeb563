//! The discovery datagram: one JSON object of at most [`MAX_DATAGRAM`] bytes.
//!
//! ```json
//! {"aienv":1,"kind":"announce","id":"5f0c...","name":"gpu-box","port":47478,"scheme":"http",
//!  "fp":null,"rev":"9a3c0e11d2f4b6a7","shared":3,"version":"0.1.0","hello":true}
//! ```
//!
//! Decoding never panics and never allocates more than the datagram's size: anything that does
//! not fit the shape is refused with a [`Drop`] reason that the receiver counts.

use aienv_core::peer::PeerResources;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Datagrams of another version are dropped (counted).
pub const PROTOCOL: u32 = 1;

/// The largest datagram sent or accepted: fits one Ethernet frame with room for tunnels.
pub const MAX_DATAGRAM: usize = 1200;

/// Longest node name kept; longer names are cut (at a character boundary).
pub const MAX_NAME: usize = 64;

/// What a datagram says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// "I am here" (periodic, at start, and at once when the catalog changes).
    Announce,
    /// "I am leaving": drop me now.
    Goodbye,
}

/// One announcement or goodbye.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datagram {
    /// Protocol version.
    pub aienv: u32,
    pub kind: Kind,
    /// The sender's instance id.
    pub id: String,
    pub name: String,
    /// The sender's API port (the address is the datagram's source address).
    pub port: u16,
    /// `http` or `https`.
    pub scheme: String,
    /// The sender's TLS certificate fingerprint, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp: Option<String>,
    /// The revision of the sender's shared catalog: when it changes, peers fetch the catalog.
    pub rev: String,
    /// How many environments the sender shares.
    pub shared: u32,
    pub version: String,
    /// Set in a node's start-up burst: "I am new, announce yourselves", so that it learns the
    /// existing peers at once instead of after a full period.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hello: bool,
    /// What the sender has free (CPUs, memory, GPUs, runs), for placing runs on peers.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "compact")]
    pub res: Option<PeerResources>,
}

/// The most GPUs an announcement lists (a bigger machine lists its first ones).
pub const MAX_GPUS: usize = 8;
/// GPU names are cut to this many bytes in announcements.
pub const MAX_GPU_NAME: usize = 24;

/// Resources in a compact form, so that a machine with eight GPUs still fits one datagram:
/// `{"c":CPUS,"m":MB,"mf":FREE_MB,"r":RUNS,"a":ACCEPTS,"g":[[INDEX,"NAME",MB,FREE_MB,HELD],...]}`.
mod compact {
    use aienv_core::peer::{PeerGpu, PeerResources};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wire {
        c: u32,
        m: u64,
        mf: u64,
        r: u32,
        #[serde(default)]
        a: bool,
        #[serde(default)]
        g: Vec<(u32, String, u64, Option<u64>, bool)>,
    }

    pub fn serialize<S: Serializer>(r: &Option<PeerResources>, s: S) -> Result<S::Ok, S::Error> {
        r.as_ref()
            .map(|r| Wire {
                c: r.cpus,
                m: r.memory_mb,
                mf: r.memory_free_mb,
                r: r.runs,
                a: r.accepts_runs,
                g: r.gpus
                    .iter()
                    .map(|g| {
                        let name = super::clip(&g.name, super::MAX_GPU_NAME);
                        (g.index, name, g.memory_mb, g.memory_free_mb, g.held)
                    })
                    .collect(),
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PeerResources>, D::Error> {
        Ok(Option::<Wire>::deserialize(d)?.map(|w| PeerResources {
            cpus: w.c,
            memory_mb: w.m,
            memory_free_mb: w.mf,
            runs: w.r,
            accepts_runs: w.a,
            gpus: w
                .g
                .into_iter()
                .map(|(index, name, memory_mb, memory_free_mb, held)| PeerGpu {
                    index,
                    name,
                    memory_mb,
                    memory_free_mb,
                    held,
                })
                .collect(),
        }))
    }
}

/// Why a received datagram was dropped. Each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Drop {
    /// Larger than [`MAX_DATAGRAM`].
    Oversized,
    /// Not JSON, or not the datagram's shape.
    Malformed,
    /// Another protocol version.
    Version,
    /// Our own datagram, looped back.
    Own,
    /// The source sent more than its share.
    RateLimited,
    /// The peer table is full.
    TableFull,
    /// It claims a known peer's id with another certificate fingerprint: a forged announcement
    /// (or a reinstalled peer, which the user re-trusts; until then its announcements are not
    /// believed).
    Impostor,
}

impl Datagram {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a datagram serialises")
    }

    /// Parses and checks a received datagram.
    pub fn decode(bytes: &[u8]) -> Result<Datagram, Drop> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(Drop::Oversized);
        }
        // Check the version first, so that a future version with another shape is counted as
        // such rather than as malformed.
        #[derive(Deserialize)]
        struct Version {
            aienv: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(|_| Drop::Malformed)?;
        if v.aienv != PROTOCOL {
            return Err(Drop::Version);
        }
        let mut d: Datagram = serde_json::from_slice(bytes).map_err(|_| Drop::Malformed)?;
        if d.id.is_empty()
            || d.id.len() > 64
            || d.port == 0
            || !matches!(d.scheme.as_str(), "http" | "https")
        {
            return Err(Drop::Malformed);
        }
        if d.rev.len() > 64 || d.version.len() > 32 || d.fp.as_ref().is_some_and(|f| f.len() > 128)
        {
            return Err(Drop::Malformed);
        }
        if let Some(r) = &mut d.res {
            if r.gpus.len() > MAX_GPUS {
                return Err(Drop::Malformed);
            }
            for g in &mut r.gpus {
                g.name = clip(&g.name, MAX_GPU_NAME);
            }
        }
        d.name = clip(&d.name, MAX_NAME);
        Ok(d)
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_big_machines_resources_fit_one_datagram_and_too_many_gpus_are_refused() {
        let gpu = |index| aienv_core::peer::PeerGpu {
            index,
            name: "NVIDIA H100 80GB HBM3 with a long marketing name".into(),
            memory_mb: 81_559,
            memory_free_mb: Some(80_128),
            held: index % 2 == 0,
        };
        let mut d = sample();
        d.name = "n".repeat(MAX_NAME);
        d.fp = Some("f".repeat(64));
        d.res = Some(aienv_core::peer::PeerResources {
            cpus: 256,
            memory_mb: 2_000_000,
            memory_free_mb: 1_500_000,
            gpus: (0..MAX_GPUS as u32).map(gpu).collect(),
            runs: 99,
            accepts_runs: true,
        });
        let bytes = d.encode();
        assert!(bytes.len() <= MAX_DATAGRAM, "{} bytes", bytes.len());
        let back = Datagram::decode(&bytes).unwrap();
        let res = back.res.as_ref().unwrap();
        assert_eq!(res.gpus.len(), MAX_GPUS);
        assert_eq!(
            res.gpus[0].name, "NVIDIA H100 80GB HBM3 wi",
            "names are cut"
        );
        assert_eq!(res.gpus[1].memory_free_mb, Some(80_128));
        assert!(res.gpus[0].held && !res.gpus[1].held);
        assert_eq!((res.cpus, res.runs, res.accepts_runs), (256, 99, true));
        d.res.as_mut().unwrap().gpus.push(gpu(8));
        assert_eq!(Datagram::decode(&d.encode()), Err(Drop::Malformed));
    }
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Datagram {
        Datagram {
            aienv: PROTOCOL,
            kind: Kind::Announce,
            id: "5f0c9a1b2c3d4e5f".into(),
            name: "gpu-box".into(),
            port: 47478,
            scheme: "http".into(),
            fp: None,
            rev: "9a3c0e11d2f4b6a7".into(),
            shared: 3,
            version: "0.1.0".into(),
            hello: true,
            res: None,
        }
    }

    #[test]
    fn a_datagram_round_trips_and_fits() {
        let d = sample();
        let bytes = d.encode();
        assert!(bytes.len() < 300, "{} bytes", bytes.len());
        assert_eq!(Datagram::decode(&bytes).unwrap(), d);
    }

    #[test]
    fn bad_datagrams_are_refused_with_their_reason() {
        assert_eq!(Datagram::decode(b"not json"), Err(Drop::Malformed));
        assert_eq!(Datagram::decode(b"{\"aienv\":1}"), Err(Drop::Malformed));
        assert_eq!(
            Datagram::decode(&vec![b' '; MAX_DATAGRAM + 1]),
            Err(Drop::Oversized)
        );
        let mut v2 = serde_json::to_value(sample()).unwrap();
        v2["aienv"] = 2.into();
        v2["new_field"] = "x".into();
        assert_eq!(
            Datagram::decode(v2.to_string().as_bytes()),
            Err(Drop::Version)
        );
        let mut zero = sample();
        zero.port = 0;
        assert_eq!(Datagram::decode(&zero.encode()), Err(Drop::Malformed));
        let mut scheme = sample();
        scheme.scheme = "gopher".into();
        assert_eq!(Datagram::decode(&scheme.encode()), Err(Drop::Malformed));
    }

    #[test]
    fn a_long_name_is_cut_at_a_character_boundary() {
        let mut d = sample();
        d.name = "é".repeat(100);
        let got = Datagram::decode(&d.encode()).unwrap();
        assert!(got.name.len() <= MAX_NAME && got.name.chars().all(|c| c == 'é'));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = Datagram::decode(&bytes);
        }

        #[test]
        fn any_valid_datagram_round_trips(
            id in "[a-f0-9]{1,32}", name in "[a-zA-Z0-9 é-]{0,20}", port in 1u16.., shared in any::<u32>(),
            rev in "[a-f0-9]{0,16}", hello in any::<bool>(), goodbye in any::<bool>(),
        ) {
            let d = Datagram {
                kind: if goodbye { Kind::Goodbye } else { Kind::Announce },
                id, name, port, shared, rev, hello, ..sample()
            };
            let bytes = d.encode();
            prop_assert!(bytes.len() <= MAX_DATAGRAM);
            let got = Datagram::decode(&bytes).unwrap();
            prop_assert_eq!(got, d);
        }

        #[test]
        fn mutated_datagrams_decode_or_are_refused_but_never_panic(
            flips in proptest::collection::vec((0usize..300, any::<u8>()), 1..8)
        ) {
            let mut bytes = sample().encode();
            for (at, b) in flips {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            if let Ok(d) = Datagram::decode(&bytes) {
                prop_assert!(d.name.len() <= MAX_NAME && d.port != 0);
            }
        }
    }
}
