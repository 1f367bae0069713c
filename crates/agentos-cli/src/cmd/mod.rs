//! One module per subcommand.
pub mod ccc;
pub mod claude;
pub mod demo;
pub mod license;
pub mod prices;
pub mod statusline;
pub mod ui;
