//! The real detector (ONNX Runtime, the shipped YOLOv3-tiny model) on real images.
//!
//! Needs the runtime library from `scripts/fetch-onnxruntime.sh` (scripts/test.sh fetches it
//! and sets `ORT_DYLIB_PATH`) and the model made by `scripts/make-model.sh`.

use crate::support::{model_toml, ort_lib};
use argus::detect::postprocess::Detection;
use argus::detect::preprocess::{around, whole_frame};
use argus::detect::{BackendKind, Detector, ExecutionProvider, LoadOptions};
use argus::video::jpeg::Frame420;

pub fn detector() -> Detector {
    Detector::load(&LoadOptions {
        backend: BackendKind::Onnxruntime,
        model: model_toml(),
        runtime: ort_lib(),
        execution_provider: ExecutionProvider::Cpu,
        threads: 1,
    })
    .expect("the model loads")
}

pub fn image(name: &str) -> Frame420 {
    let bytes = std::fs::read(format!(
        "{}/tests/data/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Frame420::from_jpeg(&bytes).unwrap()
}

/// Where the person stands in person.jpg (640x424): about x 185-280, y 95-375.
pub fn person_box() -> Detection {
    Detection {
        class: 0,
        score: 1.0,
        x: 185.0 / 640.0,
        y: 95.0 / 424.0,
        width: 95.0 / 640.0,
        height: 280.0 / 424.0,
    }
}

pub fn named<'a>(d: &'a Detector, dets: &'a [Detection]) -> Vec<(&'a str, f32)> {
    dets.iter()
        .map(|x| (d.labels[x.class].as_str(), x.score))
        .collect()
}

#[test]
fn finds_the_person_the_dog_and_the_vehicles() {
    let mut d = detector();
    let f = image("person.jpg");
    let p = f.picture();
    let dets = d.detect(&p, whole_frame(p.width, p.height), 0.25).unwrap();
    let person = dets
        .iter()
        .find(|x| d.labels[x.class] == "person")
        .unwrap_or_else(|| panic!("{:?}", named(&d, &dets)));
    assert!(person.score >= 0.5, "{:?}", named(&d, &dets));
    let truth = person_box();
    assert!(person.iou(&truth) > 0.5, "{person:?}");
    assert!(dets
        .iter()
        .any(|x| ["dog", "horse"].contains(&d.labels[x.class].as_str())));

    let f = image("dog.jpg");
    let p = f.picture();
    let dets = d.detect(&p, whole_frame(p.width, p.height), 0.25).unwrap();
    let names: Vec<&str> = dets.iter().map(|x| d.labels[x.class].as_str()).collect();
    assert!(names.contains(&"dog"), "{names:?}");
    assert!(names.contains(&"bicycle"), "{names:?}");
    assert!(
        names.iter().any(|n| *n == "car" || *n == "truck"),
        "{names:?}"
    );
}

#[test]
fn an_empty_scene_has_nothing_and_crops_map_back_to_the_frame() {
    let mut d = detector();
    let mut grey = Frame420::black(640, 360);
    grey.y
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = 110 + (i % 7) as u8);
    grey.u.iter_mut().for_each(|v| *v = 128);
    grey.v.iter_mut().for_each(|v| *v = 128);
    let p = grey.picture();
    let dets = d.detect(&p, whole_frame(640, 360), 0.5).unwrap();
    assert!(dets.is_empty(), "{:?}", named(&d, &dets));
    // A square crop around the person finds it at the same place in the frame.
    let person = person_in_a_crop(&mut d);
    assert!(person.iou(&person_box()) > 0.5, "{person:?}");
}

/// The person of person.jpg, found in a square crop around where she stands.
fn person_in_a_crop(d: &mut Detector) -> Detection {
    let f = image("person.jpg");
    let p = f.picture();
    let b = argus::motion::MotionBox {
        x: 0.29,
        y: 0.22,
        width: 0.15,
        height: 0.66,
    };
    let dets = d
        .detect(&p, around(&b, p.width, p.height, 416), 0.5)
        .unwrap();
    dets.into_iter()
        .find(|x| d.labels[x.class] == "person")
        .expect("person in the crop")
}

/// Decodes a clip and runs what a camera runs on it, analysing one frame in `step` (starting at
/// `phase`): motion, crops around the motion, the detector, the tracker, and (as the camera
/// does) the next frame at once while a new candidate waits for confirmation. Returns the
/// objects announced (by type), the number of frames that had motion, and a trace for failure
/// messages.
pub fn announced_in_clip(
    d: &mut Detector,
    clip: &str,
    step: u64,
    phase: u64,
) -> (Vec<&'static str>, usize, String) {
    let r = run_clip(d, clip, step, phase);
    (r.started, r.motion_frames, r.trace)
}

/// What [`run_clip`] saw.
pub struct ClipRun {
    /// Objects announced, by type.
    pub started: Vec<&'static str>,
    /// Tracks started (tentative candidates, announced or not).
    pub candidates: usize,
    pub motion_frames: usize,
    /// Frame numbers (from 1) of the runs that announced something.
    pub announced_at: Vec<u64>,
    /// Frame number of the first run that saw a candidate.
    pub first_candidate_at: Option<u64>,
    pub trace: String,
}

