//! Load generator (placeholder while it is being written).
fn main() {}
