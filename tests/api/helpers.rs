pub use offgrid_tests::*;
