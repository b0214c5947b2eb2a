//! The workstation's use cases without a window: open a study (and the recent list), its stack
//! view and pixels by the same paths the app's URI scheme serves, a stale generation refused,
//! the reader's settings saved and read back, and the PACS side off by default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dokuei_review::dicom::synth::SyntheticCt;
use dokuei_review::workstation::{Settings, Workstation};

#[test]
fn a_study_opens_serves_its_pixels_and_is_remembered() {
    let _one_at_a_time = SHARED_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    SyntheticCt {
        slices: 4,
        ..SyntheticCt::default()
    }
    .write(&study)
    .unwrap();
    let ws = Workstation::new(dir.path().join("data"), dir.path().join("cache"))
        .with_ledger_file(dir.path().join("ledger.sqlite"));
    assert!(ws.current().is_err(), "nothing is open yet");

    let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
    let series = &opened.tree.studies[0].series[0];
    assert_eq!(series.stacks[0].slices, 4);
    let view = ws.stack_view(series.key, 0).unwrap();
    assert_eq!((view.rows, view.columns), (64, 64));
    let (status, kind, body) =
        ws.pixels(&format!("slice/{}/{}/0/2", opened.generation, series.key));
    assert_eq!((status, kind), (200, "application/octet-stream"));
    assert_eq!(body.len(), 64 * 64 * 2);
    // The web-process extension's transport: slices 1..4 in one shared-memory file (from the
    // stack once it is loaded), byte for byte the slices the scheme serves.
    let shm = |from: u32, count: u32| {
        ws.pixels(&format!(
            "shm/{}/{}/0/{from}/{count}",
            opened.generation, series.key
        ))
    };
    let (status, kind, name) = shm(1, 3);
    assert_eq!((status, kind), (200, "text/plain; charset=utf-8"));
    let shared = take(name);
    let mut slices = Vec::new();
    for k in 0..4 {
        slices.extend(
            ws.pixels(&format!("slice/{}/{}/0/{k}", opened.generation, series.key))
                .2,
        );
    }
    assert_eq!(shared, slices[64 * 64 * 2..]);
    let (status, _, name) = shm(0, 2);
    assert_eq!(status, 200);
    assert_eq!(take(name), slices[..2 * 64 * 64 * 2]);
    // Past the end, nothing, or too much at once: refused with the reason, and no file left.
    let before = own_shared_memory();
    let (status, _, body) = shm(3, 2);
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("slice 5 does not exist"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = shm(0, 0);
    assert_eq!(status, 500);
    assert!(String::from_utf8_lossy(&body).contains("between 1 and 256"));
    assert_eq!(shm(0, 257).0, 500);
    assert_eq!(own_shared_memory(), before);
    // A URL of an earlier study is refused once another opens.
    let again = ws.open_study(vec![study.display().to_string()]).unwrap();
    assert_eq!(again.generation, opened.generation + 1);
    let (status, _, body) = ws.pixels(&format!("slice/{}/{}/0/2", opened.generation, series.key));
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no longer open"));
    // The recent list has it once, without patient identifiers.
    let recent = ws.recent_studies();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].paths, vec![study.display().to_string()]);
    assert!(!recent[0].label.contains("Phantom"));

    let settings = Settings {
        reader_id: Some(3),
        commit_then_reveal: true,
        palette: "cvd".into(),
        model_folders: vec![],
    };
    ws.save_settings(settings.clone()).unwrap();
    assert_eq!(ws.settings(), settings);
    let pacs = ws.pacs.status().unwrap();
    assert!(pacs.listening.is_none(), "the receiver is off by default");
    assert!(pacs.cache.studies.is_empty());
}

/// The shared-memory file a `shm/` answer names: this process's, 0600; read and removed.
fn take(name: Vec<u8>) -> Vec<u8> {
    let name = String::from_utf8(name).unwrap();
    assert!(
        name.starts_with(&format!("dokuei-{}-", std::process::id())),
        "{name}"
    );
    let shared = std::path::Path::new("/dev/shm").join(&name);
    let bytes = std::fs::read(&shared).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_file(&shared).unwrap();
    bytes
}

