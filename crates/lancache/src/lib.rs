//! aienv LAN cache: what a node serves its peers so that a multi-GB download happens once per LAN.
//!
//! - [`packages`]: Python distributions (wheels, sdists) in the node's store
//!   (`DATA_DIR/packages/`) and in configured wheel folders, listed by project the way a PEP 503
//!   simple index lists them, each with its SHA-256; files fetched from peers or the upstream index
//!   are checked against the hash the listing gave before they enter the store.
//! - [`hf`]: models in the Hugging Face cache layout (`~/.cache/huggingface/hub`): listed, served,
//!   and written into the local cache from a peer, each file checked against the hash its blob is
//!   named by.
//!
//! This crate holds files and hashes only; the node decides who may read them and asks peers.

pub mod hf;
pub mod packages;
