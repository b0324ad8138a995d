//! Assent's domain, with no I/O: phone numbers, keyword classification, the consent state
//! machine, the gate, message composition and quiet hours. Everything here is a pure
//! function of its inputs, time included, so it is tested without a database or a clock.

pub mod campaign;
pub mod compose;
pub mod consent;
pub mod gate;
pub mod keyword;
pub mod merge;
pub mod pacing;
pub mod phone;
pub mod quiet_hours;
pub mod text;

pub use chrono_tz::Tz;
