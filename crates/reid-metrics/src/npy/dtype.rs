//! Element types and shapes of `.npy` data: which `descr` strings this crate
//! reads, their sizes and byte orders, and shapes as numpy prints them.

/// Element types this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Element {
    /// IEEE-754 binary32 (`f4`).
    F32,
    /// IEEE-754 binary64 (`f8`).
    F64,
    /// Signed 32-bit integer (`i4`).
    I32,
    /// Signed 64-bit integer (`i8`).
    I64,
}

/// A supported data type: element type and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dtype {
    /// The element type.
    pub element: Element,
    /// Whether the bytes are big-endian (`>` in the header) rather than little-endian.
    pub big_endian: bool,
}

impl Dtype {
    /// Little-endian float32, `'<f4'`.
    pub const F32_LE: Dtype = Dtype {
        element: Element::F32,
        big_endian: false,
    };
    /// Little-endian int64, `'<i8'`.
    pub const I64_LE: Dtype = Dtype {
        element: Element::I64,
        big_endian: false,
    };

    /// Parses a header's `descr` (`'<f4'`, `'>f8'`, `'=i4'`, …); `None` for any
    /// other type (unsigned, complex, structured, strings, …).
    pub fn parse(descr: &str) -> Option<Dtype> {
        let mut chars = descr.chars();
        let big_endian = match chars.next()? {
            '<' => false,
            '>' => true,
            '=' => cfg!(target_endian = "big"),
            _ => return None,
        };
        let element = match chars.as_str() {
            "f4" => Element::F32,
            "f8" => Element::F64,
            "i4" => Element::I32,
            "i8" => Element::I64,
            _ => return None,
        };
        Some(Dtype {
            element,
            big_endian,
        })
    }

    /// Bytes per element.
    pub fn item_size(&self) -> usize {
        match self.element {
            Element::F32 | Element::I32 => 4,
            Element::F64 | Element::I64 => 8,
        }
    }

    /// The `descr` string of this type, e.g. `'<f4'`.
    pub fn descr(&self) -> String {
        let order = if self.big_endian { '>' } else { '<' };
        let code = match self.element {
            Element::F32 => "f4",
            Element::F64 => "f8",
            Element::I32 => "i4",
            Element::I64 => "i8",
        };
        format!("{order}{code}")
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.element {
            Element::F32 => "float32",
            Element::F64 => "float64",
            Element::I32 => "int32",
            Element::I64 => "int64",
        };
        write!(f, "{name} ('{}')", self.descr())
    }
}

/// A shape as numpy prints it: `(3,)`, `(3, 4)`, `()`.
pub fn format_shape(shape: &[u64]) -> String {
    match shape {
        [] => "()".into(),
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}
