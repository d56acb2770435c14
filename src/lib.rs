//! reservoice: an AI voice agent that phones a restaurant and books a table.
pub mod agent;
pub mod audio;
pub mod call;
pub mod cli;
pub mod config;
pub mod domain;
pub mod realtime;
pub mod server;
pub mod sim;
pub mod store;
pub mod twilio;
