//! Property tests of the `.npy` reader: random bytes, random header
//! dictionaries and mutated valid files never panic (and never allocate what a
//! header merely claims: a process abort would fail the run), and what is read
//! back is consistent with the header.

use std::path::PathBuf;

use proptest::prelude::*;
use reid_metrics::npy::{read_float_array, read_header, read_ids, read_matrix, write_matrix};

fn file(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reid-metrics-npy-props-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(format!("{tag}.npy"))
}

/// Runs every reader on `bytes`; none may panic. Whatever is accepted is consistent.
fn read_all(tag: &str, bytes: &[u8]) {
    let path = file(tag);
    std::fs::write(&path, bytes).unwrap();
    let header = read_header(&path);
    if let Ok(m) = read_matrix(&path) {
        assert!(m.nrows() > 0 && m.ncols() > 0 && m.iter().all(|v| v.is_finite()));
        let h = header.as_ref().unwrap();
        assert_eq!(h.shape, vec![m.nrows() as u64, m.ncols() as u64]);
    }
    if let Ok(ids) = read_ids(&path) {
        assert!(!ids.is_empty());
        assert_eq!(header.as_ref().unwrap().shape, vec![ids.len() as u64]);
    }
    if let Ok(a) = read_float_array(&path) {
        let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
        assert_eq!(header.as_ref().unwrap().shape, shape);
    }
}

fn preamble(version: u8, header: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY".to_vec();
    v.extend_from_slice(&[version, 0]);
    if version == 1 {
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        v.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    v.extend_from_slice(header);
    v
}

/// Axis lengths that matter: empty, small, and claims far beyond any file.
fn dim() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..5,
        Just(1u64 << 32),
        Just(1_000_000_000_000),
        Just(u64::MAX),
        any::<u64>()
    ]
}

fn descr() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "<f4", "<f8", "<i4", "<i8", ">f4", ">f8", ">i4", ">i8", "=f4", "|u1", "<u8", "<c8",
            "|b1", "<f2", "", "f4",
        ])
        .prop_map(String::from),
        "[<>=|]?[a-zA-Z][0-9]{0,2}",
    ]
}

/// Header text from the characters numpy headers are made of.
fn header_soup() -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = "{}()[]',:\" 0123456789LTrueFalsedescrshapefortran_order<>=|fi-\n\\"
        .chars()
        .collect();
    prop::collection::vec(prop::sample::select(alphabet), 0..120)
        .prop_map(|v| v.into_iter().collect())
}

/// A well-formed dictionary with random field values, keys in random order.
fn header_dict() -> impl Strategy<Value = String> {
    (
        descr(),
        prop_oneof![
            Just("False".to_string()),
            Just("True".to_string()),
            "[a-z0-9']{0,4}"
        ],
        prop::collection::vec(dim(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(descr, fortran, shape, swap)| {
            let shape = match shape.as_slice() {
                [] => "()".to_string(),
                [one] => format!("({one},)"),
                many => format!(
                    "({})",
                    many.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            if swap {
                format!("{{'shape': {shape}, 'fortran_order': {fortran}, 'descr': '{descr}'}}\n")
            } else {
                format!(
                    "{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}   \n"
                )
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        read_all("random", &bytes);
    }

    #[test]
    fn random_bytes_after_the_magic_never_panic(
        version in 0u8..5,
        rest in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.push(version);
        bytes.extend(rest);
        read_all("magic", &bytes);
    }

    #[test]
    fn random_header_text_never_panics(
        version in 1u8..4,
        text in header_soup(),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = preamble(version, text.as_bytes());
        bytes.extend(data);
        read_all("soup", &bytes);
    }

    #[test]
    fn random_header_fields_never_panic_and_sizes_are_checked(
        version in 1u8..4,
        dict in header_dict(),
        data_len in 0usize..200,
    ) {
        let mut bytes = preamble(version, dict.as_bytes());
        bytes.extend(std::iter::repeat_n(0x3fu8, data_len));
        read_all("fields", &bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        rows in 1usize..4,
        cols in 1usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let path = file("valid");
        let m = ndarray::Array2::from_shape_fn((rows, cols), |(r, c)| (r * cols + c) as f32);
        write_matrix(&path, m.view()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, b) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        read_all("mutated", &bytes);
    }

    #[test]
    fn written_matrices_read_back_bit_for_bit(
        rows in 1usize..6,
        cols in 1usize..6,
        seed in prop::collection::vec(-1e30f32..1e30, 36),
    ) {
        let path = file("roundtrip");
        let m = ndarray::Array2::from_shape_fn((rows, cols), |(r, c)| seed[r * 6 + c]);
        write_matrix(&path, m.view()).unwrap();
        let back = read_matrix(&path).unwrap();
        prop_assert_eq!(back, m);
    }
}