/// See [`announced_in_clip`].
pub fn run_clip(d: &mut Detector, clip: &str, step: u64, phase: u64) -> ClipRun {
    use argus::detect::preprocess::regions_for;
    use argus::detect::track::{Area, Observation, Tracker};
    let bytes = std::fs::read(clip).unwrap();
    let mut dec = argus::video::decode::H264Decoder::new().unwrap();
    let mut motion = argus::motion::MotionDetector::new(
        argus::model::Sensitivity::Medium.changed_fraction(),
        &[],
    );
    let mut tracker: Tracker<()> = Tracker::default();
    let mut started = Vec::new();
    let mut motion_frames = 0;
    let mut candidates = 0;
    let mut announced_at = Vec::new();
    let mut first_candidate_at = None;
    let mut n = 0u64;
    let mut burst = false;
    let mut last_regions = Vec::new();
    let mut trace = String::new();
    let mut on_picture = |p: &argus::video::decode::Picture<'_>| {
        n += 1;
        if n % step != phase && !burst {
            return;
        }
        let was_burst = std::mem::take(&mut burst);
        let now = n * 1000 / 15;
        let r = motion.analyse(p.y, p.width, p.height, p.y_stride);
        if !r.motion && !was_burst {
            return;
        }
        let regions = if r.motion {
            motion_frames += 1;
            regions_for(&motion.boxes(), p.width, p.height, d.spec.input_size)
        } else {
            std::mem::take(&mut last_regions)
        };
        last_regions = regions.clone();
        let mut dets = Vec::new();
        for reg in &regions {
            dets.extend(d.detect(p, *reg, 0.3).unwrap());
        }
        let dets = argus::detect::postprocess::merge(dets, argus::detect::NMS_IOU);
        let obs: Vec<Observation> = argus::detect::by_type(dets, &d.labels)
            .into_iter()
            .filter(|(kind, _)| *kind == "person" || *kind == "vehicle")
            .map(|(kind, det)| Observation { kind, det })
            .collect();
        let (w, h) = (p.width as f32, p.height as f32);
        let covered: Vec<Area> = regions
            .iter()
            .map(|r| Area {
                x: r.x / w,
                y: r.y / h,
                width: r.side / w,
                height: r.side / h,
            })
            .collect();
        let up = tracker.update(now, &obs, &covered, 0.5, &());
        let fresh = tracker
            .tracks()
            .iter()
            .filter(|t| !t.confirmed && t.first_seen == now)
            .count();
        candidates += fresh;
        if fresh > 0 && first_candidate_at.is_none() {
            first_candidate_at = Some(n);
        }
        if !up.started.is_empty() {
            announced_at.push(n);
        }
        burst = fresh > 0;
        trace += &format!(
            "t={now}{} regions={:?} objects={:?} started={:?} ended={:?} tracks={:?}\n",
            if was_burst { " (burst)" } else { "" },
            regions
                .iter()
                .map(|r| (r.x as i32, r.y as i32, r.side as i32))
                .collect::<Vec<_>>(),
            obs.iter()
                .map(|o| (
                    o.kind,
                    (o.det.score * 100.0) as i32,
                    (o.det.x * 100.0) as i32
                ))
                .collect::<Vec<_>>(),
            up.started,
            up.ended.iter().map(|t| t.id).collect::<Vec<_>>(),
            tracker
                .tracks()
                .iter()
                .map(|t| (t.id, t.confirmed, (t.last.x * 100.0) as i32, t.hits))
                .collect::<Vec<_>>()
        );
        for id in up.started {
            let t = tracker.tracks().iter().find(|t| t.id == id).unwrap();
            started.push(t.kind);
        }
    };
    for au in argus::video::h264::access_units(&bytes) {
        dec.decode(&au, &mut on_picture);
    }
    dec.flush(&mut on_picture);
    ClipRun {
        started,
        candidates,
        motion_frames,
        announced_at,
        first_candidate_at,
        trace,
    }
}

#[test]
fn a_walk_through_is_one_person_and_a_light_sweep_is_nobody() {
    let mut d = detector();
    let root = env!("CARGO_MANIFEST_DIR");
    let walk = format!("{root}/assets/demo/person-walk.h264");
    let light = format!("{root}/tests/data/light-sweep-320x180.h264");
    // 5 analysed frames a second from the 15 fps clips, at each of the three phases, and 7.5.
    for (step, phase) in [(3, 0), (3, 1), (3, 2), (2, 1)] {
        let (started, motion, trace) = announced_in_clip(&mut d, &walk, step, phase);
        assert!(motion > 10, "{motion} motion frames");
        assert_eq!(
            started,
            vec!["person"],
            "one walk, one person (step {step} phase {phase}):\n{trace}"
        );
        let (started, motion, trace) = announced_in_clip(&mut d, &light, step, phase);
        assert!(motion > 3, "the light sweep is motion ({motion} frames)");
        assert!(started.is_empty(), "step {step} phase {phase}:\n{trace}");
    }
}

