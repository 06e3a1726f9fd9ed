//! Which vector instructions our kernels use, decided at run time.
//!
//! Release binaries are built for plain x86-64 (no `-C target-cpu=native`),
//! so they run on any 64-bit PC. The kernels in [`crate::quant`] and the
//! attention in [`crate::transformer`] have two forms: one compiled with
//! `#[target_feature(enable = "avx2,fma,f16c")]`, used when the CPU has
//! those, and a portable one. [`level`] tells which is in use; the
//! `OFFGRID_SIMD=portable` environment variable (read once) or
//! [`force_portable`] selects the portable form, which is how the tests
//! prove both give the same tokens.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Plain Rust, any CPU.
    Portable,
    /// x86-64 with AVX2, FMA and F16C (Haswell and later, Zen).
    Avx2,
}

impl Level {
    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
        }
    }
}

const UNKNOWN: u8 = 0;
const PORTABLE: u8 = 1;
const AVX2: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(UNKNOWN);

fn detect() -> u8 {
    if std::env::var("OFFGRID_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("portable")) {
        return PORTABLE;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return AVX2;
        }
    }
    PORTABLE
}

/// The level in use: detected on first call (AVX2 when the CPU has AVX2,
/// FMA and F16C, unless `OFFGRID_SIMD=portable`).
pub fn level() -> Level {
    let mut l = LEVEL.load(Ordering::Relaxed);
    if l == UNKNOWN {
        l = detect();
        // A concurrent first call detects the same; a forced level wins.
        let _ = LEVEL.compare_exchange(UNKNOWN, l, Ordering::Relaxed, Ordering::Relaxed);
        l = LEVEL.load(Ordering::Relaxed);
    }
    if l == AVX2 {
        Level::Avx2
    } else {
        Level::Portable
    }
}

/// Makes every kernel use the portable code from now on (`true`), or
/// detects again (`false`). Process-wide: meant for tests and benchmarks
/// that compare the two.
pub fn force_portable(portable: bool) {
    let l = if portable { PORTABLE } else { detect() };
    LEVEL.store(l, Ordering::Relaxed);
}
