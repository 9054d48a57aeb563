//! (packages: being written)