/// A stack with a slice that cannot be read is not loaded as a volume: its pieces are decoded
/// slice by slice, and the piece holding the bad slice is refused naming its file.
#[test]
fn shared_memory_pieces_of_a_stack_with_a_missing_slice() {
    let _one_at_a_time = SHARED_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    let files = SyntheticCt {
        slices: 6,
        ..SyntheticCt::default()
    }
    .write(&study)
    .unwrap();
    // The slices as served while every file is there.
    let good: Vec<Vec<u8>> = {
        let ws = Workstation::new(dir.path().join("data1"), dir.path().join("cache1"))
            .with_ledger_file(dir.path().join("ledger1.sqlite"));
        let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
        let key = opened.tree.studies[0].series[0].key;
        (0..6)
            .map(|k| {
                let (status, _, body) =
                    ws.pixels(&format!("slice/{}/{key}/0/{k}", opened.generation));
                assert_eq!(status, 200);
                body
            })
            .collect()
    };
    let ws = Workstation::new(dir.path().join("data"), dir.path().join("cache"))
        .with_ledger_file(dir.path().join("ledger.sqlite"));
    let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
    let key = opened.tree.studies[0].series[0].key;
    // One file gone after the study was opened (a share that went away, a file cleaned up).
    let victim = &files[4];
    std::fs::remove_file(victim).unwrap();
    let shm = |from: u32, count: u32| {
        ws.pixels(&format!("shm/{}/{key}/0/{from}/{count}", opened.generation))
    };
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let mut refused = Vec::new();
    for k in 0..6u32 {
        let (status, _, body) = shm(k, 1);
        if status == 200 {
            assert_eq!(take(body), good[k as usize], "slice {}", k + 1);
        } else {
            let message = String::from_utf8_lossy(&body);
            assert!(message.contains(&name), "{message} does not name {name}");
            refused.push(k);
        }
    }
    assert_eq!(refused.len(), 1, "refused: {refused:?}");
    // A piece around the bad slice is refused whole, and leaves no file.
    let before = own_shared_memory();
    let bad = refused[0];
    assert_ne!(shm(bad.saturating_sub(1), 2).0, 200);
    assert_eq!(own_shared_memory(), before);
}

