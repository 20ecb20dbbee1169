//! Detector evaluation: runs candidate models through the appliance's own detector path on the
//! hand-labelled evaluation set (`tests/data/eval/labels.json`, pictures fetched by
//! `scripts/fetch-eval-set.sh` into `target/eval-set/images/`) and prints, per model, mode and
//! class, true positives, false positives, misses, precision and recall, the false positives on
//! the negative pictures, and milliseconds per picture, as a markdown table; then recall by
//! object size and by light (the dark variants).
//!
//!     scripts/eval-detector.sh                      (fetches everything, runs the models there are)
//!     ORT_DYLIB_PATH=$(scripts/fetch-onnxruntime.sh) \
//!       cargo bench --bench eval -- models/yolov3-tiny-416.toml before=target/eval-models/x.toml
//!
//! Models: the `models/*.toml` descriptions given after `--` (or, when none is, in
//! `ARGUS_EVAL_MODELS`, separated by spaces or commas); `name=path` names a row. Other settings:
//! `ARGUS_EVAL_LABELS` (label file), `ARGUS_EVAL_IMAGES` (picture folder), `ARGUS_EVAL_THREADS`
//! (intra-op threads, default 1), `ARGUS_EVAL_VERBOSE=1` (every miss and false positive),
//! `ARGUS_EVAL_JSON` (also write the counts there as JSON).
//!
//! What runs is what the appliance runs: `Detector::load` on ONNX Runtime (CPU), the picture
//! from `Frame420::from_jpeg`, `Detector::detect` per region at the tracker's score floor
//! (0.3, `TRACK_MIN_SCORE` in `src/cameras.rs`), `postprocess::merge` at `NMS_IOU` over the
//! regions, then the appliance's minimum score 0.5 and `detect::detection_type` (person,
//! vehicle, animal; other COCO classes are dropped, as `on_detections` does). Two modes:
//! - `whole`: the whole frame letterboxed (`preprocess::whole_frame`), as a check run without
//!   motion boxes;
//! - `motion`: the motion detector simulated by each labelled object's box grown by 10 % as a
//!   `MotionBox` (largest first), turned into crops by `preprocess::regions_for`, as `analyse`
//!   does (`difficult` objects move too, so they give motion boxes). A picture without any
//!   labelled object has no motion boxes, so `regions_for` gives the whole frame.
//!
//! A negative picture is one with no object that counts (none, or only `difficult` ones).
//!
//! Matching, per class: detections best first, each to the unmatched labelled object of its
//! class with the highest IoU >= 0.5 (a true positive); a detection that instead overlaps a
//! `difficult` object of its class (IoU >= 0.5, or at least half its area inside it) is ignored;
//! any other is a false positive. Labelled objects not matched and not difficult are misses.

use argus::detect::postprocess::{merge, Detection};
use argus::detect::preprocess::{regions_for, whole_frame, Region};
use argus::detect::{
    detection_type, BackendKind, Detector, ExecutionProvider, LoadOptions, NMS_IOU,
};
use argus::motion::MotionBox;
use argus::video::jpeg::Frame420;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The appliance's default minimum score for an object (settings `detection_min_score`).
const MIN_SCORE: f32 = 0.5;
/// The score floor the appliance's detector runs at (`TRACK_MIN_SCORE` in `src/cameras.rs`,
/// lower than `MIN_SCORE` so tracks are kept alive; only `MIN_SCORE` counts as an object).
const DETECT_MIN_SCORE: f32 = 0.3;
/// IoU for a detection to match a labelled object.
const MATCH_IOU: f32 = 0.5;
/// Each side of a labelled box grows by this share of its size to make the simulated motion box.
const MOTION_GROW: f32 = 0.05;
const CLASSES: [&str; 3] = ["person", "vehicle", "animal"];
const MODES: [&str; 2] = ["whole", "motion"];

#[derive(Deserialize)]
struct LabelFile {
    images: Vec<Image>,
}

#[derive(Deserialize)]
struct Image {
    id: String,
    file: String,
    width: usize,
    height: usize,
    /// Set on the dark variants made from another picture.
    #[serde(default)]
    derived_from: Option<String>,
    #[serde(default)]
    objects: Vec<Object>,
}

#[derive(Deserialize, Clone)]
struct Object {
    class: String,
    /// x1, y1, x2, y2 in image pixels.
    #[serde(rename = "box")]
    bbox: [f32; 4],
    #[serde(default)]
    difficult: bool,
}

