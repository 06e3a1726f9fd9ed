//! The support library (`offgrid-tests`, `tests/lib.rs`) re-exported, so
//! each test module reaches `spawn_app` and the other helpers through
//! `crate::helpers`.

pub use offgrid_tests::*;
