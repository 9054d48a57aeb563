//! aienv runtime: starts, observes and stops environments on this machine, and says what the
//! machine has to run them with.
//!
//! - [`resources`] probes CPUs, memory, disk, GPUs ([`gpu`]), the container engine ([`engine`])
//!   and QEMU; [`fit`] compares that with what an environment requires.
//! - [`plan`] turns an environment into a concrete run: ports ([`ports`]), a token, tool links
//!   ([`template`]), variables; [`python`] sets up its Python first (a container's image is
//!   built by [`image_build`]), then its [`setup`] commands run.
//! - One backend interface ([`backend`]) with three backends: [`process`] (a process group),
//!   [`container`] (Docker Engine API, Podman compatible) and [`vm`] (QEMU, as a process); a
//!   process environment may instead run on another machine through `ssh` ([`ssh`]).
//! - [`ready`] waits for tools to answer; [`logs`] keeps each run's log file.
//!
//! The node (`aienv-node`) owns the run table, persistence and events; this crate holds no state
//! about runs beyond the port reservations.

pub mod backend;
pub mod container;
pub mod engine;
pub mod error;
pub mod fit;
pub mod gpu;
pub mod image;
pub mod image_build;
pub mod logs;
pub mod placement;
pub mod plan;
pub mod ports;
pub mod process;
pub mod python;
pub mod ready;
pub mod resources;
pub mod setup;
pub mod ssh;
pub mod template;
pub mod usage;
pub mod vm;

pub use error::RunError;
pub use resources::Probe;
