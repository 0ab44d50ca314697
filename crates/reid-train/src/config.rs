//! Recipe files with overrides: a `.toml` or `.json` file (or the recipe's
//! defaults), then `key.path=value` overrides (fast-reid's `KEY VALUE`
//! opts, the programs' `--set`), then the recipe's own deserialisation, so
//! an override meets exactly the validation of the file: unknown keys
//! (`deny_unknown_fields`), types and ranges.
//!
//! ```
//! use reid_train::config::{Override, load_recipe};
//! use reid_train::MocoConfig;
//!
//! let sets = [Override::parse("epochs=3")?, Override::parse("batch_size=16")?];
//! let cfg: MocoConfig = load_recipe(None, &sets)?;
//! assert_eq!((cfg.epochs, cfg.batch_size), (3, 16));
//! // A key the recipe does not have is an error naming it.
//! let bad = [Override::parse("epoch=3")?];
//! assert!(load_recipe::<MocoConfig>(None, &bad).unwrap_err().to_string().contains("epoch"));
//! # Ok::<(), reid_train::TrainError>(())
//! ```

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::TrainError;

/// One `key.path=value` override of a recipe field.
///
/// `value` is read as a TOML value (`3`, `1e-3`, `true`, `"text"`,
/// `[128, 64]`, `{ kind = "cosine" }`); anything that is not valid TOML is
/// taken as a plain string (`arch=resnet50_ibn_a`).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The dotted path of the field, e.g. `["k_schedule", "start"]`.
    pub path: Vec<String>,
    /// The new value.
    pub value: Value,
}

impl Override {
    /// Parses `key.path=value`.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] without `=`, or with an empty key or
    /// key segment.
    pub fn parse(text: &str) -> Result<Self, TrainError> {
        let Some((key, raw)) = text.split_once('=') else {
            return Err(TrainError::InvalidConfig(format!(
                "override {text:?}: expected key.path=value"
            )));
        };
        let path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(TrainError::InvalidConfig(format!(
                "override {text:?}: the key {key:?} has an empty part"
            )));
        }
        Ok(Self {
            path,
            value: toml_value(raw.trim()),
        })
    }

    /// Writes the value into `root` (a JSON object), creating the tables
    /// on the way.
    fn apply(&self, root: &mut Value) -> Result<(), TrainError> {
        let mut node = root;
        let Some((last, parents)) = self.path.split_last() else {
            return Err(TrainError::InvalidConfig(
                "an override needs a key (key.path=value)".into(),
            ));
        };
        for (i, part) in parents.iter().enumerate() {
            let obj = node.as_object_mut().ok_or_else(|| self.not_a_table(i))?;
            node = obj
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        let obj = node
            .as_object_mut()
            .ok_or_else(|| self.not_a_table(parents.len()))?;
        obj.insert(last.clone(), self.value.clone());
        Ok(())
    }

    fn not_a_table(&self, depth: usize) -> TrainError {
        TrainError::InvalidConfig(format!(
            "override {}: {} is not a table",
            self.path.join("."),
            if depth == 0 {
                "the recipe".to_string()
            } else {
                self.path[..depth].join(".")
            }
        ))
    }
}

/// A TOML value of `raw`, or `raw` as a string when it is not one.
fn toml_value(raw: &str) -> Value {
    #[derive(serde::Deserialize)]
    struct Holder {
        v: toml::Value,
    }
    toml::from_str::<Holder>(&format!("v = {raw}"))
        .ok()
        .and_then(|h| serde_json::to_value(h.v).ok())
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

/// Reads a `.toml` or `.json` recipe file as a JSON tree.
fn read_tree(path: &Path) -> Result<Value, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let bad = |e: String| TrainError::InvalidConfig(format!("{}: {e}", path.display()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let v: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            serde_json::to_value(v).map_err(|e| bad(e.to_string()))
        }
        Some("json") => serde_json::from_str(&text).map_err(|e| bad(e.to_string())),
        _ => Err(TrainError::InvalidConfig(format!(
            "recipe file {} must end in .toml or .json",
            path.display()
        ))),
    }
}

/// The recipe `T`: `file` (or `T::default()` when `None`) with `sets`
/// applied in order, deserialised once, so that the file and the
/// overrides meet the same checks.
///
/// # Errors
/// [`TrainError::Io`] when the file cannot be read;
/// [`TrainError::InvalidConfig`] naming the file (or `--set`) for a parse
/// error, an unknown key, a value of the wrong type, or an override whose
/// parent is not a table.
pub fn load_recipe<T>(file: Option<&Path>, sets: &[Override]) -> Result<T, TrainError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut tree = match file {
        Some(p) => read_tree(p)?,
        None => Value::Object(Map::new()),
    };
    if !tree.is_object() {
        return Err(TrainError::InvalidConfig(format!(
            "{}: a recipe file holds a table of fields",
            file.map_or_else(|| "recipe".into(), |p| p.display().to_string())
        )));
    }
    for s in sets {
        s.apply(&mut tree)?;
    }
    let source = match (file, sets.is_empty()) {
        (Some(p), true) => p.display().to_string(),
        (Some(p), false) => format!("{} with --set overrides", p.display()),
        (None, _) => "the --set overrides".to_string(),
    };
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." {
            TrainError::InvalidConfig(format!("{source}: {inner}"))
        } else {
            TrainError::InvalidConfig(format!("{source}: field `{at}`: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CionConfig;

    #[test]
    fn values_are_toml_or_strings() {
        let o = Override::parse("k_schedule.start = 2").unwrap();
        assert_eq!(o.path, ["k_schedule", "start"]);
        assert_eq!(o.value, Value::from(2));
        assert_eq!(
            Override::parse("a=[1, 2]").unwrap().value,
            serde_json::json!([1, 2])
        );
        assert_eq!(
            Override::parse("arch=resnet50_ibn_a").unwrap().value,
            Value::from("resnet50_ibn_a")
        );
        assert!(Override::parse("novalue").is_err());
        assert!(Override::parse("a..b=1").is_err());
        // A hand-built override without a key is an error, not a panic.
        let keyless = Override {
            path: Vec::new(),
            value: Value::from(1),
        };
        assert!(load_recipe::<CionConfig>(None, &[keyless]).is_err());
    }

    #[test]
    fn overrides_meet_the_recipe_checks() {
        let cfg: CionConfig = load_recipe(None, &[Override::parse("epochs=2").unwrap()]).unwrap();
        assert_eq!(cfg.epochs, 2);
        let e = load_recipe::<CionConfig>(None, &[Override::parse("epochs=\"two\"").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--set"), "{e}");
        let e = load_recipe::<CionConfig>(None, &[Override::parse("epochs.x=1").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochs"), "{e}");
    }

    #[test]
    fn a_file_then_its_overrides() {
        let dir = std::env::temp_dir().join(format!("reid-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.toml");
        std::fs::write(&p, "epochs = 5\nbatch_size = 8\n").unwrap();
        let cfg: CionConfig =
            load_recipe(Some(&p), &[Override::parse("epochs=7").unwrap()]).unwrap();
        assert_eq!((cfg.epochs, cfg.batch_size), (7, 8));
        std::fs::write(&p, "epochz = 5\n").unwrap();
        let e = load_recipe::<CionConfig>(Some(&p), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml") && e.contains("epochz"), "{e}");
        let bad = dir.join("r.yaml");
        assert!(load_recipe::<CionConfig>(Some(&bad), &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
