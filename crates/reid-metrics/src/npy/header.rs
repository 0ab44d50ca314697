//! The `.npy` preamble and header dictionary (format versions 1.0, 2.0, 3.0):
//! magic `\x93NUMPY`, two version bytes, a little-endian header length (2 bytes
//! in 1.0, 4 bytes in 2.0/3.0) and a Python dictionary literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
//!
//! Parsing reads at most [`MAX_HEADER_LEN`] header bytes and allocates nothing
//! that depends on the shape the header claims.

use std::io::Read;

use super::dtype::Dtype;
use super::problem::NpyProblem;

/// The largest header accepted, in bytes (numpy itself refuses headers over
/// 10,000 bytes unless told otherwise).
pub const MAX_HEADER_LEN: u64 = 65_536;

/// The magic bytes every `.npy` file starts with.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A parsed `.npy` header. Nothing in it has been checked against the data yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Format version `(major, minor)`.
    pub version: (u8, u8),
    /// The `descr` field as written, e.g. `"<f4"`.
    pub descr: String,
    /// Whether the data are in column-major (Fortran) order.
    pub fortran_order: bool,
    /// The shape, one entry per axis (empty for a 0-dimensional array).
    pub shape: Vec<u64>,
    /// Bytes before the data: preamble plus header dictionary.
    pub header_bytes: u64,
}

impl NpyHeader {
    /// The data type, when it is one this crate reads.
    pub fn dtype(&self) -> Option<Dtype> {
        Dtype::parse(&self.descr)
    }

    /// Number of elements the shape claims (`None` when it overflows `u128`).
    pub fn num_elements(&self) -> Option<u128> {
        self.shape
            .iter()
            .try_fold(1u128, |acc, &d| acc.checked_mul(u128::from(d)))
    }
}

/// Reads into `buf` until it is full or the reader ends; returns the bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, NpyProblem> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(NpyProblem::Io {
                    action: "read",
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(got)
}

/// Bytes shown escaped (for messages).
fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Reads and parses the preamble and header dictionary from `r`, positioned at
/// the start of the file. `held` is the file's size in bytes when known.
pub(crate) fn read_header<R: Read>(r: &mut R, held: Option<u64>) -> Result<NpyHeader, NpyProblem> {
    let mut pre = [0u8; 12];
    let got = read_up_to(r, &mut pre[..8])?;
    let start = &pre[..got.min(6)];
    if start != &MAGIC[..start.len()] {
        return Err(NpyProblem::NotNpy {
            found: escaped(start),
        });
    }
    if got < 8 {
        return Err(NpyProblem::TooShort {
            held: got as u64,
            needed: 10,
        });
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyProblem::Version { major, minor }),
    };
    let got_len = read_up_to(r, &mut pre[8..8 + len_bytes])?;
    let preamble = 8 + len_bytes as u64;
    if got_len < len_bytes {
        return Err(NpyProblem::TooShort {
            held: 8 + got_len as u64,
            needed: preamble,
        });
    }
    let len = if len_bytes == 2 {
        u64::from(u16::from_le_bytes([pre[8], pre[9]]))
    } else {
        u64::from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]))
    };
    let available = held.map_or(u64::MAX, |h| h.saturating_sub(preamble));
    if len > MAX_HEADER_LEN || len > available {
        return Err(NpyProblem::HeaderLength {
            len,
            available,
            limit: MAX_HEADER_LEN,
        });
    }
    let mut raw = vec![0u8; len as usize];
    let got_header = read_up_to(r, &mut raw)?;
    if got_header < raw.len() {
        return Err(NpyProblem::HeaderLength {
            len,
            available: got_header as u64,
            limit: MAX_HEADER_LEN,
        });
    }
    // Versions 1.0 and 2.0 are latin-1, 3.0 is UTF-8.
    let text: String = if major == 3 {
        String::from_utf8(raw).map_err(|e| NpyProblem::HeaderSyntax {
            reason: "version 3.0 header is not UTF-8".into(),
            text: escaped(e.as_bytes()),
        })?
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let (descr, fortran_order, shape) = parse_dict(&text)?;
    Ok(NpyHeader {
        version: (major, minor),
        descr,
        fortran_order,
        shape,
        header_bytes: preamble + len,
    })
}

/// A value of the header dictionary.
#[derive(Debug)]
enum Value {
    Str(String),
    Ident(String),
    Tuple(Vec<String>),
    List,
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("the string {s:?}"),
            Value::Ident(s) => s.clone(),
            Value::Tuple(items) => format!("({})", items.join(", ")),
            Value::List => "a list".into(),
        }
    }
}