/// The tests that look at this process's files in /dev/shm run one at a time (each would see
/// the other's come and go).
static SHARED_MEMORY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This process's shared-memory files, by name.
fn own_shared_memory() -> Vec<String> {
    let prefix = format!("dokuei-{}-", std::process::id());
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

/// The MPR viewer's planes, by the same path the app serves: a coronal plane through a planted
/// sphere shows it at the pixel its patient position projects to, a plane beside the sphere
/// misses it unless a MIP slab reaches it, and malformed requests are refused with a reason.
#[test]
fn reformatted_planes_are_served_from_the_loaded_volume() {
    use dokuei_review::dicom::synth::Sphere;
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    let centre = [9.4, -1.1, 25.0];
    SyntheticCt {
        slices: 20,
        spheres: vec![Sphere {
            center: centre,
            radius: 4.0,
            hu: 500.0,
        }],
        ..SyntheticCt::default()
    }
    .write(&study)
    .unwrap();
    let ws = Workstation::new(dir.path().join("data"), dir.path().join("cache"))
        .with_ledger_file(dir.path().join("ledger.sqlite"));
    let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
    let key = opened.tree.studies[0].series[0].key;
    let view = ws.stack_view(key, 0).unwrap();
    assert_eq!(view.format, "i16");
    // A coronal plane of 21 × 21 pixels 0.5 mm apart, its centre pixel (10, 10) at `y` mm.
    let plane = |y: f64, slab: f64, mode: u8| {
        let spec = format!(
            "{},{y},{},1,0,0,0,0,-1,0.5,0.5,21,21,{slab},{mode}",
            centre[0] - 5.0,
            centre[2] + 5.0
        );
        let (status, kind, body) =
            ws.pixels(&format!("plane/{}/{key}/0/{spec}", opened.generation));
        assert_eq!(
            (status, kind),
            (200, "application/octet-stream"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body.len(), 21 * 21 * 2);
        body.chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect::<Vec<_>>()
    };
    let through = plane(centre[1], 0.0, 0);
    assert_eq!(through[10 * 21 + 10], 500, "the sphere's centre");
    assert!(
        through[0] < -500,
        "7 mm from the centre is lung: {}",
        through[0]
    );
    // 6 mm in front of the sphere's centre (radius 4): missed by the plane, caught by a
    // 14 mm MIP slab, and its minimum (MinIP) stays lung.
    let beside = plane(centre[1] - 6.0, 0.0, 0);
    assert!(beside[10 * 21 + 10] < -500, "{}", beside[10 * 21 + 10]);
    assert_eq!(plane(centre[1] - 6.0, 14.0, 0)[10 * 21 + 10], 500);
    assert!(plane(centre[1] - 6.0, 14.0, 1)[10 * 21 + 10] < -500);
    let average = plane(centre[1] - 6.0, 14.0, 2)[10 * 21 + 10];
    assert!(average > -500 && average < 500, "average {average}");

    // A heatmap on the stack's grid (255 where the image is over 250 HU) reformats onto the
    // same planes: hot at the sphere's centre, cold 6 mm in front of it, and hot again through
    // a 14 mm slab whatever the image's slab mode (the map shows its maximum).
    let (_, open) = ws.current().unwrap();
    let slices = view.slices as usize;
    let mut values = Vec::with_capacity(slices * 64 * 64);
    for k in 0..slices {
        let (_, _, body) = ws.pixels(&format!("slice/{}/{key}/0/{k}", opened.generation));
        values.extend(body.chunks(2).map(|b| {
            if i16::from_le_bytes([b[0], b[1]]) > 250 {
                255u8
            } else {
                0
            }
        }));
    }
    let map = dokuei_review::infer::pipeline::LabelMap {
        label: "nodule".into(),
        slices,
        rows: 64,
        columns: 64,
        values,
    };
    let heat = |y: f64, slab: f64, mode: u8| {
        let spec = format!(
            "{},{y},{},1,0,0,0,0,-1,0.5,0.5,21,21,{slab},{mode}",
            centre[0] - 5.0,
            centre[2] + 5.0
        );
        let request = dokuei_review::viewer::parse_plane_request(&spec).unwrap();
        dokuei_review::viewer::map_plane_bytes(&open, key, 0, &map, &request)
    };
    let through = heat(centre[1], 0.0, 0).unwrap();
    assert_eq!(through.len(), 21 * 21);
    assert_eq!(through[10 * 21 + 10], 255);
    assert_eq!(through[0], 0, "7 mm from the centre");
    assert_eq!(heat(centre[1] - 6.0, 0.0, 0).unwrap()[10 * 21 + 10], 0);
    assert_eq!(heat(centre[1] - 6.0, 14.0, 1).unwrap()[10 * 21 + 10], 255);
    let small = dokuei_review::infer::pipeline::LabelMap {
        slices: slices - 1,
        values: map.values[64 * 64..].to_vec(),
        ..map.clone()
    };
    let request =
        dokuei_review::viewer::parse_plane_request("0,0,0,1,0,0,0,0,-1,0.5,0.5,21,21,0,0").unwrap();
    let refused = dokuei_review::viewer::map_plane_bytes(&open, key, 0, &small, &request)
        .unwrap_err()
        .message;
    assert!(refused.contains("not on the grid"), "{refused}");

    for (spec, why) in [
        ("1,2,3", "15 numbers"),
        ("0,0,0,1,0,0,0,1,0,1,1,10,10,0,7", "slab mode"),
        ("0,0,0,1,0,0,1,0,0,1,1,10,10,0,0", "perpendicular"),
        ("0,0,0,1,0,0,0,1,0,1,1,10,99999,0,0", "4096"),
        ("0,0,0,1,0,0,0,1,0,1,1,10,10,900,0", "500 mm"),
    ] {
        let (status, _, body) = ws.pixels(&format!("plane/{}/{key}/0/{spec}", opened.generation));
        let text = String::from_utf8_lossy(&body);
        assert!(
            status >= 400 && text.contains(why),
            "{spec}: {status} {text}"
        );
    }
}

/// Shared-memory files nobody took are removed: those of ended processes at start, this
/// process's own once they are old enough (a minute while running, any age at exit); other
/// processes' and other names are left alone.
#[test]
fn shared_memory_left_behind_is_swept() {
    use dokuei_review::viewer::sweep_shared_memory;
    let dir = tempfile::tempdir().unwrap();
    let own = format!("dokuei-{}-7-123456789", std::process::id());
    let names = [
        own.as_str(),
        "dokuei-4000000000-1-42",
        "dokuei-1-2-42",
        "dokuei-x-3",
        "dokuei-4000000000-",
        "other-4000000000-1",
    ];
    for name in names {
        std::fs::write(dir.path().join(name), b"slices").unwrap();
    }
    let left = || {
        let mut n: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    let minute = Some(std::time::Duration::from_secs(60));
    assert_eq!(sweep_shared_memory(dir.path(), None), 1);
    assert!(!left().contains(&"dokuei-4000000000-1-42".to_string()));
    assert!(left().contains(&own));
    // Written just now: kept while running.
    assert_eq!(sweep_shared_memory(dir.path(), minute), 0);
    assert!(left().contains(&own));
    // Two minutes old: removed by the running sweep.
    let file = std::fs::File::options()
        .write(true)
        .open(dir.path().join(&own))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
        .unwrap();
    assert_eq!(sweep_shared_memory(dir.path(), minute), 1);
    assert_eq!(
        left(),
        vec![
            "dokuei-1-2-42",
            "dokuei-4000000000-",
            "dokuei-x-3",
            "other-4000000000-1"
        ]
    );
}

/// A piece of more than 64 MiB is refused (the page asks for 16 MiB), and leaves no file; nor
/// does a piece whose decoding panics.
#[test]
fn shared_memory_pieces_are_bounded_in_bytes() {
    use dokuei_review::viewer::{SHARED_MEMORY_MAX_BYTES, slices_to_shared_memory};
    let dir = tempfile::tempdir().unwrap();
    let big = SHARED_MEMORY_MAX_BYTES / 2 + 1;
    let refused = slices_to_shared_memory(dir.path(), 0..2, |_| Ok(vec![7u8; big])).unwrap_err();
    assert!(
        refused.message.contains("more than 64 MiB"),
        "{}",
        refused.message
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A decoder that panics on the second slice leaves no file either.
    let panicked = std::panic::catch_unwind(|| {
        slices_to_shared_memory(dir.path(), 0..3, |k| {
            assert!(k < 1, "a decoder bug on slice {k}");
            Ok(vec![1u8; 16])
        })
    });
    assert!(panicked.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Two slices within the bound are one file, in order.
    let name = slices_to_shared_memory(dir.path(), 3..5, |k| Ok(vec![k as u8; 3])).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(name)).unwrap(),
        [3, 3, 3, 4, 4, 4]
    );
}
