//! Burned-in text blanked by a site's region table (PS3.15 E.3.1 Clean Pixel Data), on
//! generated images whose text pixels are known and on real ultrasound, secondary capture and
//! palette images of the test corpora in every encoding they come in (native, RLE, JPEG
//! baseline, JPEG 2000). pydicom decodes inputs and outputs independently; dciodvfy checks that
//! cleaning adds no error.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, open_file};
use dokuei_deid::run::{Report, Status, run};
use dokuei_deid::{Deidentifier, Policy, Pseudonyms, RegionTable, SiteKey};
use dokuei_dicom::testdata::{Collection, file, reference_python};

fn export(paths: &[PathBuf], out: &Path, table: Option<RegionTable>) -> Report {
    let mut policy = Policy::basic();
    if let Some(t) = table {
        policy = policy.with_region_table(t);
    }
    let d = Deidentifier::new(
        policy,
        SiteKey::from_bytes([7; 32]),
        Pseudonyms::in_memory("SITE"),
    );
    run(&d, paths, out, &AtomicBool::new(false), |_, _| {}).expect("export")
}

fn outcome<'a>(report: &'a Report, name: &str) -> &'a dokuei_deid::run::FileOutcome {
    report
        .files
        .iter()
        .find(|f| f.input.ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in the report"))
}

/// A generated image: `text` pixels (a glyph-like pattern) in the band rows 8..32, columns
/// 16..300, and a smooth gradient elsewhere.
#[derive(Clone)]
struct Synthetic {
    photometric: &'static str,
    samples: u16,
    bits_stored: u16,
    manufacturer: &'static str,
    model: &'static str,
    frames: u32,
    /// An overlay kept in bit 12 of every pixel (Overlay Bit Position 12).
    overlay_in_pixels: bool,
}

const W: u32 = 320;
const H: u32 = 240;

fn in_text(x: u32, y: u32) -> bool {
    (8..32).contains(&y) && (16..300).contains(&x) && (x / 3 + y / 4).is_multiple_of(3)
}

impl Synthetic {
    fn value(&self, f: u32, x: u32, y: u32, s: u32) -> u32 {
        if in_text(x, y) {
            (1 << self.bits_stored) - 1
        } else {
            (x + 2 * y + 7 * f + 31 * s) % (1 << self.bits_stored.min(8))
        }
    }

