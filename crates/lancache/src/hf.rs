//! (models: being written)