/// A cursor over the header text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        self.skip_ws();
        match self.bump() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(format!(
                "expected {want:?} at byte {}, found {c:?}",
                self.at - c.len_utf8()
            )),
            None => Err(format!("expected {want:?}, found the end of the header")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.bump().ok_or("expected a string")?;
        let mut out = String::new();
        loop {
            match self.bump() {
                Some(c) if c == quote => return Ok(out),
                Some('\\') => return Err("escape sequences in strings are not supported".into()),
                Some(c) => out.push(c),
                None => return Err("unterminated string".into()),
            }
        }
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || "_.+-".contains(c))
        {
            self.bump();
        }
        self.text[start..self.at].to_string()
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'' | '"') => self.string().map(Value::Str),
            Some('(') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(')') {
                        self.bump();
                        return Ok(Value::Tuple(items));
                    }
                    let w = self.word();
                    if w.is_empty() {
                        return Err(match self.peek() {
                            Some(c) => format!("unexpected {c:?} in a tuple at byte {}", self.at),
                            None => "unterminated tuple".into(),
                        });
                    }
                    items.push(w);
                    self.skip_ws();
                    match self.peek() {
                        Some(',') => {
                            self.bump();
                        }
                        Some(')') => {}
                        Some(c) => {
                            return Err(format!("unexpected {c:?} in a tuple at byte {}", self.at));
                        }
                        None => return Err("unterminated tuple".into()),
                    }
                }
            }
            Some('[') => {
                // A structured dtype: skip to the matching bracket.
                let mut depth = 0usize;
                loop {
                    match self.bump() {
                        Some('[') => depth += 1,
                        Some(']') => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(Value::List);
                            }
                        }
                        Some('\'' | '"') => {
                            self.at -= 1;
                            self.string()?;
                        }
                        Some(_) => {}
                        None => return Err("unterminated list".into()),
                    }
                }
            }
            Some(_) => {
                let w = self.word();
                if w.is_empty() {
                    Err(format!(
                        "unexpected {:?} at byte {}",
                        self.peek().unwrap_or(' '),
                        self.at
                    ))
                } else {
                    Ok(Value::Ident(w))
                }
            }
            None => Err("expected a value, found the end of the header".into()),
        }
    }
}

/// Shortened, escaped header text for messages.
fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(160).collect();
    let more = if text.chars().count() > 160 {
        "…"
    } else {
        ""
    };
    format!("\"{}{more}\"", short.escape_debug())
}

/// Parses the dictionary literal into `(descr, fortran_order, shape)`.
fn parse_dict(text: &str) -> Result<(String, bool, Vec<u64>), NpyProblem> {
    let syntax = |reason: String| NpyProblem::HeaderSyntax {
        reason,
        text: excerpt(text),
    };
    let mut cur = Cursor { text, at: 0 };
    cur.expect('{').map_err(syntax)?;
    let mut entries: Vec<(String, Value)> = Vec::new();
    loop {
        cur.skip_ws();
        match cur.peek() {
            Some('}') => {
                cur.bump();
                break;
            }
            Some('\'' | '"') => {}
            Some(c) => return Err(syntax(format!("expected a quoted key, found {c:?}"))),
            None => return Err(syntax("unterminated dictionary".into())),
        }
        let key = cur.string().map_err(syntax)?;
        cur.expect(':').map_err(syntax)?;
        let value = cur.value().map_err(syntax)?;
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(NpyProblem::HeaderKey {
                key,
                reason: "repeated",
            });
        }
        entries.push((key, value));
        cur.skip_ws();
        match cur.peek() {
            Some(',') => {
                cur.bump();
            }
            Some('}') => {}
            Some(c) => return Err(syntax(format!("expected ',' or '}}', found {c:?}"))),
            None => return Err(syntax("unterminated dictionary".into())),
        }
    }
    cur.skip_ws();
    if cur.at != text.len() {
        return Err(syntax(format!(
            "unexpected text after the dictionary at byte {}",
            cur.at
        )));
    }
    if let Some((key, _)) = entries
        .iter()
        .find(|(k, _)| !["descr", "fortran_order", "shape"].contains(&k.as_str()))
    {
        return Err(NpyProblem::HeaderKey {
            key: key.clone(),
            reason: "unknown",
        });
    }
    let take = |key: &'static str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or(NpyProblem::HeaderKey {
                key: key.into(),
                reason: "missing",
            })
    };
    let descr = match take("descr")? {
        Value::Str(s) => s.clone(),
        other => {
            return Err(wrong_value(
                "descr",
                "a type string such as '<f4' (structured dtypes are not supported)",
                other,
            ));
        }
    };
    let fortran_order = match take("fortran_order")? {
        Value::Ident(s) if s == "True" => true,
        Value::Ident(s) if s == "False" => false,
        other => return Err(wrong_value("fortran_order", "True or False", other)),
    };
    let shape = match take("shape")? {
        Value::Tuple(items) => items
            .iter()
            .map(|s| parse_dim(s))
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| NpyProblem::HeaderField {
                field: "shape",
                expected: "a tuple of non-negative integers below 2^64",
                got: format!("({})", items.join(", ")),
            })?,
        other => {
            return Err(wrong_value(
                "shape",
                "a tuple of non-negative integers such as (3, 4)",
                other,
            ));
        }
    };
    Ok((descr, fortran_order, shape))
}

