//! Series → displayable stacks: frames sorted by position along the slice normal, split where a
//! series holds several stacks (orientations, sizes, phases), with gaps and irregular spacing
//! reported.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::geometry::{FrameGeometry, Orientation, Plane, SpacingReport, Vec3, spacing_report};
use crate::index::{Rescale, Series};
use crate::voi::{VoiLut, Window};

/// One image of a stack: which instance and frame it is, and what differs per frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackFrame {
    /// Index into [`Series::instances`].
    pub instance: usize,
    /// Frame within the instance, 0-based.
    pub frame: u32,
    pub instance_number: Option<i32>,
    pub geometry: Option<FrameGeometry>,
    pub rescale: Rescale,
    pub windows: Vec<Window>,
    pub voi_lut: Option<VoiLut>,
    /// Position along the stack normal, mm (when the geometry is known).
    pub location: Option<f64>,
}

/// How a stack's order was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortedBy {
    /// Image Position (Patient) projected on the slice normal.
    Position,
    /// Instance Number, because the geometry is missing.
    InstanceNumber,
    /// Neither: the order the files were found in.
    FileOrder,
}

/// A set of frames that display as one scrollable stack.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    /// Short description, e.g. "axial 512×512" or "axial 512×512, phase 2".
    pub label: String,
    pub rows: u32,
    pub columns: u32,
    pub frames: Vec<StackFrame>,
    pub orientation: Option<Orientation>,
    pub plane: Option<Plane>,
    pub sorted_by: SortedBy,
    pub spacing: SpacingReport,
    pub slice_thickness: Option<f64>,
}

impl Stack {
    /// Problems a radiologist must know about before trusting the stack.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for gap in &self.spacing.gaps {
            w.push(format!(
                "{} slice(s) missing after slice {} (gap of {:.2} mm where {:.2} mm is usual)",
                gap.missing,
                gap.after + 1,
                gap.distance,
                self.spacing.spacing
            ));
        }
        if self.spacing.irregular {
            w.push("slice spacing is irregular".to_owned());
        }
        match self.sorted_by {
            // One image has no order to get wrong (a radiograph has no slice geometry at all).
            _ if self.frames.len() <= 1 => {}
            SortedBy::Position => {}
            SortedBy::InstanceNumber => {
                w.push("no usable slice geometry: sorted by Instance Number".to_owned())
            }
            SortedBy::FileOrder => {
                w.push("no slice geometry or Instance Number: shown in file order".to_owned())
            }
        }
        w
    }
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
struct GroupKey {
    rows: u32,
    columns: u32,
    color: bool,
    /// Index into the list of distinct orientations seen (orientations compare approximately).
    orientation: Option<usize>,
}

/// Splits a series into stacks and sorts each.
pub fn stacks(series: &Series) -> Vec<Stack> {
    let mut orientations: Vec<Orientation> = Vec::new();
    let mut groups: Vec<(GroupKey, Vec<StackFrame>)> = Vec::new();
    for (i, instance) in series.instances.iter().enumerate() {
        let Some(image) = &instance.image else {
            continue;
        };
        for (f, info) in image.frame_info.iter().enumerate() {
            let orientation = info.geometry.map(|g| {
                orientations
                    .iter()
                    .position(|o| o.approx_eq(&g.orientation))
                    .unwrap_or_else(|| {
                        orientations.push(g.orientation);
                        orientations.len() - 1
                    })
            });
            let key = GroupKey {
                rows: image.rows,
                columns: image.columns,
                color: image.samples_per_pixel == 3,
                orientation,
            };
            let frame = StackFrame {
                instance: i,
                frame: f as u32,
                instance_number: instance.instance_number,
                geometry: info.geometry,
                rescale: info.rescale,
                windows: info.windows.clone(),
                voi_lut: info.voi_lut.clone(),
                location: None,
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, frames)) => frames.push(frame),
                None => groups.push((key, vec![frame])),
            }
        }
    }
    // Frames without geometry form their own group (orientation `None`), sorted by Instance
    // Number: they are never interleaved with positioned slices.
    let mut out = Vec::new();
    for (key, frames) in groups {
        let orientation = key.orientation.map(|o| orientations[o]);
        let base_label = format!(
            "{}{}×{}",
            orientation.map_or(String::new(), |o| format!("{} ", plane_name(o.plane()))),
            key.columns,
            key.rows
        );
        let thickness = series
            .instances
            .get(frames[0].instance)
            .and_then(|i| i.image.as_ref())
            .and_then(|im| im.frame_info.get(frames[0].frame as usize))
            .and_then(|f| f.slice_thickness);
        for (phase, mut frames) in split_phases(series, frames, orientation) {
            let (sorted_by, locations) = sort_frames(&mut frames, orientation);
            let label = match phase {
                Some(p) => format!("{base_label}, phase {p}"),
                None => base_label.clone(),
            };
            out.push(Stack {
                label,
                rows: key.rows,
                columns: key.columns,
                orientation,
                plane: orientation.map(|o| o.plane()),
                sorted_by,
                spacing: spacing_report(&locations),
                slice_thickness: thickness,
                frames,
            });
        }
    }
    // Biggest stack first: it is the one a reader wants to see.
    out.sort_by_key(|s| std::cmp::Reverse(s.frames.len()));
    out
}

