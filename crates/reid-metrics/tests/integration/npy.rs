//! The `.npy` reader and writer: every header field checked in our words, the
//! data size checked against the header before anything is allocated, empty
//! and non-finite data refused, and files of numpy's other layouts read.

use std::path::PathBuf;

use ndarray::{Array2, Array3, ShapeBuilder, arr1, arr2};
use reid_metrics::MetricsError;
use reid_metrics::npy::{
    NpyProblem, read_float_array, read_header, read_ids, read_matrix, write_ids, write_matrix,
};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reid-metrics-npy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that `result` failed with an error whose message mentions every
/// one of `parts`.
fn assert_err_mentions<T: std::fmt::Debug>(result: reid_metrics::Result<T>, parts: &[&str]) {
    let msg = result.unwrap_err().to_string();
    for part in parts {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
}

/// A format-1.0 file: preamble, the header text as given, then `data`.
fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn header(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n")
}

fn problem(e: MetricsError) -> NpyProblem {
    match e {
        MetricsError::Npy { problem, .. } => problem,
        other => panic!("expected an .npy error, got {other}"),
    }
}

#[test]
fn a_huge_shape_on_a_small_file_is_an_error_naming_shape_and_bytes_before_allocating() {
    let d = dir("huge");
    let path = d.join("claims_huge.npy");
    std::fs::write(
        &path,
        npy_bytes(&header("<f4", "(1000000000000, 8)"), &[0u8; 64]),
    )
    .unwrap();
    // Allocating 32 TB would abort the test process; an error comes back instead.
    let e = read_matrix(&path).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("claims_huge.npy"), "{msg}");
    assert!(msg.contains("(1000000000000, 8)"), "{msg}");
    assert!(msg.contains("32000000000000 bytes of data"), "{msg}");
    assert!(msg.contains("holds 64 bytes"), "{msg}");
    assert!(matches!(problem(e), NpyProblem::Size { held: 64, .. }));
    // The same for ids and for arrays of any rank.
    let ids = d.join("ids.npy");
    std::fs::write(
        &ids,
        npy_bytes(&header("<i8", "(1000000000000000000,)"), &[0u8; 16]),
    )
    .unwrap();
    assert_err_mentions(read_ids(&ids), &["ids.npy", "(1000000000000000000,)"]);
    let t = d.join("tensor.npy");
    let huge = "(18446744073709551615, 18446744073709551615, 18446744073709551615)";
    std::fs::write(&t, npy_bytes(&header("<f8", huge), &[0u8; 8])).unwrap();
    assert_err_mentions(
        read_float_array(&t),
        &["more than 2^128 bytes", "holds 8 bytes"],
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn data_shorter_or_longer_than_the_shape_is_an_error() {
    let d = dir("size");
    let path = d.join("m.npy");
    std::fs::write(&path, npy_bytes(&header("<f4", "(2, 3)"), &[0u8; 20])).unwrap();
    assert_err_mentions(
        read_matrix(&path),
        &["(24 bytes of data)", "holds 20 bytes"],
    );
    std::fs::write(&path, npy_bytes(&header("<f4", "(2, 3)"), &[0u8; 28])).unwrap();
    assert_err_mentions(read_matrix(&path), &["holds 28 bytes"]);
    std::fs::write(&path, npy_bytes(&header("<f4", "(2, 3)"), &[0u8; 24])).unwrap();
    assert_eq!(read_matrix(&path).unwrap(), Array2::<f32>::zeros((2, 3)));
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn every_header_field_is_checked_in_our_words() {
    let d = dir("fields");
    let path = d.join("bad.npy");
    let cases: &[(String, &str)] = &[
        (
            header("<u1", "(2, 3)"),
            "'descr' is \"<u1\": expected float32 or float64",
        ),
        (
            header("<f4", "(2, 3, 4)"),
            "(2, 3, 4): expected a 2-dimensional array [rows, columns]",
        ),
        (
            header("<f4", "(6,)"),
            "(6,): expected a 2-dimensional array",
        ),
        (header("<f4", "3"), "'shape': expected a tuple"),
        (
            header("<f4", "(2, -3)"),
            "'shape': expected a tuple of non-negative integers",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 'no', 'shape': (2, 3), }".into(),
            "'fortran_order': expected True or False, got the string \"no\"",
        ),
        (
            "{'descr': '<f4', 'shape': (2, 3), }".into(),
            "\"fortran_order\": missing",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}".into(),
            "\"x\": unknown",
        ),
        ("not a dictionary".into(), "not a .npy header dictionary"),
        (
            header("<f4", "(0, 8)"),
            "(0, 8): expected at least one element along every axis",
        ),
        (
            header("<f4", "(8, 0)"),
            "(8, 0): expected at least one element",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&path, npy_bytes(text, &[0u8; 24])).unwrap();
        let msg = read_matrix(&path).unwrap_err().to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(want), "{text:?}: {msg}");
        for internal in ["NDIM", "Dimension type", "ReadNpyError", "Io("] {
            assert!(!msg.contains(internal), "{msg}");
        }
    }
    // Ids: 1-D integers, not empty.
    std::fs::write(&path, npy_bytes(&header("<f4", "(3,)"), &[0u8; 12])).unwrap();
    assert_err_mentions(read_ids(&path), &["expected int64 or int32 ids"]);
    std::fs::write(&path, npy_bytes(&header("<i8", "(3, 1)"), &[0u8; 24])).unwrap();
    assert_err_mentions(
        read_ids(&path),
        &["(3, 1): expected a 1-dimensional array [n]"],
    );
    std::fs::write(&path, npy_bytes(&header("<i8", "(0,)"), &[])).unwrap();
    assert!(matches!(
        problem(read_ids(&path).unwrap_err()),
        NpyProblem::Empty { .. }
    ));
    // Not an .npy file at all, a truncated one, a missing one.
    std::fs::write(&path, b"PK\x03\x04 a zip archive").unwrap();
    assert_err_mentions(read_matrix(&path), &["not a .npy file"]);
    std::fs::write(&path, b"\x93NUMPY\x01").unwrap();
    assert_err_mentions(read_matrix(&path), &["holds 7 bytes"]);
    let missing = d.join("missing.npy");
    assert_err_mentions(
        read_matrix(&missing),
        &["missing.npy: cannot open the file"],
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn nan_and_infinity_are_errors_naming_the_index() {
    let d = dir("nan");
    let path = d.join("nan.npy");
    write_matrix(&path, arr2(&[[1.0f32, 2.0], [3.0, f32::NAN]]).view()).unwrap();
    assert_err_mentions(read_matrix(&path), &["nan.npy", "[1, 1] is NaN"]);
    // A float64 beyond the float32 range would become infinite: refused.
    ndarray_npy::write_npy(&path, &arr2(&[[1.0f64, 1e300]])).unwrap();
    assert_err_mentions(
        read_matrix(&path),
        &["[0, 1] is 1e300 (beyond the float32 range)"],
    );
    ndarray_npy::write_npy(&path, &Array3::<f32>::from_elem((1, 2, 2), f32::INFINITY)).unwrap();
    assert_err_mentions(read_float_array(&path), &["[0, 0, 0] is inf"]);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn numpy_layouts_and_byte_orders_are_read() {
    let d = dir("layouts");
    let path = d.join("x.npy");
    let m = arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let want = m.mapv(|v| v as f32);
    ndarray_npy::write_npy(&path, &m).unwrap();
    assert_eq!(read_matrix(&path).unwrap(), want);
    // Fortran order: ndarray-npy writes column-major arrays with fortran_order True.
    let f = Array2::from_shape_vec((2, 3).f(), vec![1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
    ndarray_npy::write_npy(&path, &f).unwrap();
    assert!(read_header(&path).unwrap().fortran_order);
    assert_eq!(read_matrix(&path).unwrap(), want);
    // Big-endian float32 and int32, written by hand.
    let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    std::fs::write(&path, npy_bytes(&header(">f4", "(2, 3)"), &data)).unwrap();
    assert_eq!(read_matrix(&path).unwrap(), want);
    let data: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(&path, npy_bytes(&header(">i4", "(2,)"), &data)).unwrap();
    assert_eq!(read_ids(&path).unwrap(), vec![7, -1]);
    ndarray_npy::write_npy(&path, &arr1(&[1i32, -1, 7])).unwrap();
    assert_eq!(read_ids(&path).unwrap(), vec![1, -1, 7]);
    // An image tensor of rank 4.
    let t = ndarray::Array4::<f32>::from_shape_fn((1, 3, 2, 2), |(_, c, y, x)| {
        (c * 4 + y * 2 + x) as f32
    });
    ndarray_npy::write_npy(&path, &t).unwrap();
    assert_eq!(read_float_array(&path).unwrap(), t.into_dyn());
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn files_larger_than_a_read_chunk_are_read_whole_and_checked() {
    // The reader decodes 1 MiB at a time: 300,001 float32 / float64 values
    // cross several chunk boundaries (and a float64 straddles none).
    let d = dir("chunks");
    let path = d.join("big.npy");
    let m = Array2::from_shape_fn((3, 100_001), |(r, c)| (r * 100_001 + c) as f64 * 0.25);
    ndarray_npy::write_npy(&path, &m).unwrap();
    assert_eq!(read_matrix(&path).unwrap(), m.mapv(|v| v as f32));
    let m32 = m.mapv(|v| v as f32);
    write_matrix(&path, m32.view()).unwrap();
    assert_eq!(read_matrix(&path).unwrap(), m32);
    // A value that is not finite in the third chunk is still found and named.
    let mut bad = m.clone();
    bad[[2, 99_999]] = 1e300;
    ndarray_npy::write_npy(&path, &bad).unwrap();
    assert_err_mentions(
        read_matrix(&path),
        &["[2, 99999] is 1e300 (beyond the float32 range)"],
    );
    // A file cut short past the first chunk is a size error.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert_err_mentions(read_matrix(&path), &["big.npy"]);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn our_files_are_numpy_files() {
    let d = dir("write");
    let (mp, ip) = (d.join("m.npy"), d.join("i.npy"));
    let m = arr2(&[[0.5f32, -1.0, 3.25], [1e-7, 2.0, -0.0]]);
    write_matrix(&mp, m.view()).unwrap();
    write_ids(&ip, &[3, -1, i64::MAX]).unwrap();
    let back: Array2<f32> = ndarray_npy::read_npy(&mp).unwrap();
    assert_eq!(back, m);
    let ids: ndarray::Array1<i64> = ndarray_npy::read_npy(&ip).unwrap();
    assert_eq!(ids.to_vec(), vec![3, -1, i64::MAX]);
    assert_eq!(read_matrix(&mp).unwrap(), m);
    // Header padded to 64 bytes, as numpy writes it; no temporary file left.
    let h = read_header(&mp).unwrap();
    assert_eq!((h.header_bytes % 64, h.version), (0, (1, 0)));
    assert_eq!(std::fs::metadata(&mp).unwrap().len(), h.header_bytes + 24);
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let e = write_ids(d.join("no/such/dir/i.npy"), &[1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("i.npy") && e.contains("cannot write"), "{e}");
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn concurrent_writers_of_one_path_all_succeed_and_leave_a_whole_file() {
    // Each writer renames its own temporary file: none loses its file to
    // another's rename, and the result is one writer's whole matrix.
    let d = dir("concurrent");
    let p = d.join("same.npy");
    std::thread::scope(|s| {
        for t in 0..6 {
            let p = p.clone();
            s.spawn(move || {
                let m = Array2::from_elem((64, 32), t as f32);
                for _ in 0..20 {
                    write_matrix(&p, m.view()).unwrap();
                }
            });
        }
    });
    let back = read_matrix(&p).unwrap();
    assert_eq!(back.dim(), (64, 32));
    assert!(back.iter().all(|&v| v == back[[0, 0]]));
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["same.npy".to_string()]);
    std::fs::remove_dir_all(d).ok();
}