#[derive(Default, Clone, Copy, serde::Serialize)]
struct Counts {
    tp: u32,
    fp: u32,
    missed: u32,
    /// False positives on negative pictures (no labelled object that counts).
    fp_negative: u32,
}

/// Recall groups: object height as a share of the picture's (small < 15 %, medium < 50 %,
/// large), and the light (the dark variants against the rest).
const GROUPS: [&str; 5] = ["small", "medium", "large", "normal light", "dark"];

#[derive(Default, serde::Serialize)]
struct ModeResult {
    per_class: BTreeMap<String, Counts>,
    /// Found and labelled objects (not difficult) per recall group.
    per_group: BTreeMap<String, (u32, u32)>,
    images: u32,
    regions: u32,
    total_ms: f64,
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let inter = inter(a, b);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

fn area(a: [f32; 4]) -> f32 {
    (a[2] - a[0]).max(0.0) * (a[3] - a[1]).max(0.0)
}

fn inter(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    w * h
}

/// The simulated motion boxes of a picture: each labelled object grown by 10 %, clamped to the
/// frame, normalised, largest first (as the motion detector reports them).
fn motion_boxes(img: &Image) -> Vec<MotionBox> {
    let (w, h) = (img.width as f32, img.height as f32);
    let mut boxes: Vec<MotionBox> = img
        .objects
        .iter()
        .map(|o| {
            let [x1, y1, x2, y2] = o.bbox;
            let (gx, gy) = ((x2 - x1) * MOTION_GROW, (y2 - y1) * MOTION_GROW);
            let (x1, y1) = ((x1 - gx).max(0.0), (y1 - gy).max(0.0));
            let (x2, y2) = ((x2 + gx).min(w), (y2 + gy).min(h));
            MotionBox {
                x: x1 / w,
                y: y1 / h,
                width: (x2 - x1) / w,
                height: (y2 - y1) / h,
            }
        })
        .collect();
    boxes.sort_by(|a, b| (b.width * b.height).total_cmp(&(a.width * a.height)));
    boxes
}

struct Found {
    class: &'static str,
    coco: String,
    score: f32,
    bbox: [f32; 4],
}

/// Matches one picture's kept detections to its labels; adds to `counts`, returns notes on the
/// misses and false positives.
fn score_image(
    img: &Image,
    found: &[Found],
    counts: &mut BTreeMap<String, Counts>,
    groups: &mut BTreeMap<String, (u32, u32)>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let negative = img.objects.iter().all(|o| o.difficult);
    for class in CLASSES {
        let c = counts.entry(class.to_string()).or_default();
        let labels: Vec<&Object> = img.objects.iter().filter(|o| o.class == class).collect();
        let mut taken = vec![false; labels.len()];
        let mut dets: Vec<&Found> = found.iter().filter(|f| f.class == class).collect();
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        for d in dets {
            let best = labels
                .iter()
                .enumerate()
                .filter(|(i, o)| !taken[*i] && !o.difficult)
                .map(|(i, o)| (i, iou(d.bbox, o.bbox)))
                .filter(|(_, v)| *v >= MATCH_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = best {
                taken[i] = true;
                c.tp += 1;
                continue;
            }
            let ignored = labels.iter().any(|o| {
                o.difficult
                    && (iou(d.bbox, o.bbox) >= MATCH_IOU
                        || inter(d.bbox, o.bbox) >= 0.5 * area(d.bbox))
            });
            if ignored {
                continue;
            }
            c.fp += 1;
            if negative {
                c.fp_negative += 1;
            }
            notes.push(format!(
                "  {}: false positive {class} ({} {:.2}) at {:?}",
                img.id,
                d.coco,
                d.score,
                d.bbox.map(|v| v.round() as i32)
            ));
        }
        for (i, o) in labels.iter().enumerate() {
            if o.difficult {
                continue;
            }
            let share = (o.bbox[3] - o.bbox[1]) / img.height as f32;
            let size = if share < 0.15 {
                "small"
            } else if share < 0.5 {
                "medium"
            } else {
                "large"
            };
            let light = if img.derived_from.is_some() {
                "dark"
            } else {
                "normal light"
            };
            for g in [size, light] {
                let e = groups.entry(g.to_string()).or_default();
                e.0 += taken[i] as u32;
                e.1 += 1;
            }
            if !taken[i] {
                c.missed += 1;
                notes.push(format!(
                    "  {}: missed {class} at {:?}",
                    img.id,
                    o.bbox.map(|v| v.round() as i32)
                ));
            }
        }
    }
    notes
}

fn to_found(d: &Detection, labels: &[String], w: f32, h: f32) -> Option<Found> {
    if d.score < MIN_SCORE {
        return None;
    }
    let name = labels.get(d.class)?;
    let class = detection_type(name)?;
    Some(Found {
        class,
        coco: name.clone(),
        score: d.score,
        bbox: [d.x * w, d.y * h, (d.x + d.width) * w, (d.y + d.height) * h],
    })
}

fn model_args() -> Vec<(String, PathBuf)> {
    let mut raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if raw.is_empty() {
        raw = std::env::var("ARGUS_EVAL_MODELS")
            .unwrap_or_default()
            .split([' ', ',', '\n'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    raw.into_iter()
        .map(|a| match a.split_once('=') {
            Some((name, path)) => (name.to_string(), PathBuf::from(path)),
            None => {
                let p = PathBuf::from(&a);
                let name = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or(a);
                (name, p)
            }
        })
        .fold(Vec::new(), |mut out: Vec<(String, PathBuf)>, (name, p)| {
            // Two descriptions with one name (models/x.toml and a stand-in copy): tell them apart.
            let name = if out.iter().any(|(n, _)| *n == name) {
                format!("{name} ({})", p.display())
            } else {
                name
            };
            out.push((name, p));
            out
        })
}

fn fmt_ratio(n: u32, d: u32) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.2}", n as f64 / d as f64)
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let env_path = |k: &str, default: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(default))
    };
    let labels_path = env_path("ARGUS_EVAL_LABELS", "tests/data/eval/labels.json");
    let images_dir = env_path("ARGUS_EVAL_IMAGES", "target/eval-set/images");
    let threads: usize = std::env::var("ARGUS_EVAL_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let verbose = std::env::var_os("ARGUS_EVAL_VERBOSE").is_some_and(|v| v != "0");
    let lib = PathBuf::from(
        std::env::var_os("ORT_DYLIB_PATH")
            .expect("set ORT_DYLIB_PATH (scripts/fetch-onnxruntime.sh prints it)"),
    );
    let models = model_args();
    if models.is_empty() {
        eprintln!(
            "no models: give models/*.toml after `--` or in ARGUS_EVAL_MODELS \
             (scripts/eval-detector.sh finds them)"
        );
        std::process::exit(2);
    }
    let set: LabelFile = serde_json::from_str(
        &std::fs::read_to_string(&labels_path)
            .unwrap_or_else(|e| panic!("{}: {e}", labels_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", labels_path.display()));
    // Decode every picture once, with the appliance's decoder.
    let frames: Vec<(&Image, Frame420)> = set
        .images
        .iter()
        .map(|img| {
            let path = images_dir.join(&img.file);
            let data = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/fetch-eval-set.sh fetches the set)",
                    path.display()
                )
            });
            let f = Frame420::from_jpeg(&data).unwrap_or_else(|e| panic!("{}: {e}", img.file));
            assert_eq!(
                (f.width, f.height),
                (img.width, img.height),
                "{}: size differs from the label file",
                img.file
            );
            (img, f)
        })
        .collect();
    print_set_summary(&set);

    let mut results: BTreeMap<String, BTreeMap<String, ModeResult>> = BTreeMap::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for (name, toml) in &models {
        let toml = if toml.is_absolute() {
            toml.clone()
        } else {
            std::env::current_dir().unwrap().join(toml)
        };
        let mut det = match Detector::load(&LoadOptions {
            backend: BackendKind::Onnxruntime,
            model: toml.clone(),
            runtime: lib.clone(),
            execution_provider: ExecutionProvider::Cpu,
            threads,
        }) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{name}: cannot load {}: {e}", toml.display());
                failed.push((name.clone(), e.to_string()));
                continue;
            }
        };
        let input = det.spec.input_size;
        eprintln!("{name}: {} ({input}x{input})", toml.display());
        let per_mode = results.entry(name.clone()).or_default();
        for mode in MODES {
            let r = per_mode.entry(mode.to_string()).or_default();
            let mut notes = Vec::new();
            // Warm-up, not timed.
            {
                let p = frames[0].1.picture();
                let _ = det.detect(&p, whole_frame(p.width, p.height), DETECT_MIN_SCORE);
            }
            for (img, frame) in &frames {
                let p = frame.picture();
                let regions: Vec<Region> = match mode {
                    "whole" => vec![whole_frame(p.width, p.height)],
                    _ => regions_for(&motion_boxes(img), p.width, p.height, input),
                };
                let start = Instant::now();
                let mut all = Vec::new();
                for region in &regions {
                    match det.detect(&p, *region, DETECT_MIN_SCORE) {
                        Ok(d) => all.extend(d),
                        Err(e) => panic!("{name}: {}: {e}", img.id),
                    }
                }
                let merged = merge(all, NMS_IOU);
                r.total_ms += start.elapsed().as_secs_f64() * 1000.0;
                r.images += 1;
                r.regions += regions.len() as u32;
                let (w, h) = (p.width as f32, p.height as f32);
                // One box per object and detection type, as the appliance keeps them.
                let found: Vec<Found> = argus::detect::by_type(merged, &det.labels)
                    .iter()
                    .filter_map(|(_, d)| to_found(d, &det.labels, w, h))
                    .collect();
                notes.extend(score_image(img, &found, &mut r.per_class, &mut r.per_group));
            }
            if verbose {
                eprintln!("{name} / {mode}:");
                for n in &notes {
                    eprintln!("{n}");
                }
            }
        }
    }

    println!();
    println!(
        "Minimum score {MIN_SCORE}, match IoU >= {MATCH_IOU}, ONNX Runtime CPU, {threads} thread(s). \
         TP/FP/miss per class; `FP neg` = false positives on the negative pictures; \
         ms = detector time per picture (all its regions)."
    );
    println!();
    println!("| model | mode | class | TP | FP | miss | precision | recall | FP neg | regions/pic | ms/pic |");
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (model, modes) in &results {
        for mode in MODES {
            let Some(r) = modes.get(mode) else { continue };
            let mut all = Counts::default();
            for class in CLASSES {
                let c = r.per_class.get(class).copied().unwrap_or_default();
                all.tp += c.tp;
                all.fp += c.fp;
                all.missed += c.missed;
                all.fp_negative += c.fp_negative;
                row(model, mode, class, &c, "", "");
            }
            let rp = format!("{:.2}", r.regions as f64 / r.images.max(1) as f64);
            let ms = format!("{:.1}", r.total_ms / r.images.max(1) as f64);
            row(model, mode, "**all**", &all, &rp, &ms);
        }
    }
    for (name, e) in &failed {
        println!(
            "| {name} | - | not loaded: {} | | | | | | | | |",
            e.replace('|', "/")
        );
    }
    println!();
    println!(
        "Recall by object size (height as a share of the picture's: small < 15 %, medium < 50 %, \
         large) and by light (the dark variants against the rest), all classes: found / labelled."
    );
    println!();
    println!("| model | mode | {} |", GROUPS.join(" | "));
    println!("| --- | --- |{}", " ---: |".repeat(GROUPS.len()));
    for (model, modes) in &results {
        for mode in MODES {
            let Some(r) = modes.get(mode) else { continue };
            let cells: Vec<String> = GROUPS
                .iter()
                .map(|g| {
                    let (f, n) = r.per_group.get(*g).copied().unwrap_or_default();
                    format!("{f}/{n} ({})", fmt_ratio(f, n))
                })
                .collect();
            println!("| {model} | {mode} | {} |", cells.join(" | "));
        }
    }
    if let Some(p) = std::env::var_os("ARGUS_EVAL_JSON") {
        let text = serde_json::to_string_pretty(&results).unwrap();
        std::fs::write(Path::new(&p), text).unwrap();
    }
}

fn row(model: &str, mode: &str, class: &str, c: &Counts, regions: &str, ms: &str) {
    println!(
        "| {model} | {mode} | {class} | {} | {} | {} | {} | {} | {} | {regions} | {ms} |",
        c.tp,
        c.fp,
        c.missed,
        fmt_ratio(c.tp, c.tp + c.fp),
        fmt_ratio(c.tp, c.tp + c.missed),
        c.fp_negative,
    );
}

fn print_set_summary(set: &LabelFile) {
    let negatives = set
        .images
        .iter()
        .filter(|i| i.objects.iter().all(|o| o.difficult))
        .count();
    let mut per: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for o in set.images.iter().flat_map(|i| &i.objects) {
        let e = per.entry(o.class.as_str()).or_default();
        if o.difficult {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    let classes: Vec<String> = per
        .iter()
        .map(|(k, (n, d))| format!("{k} {n} (+{d} difficult)"))
        .collect();
    println!(
        "Evaluation set: {} pictures ({negatives} negative); objects: {}",
        set.images.len(),
        classes.join(", ")
    );
}
