//! Which vector instructions our kernels use, decided at run time.
//!
//! Release binaries are built for plain x86-64 (no `-C target-cpu=native`),
//! so they run on any 64-bit PC. The kernels in [`crate::quant`] and the
//! attention in [`crate::transformer`] have a form compiled with
//! `#[target_feature(enable = "avx2,fma,f16c")]`, used when the CPU has
//! those, and a portable one; the batched matrix products also have an
//! AVX-512 VNNI form. Every form does the same arithmetic in the same
//! order, so all give the same logits to the bit. [`level`] tells which is
//! in use; the `OFFGRID_SIMD` environment variable (`portable` or `avx2`,
//! read once) or [`force`] caps it, which is how the tests prove the forms
//! agree.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction set the kernels use.
///
/// Ordered: a level has every instruction of the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust, any CPU.
    Portable,
    /// x86-64 with AVX2, FMA and F16C (Haswell and later, Zen).
    Avx2,
    /// AVX2 plus AVX-512 F, BW and VNNI (Ice Lake and later, Zen 4).
    Avx512,
}

impl Level {
    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512-vnni",
        }
    }
}

const UNKNOWN: u8 = 0;
const PORTABLE: u8 = 1;
const AVX2: u8 = 2;
const AVX512: u8 = 3;

static LEVEL: AtomicU8 = AtomicU8::new(UNKNOWN);

fn code(level: Level) -> u8 {
    match level {
        Level::Portable => PORTABLE,
        Level::Avx2 => AVX2,
        Level::Avx512 => AVX512,
    }
}

/// The best level this CPU has.
fn cpu() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") && has!("f16c") {
            if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
                return Level::Avx512;
            }
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// The CPU's level, capped by `OFFGRID_SIMD`.
fn detect() -> u8 {
    let cap = match std::env::var("OFFGRID_SIMD") {
        Ok(v) if v.eq_ignore_ascii_case("portable") => Level::Portable,
        Ok(v) if v.eq_ignore_ascii_case("avx2") => Level::Avx2,
        Ok(v) => {
            tracing::warn!(value = %v, "OFFGRID_SIMD is portable or avx2; ignoring it");
            Level::Avx512
        }
        Err(_) => Level::Avx512,
    };
    code(cpu().min(cap))
}

/// The level in use: detected on first call (the best the CPU has, capped
/// by `OFFGRID_SIMD=portable` or `OFFGRID_SIMD=avx2`).
pub fn level() -> Level {
    let mut l = LEVEL.load(Ordering::Relaxed);
    if l == UNKNOWN {
        l = detect();
        // A concurrent first call detects the same; a forced level wins.
        let _ = LEVEL.compare_exchange(UNKNOWN, l, Ordering::Relaxed, Ordering::Relaxed);
        l = LEVEL.load(Ordering::Relaxed);
    }
    match l {
        AVX512 => Level::Avx512,
        AVX2 => Level::Avx2,
        _ => Level::Portable,
    }
}

/// Caps the level from now on (never above what the CPU has), or detects
/// again (`None`). Process-wide: meant for tests and benchmarks that
/// compare the forms.
pub fn force(cap: Option<Level>) {
    let l = match cap {
        Some(cap) => code(cpu().min(cap)),
        None => detect(),
    };
    LEVEL.store(l, Ordering::Relaxed);
}

/// Makes every kernel use the portable code from now on (`true`), or
/// detects again (`false`); [`force`] with the portable level.
pub fn force_portable(portable: bool) {
    force(portable.then_some(Level::Portable));
}
