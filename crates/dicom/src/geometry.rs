//! Patient-space geometry (DICOM LPS, millimetres): where each slice is, how slices are ordered,
//! and how a voxel index maps to a position in the patient.

use serde::Serialize;

/// A 3-vector in patient coordinates (LPS, mm) or a direction.
pub type Vec3 = [f64; 3];

pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Image Orientation (Patient): unit directions of increasing column index (along a row) and
/// of increasing row index (down a column).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, specta::Type)]
pub struct Orientation {
    pub row: Vec3,
    pub column: Vec3,
}

impl Orientation {
    /// From the six values of (0020,0037); `None` when they are not two unit-ish, orthogonal
    /// vectors (a file that says otherwise is not trusted for sorting).
    pub fn from_iop(v: &[f64]) -> Option<Self> {
        let [r0, r1, r2, c0, c1, c2] = v.get(..6)?.try_into().ok()?;
        let (row, column) = ([r0, r1, r2], [c0, c1, c2]);
        let (nr, nc) = (norm(row), norm(column));
        if !(0.9..1.1).contains(&nr) || !(0.9..1.1).contains(&nc) || dot(row, column).abs() > 0.05 {
            return None;
        }
        let unit = |a: Vec3, n: f64| [a[0] / n, a[1] / n, a[2] / n];
        Some(Orientation {
            row: unit(row, nr),
            column: unit(column, nc),
        })
    }

    /// The slice normal, row × column.
    pub fn normal(&self) -> Vec3 {
        cross(self.row, self.column)
    }

    /// Same plane within about half a degree.
    pub fn approx_eq(&self, other: &Orientation) -> bool {
        dot(self.row, other.row) > 0.9999 && dot(self.column, other.column) > 0.9999
    }

    /// The anatomical plane the slices lie in.
    pub fn plane(&self) -> Plane {
        let n = self.normal();
        let (ax, ay, az) = (n[0].abs(), n[1].abs(), n[2].abs());
        if az >= ax && az >= ay {
            Plane::Axial
        } else if ay >= ax {
            Plane::Coronal
        } else {
            Plane::Sagittal
        }
    }

    /// The patient directions shown at the right and bottom edges of the image, and at the
    /// left and top (opposites), e.g. `("L", "P")` for a standard axial slice.
    pub fn edge_labels(&self) -> EdgeLabels {
        let right = direction_label(self.row);
        let bottom = direction_label(self.column);
        let left = direction_label([-self.row[0], -self.row[1], -self.row[2]]);
        let top = direction_label([-self.column[0], -self.column[1], -self.column[2]]);
        EdgeLabels {
            left,
            right,
            top,
            bottom,
        }
    }
}

/// Orientation markers for the four edges of a displayed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct EdgeLabels {
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
}

/// The patient direction(s) a vector points to, strongest first (up to two letters, as
/// workstations show for oblique slices): LPS axes give L/R, P/A, S/I.
pub fn direction_label(v: Vec3) -> String {
    let letters = [
        if v[0] > 0.0 { 'L' } else { 'R' },
        if v[1] > 0.0 { 'P' } else { 'A' },
        if v[2] > 0.0 { 'S' } else { 'I' },
    ];
    let mut axes = [0usize, 1, 2];
    axes.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()));
    axes.iter()
        .take(2)
        .filter(|&&a| v[a].abs() > 0.25)
        .map(|&a| letters[a])
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
pub enum Plane {
    Axial,
    Coronal,
    Sagittal,
}

/// The geometry of one image (or one frame of a multi-frame image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, specta::Type)]
pub struct FrameGeometry {
    /// Image Position (Patient): the centre of the first transmitted pixel, mm.
    pub position: Vec3,
    pub orientation: Orientation,
    /// Pixel Spacing: (row spacing, column spacing) = (between rows, between columns), mm.
    pub pixel_spacing: [f64; 2],
}

impl FrameGeometry {
    /// Position of the pixel at (`column`, `row`), in mm (LPS), per PS3.3 C.7.6.2.1.1.
    pub fn pixel_to_patient(&self, column: f64, row: f64) -> Vec3 {
        let [dr, dc] = self.pixel_spacing;
        let (o, x, y) = (self.position, self.orientation.row, self.orientation.column);
        [
            o[0] + x[0] * dc * column + y[0] * dr * row,
            o[1] + x[1] * dc * column + y[1] * dr * row,
            o[2] + x[2] * dc * column + y[2] * dr * row,
        ]
    }

    /// Distance of this slice along `normal` (from the patient origin), mm.
    pub fn location_along(&self, normal: Vec3) -> f64 {
        dot(self.position, normal)
    }
}

