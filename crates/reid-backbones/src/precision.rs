//! Mixed precision: a backbone computing in half precision (`f16` or
//! `bf16`) while its parameters, the heads after it and the losses stay in
//! `f32`, the part of PyTorch's `autocast` that carries the cost of a ReID
//! model (its convolutions and matrix products).
//!
//! burn 0.22 has no autocast and its kernels refuse operands of different
//! float types, so the cast is explicit and happens at the backbone's
//! borders ([`Precision::run`]):
//!
//! - the input `[batch, 3, height, width]` is cast to the low type;
//! - every parameter of the backbone is cast by a tracked cast (the `f32`
//!   parameter stays the master copy the optimiser updates; the gradient
//!   flows back through the cast and arrives in `f32`);
//! - the output is cast back to `f32`.
//!
//! BatchNorm running statistics are buffers, not parameters: burn updates
//! them inside the forward pass in the type of the activations, so during a
//! low-precision forward they are held in the low type and cast back to
//! `f32` after it. Their moving average is therefore rounded to the low
//! type once per step (PyTorch's autocast keeps them in `f32`), which
//! matters only for models evaluated with running statistics after long
//! `bf16` runs (8 significant bits).
//!
//! Loss scaling, which `f16` gradients need against underflow, belongs to
//! the training loop (`reid_train::precision::LossScaler`).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::BackboneError;

/// The float type a backbone computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in `f32` (the default; no cast at all).
    #[default]
    F32,
    /// The backbone in IEEE half precision (5-bit exponent: gradients need
    /// loss scaling).
    F16,
    /// The backbone in bfloat16 (`f32`'s exponent range, 8 significant
    /// bits: no loss scaling needed).
    Bf16,
}

impl Precision {
    /// The low float type, `None` for [`Precision::F32`].
    pub fn low_dtype(self) -> Option<FloatDType> {
        match self {
            Self::F32 => None,
            Self::F16 => Some(FloatDType::F16),
            Self::Bf16 => Some(FloatDType::BF16),
        }
    }

    /// Whether the backbone computes in a type other than `f32`.
    pub fn is_mixed(self) -> bool {
        self.low_dtype().is_some()
    }

    /// The name used in configurations and on command lines (`f32`, `f16`,
    /// `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// Parses [`Precision::name`].
    ///
    /// # Errors
    /// [`BackboneError::InvalidConfig`] naming the accepted values.
    pub fn parse(name: &str) -> Result<Self, BackboneError> {
        match name.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Self::F32),
            "f16" | "fp16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            other => Err(BackboneError::InvalidConfig(format!(
                "unknown precision {other:?}: expected f32, f16 or bf16"
            ))),
        }
    }

    /// Checks that `device`'s backend computes in the low type.
    ///
    /// # Errors
    /// [`BackboneError::InvalidConfig`] naming the precision and the device.
    pub fn check(self, device: &Device) -> Result<(), BackboneError> {
        match self.low_dtype() {
            Some(dtype) if !device.supports_dtype(DType::from(dtype)) => {
                Err(BackboneError::InvalidConfig(format!(
                    "precision {} is not supported by the backend of device {device:?}",
                    self.name()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Runs `f(module, input)` in this precision and returns its output in
    /// `f32`: for [`Precision::F32`] just `f(module, input)`; otherwise `f`
    /// gets a copy of `module` whose parameters are tracked casts of the
    /// originals and `input` cast to the low type (see the module docs).
    /// Gradients of a loss on the output reach `module`'s own parameters.
    pub fn run<M, const D: usize, const E: usize, F>(
        self,
        module: &M,
        input: Tensor<D>,
        f: F,
    ) -> Tensor<E>
    where
        M: Module,
        F: FnOnce(&M, Tensor<D>) -> Tensor<E>,
    {
        let Some(dtype) = self.low_dtype() else {
            return f(module, input);
        };
        // burn keeps a running state's latest update pending until it is
        // synchronised: fold it in first, so that the cast sees it.
        sync_buffers(module);
        let low = module.clone().map(&mut CastFloats { dtype });
        let out = f(&low, input.cast(dtype));
        sync_buffers(module);
        restore_buffers(module);
        out.cast(FloatDType::F32)
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = BackboneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Casts every float tensor of a module (parameters by a tracked cast,
/// running-state buffers in place: they are shared with the original).
struct CastFloats {
    dtype: FloatDType,
}

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.dtype;
        param.map(|t| t.cast(dtype))
    }
}

/// Folds the pending updates of `module`'s running-state buffers (burn
/// holds a forward pass's update aside until the next synchronisation) into
/// their values, which the mappers below see. `Module::valid` synchronises
/// every running state it meets, and the states are shared with the copy.
fn sync_buffers<M: Module>(module: &M) {
    let _ = module.valid();
}

/// Casts the running-state buffers of `module` (which a low-precision copy
/// shares with it and has updated) back to `f32`, in place. Parameters are
/// left as they are.
fn restore_buffers<M: Module>(module: &M) {
    // Parameters of the discarded copy get an f32→f32 cast that nothing
    // uses; a running state writes its mapped value into the shared buffer.
    let _ = module.clone().map(&mut CastBuffers);
}

/// Casts buffers (tensors that do not require a gradient and are not `f32`)
/// to `f32`; parameters already in `f32` are returned unchanged.
struct CastBuffers;

impl ModuleMapper for CastBuffers {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if param.val().dtype() == DType::F32 {
            return param;
        }
        param.map(|t| t.cast(FloatDType::F32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [Precision::F32, Precision::F16, Precision::Bf16] {
            assert_eq!(Precision::parse(p.name()).unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(Precision::parse("FP16").unwrap(), Precision::F16);
        let err = Precision::parse("int8").unwrap_err().to_string();
        assert!(err.contains("int8") && err.contains("bf16"), "{err}");
        assert_eq!(Precision::default(), Precision::F32);
        assert!(!Precision::F32.is_mixed() && Precision::Bf16.is_mixed());
    }
}
