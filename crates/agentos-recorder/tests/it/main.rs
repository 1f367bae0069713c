//! Integration tests of the recorder: real files in temp dirs, real Ed25519 keys.

mod concurrency;
mod license;
mod proptests;
mod scenarios;
mod support;
mod torn;