#[test]
fn the_pool_serves_every_camera_and_drops_the_oldest_under_overload() {
    use argus::detect::pool::{Job, Pool};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    let pool = Pool::start(vec![detector()], 3);
    let frame = Arc::new(image("person.jpg"));
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize)>();
    // Three cameras submit 8 frames each, far faster than one worker can serve them.
    for round in 0..8 {
        for cam in 0..3usize {
            let tx = tx.clone();
            let f = frame.clone();
            pool.submit(Job {
                camera: Arc::from(format!("cam{cam}").as_str()),
                regions: vec![whole_frame(f.width, f.height)],
                frame: f,
                min_score: 0.5,
                done: Box::new(move |o| {
                    let people = o.detections.unwrap().len();
                    let _ = tx.send((cam, people));
                }),
            });
            assert!(
                pool.queued() <= 3,
                "round {round}: one pending frame per camera"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(tx);
    // Wait for the queue to drain.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let c = pool.counters();
    while c.completed.load(Ordering::Relaxed) + c.dropped.load(Ordering::Relaxed) < 24 {
        assert!(std::time::Instant::now() < deadline, "the pool drains");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let results: Vec<(usize, usize)> = rx.try_iter().collect();
    for cam in 0..3 {
        assert!(
            results.iter().any(|(c, people)| *c == cam && *people >= 1),
            "camera {cam} was served: {results:?}"
        );
    }
    let dropped = c.dropped.load(Ordering::Relaxed);
    assert!(dropped > 0, "overload drops frames");
    assert_eq!(
        c.completed.load(Ordering::Relaxed) + dropped,
        c.submitted.load(Ordering::Relaxed)
    );
    assert_eq!(results.len() as u64, c.completed.load(Ordering::Relaxed));
}

#[test]
fn asking_for_cuda_or_tensorrt_without_them_falls_back_to_the_cpu() {
    for ep in [ExecutionProvider::Cuda, ExecutionProvider::Tensorrt] {
        // The PyPI onnxruntime library is CPU-only: the provider is unavailable.
        let mut d = Detector::load(&LoadOptions {
            backend: BackendKind::Onnxruntime,
            model: model_toml(),
            runtime: ort_lib(),
            execution_provider: ep,
            threads: 1,
        })
        .expect("loads on the CPU");
        assert_eq!(d.backend_name(), "onnxruntime-cpu");
        let f = image("person.jpg");
        let p = f.picture();
        let dets = d.detect(&p, whole_frame(p.width, p.height), 0.5).unwrap();
        assert!(dets.iter().any(|x| d.labels[x.class] == "person"));
    }
}

/// YOLOX-nano (`../shared/models/yolox-nano/`, not committed: see models/MODELS.md) through the
/// shipped `models/yolox-nano-416.toml` description, pointed at that file.
pub fn yolox_toml() -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let onnx = format!("{root}/../shared/models/yolox-nano/yolox_nano.onnx");
    assert!(
        std::path::Path::new(&onnx).exists(),
        "{onnx} is missing: the tests use YOLOX-nano from the shared folder beside the checkout"
    );
    let text = std::fs::read_to_string(format!("{root}/models/yolox-nano-416.toml"))
        .unwrap()
        .replace("\"yolox_nano.onnx\"", &format!("{onnx:?}"))
        .replace("\"coco.names\"", &format!("\"{root}/models/coco.names\""));
    let dir = std::env::temp_dir().join(format!("argus-yolox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("yolox-nano-416.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_yolox_model_is_described_by_configuration_and_finds_the_same_objects() {
    let mut d = Detector::load(&LoadOptions {
        backend: BackendKind::Onnxruntime,
        model: yolox_toml(),
        runtime: ort_lib(),
        execution_provider: ExecutionProvider::Cpu,
        threads: 1,
    })
    .expect("YOLOX-nano loads from its description");
    let f = image("person.jpg");
    let p = f.picture();
    let dets = d.detect(&p, whole_frame(p.width, p.height), 0.5).unwrap();
    let person = dets
        .iter()
        .find(|x| d.labels[x.class] == "person")
        .unwrap_or_else(|| panic!("{:?}", named(&d, &dets)));
    // Full-height box (BGR, 0..255, top-left letterbox and the stride grids all right).
    assert!(person.iou(&person_box()) > 0.7, "{person:?}");
    assert!(person.score > 0.7, "{person:?}");
    assert!(dets.iter().any(|x| d.labels[x.class] == "dog"));
    assert!(dets.iter().any(|x| d.labels[x.class] == "horse"));
    let f = image("dog.jpg");
    let p = f.picture();
    let dets = d.detect(&p, whole_frame(p.width, p.height), 0.5).unwrap();
    let names: Vec<&str> = dets.iter().map(|x| d.labels[x.class].as_str()).collect();
    for want in ["dog", "bicycle"] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(
        names.iter().any(|n| *n == "car" || *n == "truck"),
        "{names:?}"
    );
    // A crop inside the frame maps back to the same place.
    let person = person_in_a_crop(&mut d);
    assert!(person.iou(&person_box()) > 0.7, "{person:?}");
}