    fn write(&self, path: &Path) {
        let bits: u16 = if self.bits_stored > 8 { 16 } else { 8 };
        let mut bytes = Vec::new();
        for f in 0..self.frames {
            for y in 0..H {
                for x in 0..W {
                    for s in 0..u32::from(self.samples) {
                        let mut v = self.value(f, x, y, s);
                        if self.overlay_in_pixels && (x + y).is_multiple_of(5) {
                            v |= 1 << 12;
                        }
                        if bits == 8 {
                            bytes.push(v as u8);
                        } else {
                            bytes.extend_from_slice(&(v as u16).to_le_bytes());
                        }
                    }
                }
            }
        }
        let t = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
        let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
        let modality = if self.samples == 3 { "US" } else { "CR" };
        let class = if self.samples == 3 {
            "1.2.840.10008.5.1.4.1.1.6.1"
        } else {
            "1.2.840.10008.5.1.4.1.1.1"
        };
        let sop = format!("2.25.{}", 1000 + self.frames + u32::from(self.samples));
        let mut obj = InMemDicomObject::from_element_iter([
            t(tags::SOP_CLASS_UID, VR::UI, class),
            t(tags::SOP_INSTANCE_UID, VR::UI, &sop),
            t(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.77"),
            t(tags::SERIES_INSTANCE_UID, VR::UI, &format!("{sop}.1")),
            t(tags::MODALITY, VR::CS, modality),
            t(tags::MANUFACTURER, VR::LO, self.manufacturer),
            t(tags::MANUFACTURER_MODEL_NAME, VR::LO, self.model),
            t(tags::PATIENT_NAME, VR::PN, "YAMADA^HANAKO"),
            t(tags::PATIENT_ID, VR::LO, "P-4242"),
            t(tags::BURNED_IN_ANNOTATION, VR::CS, "YES"),
            t(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, self.photometric),
            us(tags::SAMPLES_PER_PIXEL, self.samples),
            us(tags::ROWS, H as u16),
            us(tags::COLUMNS, W as u16),
            us(tags::BITS_ALLOCATED, bits),
            us(tags::BITS_STORED, self.bits_stored),
            us(tags::HIGH_BIT, self.bits_stored - 1),
            us(tags::PIXEL_REPRESENTATION, 0),
            t(tags::NUMBER_OF_FRAMES, VR::IS, &self.frames.to_string()),
            DataElement::new(
                tags::PIXEL_DATA,
                if bits == 8 { VR::OB } else { VR::OW },
                PrimitiveValue::from(bytes),
            ),
        ]);
        if self.samples == 3 {
            obj.put(us(tags::PLANAR_CONFIGURATION, 0));
        }
        if self.overlay_in_pixels {
            obj.put(us(dicom_core::Tag(0x6000, 0x0102), 12));
            obj.put(us(dicom_core::Tag(0x6000, 0x0010), H as u16));
            obj.put(us(dicom_core::Tag(0x6000, 0x0011), W as u16));
        }
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid(class)
            .media_storage_sop_instance_uid(sop)
            .build()
            .expect("meta");
        obj.with_exact_meta(meta)
            .write_to_file(path)
            .expect("write");
    }
}

/// Every sample of every frame of an output file, as integers.
fn samples(path: &Path) -> (Vec<i64>, u16) {
    let obj = open_file(path).expect("open output");
    let bits = obj
        .get(tags::BITS_ALLOCATED)
        .and_then(|e| e.to_int::<u16>().ok())
        .expect("bits");
    let bytes = obj
        .get(tags::PIXEL_DATA)
        .expect("pixel data")
        .to_bytes()
        .expect("native pixel data")
        .into_owned();
    let v = if bits == 8 {
        bytes.iter().map(|&b| i64::from(b)).collect()
    } else {
        bytes
            .chunks_exact(2)
            .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect()
    };
    (v, bits)
}

#[test]
fn generated_text_is_blanked_every_pixel_outside_is_kept_and_unmatched_images_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).expect("dir");
    let rgb = Synthetic {
        photometric: "RGB",
        samples: 3,
        bits_stored: 8,
        manufacturer: "Dokuei Phantoms",
        model: "Sono 1",
        frames: 3,
        overlay_in_pixels: false,
    };
    let mono1 = Synthetic {
        photometric: "MONOCHROME1",
        samples: 1,
        bits_stored: 12,
        manufacturer: "Dokuei Phantoms",
        model: "Plate 2",
        frames: 1,
        overlay_in_pixels: true,
    };
    let other = Synthetic {
        model: "Sono 9",
        frames: 2,
        ..rgb.clone()
    };
    rgb.write(&inputs.join("rgb.dcm"));
    mono1.write(&inputs.join("mono1.dcm"));
    other.write(&inputs.join("other.dcm"));

    // Without a table every one of them is refused (Burned In Annotation YES).
    let none = export(
        std::slice::from_ref(&inputs),
        &dir.path().join("none"),
        None,
    );
    assert_eq!((none.written, none.refused), (0, 3), "{:#?}", none.files);

    let table_path = dir.path().join("site.script");
    std::fs::write(
        &table_path,
        "Region table of the test site.\n\
         { Modality.equals(\"US\") * Manufacturer.equals(\"Dokuei Phantoms\") * ManufacturerModelName.equals(\"Sono 1\") * Rows.equals(\"240\") }\n\
           (16, 8, 284, 24)\n\
         { Modality.equals(\"CR\") * ManufacturerModelName.startsWithIgnoreCase(\"plate\") }\n\
           (0, 0, 320, 40) (300, 200, 100, 100)\n",
    )
    .expect("table");
    let table = RegionTable::load(&table_path).expect("table");
    let out = dir.path().join("out");
    let report = export(std::slice::from_ref(&inputs), &out, Some(table));
    assert_eq!(
        (report.written, report.refused),
        (2, 1),
        "{:#?}",
        report.files
    );

    // The unmatched device: refused, naming the table and the device (not the patient).
    let Status::Refused { reason } = &outcome(&report, "other.dcm").status else {
        panic!("other.dcm was not refused");
    };
    assert!(
        reason.contains("site.script") && reason.contains("Sono 9") && reason.contains("320 × 240"),
        "{reason}"
    );
    assert!(
        !reason.contains("YAMADA") && !reason.contains("P-4242"),
        "{reason}"
    );

    // RGB, three frames: the band is black in every frame, everything else as it was.
    let f = outcome(&report, "rgb.dcm");
    let Status::Written { summary } = &f.status else {
        panic!("{:?}", f.status)
    };
    assert!(
        summary
            .pixels_cleaned
            .as_deref()
            .unwrap_or("")
            .contains("signature 1"),
        "{summary:?}"
    );
    let path = out.join(f.output.as_ref().expect("output"));
    let (v, bits) = samples(&path);
    assert_eq!(bits, 8);
    assert_eq!(v.len(), (3 * W * H * 3) as usize);
    let mut text_left = 0;
    for fr in 0..3 {
        for y in 0..H {
            for x in 0..W {
                for s in 0..3 {
                    let i = (((fr * H + y) * W + x) * 3 + s) as usize;
                    let blanked = (16..300).contains(&x) && (8..32).contains(&y);
                    if blanked {
                        assert_eq!(v[i], 0, "frame {fr} ({x}, {y}) sample {s}");
                    } else {
                        assert_eq!(v[i], i64::from(rgb.value(fr, x, y, s)), "({x}, {y})");
                    }
                    if in_text(x, y) && v[i] != 0 {
                        text_left += 1;
                    }
                }
            }
        }
    }
    assert_eq!(text_left, 0);
    let obj = open_file(&path).expect("open");
    let text = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    assert_eq!(text(tags::BURNED_IN_ANNOTATION), "NO");
    assert_eq!(
        obj.meta().transfer_syntax().trim_end_matches('\0'),
        "1.2.840.10008.1.2.1"
    );
    let codes: Vec<String> = obj
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("codes")
        .iter()
        .map(|i| {
            i.get(tags::CODE_VALUE)
                .and_then(|e| e.to_str().ok())
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect();
    assert!(codes.contains(&"113101".to_owned()), "{codes:?}");
    assert!(text(tags::DEIDENTIFICATION_METHOD).contains("Clean Pixel Data"));

    // MONOCHROME1, 12 of 16 bits, an overlay in bit 12: the overlay bits are cleared, the
    // regions (one clipped at the image's edge) take the frame's maximum (black as shown).
    let f = outcome(&report, "mono1.dcm");
    let path = out.join(f.output.as_ref().expect("mono1 written"));
    let (v, bits) = samples(&path);
    assert_eq!(bits, 16);
    let max = *v.iter().max().expect("pixels");
    assert!(max < 4096, "overlay bit left: {max}");
    for y in 0..H {
        for x in 0..W {
            let i = (y * W + x) as usize;
            let blanked = y < 40 || (x >= 300 && y >= 200);
            if blanked {
                assert_eq!(v[i], max, "({x}, {y})");
            } else {
                assert_eq!(v[i], i64::from(mono1.value(0, x, y, 0)), "({x}, {y})");
            }
        }
    }
}

/// The devices of the real corpus files, each with a top band to blank (where these devices
/// print the patient's name, date and the clinic).
const REAL: [(Collection, &str, i64); 11] = [
    (Collection::DeidData, "ultrasounds/GREYSCALE_IMAGE.dcm", 0),
    (Collection::DeidData, "ultrasounds/RGB_IMAGE.dcm", 0),
    (
        Collection::DeidData,
        "ultrasounds/ultrasound-multiframe.dcm",
        0,
    ),
    (Collection::DeidData, "ultrasounds/RGB_CINE/RGB_CINE.dcm", 0),
    (Collection::Pydicom, "examples_ybr_color.dcm", 3),
    (Collection::PydicomData, "US1_J2KR.dcm", 0),
    (Collection::Pydicom, "examples_palette.dcm", 0),
    (Collection::PydicomData, "OBXXXX1A_rle_2frame.dcm", 0),
    (Collection::PydicomData, "gdcm-US-ALOKA-16.dcm", 0),
    (Collection::Pydicom, "SC_rgb_rle_16bit_2frame.dcm", 0),
    (Collection::Pydicom, "SC_rgb_jpeg_dcmtk.dcm", 1),
];

const REAL_TABLE: &str = "Test site: the devices of the test corpora, top bands.\n\
{ Modality.equals(\"US\") * Manufacturer.startsWith(\"Philips\") * ManufacturerModelName.matches(\"EPIQ.*|Affiniti.*\") }\n (0, 0, 1024, 60)\n\
{ Modality.equals(\"US\") * Manufacturer.equals(\"SIEMENS\") * ManufacturerModelName.equals(\"S2000\") * Columns.equals(\"1024\") }\n (0, 0, 1024, 60)\n\
{ Modality.equals(\"US\") * Manufacturer.containsIgnoreCase(\"teratech\") }\n (0, 0, 1016, 60)\n\
{ Modality.equals(\"US\") * Manufacturer.containsIgnoreCase(\"sonosite\") }\n (0, 0, 640, 30)\n\
{ Modality.equals(\"US\") * Manufacturer.equals(\"G.E. Medical Systems\") * ManufacturerModelName.equals(\"LOGIQ 700\") * Rows.equals(\"480\") }\n (0, 0, 640, 48) (560, 420, 80, 60)\n\
{ Modality.equals(\"US\") * Manufacturer.equals(\"Philips Medical Systems\") * ManufacturerModelName.equals(\"CX50\") }\n (0, 0, 800, 50)\n\
{ Modality.equals(\"OT\") * [0028,0011].equals(\"100\") }\n (0, 0, 100, 12)\n\
{ Manufacturer.startsWith(\"ALOKA\") * ManufacturerModelName.equals(\"SSD-4000\") }\n (0, 0, 640, 40)\n";

#[test]
fn real_devices_images_are_cleaned_in_every_encoding_as_pydicom_reads_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table_path = dir.path().join("site.script");
    std::fs::write(&table_path, REAL_TABLE).expect("table");
    let table = RegionTable::load(&table_path).expect("table");
    let inputs: Vec<PathBuf> = REAL
        .iter()
        .map(|(c, name, _)| file(*c, name).expect("test file"))
        .collect();
    // One export (and folder) per file: some are one image in several encodings (one SOP
    // Instance UID), which a single export writes once.
    let out = |i: usize| dir.path().join(format!("out{i}"));
    let reports: Vec<Report> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let report = export(std::slice::from_ref(input), &out(i), Some(table.clone()));
            assert_eq!(report.written, 1, "{:#?}", report.files);
            report
        })
        .collect();

    // pydicom decodes each input and output itself.
    let jobs: Vec<serde_json::Value> = REAL
        .iter()
        .zip(inputs.iter().zip(&reports))
        .enumerate()
        .map(|(i, ((_, name, tolerance), (input, report)))| {
            let f = outcome(report, name);
            let output = out(i).join(f.output.as_ref().expect("written"));
            let src = open_file(input).expect("input");
            let sig = table
                .signature_for(&src)
                .unwrap_or_else(|| panic!("{name}: no signature"));
            let regions: Vec<[u32; 4]> = sig
                .regions
                .iter()
                .map(|r| [r.x, r.y, r.width, r.height])
                .collect();
            serde_json::json!({
                "input": input, "output": output, "regions": regions, "tolerance": tolerance,
            })
        })
        .collect();
    let mut child = Command::new(reference_python())
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/reference/pixel_clean_check.py"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("reference python (run `bash scripts/setup.sh --test`)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&jobs).expect("json").as_bytes())
        .expect("write jobs");
    let done = child.wait_with_output().expect("pydicom check");
    assert!(done.status.success(), "pydicom check failed");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&done.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), REAL.len());
    for ((_, name, tolerance), r) in REAL.iter().zip(&lines) {
        println!("{name}: {r}");
        assert_eq!(r["burned_in"], "NO", "{name}");
        assert_eq!(r["transfer_syntax"], "1.2.840.10008.1.2.1", "{name}");
        assert_eq!(r["shape_equal"], true, "{name}");
        assert_eq!(r["region_uniform"], true, "{name}");
        assert_eq!(r["fill_darkest"], true, "{name}");
        assert!(
            r["codes"]
                .as_array()
                .is_some_and(|c| c.iter().any(|v| v == "113101")),
            "{name}"
        );
        // Real text was there to remove: the regions changed.
        assert!(
            r["region_pixels_changed"].as_i64() > Some(0),
            "{name}: nothing blanked"
        );
        let max = r["max_outside_diff"].as_i64().expect("diff");
        let mean = r["mean_outside_diff"].as_f64().expect("mean");
        assert!(
            max <= *tolerance,
            "{name}: outside the regions differs by {max}"
        );
        assert!(mean < 0.5, "{name}: mean difference outside {mean}");
    }

    // dciodvfy finds no error in a cleaned file that it did not find in its input.
    let errors = |f: &Path| -> BTreeSet<String> {
        let o = Command::new(reference_python().with_file_name("dciodvfy"))
            .arg(f)
            .output()
            .expect("dciodvfy");
        (String::from_utf8_lossy(&o.stderr) + String::from_utf8_lossy(&o.stdout))
            .lines()
            .filter(|l| l.starts_with("Error"))
            .map(|l| l.chars().filter(|c| !c.is_ascii_digit()).collect())
            .collect()
    };
    for (i, ((_, name, _), (input, report))) in
        REAL.iter().zip(inputs.iter().zip(&reports)).enumerate()
    {
        let f = outcome(report, name);
        let output = out(i).join(f.output.as_ref().expect("written"));
        let new: Vec<String> = errors(&output)
            .difference(&errors(input))
            .cloned()
            .collect();
        assert!(new.is_empty(), "{name}: new dciodvfy errors {new:#?}");
    }
}
