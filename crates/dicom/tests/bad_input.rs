//! Bad input gives a clear error naming the file, never a panic or a huge allocation, and never
//! stops the rest of a study from opening.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dokuei_dicom::decode::decode_frame;
use dokuei_dicom::synth::SyntheticCt;
use dokuei_dicom::{Instance, StudyIndex, index};

/// A folder with a good 3-slice series and whatever bad files the test adds.
fn study_with(bad: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, StudyIndex) {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 3,
        ..Default::default()
    }
    .write(dir.path())
    .unwrap();
    for (name, bytes) in bad {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let idx = index(&[dir.path().to_path_buf()]);
    (dir, idx)
}

fn good_slices(idx: &StudyIndex) -> usize {
    idx.series().map(|s| s.instances.len()).sum()
}

fn problem<'a>(idx: &'a StudyIndex, name: &str) -> &'a dokuei_dicom::FileProblem {
    idx.problems
        .iter()
        .find(|p| p.file.ends_with(name))
        .unwrap_or_else(|| panic!("{name} is not in the problem list: {:?}", idx.problems))
}

/// A synthetic slice with some header elements replaced.
fn modified_slice(dir: &Path, edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) -> PathBuf {
    let files = SyntheticCt {
        slices: 1,
        seed: 99,
        ..Default::default()
    }
    .write(&dir.join("src"))
    .unwrap();
    let mut obj = dicom_object::open_file(&files[0]).unwrap();
    edit(&mut obj);
    let out = dir.join("edited.dcm");
    obj.write_to_file(&out).unwrap();
    std::fs::remove_dir_all(dir.join("src")).unwrap();
    out
}

fn only_instance(path: &Path) -> Instance {
    let idx = index(&[path.to_path_buf()]);
    assert!(idx.problems.is_empty(), "{:?}", idx.problems);
    idx.patients[0].studies[0].series[0].instances[0].clone()
}

#[test]
fn zero_length_and_non_dicom_files() {
    let (_dir, idx) = study_with(&[("empty.dcm", Vec::new()), ("notes.txt", b"hello".to_vec())]);
    assert_eq!(good_slices(&idx), 3, "the good series still opens");
    let p = problem(&idx, "empty.dcm");
    assert_eq!(p.kind, "not_dicom");
    // A stray non-DICOM file without a DICOM name is skipped silently.
    assert!(idx.problems.iter().all(|p| !p.file.ends_with("notes.txt")));
    assert_eq!(idx.skipped, 1);
}

#[test]
fn garbage_after_the_dicm_magic() {
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICM");
    bytes.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let (_dir, idx) = study_with(&[("garbage.dcm", bytes)]);
    assert_eq!(good_slices(&idx), 3);
    let p = problem(&idx, "garbage.dcm");
    assert_eq!(p.kind, "parse");
    assert!(p.reason.contains("garbage.dcm"), "{}", p.reason);
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = SyntheticCt {
        slices: 1,
        seed: 7,
        ..Default::default()
    }
    .write(&dir.path().join("src"))
    .unwrap();
    let whole = std::fs::read(&files[0]).unwrap();
    // Cut inside the header, and inside the pixel data.
    let (_d, idx) = study_with(&[
        ("cut-header.dcm", whole[..300].to_vec()),
        ("cut-pixels.dcm", whole[..whole.len() - 1000].to_vec()),
    ]);
    assert_eq!(problem(&idx, "cut-header.dcm").kind, "parse");
    // The header of the second file is whole, so it may index; decoding it must then fail
    // cleanly. Either way it is reported, by name, and the good series opens.
    assert!(good_slices(&idx) >= 3);
    let cut_pixels = idx
        .instances()
        .find(|i| i.source.to_string().ends_with("cut-pixels.dcm"));
    match cut_pixels {
        Some(instance) => {
            let err = decode_frame(instance, 0).unwrap_err();
            assert!(err.to_string().contains("cut-pixels.dcm"), "{err}");
        }
        None => assert!(
            problem(&idx, "cut-pixels.dcm")
                .reason
                .contains("cut-pixels.dcm")
        ),
    }
}