fn plane_name(p: Plane) -> &'static str {
    match p {
        Plane::Axial => "axial",
        Plane::Coronal => "coronal",
        Plane::Sagittal => "sagittal",
    }
}

/// A frame's value of a phase attribute, when it has one.
type PhaseOf<'a> = dyn Fn(&StackFrame) -> Option<i64> + 'a;

/// Splits frames that repeat positions (multi-phase, multi-echo) into one group per phase.
///
/// A split happens only where a position occurs more than once (duplicate copies of an
/// instance are merged before, by the index), and only by an attribute that partitions the
/// frames into sets with each position at most once and no more sets than the most often
/// repeated position needs: Temporal Position, Acquisition Number, Echo Number, Trigger Time, in
/// that order. So a series in which every slice has its own Acquisition Number stays one stack,
/// and two acquisitions over the same positions become two. When positions repeat and no
/// attribute partitions them, the k-th occurrence of each position goes to stack k.
fn split_phases(
    series: &Series,
    frames: Vec<StackFrame>,
    orientation: Option<Orientation>,
) -> Vec<(Option<u32>, Vec<StackFrame>)> {
    let Some(orientation) = orientation else {
        return vec![(None, frames)];
    };
    let normal = orientation.normal();
    let position = |f: &StackFrame| f.geometry.map(|g| quantise(g.location_along(normal)));
    let mut counts: BTreeMap<Option<i64>, usize> = BTreeMap::new();
    for f in &frames {
        *counts.entry(position(f)).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(1);
    if most == 1 {
        return vec![(None, frames)];
    }
    let image = |f: &StackFrame| series.instances[f.instance].image.as_ref();
    let attributes: [&PhaseOf; 4] = [
        &|f| {
            image(f)
                .and_then(|im| im.frame_info.get(f.frame as usize))
                .and_then(|i| i.temporal_position)
                .map(i64::from)
        },
        &|f| image(f).and_then(|im| im.acquisition_number).map(i64::from),
        &|f| image(f).and_then(|im| im.echo_number).map(i64::from),
        &|f| {
            image(f)
                .and_then(|im| im.trigger_time)
                .map(|t| (t * 1000.0).round() as i64)
        },
    ];
    let partitions = |phase_of: &PhaseOf| {
        let mut sets: BTreeMap<i64, Vec<Option<i64>>> = BTreeMap::new();
        for f in &frames {
            sets.entry(phase_of(f)?).or_default().push(position(f));
        }
        let each_position_once = sets.values_mut().all(|positions| {
            let n = positions.len();
            positions.sort_unstable();
            positions.dedup();
            positions.len() == n
        });
        (each_position_once && sets.len() == most).then_some(())
    };
    let mut by_phase: BTreeMap<i64, Vec<StackFrame>> = BTreeMap::new();
    match attributes.iter().find(|a| partitions(a).is_some()) {
        Some(phase_of) => {
            for f in frames {
                by_phase
                    .entry(phase_of(&f).unwrap_or(0))
                    .or_default()
                    .push(f);
            }
        }
        None => {
            // k-th time this position appears → phase k (file order within the position).
            let mut seen: BTreeMap<Option<i64>, i64> = BTreeMap::new();
            for f in frames {
                let n = seen.entry(position(&f)).or_default();
                *n += 1;
                by_phase.entry(*n).or_default().push(f);
            }
        }
    }
    by_phase
        .into_values()
        .enumerate()
        .map(|(i, f)| (Some(i as u32 + 1), f))
        .collect()
}

/// Positions equal to 1 µm are the same slice.
fn quantise(mm: f64) -> i64 {
    (mm * 1000.0).round() as i64
}

/// Sorts frames in place; returns how, and the sorted locations (mm) when known.
fn sort_frames(
    frames: &mut [StackFrame],
    orientation: Option<Orientation>,
) -> (SortedBy, Vec<f64>) {
    if let Some(o) = orientation {
        let normal: Vec3 = o.normal();
        for f in frames.iter_mut() {
            f.location = f.geometry.map(|g| g.location_along(normal));
        }
        if frames.iter().all(|f| f.location.is_some()) {
            // Head first for axial stacks, as reading workstations show them; otherwise in
            // the direction of the normal.
            let sign = if o.plane() == Plane::Axial && normal[2] > 0.0 {
                -1.0
            } else {
                1.0
            };
            frames.sort_by(|a, b| {
                let (la, lb) = (a.location.unwrap_or(0.0), b.location.unwrap_or(0.0));
                (sign * la)
                    .total_cmp(&(sign * lb))
                    .then(a.frame.cmp(&b.frame))
            });
            let locations = frames
                .iter()
                .map(|f| sign * f.location.unwrap_or(0.0))
                .collect();
            return (SortedBy::Position, locations);
        }
    }
    if frames.iter().any(|f| f.instance_number.is_some()) {
        frames.sort_by(|a, b| {
            a.instance_number
                .cmp(&b.instance_number)
                .then(a.instance.cmp(&b.instance))
                .then(a.frame.cmp(&b.frame))
        });
        (SortedBy::InstanceNumber, Vec::new())
    } else {
        frames.sort_by(|a, b| a.instance.cmp(&b.instance).then(a.frame.cmp(&b.frame)));
        (SortedBy::FileOrder, Vec::new())
    }
}
