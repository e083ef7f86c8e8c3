//! Tether's deterministic core (work in progress).
pub mod event;
