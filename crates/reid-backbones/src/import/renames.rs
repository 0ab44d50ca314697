//! Key mappings declared as regex renames, applied the way burn-store's
//! [`KeyRemapper`] renames tensors: every `(pattern, replacement)` pair in
//! order, each to the key as the pairs before it left it
//! (`Regex::replace_all`, `${1}` for capture groups).
//!
//! The families whose file keys map to module paths by renaming declare
//! their tables (file → model, model → file): ConvNeXt's two namings
//! (which EdgeNeXt shares for its stem, down-sampling and final norm) and
//! GhostNet's modules and BatchNorms. The indices that depend on the
//! model's structure are computed by hand: FastViT's and RepViT's flat
//! official lists, EdgeNeXt's split of a stage's blocks, VOLO's
//! `network.N` stage numbers, GhostNet's final-stage index.

use burn::store::KeyRemapper;

/// A key renaming: `(pattern, replacement)` pairs applied in order.
#[derive(Debug, Clone)]
pub(crate) struct Renames(KeyRemapper);

impl Renames {
    /// The renaming of `pairs`. The patterns are the crate's own tables, so
    /// an invalid one is a bug (a panic, caught by every test that maps a
    /// key).
    pub fn new<S: AsRef<str>, T: Into<String>>(pairs: impl IntoIterator<Item = (S, T)>) -> Self {
        let remapper = KeyRemapper::from_pattern_iter(pairs);
        Self(remapper.unwrap_or_else(|e| panic!("invalid key pattern: {e}")))
    }

    /// `key` renamed, and whether any pattern matched it.
    pub fn rename(&self, key: &str) -> (String, bool) {
        let mut out = key.to_string();
        let mut matched = false;
        for (pattern, replacement) in &self.0.patterns {
            if pattern.is_match(&out) {
                out = pattern.replace_all(&out, replacement.as_str()).into_owned();
                matched = true;
            }
        }
        (out, matched)
    }

    /// `key` renamed (unchanged where no pattern matches).
    pub fn apply(&self, key: &str) -> String {
        self.rename(key).0
    }

    /// `key` renamed when some pattern matches it; `None` otherwise (a key
    /// of no naming the table knows).
    pub fn apply_matching(&self, key: &str) -> Option<String> {
        let (out, matched) = self.rename(key);
        matched.then_some(out)
    }
}

/// The regex of a key prefix declared with `{name}` placeholders (one key
/// segment each), and its replacement text for the other side: `{name}`
/// becomes a named group `(?P<name>[^.]+)` / `${name}`; a prefix that does
/// not end with `.` must end a segment (`(?P<end>\.|$)`).
fn prefix_regex(from: &str, to: &str) -> (String, String) {
    let (mut pattern, mut replacement) = (String::from("^"), String::new());
    for (text, out, group) in [(from, &mut pattern, true), (to, &mut replacement, false)] {
        for (k, part) in text.split('{').enumerate() {
            let literal = match part.split_once('}') {
                Some((name, rest)) if k > 0 => {
                    out.push_str(&if group {
                        format!("(?P<{name}>[^.]+)")
                    } else {
                        format!("${{{name}}}")
                    });
                    rest
                }
                _ => part,
            };
            out.push_str(&if group {
                literal.replace('.', r"\.")
            } else {
                literal.to_string()
            });
        }
    }
    if !from.ends_with('.') {
        pattern.push_str(r"(?P<end>\.|$)");
        replacement.push_str("${end}");
    }
    (pattern, replacement)
}

/// `(pattern, replacement)` pairs renaming column `from` of `rows` to
/// column `to`, each row the key prefixes of one parameter in every
/// naming, with `{name}` placeholders for index segments
/// (`"stages.{i}.{j}.dwconv."`).
pub(crate) fn prefixes<const N: usize>(
    rows: &[[&str; N]],
    from: usize,
    to: usize,
) -> Vec<(String, String)> {
    rows.iter()
        .map(|row| prefix_regex(row[from], row[to]))
        .collect()
}

/// Where the segments of a [`segments`] row stand in a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Anywhere (`a.rbr_conv.0.weight`).
    Anywhere,
    /// At the end (`a.bn.weight`).
    End,
}

/// `(pattern, replacement)` pairs renaming column `from` of `rows` to
/// column `to`: whole key segments (one or several, `"se.reduce"`) at
/// `place` in a key.
pub(crate) fn segments<const N: usize>(
    rows: &[[&str; N]],
    from: usize,
    to: usize,
    place: Place,
) -> Vec<(String, String)> {
    let (end, kept) = match place {
        Place::Anywhere => (r"(\.|$)", "${2}"),
        Place::End => ("$", ""),
    };
    rows.iter()
        .map(|row| {
            let pattern = format!(r"(^|\.){}{end}", row[from].replace('.', r"\."));
            (pattern, format!("${{1}}{}{kept}", row[to]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_apply_in_order_to_what_the_earlier_ones_left() {
        let r = Renames::new([(r"^a\.", "b."), (r"^b\.(\d+)\.", "c.${1}.x.")]);
        assert_eq!(r.apply("a.3.w"), "c.3.x.w");
        assert_eq!(r.apply_matching("b.1.w").as_deref(), Some("c.1.x.w"));
        assert_eq!(r.apply_matching("d.1.w"), None);
        assert_eq!(r.apply("d.1.w"), "d.1.w");
    }

    #[test]
    fn prefix_rows_rename_both_ways_and_match_whole_segments() {
        let rows = [
            ["x.{i}.{j}.w.", "y.{i}.b.{j}.w."],
            ["x.{i}.g", "y.{i}.gamma"],
        ];
        let forward = Renames::new(prefixes(&rows, 0, 1));
        let back = Renames::new(prefixes(&rows, 1, 0));
        assert_eq!(forward.apply("x.2.7.w.bias"), "y.2.b.7.w.bias");
        assert_eq!(back.apply("y.2.b.7.w.bias"), "x.2.7.w.bias");
        assert_eq!(
            forward.apply_matching("x.1.g").as_deref(),
            Some("y.1.gamma")
        );
        assert_eq!(forward.apply("x.1.g.v"), "y.1.gamma.v");
        assert_eq!(forward.apply_matching("x.1.gx"), None);
    }

    #[test]
    fn segment_rows_rename_whole_segments_anywhere() {
        let rows = [["rbr_conv", "conv_kxk"], ["se.reduce", "se.fc1"]];
        let forward = Renames::new(segments(&rows, 0, 1, Place::Anywhere));
        assert_eq!(forward.apply("a.rbr_conv.0.w"), "a.conv_kxk.0.w");
        assert_eq!(forward.apply("rbr_conv"), "conv_kxk");
        assert_eq!(forward.apply("a.se.reduce.bias"), "a.se.fc1.bias");
        assert_eq!(forward.apply("a.reduce.bias"), "a.reduce.bias");
        assert_eq!(forward.apply("a.rbr_convx.w"), "a.rbr_convx.w");
        let back = Renames::new(segments(&rows, 1, 0, Place::Anywhere));
        assert_eq!(back.apply("a.conv_kxk.0.w"), "a.rbr_conv.0.w");
        let leaves = Renames::new(segments(&[["bn.weight", "bn.gamma"]], 0, 1, Place::End));
        assert_eq!(leaves.apply("a.bn.weight"), "a.bn.gamma");
        assert_eq!(leaves.apply("bn.weight"), "bn.gamma");
        assert_eq!(leaves.apply("a.bn.weight.x"), "a.bn.weight.x");
    }
}
