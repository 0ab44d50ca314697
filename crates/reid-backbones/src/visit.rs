//! Walking a module's float tensors with their paths (the field names from
//! the root down, as burn's record keys spell them).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Sees every float tensor of a module, in walk order, with its path.
pub trait PathVisitor {
    /// Called for each float tensor (parameters and running buffers);
    /// `path` holds the field names from the root down, the tensor's own
    /// field last.
    fn visit_float_at<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>);
}

/// Walks `module` with `visitor`, tracking each tensor's path; returns the
/// visitor.
pub fn visit_with_paths<M: Module, V: PathVisitor>(module: &M, visitor: V) -> V {
    let mut walker = PathWalker {
        path: Vec::new(),
        inner: visitor,
    };
    module.visit(&mut walker);
    walker.inner
}

/// The [`ModuleVisitor`] behind [`visit_with_paths`].
struct PathWalker<V> {
    path: Vec<String>,
    inner: V,
}

impl<V: PathVisitor> ModuleVisitor for PathWalker<V> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit_float_at(&self.path, param);
    }
}
