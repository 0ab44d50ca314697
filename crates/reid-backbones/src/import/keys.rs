//! PyTorch parameter names ↔ the paths of our burn modules.
//!
//! The two differ only where a Rust field cannot carry the PyTorch name:
//!
//! | PyTorch (torchvision / IBN-Net / fast-reid) | burn |
//! |---|---|
//! | `….downsample.0.…` / `….downsample.1.…` | `….downsample.conv.…` / `….downsample.bn.…` |
//! | `….bn1.IN.…` / `….bn1.BN.…` (IBN-a) | `….bn1.instance_norm.…` / `….bn1.batch_norm.…` |
//! | `layerN.i.IN.…` (IBN-b, after the residual add) | `layerN.i.post_norm.…` |
//! | `heads.bottleneck.0.…` (BNNeck BN; also `b1_head.…` etc. in MGN) | `heads.neck.…` |
//! | `heads.bottleneck.0.weight` (4-D: embedding conv) + `heads.bottleneck.1.…` | `heads.embedding.weight` + `heads.neck.…` |
//! | norm `weight` / `bias` | `gamma` / `beta` |
//!
//! Norm parameters are recognised by the model: a PyTorch `x.weight` maps to
//! `x.gamma` when the model has `x.gamma` and no `x.weight`.

use std::collections::BTreeMap;

/// A fast-reid head module name: `heads` (Baseline) or `b21_head` (MGN).
fn is_head(segment: &str) -> bool {
    segment == "heads" || segment.ends_with("_head")
}

/// Renames the segments of a PyTorch key to the segments of a burn path,
/// without the norm parameter renaming (see [`burn_param_name`]).
///
/// `rank` is the tensor's number of dimensions (it tells an embedding
/// convolution from a BN in fast-reid's `heads.bottleneck.0`).
pub(crate) fn torch_to_burn_segments(key: &str, rank: usize) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let seg = parts[i];
        let prev = i.checked_sub(1).map(|j| parts[j]);
        let next = parts.get(i + 1).copied();
        match (prev, seg, next) {
            (_, "downsample", Some("0")) => {
                out.push("downsample.conv".into());
                i += 2;
                continue;
            }
            (_, "downsample", Some("1")) => {
                out.push("downsample.bn".into());
                i += 2;
                continue;
            }
            (Some(p), "IN", _) if p.starts_with("bn") => out.push("instance_norm".into()),
            (Some(p), "BN", _) if p.starts_with("bn") => out.push("batch_norm".into()),
            (Some(_), "IN", _) => out.push("post_norm".into()),
            (Some(h), "bottleneck", Some("0")) if is_head(h) => {
                // `bottleneck.0` is the embedding conv when it holds a 4-D
                // weight, the BNNeck otherwise.
                out.push(if rank == 4 { "embedding" } else { "neck" }.into());
                i += 2;
                continue;
            }
            (Some(h), "bottleneck", Some("1")) if is_head(h) => {
                out.push("neck".into());
                i += 2;
                continue;
            }
            _ => out.push(seg.into()),
        }
        i += 1;
    }
    out.join(".")
}

/// A norm layer's parameter names, PyTorch's and burn's: `weight` ↔
/// `gamma`, `bias` ↔ `beta`.
const NORM_LEAVES: [(&str, &str); 2] = [("weight", "gamma"), ("bias", "beta")];

/// burn's name of a norm layer's PyTorch parameter `leaf` (`weight` →
/// `gamma`, `bias` → `beta`; any other name unchanged).
pub(crate) fn burn_norm_leaf(leaf: &str) -> &str {
    NORM_LEAVES
        .iter()
        .find(|(torch, _)| *torch == leaf)
        .map_or(leaf, |(_, burn)| *burn)
}

/// PyTorch's name of a norm layer's burn parameter `leaf` (inverse of
/// [`burn_norm_leaf`]).
pub(crate) fn torch_norm_leaf(leaf: &str) -> &str {
    NORM_LEAVES
        .iter()
        .find(|(_, burn)| *burn == leaf)
        .map_or(leaf, |(torch, _)| *torch)
}