#[test]
fn absurd_rows_and_columns_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = modified_slice(dir.path(), |obj| {
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(65_535u16),
        ));
        obj.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(65_535u16),
        ));
        obj.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("1000"),
        ));
    });
    let instance = only_instance(&path);
    let err = decode_frame(&instance, 0).unwrap_err();
    assert_eq!(err.kind(), "implausible_image", "{err}");
    assert!(err.to_string().contains("edited.dcm"), "{err}");

    let zero = modified_slice(dir.path(), |obj| {
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    });
    let idx = index(&[zero]);
    assert_eq!(problem(&idx, "edited.dcm").kind, "implausible_image");
}

#[test]
fn a_wrong_number_of_frames_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = modified_slice(dir.path(), |obj| {
        obj.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("50"),
        ));
    });
    let instance = only_instance(&path);
    assert_eq!(instance.image.as_ref().unwrap().frames, 50);
    let err = decode_frame(&instance, 49).unwrap_err();
    assert_eq!(err.kind(), "implausible_image", "{err}");
    assert!(err.to_string().contains("50 frame(s)"), "{err}");
    let negative = modified_slice(dir.path(), |obj| {
        obj.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("-3"),
        ));
    });
    assert_eq!(
        problem(&index(&[negative]), "edited.dcm").kind,
        "implausible_image"
    );
}

#[test]
fn a_zip_archive_opens_like_a_folder() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let files = SyntheticCt {
        slices: 4,
        seed: 5,
        ..Default::default()
    }
    .write(&dir.path().join("series"))
    .unwrap();
    let zip_path = dir.path().join("study.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    for f in &files {
        zip.start_file(
            format!("series/{}", f.file_name().unwrap().to_string_lossy()),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(f).unwrap()).unwrap();
    }
    zip.start_file(
        "series/broken.dcm",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"DICM?").unwrap();
    zip.finish().unwrap();
    let idx = index(&[zip_path]);
    assert_eq!(good_slices(&idx), 4);
    assert_eq!(problem(&idx, "series/broken.dcm").kind, "not_dicom");
    let series = &idx.patients[0].studies[0].series[0];
    let frame = decode_frame(&series.instances[0], 0).unwrap();
    assert_eq!((frame.rows, frame.columns), (64, 64));
}

#[test]
fn a_native_image_built_byte_by_byte_decodes_to_its_bytes() {
    use dokuei_dicom::decode::open_and_decode_bytes;
    use dokuei_dicom::synth::image_file;
    let pixels: Vec<u8> = (0..16).collect();
    let frames = open_and_decode_bytes(
        "native",
        &image_file("1.2.840.10008.1.2.1", 4, 4, 1, 8, &pixels),
        1,
    )
    .unwrap();
    assert_eq!(frames[0].pixels, dokuei_dicom::Pixels::U8(pixels));
}

/// A codec allocates what its own stream header declares: a JPEG, JPEG-LS or JPEG 2000 stream
/// claiming far more pixels than the DICOM header is refused before it reaches the codec.
#[test]
fn a_compressed_stream_larger_than_its_header_is_refused() {
    use dokuei_dicom::decode::open_and_decode_bytes;
    use dokuei_dicom::synth::image_file;
    // SOI, SOF1 (extended): precision 12, 65535 × 65535, 1 component; then nothing.
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xC1, 0, 11, 12, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0x11, 0, 0xFF, 0xD9,
    ];
    let mut j2k = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
    j2k.extend(60_000u32.to_be_bytes());
    j2k.extend(60_000u32.to_be_bytes());
    j2k.extend([0u8; 30]);
    for (ts, stream) in [
        ("1.2.840.10008.1.2.4.50", &jpeg[..]),
        ("1.2.840.10008.1.2.4.51", &jpeg[..]),
        ("1.2.840.10008.1.2.4.80", &jpeg[..]),
        ("1.2.840.10008.1.2.4.90", &j2k[..]),
    ] {
        let err =
            open_and_decode_bytes("liar", &image_file(ts, 8, 8, 1, 12, stream), 1).unwrap_err();
        assert_eq!(err.kind(), "decode", "{ts}: {err}");
        assert!(err.to_string().contains("declares"), "{ts}: {err}");
    }
}
