//! Synthetic CT series written as real DICOM files: for geometry tests, benchmarks and demo
//! studies. The patient is a phantom ("Synthetic^Phantom"): no real person's data.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// A spherical lesion planted in the phantom, in patient coordinates (mm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sphere {
    pub center: [f64; 3],
    pub radius: f64,
    pub hu: f64,
}

/// How to write a synthetic CT series.
#[derive(Debug, Clone)]
pub struct SyntheticCt {
    pub slices: usize,
    pub rows: u16,
    pub columns: u16,
    /// Between rows, between columns (mm).
    pub pixel_spacing: [f64; 2],
    /// Between slice centres along the normal (mm).
    pub slice_spacing: f64,
    pub orientation: [f64; 6],
    /// Image Position (Patient) of the first slice.
    pub origin: [f64; 3],
    /// Seeds the UIDs: the same seed gives the same study.
    pub seed: u64,
    pub series_number: i32,
    pub series_description: String,
    /// Number instances in the reverse of their spatial order.
    pub reverse_instance_numbers: bool,
    /// Name files in a scrambled order instead of slice order.
    pub shuffle_file_names: bool,
    /// Slice indices not written (to make gaps).
    pub skip: Vec<usize>,
    pub spheres: Vec<Sphere>,
    /// Acquisition Number; series with several (multi-phase) repeat positions.
    pub acquisition_number: i32,
    /// Standard deviation of the image noise, HU (deterministic from the seed; 0 = none).
    pub noise_hu: f64,
    /// What the phantom is: a chest (the default) or a head with a face.
    pub phantom: Phantom,
}

/// The anatomy a synthetic CT shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phantom {
    /// An elliptic body with two lungs and a spine.
    #[default]
    Chest,
    /// A head: skin, skull, the intracranial space (brain, with ventricles), and in front of
    /// and below it a face with eyes, a nose and a jaw; the neck below.
    Head,
    /// The same head as a T1-weighted MR (written as MR Image Storage, values without unit):
    /// fat-rich scalp and face bright, brain grey, skull, CSF and eyes dark, air black.
    HeadMr,
}

/// Where a point of the head phantom is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadRegion {
    Air,
    /// Skin, scalp, face and neck soft tissue.
    SoftTissue,
    Bone,
    /// Inside the skull: brain and ventricles.
    Intracranial,
    Eye,
    Nose,
}

impl Default for SyntheticCt {
    fn default() -> Self {
        SyntheticCt {
            slices: 20,
            rows: 64,
            columns: 64,
            pixel_spacing: [0.7, 0.7],
            slice_spacing: 2.5,
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            origin: [-22.4, -22.4, 0.0],
            seed: 1,
            series_number: 1,
            series_description: "Synthetic chest CT".to_owned(),
            reverse_instance_numbers: false,
            shuffle_file_names: false,
            skip: Vec::new(),
            spheres: Vec::new(),
            acquisition_number: 1,
            noise_hu: 0.0,
            phantom: Phantom::Chest,
        }
    }
}

/// The header of an explicit VR little endian element that declares `declared` value bytes
/// (32-bit length for OB, SQ, UN and the other long VRs), for tests that build files byte by
/// byte, including files whose declared lengths lie.
pub fn explicit_le_header(group: u16, element: u16, vr: &[u8; 2], declared: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(vr);
    if crate::lengths::long_vr(vr) {
        out.extend([0, 0]);
        out.extend(declared.to_le_bytes());
    } else {
        out.extend((declared as u16).to_le_bytes());
    }
    out
}

/// A whole explicit VR little endian element: its header, then `value`.
pub fn explicit_le_element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut out = explicit_le_header(group, element, vr, value.len() as u32);
    out.extend(value);
    out
}

