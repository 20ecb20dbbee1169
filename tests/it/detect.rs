//! The real detector (ONNX Runtime, the shipped YOLOv3-tiny model) on real images.
//!
//! Needs the runtime library from `scripts/fetch-onnxruntime.sh` (scripts/test.sh fetches it
//! and sets `ORT_DYLIB_PATH`) and the model made by `scripts/make-model.sh`.

use argus::detect::{BackendKind, Detector, ExecutionProvider, LoadOptions};
use argus::detect::postprocess::Detection;
use argus::detect::preprocess::{around, whole_frame};
use argus::video::jpeg::Frame420;
use std::path::PathBuf;

fn detector() -> Detector {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            root.join("target/onnxruntime")
                .join(std::env::consts::ARCH)
                .join("libonnxruntime.so")
        });
    assert!(
        lib.exists(),
        "no ONNX Runtime at {}: run scripts/fetch-onnxruntime.sh",
        lib.display()
    );
    let model = root.join("models/yolov3-tiny-416.toml");
    Detector::load(&LoadOptions {
        backend: BackendKind::Onnxruntime,
        model,
        runtime: lib,
        execution_provider: ExecutionProvider::Cpu,
        threads: 1,
    })
    .expect("the model loads")
}

fn image(name: &str) -> Frame420 {
    let bytes = std::fs::read(format!(
        "{}/tests/data/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Frame420::from_jpeg(&bytes).unwrap()
}

/// Where the person stands in person.jpg (640x424): about x 185-280, y 95-375.
fn person_box() -> Detection {
    Detection {
        class: 0,
        score: 1.0,
        x: 185.0 / 640.0,
        y: 95.0 / 424.0,
        width: 95.0 / 640.0,
        height: 280.0 / 424.0,
    }
}

fn named<'a>(d: &'a Detector, dets: &'a [Detection]) -> Vec<(&'a str, f32)> {
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
    let f = image("person.jpg");
    let p = f.picture();
    let b = argus::motion::MotionBox {
        x: 0.28,
        y: 0.22,
        width: 0.16,
        height: 0.66,
    };
    let dets = d
        .detect(&p, around(&b, p.width, p.height, 416), 0.5)
        .unwrap();
    let person = dets
        .iter()
        .find(|x| d.labels[x.class] == "person")
        .expect("person in the crop");
    let truth = person_box();
    assert!(person.iou(&truth) > 0.5, "{person:?}");
}
