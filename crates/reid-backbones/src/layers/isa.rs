//! Which build of a multi-versioned CPU loop to run: the widest x86
//! vector extension this CPU has, detected at run time. Every kernel that
//! keeps several builds compiles the same code with other target features
//! and no fused multiply-add, so the builds give the same bits.

/// A build of a multi-versioned loop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    /// `avx512f`.
    Avx512,
    /// `avx2`.
    Avx2,
    /// Whatever the compilation target allows.
    Plain,
}

/// The widest build this CPU supports.
pub(crate) fn widest() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Plain
}
