//! The pure-Rust detector backend (tract, `--features tract`; always built on 32-bit ARM) with
//! the shipped YOLOv3-tiny model on the same real images as `detect.rs`, and its raw output
//! against ONNX Runtime's on the same input tensors.
//!
//! Needs the model made by `scripts/make-model.sh`; the comparison also needs the ONNX Runtime
//! library (`scripts/fetch-onnxruntime.sh`, or `ORT_DYLIB_PATH`) and is left out on 32-bit ARM,
//! which has none (there these tests run under qemu-arm).

use crate::detect::{image, named, person_box};
#[cfg(not(target_arch = "arm"))]
use crate::support::ort_lib;
use crate::support::tract_model_toml as model_toml;
use argus::detect::preprocess::whole_frame;
use argus::detect::{BackendKind, Detector, ExecutionProvider, LoadOptions};
use std::path::PathBuf;
use std::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn detector(backend: BackendKind, runtime: PathBuf) -> Detector {
    Detector::load(&LoadOptions {
        backend,
        model: model_toml(),
        runtime,
        execution_provider: ExecutionProvider::Cpu,
        threads: 1,
    })
    .expect("the model loads")
}

fn tract() -> Detector {
    detector(BackendKind::Tract, PathBuf::new())
}

#[test]
fn tract_finds_the_person_the_dog_and_the_vehicles() {
    let mut d = tract();
    assert_eq!(d.backend_name(), "tract");
    let f = image("person.jpg");
    let p = f.picture();
    let start = Instant::now();
    let dets = d.detect(&p, whole_frame(p.width, p.height), 0.25).unwrap();
    eprintln!("tract detector step: {:?}", start.elapsed());
    let person = dets
        .iter()
        .find(|x| d.labels[x.class] == "person")
        .unwrap_or_else(|| panic!("{:?}", named(&d, &dets)));
    assert!(person.score >= 0.5, "{:?}", named(&d, &dets));
    assert!(person.iou(&person_box()) > 0.5, "{person:?}");

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
fn tract_reports_a_missing_model_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(model_toml()).unwrap();
    std::fs::write(dir.path().join("m.toml"), toml).unwrap();
    std::fs::copy(
        root().join("models/coco.names"),
        dir.path().join("coco.names"),
    )
    .unwrap();
    let err = Detector::load(&LoadOptions {
        backend: BackendKind::Tract,
        model: dir.path().join("m.toml"),
        runtime: PathBuf::new(),
        execution_provider: ExecutionProvider::Cpu,
        threads: 1,
    })
    .err()
    .expect("no model file");
    let message = err.to_string();
    assert!(message.contains("yolov4-tiny-416.onnx"), "{message}");
}

/// Largest difference allowed between the two runtimes' box coordinates, in pixels of the
/// 416x416 input. Measured on x86_64 (tract 0.23.9, ONNX Runtime 1.31.1, both 1 thread):
/// 9.2e-4 px on person.jpg, 7.9e-4 px on dog.jpg, i.e. a few f32 ulps of values up to ~500
/// (the ulp at 256..512 is 3e-5) accumulated through 13 layers summed in a different order.
/// One hundredth of a pixel leaves 10x headroom and is far below anything NMS or a box
/// drawn on a snapshot could notice.
#[cfg(not(target_arch = "arm"))]
const BOX_TOLERANCE: f32 = 1e-2;

/// Largest difference allowed between the two runtimes' objectness and class scores (0..1).
/// Measured: 8.9e-6 on person.jpg, 6.4e-6 on dog.jpg; 1e-4 leaves 10x headroom and is
/// 100x finer than the whole-percent confidence events carry.
#[cfg(not(target_arch = "arm"))]
const SCORE_TOLERANCE: f32 = 1e-4;

/// The raw outputs of tract and ONNX Runtime agree on the same input tensors: boxes (first
/// four columns of a row) and scores (the rest) have tolerances of their own, since boxes are
/// in pixels and scores in 0..1.
#[cfg(not(target_arch = "arm"))]
#[test]
fn tract_output_agrees_with_onnxruntime() {
    use argus::detect::preprocess::fill_tensor;
    let mut ort = detector(BackendKind::Onnxruntime, ort_lib());
    let mut tract = tract();
    let size = tract.spec.input_size;
    let row = 5 + tract.spec.num_classes;
    for name in ["person.jpg", "dog.jpg"] {
        let f = image(name);
        let p = f.picture();
        let mut input = vec![0f32; 3 * size * size];
        fill_tensor(&p, whole_frame(p.width, p.height), size, &mut input);
        let a = ort.infer(&input).unwrap();
        let b = tract.infer(&input).unwrap();
        assert_eq!(a.len(), b.len());
        assert_eq!(a.len() % row, 0);
        let (mut boxes, mut scores) = (0f32, 0f32);
        for (ra, rb) in a.chunks(row).zip(b.chunks(row)) {
            for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
                let d = (x - y).abs();
                if i < 4 {
                    boxes = boxes.max(d);
                } else {
                    scores = scores.max(d);
                }
            }
        }
        eprintln!("{name}: max |ort - tract| boxes {boxes:e} px, scores {scores:e}");
        assert!(boxes < BOX_TOLERANCE, "{name}: boxes differ by {boxes} px");
        assert!(
            scores < SCORE_TOLERANCE,
            "{name}: scores differ by {scores}"
        );
    }
}
