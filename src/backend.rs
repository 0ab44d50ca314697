//! Run-time choice of the compute backend among those compiled in.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// A compute backend, as named on command lines (`--backend flex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Backend {
    /// burn-flex: pure-Rust CPU backend (cargo feature `flex`, the default).
    Flex,
    /// wgpu on the default adapter (cargo feature `wgpu`).
    Wgpu,
    /// wgpu forced onto a CPU adapter such as Mesa's lavapipe (feature `wgpu`;
    /// for smoke tests only: about 20× slower than flex).
    WgpuCpu,
    /// CUDA device 0 (cargo feature `cuda`).
    Cuda,
}

/// A backend that was asked for cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// Zero devices were asked for.
    #[error("data-parallel training needs at least one device")]
    NoDevices,
    /// The name is not a backend.
    #[error("unknown backend {0:?}; expected one of: flex, wgpu, wgpu-cpu, cuda")]
    Unknown(String),
    /// The backend exists but this binary was built without its cargo feature.
    #[error(
        "backend {backend} is not compiled in; rebuild with `--features {feature}` (compiled in: {available})"
    )]
    NotCompiled {
        /// The backend asked for.
        backend: Backend,
        /// The cargo feature that enables it.
        feature: &'static str,
        /// The backends this binary has.
        available: String,
    },
}

impl Backend {
    /// All backends, compiled in or not.
    pub const ALL: [Backend; 4] = [
        Backend::Flex,
        Backend::Wgpu,
        Backend::WgpuCpu,
        Backend::Cuda,
    ];

    /// The cargo feature that enables this backend.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu | Backend::WgpuCpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this binary was compiled with the backend's feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Wgpu | Backend::WgpuCpu => cfg!(feature = "wgpu"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this binary, in order of preference for
    /// [`Backend::default_compiled`] (GPUs first).
    pub fn compiled() -> Vec<Backend> {
        [Backend::Cuda, Backend::Wgpu, Backend::Flex]
            .into_iter()
            .filter(|b| b.is_compiled())
            .collect()
    }

    /// The first compiled backend: CUDA, then wgpu, then flex.
    pub fn default_compiled() -> Option<Backend> {
        Self::compiled().into_iter().next()
    }

    /// The burn device of this backend (no autodiff; call `.autodiff()` on it
    /// to train).
    pub fn device(self) -> Result<Device, BackendError> {
        if !self.is_compiled() {
            return Err(BackendError::NotCompiled {
                backend: self,
                feature: self.feature(),
                available: Self::compiled()
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(self.device_unchecked())
    }

    /// `n` devices of this backend for data-parallel training: CUDA devices
    /// `0..n`, wgpu discrete GPUs `0..n` (`wgpu`; `wgpu-cpu` repeats the CPU
    /// adapter), or `n` handles on the one CPU (`flex`; for tests, no
    /// speed-up). The first is [`Backend::device`]'s device for CUDA and
    /// flex.
    ///
    /// # Errors
    /// `n` is 0, or the backend is not compiled in.
    pub fn devices(self, n: usize) -> Result<Vec<Device>, BackendError> {
        if n == 0 {
            return Err(BackendError::NoDevices);
        }
        let first = self.device()?;
        Ok(match self {
            #[cfg(feature = "cuda")]
            Backend::Cuda => (0..n).map(Device::cuda).collect(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu if n > 1 => (0..n)
                .map(|i| Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)))
                .collect(),
            _ => vec![first; n],
        })
    }

    #[allow(unreachable_code)]
    fn device_unchecked(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "wgpu")]
            Backend::WgpuCpu => Device::wgpu(burn::tensor::DeviceKind::Cpu),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::cuda(0),
            #[allow(unreachable_patterns)]
            _ => unreachable!("device_unchecked is only called for compiled backends"),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::WgpuCpu => "wgpu-cpu",
            Backend::Cuda => "cuda",
        })
    }
}

impl FromStr for Backend {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| BackendError::Unknown(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.to_string().parse::<Backend>().unwrap(), b);
        }
        assert!(matches!(
            "tpu".parse::<Backend>(),
            Err(BackendError::Unknown(_))
        ));
    }

    #[test]
    fn flex_is_the_default_cpu_backend() {
        assert!(Backend::Flex.is_compiled());
        assert!(Backend::Flex.device().is_ok());
        assert!(Backend::default_compiled().is_some());
    }

    #[test]
    fn missing_features_are_reported_with_the_feature_name() {
        if !Backend::Cuda.is_compiled() {
            let err = Backend::Cuda.device().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
