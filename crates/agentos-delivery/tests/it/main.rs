//! Integration tests of agentos-delivery: real HTTP over 127.0.0.1 against the recording
//! server of agentos-test-support, real files in temp dirs, real child processes for crashes.

mod acks;
mod collector;
mod crash;
mod faults;
mod held;
mod license_path;
mod preview;
mod props;
mod recovery;
mod scenarios;
mod support;
mod tier;
mod uploader;
