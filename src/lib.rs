//! reservoice: an AI voice agent that phones a restaurant and books a table.
pub mod agent;
pub mod call;
pub mod config;
pub mod domain;
pub mod realtime;
pub mod store;
pub mod twilio;
