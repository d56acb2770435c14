//! reservoice: an AI voice agent that phones a restaurant and books a table.

pub mod audio;
pub mod sim;