/// One axis length: decimal digits, optionally with Python 2's `L` suffix.
/// A header field `field` whose value `got` is not what was `expected`.
fn wrong_value(field: &'static str, expected: &'static str, got: &Value) -> NpyProblem {
    NpyProblem::HeaderField {
        field,
        expected,
        got: got.describe(),
    }
}

fn parse_dim(s: &str) -> Option<u64> {
    let digits = s.strip_suffix('L').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::dtype::format_shape;

    fn file(header: &str) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v
    }

    fn parse(header: &str) -> Result<NpyHeader, NpyProblem> {
        let bytes = file(header);
        read_header(&mut &bytes[..], Some(bytes.len() as u64))
    }

    #[test]
    fn numpy_headers_parse() {
        let h = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }   \n").unwrap();
        assert_eq!(h.descr, "<f4");
        assert!(!h.fortran_order);
        assert_eq!(h.shape, vec![3, 4]);
        assert_eq!(h.dtype(), Some(Dtype::F32_LE));
        let h = parse("{\"shape\":(7L,),\"fortran_order\":True,\"descr\":\">i8\"}").unwrap();
        assert_eq!(h.shape, vec![7]);
        assert!(h.fortran_order);
        assert_eq!(h.dtype().unwrap().to_string(), "int64 ('>i8')");
        assert_eq!(
            parse("{'descr':'<f8','fortran_order':False,'shape':()}")
                .unwrap()
                .shape,
            vec![]
        );
    }

    #[test]
    fn every_field_is_checked_in_our_words() {
        let e = parse("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}").unwrap_err();
        assert!(
            e.to_string()
                .contains("'fortran_order': expected True or False, got 0"),
            "{e}"
        );
        let e = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1)}").unwrap_err();
        assert!(
            e.to_string().contains("'shape'") && e.to_string().contains("(3, -1)"),
            "{e}"
        );
        let e = parse("{'descr': '<f4', 'fortran_order': False, 'shape': 3}").unwrap_err();
        assert!(e.to_string().contains("tuple"), "{e}");
        let e =
            parse("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}").unwrap_err();
        assert!(e.to_string().contains("structured"), "{e}");
        let e = parse("{'descr': '<f4', 'shape': (3,)}").unwrap_err();
        assert!(
            matches!(
                e,
                NpyProblem::HeaderKey {
                    reason: "missing",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}")
            .unwrap_err();
        assert!(
            matches!(
                e,
                NpyProblem::HeaderKey {
                    reason: "repeated",
                    ..
                }
            ),
            "{e}"
        );
        let e =
            parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}").unwrap_err();
        assert!(
            matches!(
                e,
                NpyProblem::HeaderKey {
                    reason: "unknown",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk").unwrap_err();
        assert!(matches!(e, NpyProblem::HeaderSyntax { .. }), "{e}");
        let e = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}")
            .unwrap_err();
        assert!(e.to_string().contains("below 2^64"), "{e}");
    }

    #[test]
    fn preamble_problems_are_named() {
        let e = read_header(&mut &b"PK\x03\x04zip"[..], Some(7)).unwrap_err();
        assert!(matches!(e, NpyProblem::NotNpy { .. }), "{e}");
        let e = read_header(&mut &b"\x93NUM"[..], Some(4)).unwrap_err();
        assert!(matches!(e, NpyProblem::TooShort { held: 4, .. }), "{e}");
        let e = read_header(&mut &b"\x93NUMPY\x04\x00\x10\x00"[..], Some(10)).unwrap_err();
        assert!(matches!(e, NpyProblem::Version { major: 4, .. }), "{e}");
        let e = read_header(&mut &b"\x93NUMPY\x01\x00\xff\xff{}"[..], Some(12)).unwrap_err();
        assert!(
            e.to_string()
                .contains("65535 bytes, but only 2 bytes follow"),
            "{e}"
        );
        let e = read_header(&mut &b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}"[..], None).unwrap_err();
        assert!(e.to_string().contains("limited to 65536"), "{e}");
    }

    #[test]
    fn dtypes_parse_and_print() {
        assert_eq!(Dtype::parse("<f8").unwrap().item_size(), 8);
        assert!(Dtype::parse(">i4").unwrap().big_endian);
        for bad in ["<u1", "|b1", "<f2", "f4", "<f4 ", "", "<c8", "|i4"] {
            assert!(Dtype::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(format_shape(&[5]), "(5,)");
        assert_eq!(format_shape(&[1_000_000_000_000, 8]), "(1000000000000, 8)");
    }
}