/// The burn path of a PyTorch key, given the model's own paths `expected`:
/// segment renaming, then `weight`→`gamma` / `bias`→`beta` where the model
/// has the latter (norm layers).
pub(crate) fn burn_param_name<V>(key: &str, rank: usize, expected: &BTreeMap<String, V>) -> String {
    let path = torch_to_burn_segments(key, rank);
    if expected.contains_key(&path) {
        return path;
    }
    for (torch, burn) in NORM_LEAVES {
        if let Some(stem) = path.strip_suffix(torch) {
            let alt = format!("{stem}{burn}");
            if expected.contains_key(&alt) {
                return alt;
            }
        }
    }
    path
}

/// The PyTorch key of a burn path (inverse of [`burn_param_name`]);
/// `head_embedding` says whether a fast-reid head has an embedding conv
/// (which moves its BNNeck from `bottleneck.0` to `bottleneck.1`).
pub(crate) fn burn_to_torch(path: &str, head_embedding: bool) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    let last = parts.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::with_capacity(parts.len() + 1);
    for (i, seg) in parts.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| parts[j]);
        match (prev, *seg) {
            (Some("downsample"), "conv") => out.push("0"),
            (Some("downsample"), "bn") => out.push("1"),
            (_, "instance_norm") => out.push("IN"),
            (_, "batch_norm") => out.push("BN"),
            (_, "post_norm") => out.push("IN"),
            (Some(h), "neck") if is_head(h) => {
                out.push("bottleneck");
                out.push(if head_embedding { "1" } else { "0" });
            }
            (Some(h), "embedding") if is_head(h) => {
                out.push("bottleneck");
                out.push("0");
            }
            (_, s) if i == last => out.push(torch_norm_leaf(s)),
            (_, s) => out.push(s),
        }
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_and_ibn_names_map_to_module_paths_and_back() {
        let mut expected = BTreeMap::new();
        for p in [
            "bn1.gamma",
            "layer1.0.downsample.conv.weight",
            "layer1.0.downsample.bn.gamma",
            "layer1.0.bn1.instance_norm.gamma",
            "layer1.0.bn1.batch_norm.running_var",
            "layer1.1.post_norm.beta",
            "layer2.0.conv2.weight",
        ] {
            expected.insert(p.to_string(), ());
        }
        let cases = [
            ("bn1.weight", "bn1.gamma"),
            (
                "layer1.0.downsample.0.weight",
                "layer1.0.downsample.conv.weight",
            ),
            (
                "layer1.0.downsample.1.weight",
                "layer1.0.downsample.bn.gamma",
            ),
            ("layer1.0.bn1.IN.weight", "layer1.0.bn1.instance_norm.gamma"),
            (
                "layer1.0.bn1.BN.running_var",
                "layer1.0.bn1.batch_norm.running_var",
            ),
            ("layer1.1.IN.bias", "layer1.1.post_norm.beta"),
            ("layer2.0.conv2.weight", "layer2.0.conv2.weight"),
        ];
        for (torch, burn) in cases {
            assert_eq!(burn_param_name(torch, 1, &expected), burn, "{torch}");
            assert_eq!(burn_to_torch(burn, false), torch, "{burn}");
        }
    }

    #[test]
    fn fastreid_head_names_depend_on_the_tensor_rank() {
        assert_eq!(
            torch_to_burn_segments("heads.bottleneck.0.running_mean", 1),
            "heads.neck.running_mean"
        );
        assert_eq!(
            torch_to_burn_segments("heads.bottleneck.0.weight", 4),
            "heads.embedding.weight"
        );
        assert_eq!(
            torch_to_burn_segments("heads.bottleneck.1.weight", 1),
            "heads.neck.weight"
        );
        assert_eq!(
            burn_to_torch("heads.neck.gamma", false),
            "heads.bottleneck.0.weight"
        );
        assert_eq!(
            burn_to_torch("heads.neck.gamma", true),
            "heads.bottleneck.1.weight"
        );
    }
}