/// A whole Part 10 file (preamble, meta group, a small image header) around `pixel_data`, in
/// transfer syntax `ts_uid`: one fragment of encapsulated pixel data for the compressed
/// syntaxes, the data set's bytes as they are for deflate (so `pixel_data` is then the
/// deflated stream), native pixel data otherwise. For the fuzzer's codec targets and for tests
/// that need a codec's stream in a file.
pub fn image_file(
    ts_uid: &str,
    rows: u16,
    columns: u16,
    samples: u16,
    bits: u16,
    pixel_data: &[u8],
) -> Vec<u8> {
    let e = explicit_le_element;
    let mut meta = e(0x0002, 0x0001, b"OB", &[0, 1]);
    meta.extend(e(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0"));
    meta.extend(e(0x0002, 0x0003, b"UI", b"2.25.1\0"));
    let mut ts = ts_uid.as_bytes().to_vec();
    if ts.len() % 2 == 1 {
        ts.push(0);
    }
    meta.extend(e(0x0002, 0x0010, b"UI", &ts));
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    out.extend(e(0x0002, 0x0000, b"UL", &(meta.len() as u32).to_le_bytes()));
    out.extend(meta);
    if ts_uid == "1.2.840.10008.1.2.1.99" {
        out.extend(pixel_data);
        return out;
    }
    out.extend(e(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0"));
    out.extend(e(0x0008, 0x0018, b"UI", b"2.25.1\0"));
    out.extend(e(0x0028, 0x0002, b"US", &samples.to_le_bytes()));
    let photometric: &[u8] = if samples == 3 {
        b"RGB "
    } else {
        b"MONOCHROME2 "
    };
    out.extend(e(0x0028, 0x0004, b"CS", photometric));
    out.extend(e(0x0028, 0x0010, b"US", &rows.to_le_bytes()));
    out.extend(e(0x0028, 0x0011, b"US", &columns.to_le_bytes()));
    let allocated: u16 = if bits > 8 { 16 } else { 8 };
    out.extend(e(0x0028, 0x0100, b"US", &allocated.to_le_bytes()));
    out.extend(e(0x0028, 0x0101, b"US", &bits.to_le_bytes()));
    out.extend(e(0x0028, 0x0102, b"US", &(bits - 1).to_le_bytes()));
    out.extend(e(0x0028, 0x0103, b"US", &0u16.to_le_bytes()));
    let native = matches!(
        ts_uid,
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2"
    );
    if native {
        let mut value = pixel_data.to_vec();
        if value.len() % 2 == 1 {
            value.push(0);
        }
        out.extend(explicit_le_header(
            0x7FE0,
            0x0010,
            b"OB",
            value.len() as u32,
        ));
        out.extend(value);
        return out;
    }
    // Encapsulated: undefined length, an empty offset table, one fragment, the delimiter.
    out.extend(explicit_le_header(0x7FE0, 0x0010, b"OB", u32::MAX));
    out.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    let mut fragment = pixel_data.to_vec();
    if fragment.len() % 2 == 1 {
        fragment.push(0);
    }
    out.extend([0xFE, 0xFF, 0x00, 0xE0]);
    out.extend((fragment.len() as u32).to_le_bytes());
    out.extend(fragment);
    out.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    out
}

/// The file a fuzzer's codec input stands for: its first five bytes give the rows and columns
/// (little-endian, 1 to 2048) and the depth (bit 0: colour; then 8, 12 or 16 bits) the header
/// declares, the rest is the compressed stream of one frame in `ts_uid`. `None` for an input
/// shorter than the prefix. The fuzz targets and the replay of what they found both use it.
pub fn codec_input_file(ts_uid: &str, input: &[u8]) -> Option<Vec<u8>> {
    let (&[r0, r1, c0, c1, depth], stream) = input.split_first_chunk::<5>()?;
    let rows = u16::from_le_bytes([r0, r1]) % 2048 + 1;
    let columns = u16::from_le_bytes([c0, c1]) % 2048 + 1;
    let samples = if depth & 1 == 1 { 3 } else { 1 };
    let bits = [8, 12, 16][usize::from(depth / 2 % 3)];
    Some(image_file(ts_uid, rows, columns, samples, bits, stream))
}

/// A deterministic UID under the 2.25 (UUID-derived) root.
pub fn uid(seed: u64, part: &str, index: u64) -> String {
    // FNV-1a over the inputs, widened to 122 bits; unique enough for synthetic data.
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in seed
        .to_le_bytes()
        .iter()
        .chain(part.as_bytes())
        .chain(&index.to_le_bytes())
    {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("2.25.{}", h >> 6)
}

/// A deterministic standard-normal sample for (seed, slice, pixel): a hash to two uniforms,
/// then Box–Muller.
fn gaussian(seed: u64, slice: usize, pixel: usize) -> f64 {
    let mut h = seed
        ^ (slice as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (pixel as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let mut next = || {
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^= h >> 33;
        ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let (u1, u2) = (next(), next());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl SyntheticCt {
    /// The patient position of slice `k`'s first pixel.
    pub fn position(&self, k: usize) -> [f64; 3] {
        let o = self.orientation;
        let n = crate::geometry::cross([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
        let d = self.slice_spacing * k as f64;
        [
            self.origin[0] + n[0] * d,
            self.origin[1] + n[1] * d,
            self.origin[2] + n[2] * d,
        ]
    }

    /// The centre of the volume (the middle of the middle slice), in patient coordinates.
    pub fn volume_center(&self) -> [f64; 3] {
        let o = self.orientation;
        let (r, c) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
        let n = crate::geometry::cross(r, c);
        let (w, h) = (
            f64::from(self.columns) * self.pixel_spacing[1] / 2.0,
            f64::from(self.rows) * self.pixel_spacing[0] / 2.0,
        );
        let d = self.slice_spacing * (self.slices.max(1) - 1) as f64 / 2.0;
        std::array::from_fn(|i| self.origin[i] + r[i] * w + c[i] * h + n[i] * d)
    }

    /// The head phantom's region at patient position `p` (LPS, mm), for a head centred on
    /// `c`: +y is posterior, +z superior. The intracranial space is an ellipsoid whose
    /// anterior-inferior side the face lies beyond: eyes in front of and below it, the nose in
    /// front, the jaw below.
    pub fn head_region(p: [f64; 3], c: [f64; 3]) -> HeadRegion {
        let (x, y, z) = (p[0] - c[0], p[1] - c[1], p[2] - c[2]);
        let inside = |cx: f64, cy: f64, cz: f64, a: f64, b: f64, h: f64| {
            let (u, v, w) = ((x - cx) / a, (y - cy) / b, (z - cz) / h);
            u * u + v * v + w * w <= 1.0
        };
        // Eyes (radius 12 mm) and nose first: they sit in the face, outside the skull.
        if [-32.0, 32.0]
            .iter()
            .any(|&ex| inside(ex, -88.0, -38.0, 12.0, 12.0, 12.0))
        {
            return HeadRegion::Eye;
        }
        if inside(0.0, -104.0, -58.0, 11.0, 20.0, 26.0) {
            return HeadRegion::Nose;
        }
        // Intracranial space, skull (7 mm), scalp (5 mm).
        if inside(0.0, 10.0, 25.0, 65.0, 85.0, 70.0) {
            return HeadRegion::Intracranial;
        }
        if inside(0.0, 10.0, 25.0, 72.0, 92.0, 77.0) {
            return HeadRegion::Bone;
        }
        if inside(0.0, 10.0, 25.0, 77.0, 97.0, 82.0) {
            return HeadRegion::SoftTissue;
        }
        // The jaw: a bony arch in the lower face.
        let jaw = inside(0.0, -45.0, -95.0, 48.0, 50.0, 14.0)
            && !inside(0.0, -45.0, -95.0, 40.0, 42.0, 20.0);
        if jaw {
            return HeadRegion::Bone;
        }
        // The face (in front of and below the cranium) and the neck.
        if inside(0.0, -45.0, -60.0, 62.0, 58.0, 60.0)
            || inside(0.0, 15.0, -120.0, 50.0, 50.0, 70.0)
        {
            return HeadRegion::SoftTissue;
        }
        HeadRegion::Air
    }

    /// Hounsfield value of the phantom at a patient position. A chest: air outside an elliptic
    /// body of soft tissue with two lungs, a spine, and the planted spheres. A head: see
    /// [`SyntheticCt::head_region`] (`center` and `half` are then unused).
    pub fn hu_at(&self, p: [f64; 3], center: [f64; 2], half: [f64; 2]) -> f64 {
        if self.phantom == Phantom::HeadMr {
            // T1 signal: the head's regions as the CT phantom has them.
            return match Self::head_region(p, self.volume_center()) {
                HeadRegion::Air => 0.0,
                HeadRegion::SoftTissue => 700.0,
                HeadRegion::Bone => 60.0,
                HeadRegion::Intracranial => {
                    let c = self.volume_center();
                    let (x, y, z) = (p[0] - c[0], p[1] - c[1], p[2] - c[2] - 30.0);
                    if ((x.abs() - 12.0) / 6.0).powi(2) + (y / 25.0).powi(2) + (z / 10.0).powi(2)
                        <= 1.0
                    {
                        120.0
                    } else {
                        480.0
                    }
                }
                HeadRegion::Eye => 140.0,
                HeadRegion::Nose => 600.0,
            };
        }
        if self.phantom == Phantom::Head {
            return match Self::head_region(p, self.volume_center()) {
                HeadRegion::Air => -1000.0,
                HeadRegion::SoftTissue => 40.0,
                HeadRegion::Bone => 900.0,
                HeadRegion::Intracranial => {
                    let c = self.volume_center();
                    let (x, y, z) = (p[0] - c[0], p[1] - c[1], p[2] - c[2] - 30.0);
                    // Two lateral ventricles (CSF) in the brain.
                    if ((x.abs() - 12.0) / 6.0).powi(2) + (y / 25.0).powi(2) + (z / 10.0).powi(2)
                        <= 1.0
                    {
                        8.0
                    } else {
                        35.0
                    }
                }
                HeadRegion::Eye => 15.0,
                HeadRegion::Nose => 30.0,
            };
        }
        for s in &self.spheres {
            let d = crate::geometry::distance(p, s.center);
            if d <= s.radius {
                return s.hu;
            }
        }
        let (x, y) = ((p[0] - center[0]) / half[0], (p[1] - center[1]) / half[1]);
        if x * x + y * y > 0.81 {
            return -1000.0;
        }
        let lung = |cx: f64| {
            let (lx, ly) = ((x - cx) / 0.3, (y + 0.05) / 0.5);
            lx * lx + ly * ly <= 1.0
        };
        if lung(-0.42) || lung(0.42) {
            return -850.0;
        }
        let (sx, sy) = (x / 0.12, (y - 0.6) / 0.12);
        if sx * sx + sy * sy <= 1.0 {
            return 700.0;
        }
        40.0
    }

    /// Writes the series into `dir` and returns the files written, in slice order.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let study_uid = uid(self.seed, "study", 0);
        let series_uid = uid(self.seed, "series", self.series_number as u64);
        let frame_of_reference = uid(self.seed, "for", 0);
        let o = self.orientation;
        let (rows, cols) = (usize::from(self.rows), usize::from(self.columns));
        // The phantom is centred on the middle of the first slice's field of view.
        let first = crate::geometry::FrameGeometry {
            position: self.origin,
            orientation: crate::geometry::Orientation::from_iop(&o).ok_or("bad orientation")?,
            pixel_spacing: self.pixel_spacing,
        };
        let mid = first.pixel_to_patient(cols as f64 / 2.0, rows as f64 / 2.0);
        let half = [
            cols as f64 * self.pixel_spacing[1] / 2.0,
            rows as f64 * self.pixel_spacing[0] / 2.0,
        ];
        let mr = self.phantom == Phantom::HeadMr;
        let class = if mr {
            MR_IMAGE_STORAGE
        } else {
            CT_IMAGE_STORAGE
        };
        let mut files = Vec::new();
        for k in 0..self.slices {
            if self.skip.contains(&k) {
                continue;
            }
            let position = self.position(k);
            let geometry = crate::geometry::FrameGeometry { position, ..first };
            let mut pixels = Vec::with_capacity(rows * cols);
            for r in 0..rows {
                for c in 0..cols {
                    let p = geometry.pixel_to_patient(c as f64, r as f64);
                    let mut hu = self.hu_at(p, [mid[0], mid[1]], half);
                    if self.noise_hu > 0.0 {
                        hu += self.noise_hu * gaussian(self.seed, k, r * cols + c);
                    }
                    // CT: stored = HU + 1024 (Rescale Intercept -1024), as many scanners
                    // write. MR: the signal as it is.
                    let stored = if mr { hu } else { hu + 1024.0 };
                    pixels.push(stored.clamp(0.0, 4095.0) as u16);
                }
            }
            let instance_number = if self.reverse_instance_numbers {
                self.slices - k
            } else {
                k + 1
            } as i32;
            let sop_uid = uid(
                self.seed,
                &format!(
                    "sop{}/{}/{:?}",
                    self.series_number, self.acquisition_number, self.orientation
                ),
                k as u64,
            );
            let mut obj = InMemDicomObject::new_empty();
            let mut put = |tag, vr, value: PrimitiveValue| {
                obj.put(DataElement::new(tag, vr, value));
            };
            let ds = |v: &[f64]| {
                PrimitiveValue::from(
                    v.iter()
                        .map(|x| format!("{x:.4}"))
                        .collect::<Vec<_>>()
                        .join("\\"),
                )
            };
            put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192".into());
            put(tags::SOP_CLASS_UID, VR::UI, class.into());
            put(tags::SOP_INSTANCE_UID, VR::UI, sop_uid.as_str().into());
            put(tags::STUDY_DATE, VR::DA, "20260101".into());
            put(tags::STUDY_TIME, VR::TM, "090000".into());
            put(
                tags::ACCESSION_NUMBER,
                VR::SH,
                format!("SYN{}", self.seed).into(),
            );
            put(tags::MODALITY, VR::CS, if mr { "MR" } else { "CT" }.into());
            put(
                tags::STUDY_DESCRIPTION,
                VR::LO,
                "Synthetic phantom study".into(),
            );
            put(
                tags::SERIES_DESCRIPTION,
                VR::LO,
                self.series_description.as_str().into(),
            );
            put(tags::PATIENT_NAME, VR::PN, "Synthetic^Phantom".into());
            put(
                tags::PATIENT_ID,
                VR::LO,
                format!("SYN-{}", self.seed).into(),
            );
            let part = match self.phantom {
                Phantom::Chest => "CHEST",
                Phantom::Head | Phantom::HeadMr => "HEAD",
            };
            put(tags::BODY_PART_EXAMINED, VR::CS, part.into());
            put(tags::SLICE_THICKNESS, VR::DS, ds(&[self.slice_spacing]));
            put(tags::STUDY_INSTANCE_UID, VR::UI, study_uid.as_str().into());
            put(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                series_uid.as_str().into(),
            );
            put(
                tags::SERIES_NUMBER,
                VR::IS,
                self.series_number.to_string().into(),
            );
            put(
                tags::INSTANCE_NUMBER,
                VR::IS,
                instance_number.to_string().into(),
            );
            put(
                tags::ACQUISITION_NUMBER,
                VR::IS,
                self.acquisition_number.to_string().into(),
            );
            put(tags::IMAGE_POSITION_PATIENT, VR::DS, ds(&position));
            put(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, ds(&o));
            put(
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                frame_of_reference.as_str().into(),
            );
            put(tags::SAMPLES_PER_PIXEL, VR::US, 1u16.into());
            put(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                "MONOCHROME2".into(),
            );
            put(tags::ROWS, VR::US, self.rows.into());
            put(tags::COLUMNS, VR::US, self.columns.into());
            put(tags::PIXEL_SPACING, VR::DS, ds(&self.pixel_spacing));
            put(tags::BITS_ALLOCATED, VR::US, 16u16.into());
            put(tags::BITS_STORED, VR::US, 12u16.into());
            put(tags::HIGH_BIT, VR::US, 11u16.into());
            put(tags::PIXEL_REPRESENTATION, VR::US, 0u16.into());
            if mr {
                put(tags::WINDOW_CENTER, VR::DS, ds(&[400.0]));
                put(tags::WINDOW_WIDTH, VR::DS, ds(&[800.0]));
            } else {
                put(tags::WINDOW_CENTER, VR::DS, ds(&[40.0]));
                put(tags::WINDOW_WIDTH, VR::DS, ds(&[400.0]));
                put(tags::RESCALE_INTERCEPT, VR::DS, ds(&[-1024.0]));
                put(tags::RESCALE_SLOPE, VR::DS, ds(&[1.0]));
                put(tags::RESCALE_TYPE, VR::LO, "HU".into());
            }
            put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into()));
            let meta = FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_LE)
                .media_storage_sop_class_uid(class)
                .media_storage_sop_instance_uid(sop_uid.as_str())
                .build()
                .map_err(|e| e.to_string())?;
            let name = if self.shuffle_file_names {
                // Names from a hash: their sorted order has nothing to do with slice order.
                let h = uid(
                    self.seed,
                    &format!("file{}{:?}", self.acquisition_number, self.orientation),
                    k as u64,
                );
                format!("IMG{}.dcm", &h[h.len() - 12..])
            } else {
                format!("CT{:04}.dcm", k + 1)
            };
            let path = dir.join(name);
            obj.with_exact_meta(meta)
                .write_to_file(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            files.push(path);
        }
        Ok(files)
    }
}

const DX_FOR_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.1.1";

/// A soft opacity planted in a synthetic radiograph, in pixels of the written image.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Opacity {
    pub row: f64,
    pub column: f64,
    pub radius_px: f64,
    pub radius_mm: f64,
    /// Added to the stored value at the centre (a 12-bit image; bright = dense).
    pub strength: f64,
}

/// A synthetic PA chest radiograph (DX, for presentation, MONOCHROME2, 12 bits stored): body,
/// two lung fields, heart, spine, ribs and diaphragm, with optional soft opacities in the lungs.
/// Anatomy and opacities vary with the seed. The patient is a phantom: no real person's data.
#[derive(Debug, Clone)]
pub struct SyntheticCxr {
    pub size: u16,
    /// mm per pixel (square pixels) at the detector.
    pub spacing: f64,
    pub seed: u64,
    /// Opacities to plant, placed at random in the lungs from the seed.
    pub opacities: usize,
    pub noise: f64,
    pub description: String,
}

impl Default for SyntheticCxr {
    fn default() -> Self {
        SyntheticCxr {
            size: 512,
            spacing: 0.7,
            seed: 1,
            opacities: 0,
            noise: 25.0,
            description: "Synthetic chest radiograph PA".to_owned(),
        }
    }
}

/// A deterministic uniform sample in [0, 1) for (seed, stream, index).
fn uniform(seed: u64, stream: usize, index: usize) -> f64 {
    // The fractional part of a widely scaled normal sample: uniform enough for placement.
    let g = gaussian(seed ^ 0xA5A5_5A5A, stream, index);
    (g * 7919.0).rem_euclid(1.0)
}

/// The anatomy of one phantom, in units of the half image size (centre 0, edges ±1).
struct Anatomy {
    body: f64,
    lung_x: f64,
    lung_y: f64,
    lung_a: f64,
    lung_b: f64,
    heart_x: f64,
    heart_a: f64,
    rib_phase: f64,
    gain: f64,
}

impl SyntheticCxr {
    fn anatomy(&self) -> Anatomy {
        let u = |i| uniform(self.seed, 1, i);
        Anatomy {
            body: 0.84 + 0.08 * u(0),
            lung_x: 0.36 + 0.05 * u(1),
            lung_y: -0.08 + 0.08 * u(2),
            lung_a: 0.25 + 0.05 * u(3),
            lung_b: 0.52 + 0.08 * u(4),
            heart_x: 0.05 + 0.08 * u(5),
            heart_a: 0.24 + 0.08 * u(6),
            rib_phase: 0.04 * u(7),
            gain: 0.9 + 0.2 * u(8),
        }
    }

    /// Whether (x, y) (half-size units) is in a lung field, away from its edge by `margin`.
    fn in_lung(a: &Anatomy, x: f64, y: f64, margin: f64) -> bool {
        [-a.lung_x, a.lung_x].iter().any(|&cx| {
            let (lx, ly) = (
                (x - cx) / (a.lung_a - margin),
                (y - a.lung_y) / (a.lung_b - margin),
            );
            lx * lx + ly * ly <= 1.0
        })
    }

    /// The opacities this seed plants: centres inside a lung field, radius 12–30 mm.
    pub fn planted(&self) -> Vec<Opacity> {
        let a = self.anatomy();
        let half = f64::from(self.size) / 2.0;
        let mut out = Vec::new();
        let mut k = 0;
        while out.len() < self.opacities && k < 10_000 {
            let base = k * 8;
            let u = |i: usize| uniform(self.seed, 2, base + i);
            let radius_mm = 12.0 + 18.0 * u(0);
            let radius = radius_mm / self.spacing / half;
            let (x, y) = (2.0 * u(1) - 1.0, 2.0 * u(2) - 1.0);
            k += 1;
            if !Self::in_lung(&a, x, y, radius * 0.6) {
                continue;
            }
            out.push(Opacity {
                row: (y + 1.0) * half - 0.5,
                column: (x + 1.0) * half - 0.5,
                radius_px: radius * half,
                radius_mm,
                strength: 700.0 + 500.0 * u(3),
            });
        }
        out
    }

    /// The stored value at pixel (row, column), before noise.
    fn value(&self, a: &Anatomy, opacities: &[Opacity], row: f64, column: f64) -> f64 {
        let half = f64::from(self.size) / 2.0;
        let (x, y) = ((column + 0.5) / half - 1.0, (row + 0.5) / half - 1.0);
        let smooth = |d: f64, width: f64| (0.5 - d / width).clamp(0.0, 1.0); // 1 inside, ramps
        // Body: soft tissue between the flanks, fading at the edge.
        let body = smooth(x.abs() - a.body, 0.04);
        let mut v = 300.0 + 1500.0 * body;
        // Lungs: darker fields; the diaphragm cuts their bases.
        let lung = [-a.lung_x, a.lung_x]
            .iter()
            .map(|&cx| {
                let (lx, ly) = ((x - cx) / a.lung_a, (y - a.lung_y) / a.lung_b);
                smooth(lx * lx + ly * ly - 1.0, 0.15)
            })
            .fold(0.0, f64::max);
        v -= 900.0 * lung;
        // Heart: a dense ellipse left of the midline (patient's left is image right in PA).
        let (hx, hy) = ((x - a.heart_x) / a.heart_a, (y - 0.22) / 0.26);
        v += 650.0 * smooth(hx * hx + hy * hy - 1.0, 0.2);
        // Spine and mediastinum.
        v += 700.0 * smooth(x.abs() - 0.09, 0.03) * body;
        // Ribs: curved bands across each lung.
        for k in 0..10 {
            let centre =
                -0.62 + a.rib_phase + 0.13 * f64::from(k) + 0.22 * (x.abs() - 0.1).max(0.0).powi(2);
            v += 260.0
                * smooth((y - centre).abs() - 0.018, 0.02)
                * body
                * (x.abs() > 0.08) as u8 as f64;
        }
        // Opacities: soft-edged, denser in the middle.
        for o in opacities {
            let d = ((row - o.row).powi(2) + (column - o.column).powi(2)).sqrt() / o.radius_px;
            if d < 1.0 {
                v += o.strength * (1.0 - d * d).powf(1.5);
            }
        }
        v * a.gain
    }

    /// Writes the radiograph as `path` and returns the opacities planted.
    pub fn write(&self, path: &Path) -> Result<Vec<Opacity>, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let a = self.anatomy();
        let opacities = self.planted();
        let n = usize::from(self.size);
        let mut pixels = Vec::with_capacity(n * n);
        for r in 0..n {
            for c in 0..n {
                let v = self.value(&a, &opacities, r as f64, c as f64)
                    + self.noise * gaussian(self.seed, 0, r * n + c);
                pixels.push(v.round().clamp(0.0, 4095.0) as u16);
            }
        }
        let study_uid = uid(self.seed, "cxr-study", 0);
        let series_uid = uid(self.seed, "cxr-series", 0);
        let sop_uid = uid(self.seed, "cxr-sop", 0);
        let ds = |v: &[f64]| {
            PrimitiveValue::from(
                v.iter()
                    .map(|x| format!("{x:.4}"))
                    .collect::<Vec<_>>()
                    .join("\\"),
            )
        };
        let mut obj = InMemDicomObject::new_empty();
        let mut put = |tag, vr, value: PrimitiveValue| {
            obj.put(DataElement::new(tag, vr, value));
        };
        put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192".into());
        put(tags::SOP_CLASS_UID, VR::UI, DX_FOR_PRESENTATION.into());
        put(tags::SOP_INSTANCE_UID, VR::UI, sop_uid.as_str().into());
        put(tags::STUDY_DATE, VR::DA, "20260101".into());
        put(tags::STUDY_TIME, VR::TM, "100000".into());
        put(
            tags::ACCESSION_NUMBER,
            VR::SH,
            format!("SYNX{}", self.seed).into(),
        );
        put(tags::MODALITY, VR::CS, "DX".into());
        put(
            tags::STUDY_DESCRIPTION,
            VR::LO,
            "Synthetic phantom radiograph".into(),
        );
        put(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            self.description.as_str().into(),
        );
        put(tags::PATIENT_NAME, VR::PN, "Synthetic^Phantom".into());
        put(
            tags::PATIENT_ID,
            VR::LO,
            format!("SYNX-{}", self.seed).into(),
        );
        put(tags::BODY_PART_EXAMINED, VR::CS, "CHEST".into());
        put(tags::VIEW_POSITION, VR::CS, "PA".into());
        put(tags::PATIENT_ORIENTATION, VR::CS, "L\\F".into());
        put(tags::STUDY_INSTANCE_UID, VR::UI, study_uid.as_str().into());
        put(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            series_uid.as_str().into(),
        );
        put(tags::SERIES_NUMBER, VR::IS, "1".into());
        put(tags::INSTANCE_NUMBER, VR::IS, "1".into());
        put(tags::SAMPLES_PER_PIXEL, VR::US, 1u16.into());
        put(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2".into(),
        );
        put(tags::ROWS, VR::US, self.size.into());
        put(tags::COLUMNS, VR::US, self.size.into());
        put(
            tags::IMAGER_PIXEL_SPACING,
            VR::DS,
            ds(&[self.spacing, self.spacing]),
        );
        put(tags::BITS_ALLOCATED, VR::US, 16u16.into());
        put(tags::BITS_STORED, VR::US, 12u16.into());
        put(tags::HIGH_BIT, VR::US, 11u16.into());
        put(tags::PIXEL_REPRESENTATION, VR::US, 0u16.into());
        put(
            tags::PRESENTATION_INTENT_TYPE,
            VR::CS,
            "FOR PRESENTATION".into(),
        );
        put(tags::WINDOW_CENTER, VR::DS, ds(&[1500.0]));
        put(tags::WINDOW_WIDTH, VR::DS, ds(&[3000.0]));
        put(tags::RESCALE_INTERCEPT, VR::DS, ds(&[0.0]));
        put(tags::RESCALE_SLOPE, VR::DS, ds(&[1.0]));
        put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into()));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(EXPLICIT_LE)
            .media_storage_sop_class_uid(DX_FOR_PRESENTATION)
            .media_storage_sop_instance_uid(sop_uid.as_str())
            .build()
            .map_err(|e| e.to_string())?;
        obj.with_exact_meta(meta)
            .write_to_file(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(opacities)
    }
}
