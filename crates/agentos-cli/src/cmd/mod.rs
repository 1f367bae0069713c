//! One module per subcommand.
pub mod ccc;
pub mod demo;
pub mod license;
