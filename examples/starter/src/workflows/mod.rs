//! The workflows of this project, one module each.
//!
//! - [`approval`]: wait for a typed decision on an order, sent to a token the sender can
//!   rebuild (`approval:{order_id}`), or give up after a timeout.
//! - [`webhook`]: a URL that collects HTTP requests until one says `"done": true`.

pub mod approval;
pub mod webhook;