/// How evenly a stack's slices are spaced.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct SpacingReport {
    /// The most common distance between neighbouring slices, mm (0 for a single slice).
    pub spacing: f64,
    /// Gaps that look like missing slices: after slice index `after`, `missing` slices.
    pub gaps: Vec<SliceGap>,
    /// True when distances vary by more than the tolerance other than at whole-slice gaps.
    pub irregular: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, specta::Type)]
pub struct SliceGap {
    /// Index (in sorted order) of the slice before the gap.
    pub after: u32,
    /// How many slices of the usual spacing would fit in the gap.
    pub missing: u32,
    /// The gap, mm.
    pub distance: f64,
}

/// Examines sorted slice locations (mm along the normal) for gaps and irregular spacing.
/// Tolerance: 10% of the usual spacing, at least 0.01 mm.
pub fn spacing_report(sorted_locations: &[f64]) -> SpacingReport {
    let steps: Vec<f64> = sorted_locations.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.is_empty() {
        return SpacingReport {
            spacing: 0.0,
            gaps: Vec::new(),
            irregular: false,
        };
    }
    // The usual spacing is the median step: robust to a few gaps.
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let spacing = sorted[sorted.len() / 2];
    let tolerance = (spacing.abs() * 0.1).max(0.01);
    let mut gaps = Vec::new();
    let mut irregular = false;
    for (i, &step) in steps.iter().enumerate() {
        if (step - spacing).abs() <= tolerance {
            continue;
        }
        let ratio = step / spacing;
        let whole = ratio.round();
        if spacing > 0.0 && whole >= 2.0 && (step - whole * spacing).abs() <= tolerance {
            gaps.push(SliceGap {
                after: i as u32,
                missing: whole as u32 - 1,
                distance: step,
            });
        } else {
            irregular = true;
        }
    }
    SpacingReport {
        spacing,
        gaps,
        irregular,
    }
}

/// Distance between two points, mm.
pub fn distance(a: Vec3, b: Vec3) -> f64 {
    norm(sub(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

    #[test]
    fn axial_orientation_has_a_feet_to_head_normal_and_standard_labels() {
        let o = Orientation::from_iop(&AXIAL).unwrap();
        assert_eq!(o.normal(), [0.0, 0.0, 1.0]);
        assert_eq!(o.plane(), Plane::Axial);
        let l = o.edge_labels();
        assert_eq!((l.left.as_str(), l.right.as_str()), ("R", "L"));
        assert_eq!((l.top.as_str(), l.bottom.as_str()), ("A", "P"));
    }

    #[test]
    fn coronal_and_sagittal_planes_are_recognised() {
        let coronal = Orientation::from_iop(&[1.0, 0.0, 0.0, 0.0, 0.0, -1.0]).unwrap();
        assert_eq!(coronal.plane(), Plane::Coronal);
        assert_eq!(coronal.edge_labels().top, "S");
        let sagittal = Orientation::from_iop(&[0.0, 1.0, 0.0, 0.0, 0.0, -1.0]).unwrap();
        assert_eq!(sagittal.plane(), Plane::Sagittal);
        assert_eq!(sagittal.edge_labels().right, "P");
    }

    #[test]
    fn oblique_directions_get_two_letters() {
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert_eq!(direction_label([s, s, 0.0]), "LP");
        assert_eq!(direction_label([0.0, 0.0, -1.0]), "I");
    }

    #[test]
    fn nonsense_orientation_is_refused() {
        assert!(Orientation::from_iop(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).is_none());
        assert!(Orientation::from_iop(&[0.0; 6]).is_none());
        assert!(Orientation::from_iop(&[1.0, 0.0]).is_none());
    }

    #[test]
    fn pixel_to_patient_uses_row_and_column_spacing_the_right_way_round() {
        let g = FrameGeometry {
            position: [-100.0, -50.0, 20.0],
            orientation: Orientation::from_iop(&AXIAL).unwrap(),
            // 0.5 mm between rows, 0.8 mm between columns: non-square pixels.
            pixel_spacing: [0.5, 0.8],
        };
        assert_eq!(g.pixel_to_patient(10.0, 4.0), [-92.0, -48.0, 20.0]);
    }

    #[test]
    fn spacing_report_finds_a_missing_slice() {
        let r = spacing_report(&[0.0, 2.5, 5.0, 10.0, 12.5]);
        assert_eq!(r.spacing, 2.5);
        assert_eq!(
            r.gaps,
            vec![SliceGap {
                after: 2,
                missing: 1,
                distance: 5.0
            }]
        );
        assert!(!r.irregular);
    }

    #[test]
    fn spacing_report_flags_irregular_spacing() {
        let r = spacing_report(&[0.0, 1.0, 2.0, 3.7, 4.7]);
        assert!(r.irregular);
        assert!(r.gaps.is_empty());
        let single = spacing_report(&[3.0]);
        assert_eq!(single.spacing, 0.0);
    }
}
