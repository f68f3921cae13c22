//! Call recordings: policy, encryption at rest, files and their upload (docs/recording.md).
pub mod age;
pub mod config;
pub mod store;
pub mod upload;
