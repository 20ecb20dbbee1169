//! On-device object detection. A YOLO-family model (darknet-style YOLOv3/v4-tiny with the decode
//! in the graph, or anchor-free YOLOX) described by a small TOML file beside it ([`ModelSpec`])
//! runs on an inference [`Backend`] (ONNX Runtime through `ort`, or the pure-Rust
//! fallback on targets without an ONNX Runtime build); [`Detector`] wraps a backend with the
//! model-independent parts: preparing a picture or a motion region (`preprocess`), decoding the
//! output with per-class NMS (`postprocess`), and the COCO class to detection type mapping.
//! `pool` shares the detectors between cameras and `track` turns per-frame detections into
//! objects that are announced once.

pub mod onnx;
pub mod pool;
pub mod postprocess;
pub mod preprocess;
pub mod service;
pub mod track;

use crate::video::decode::Picture;
use postprocess::{decode, yolox_to_pixels, Detection};
use preprocess::{fill_tensor_as, InputFormat, Region};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// IoU above which two boxes of a class are the same object (NMS).
pub const NMS_IOU: f32 = 0.45;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot load the ONNX Runtime library {path}: {message}")]
    Runtime { path: String, message: String },
    #[error("cannot read the model description {path}: {message}")]
    Spec { path: String, message: String },
    #[error("cannot load the model {path}: {message}")]
    Model { path: String, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("{0}")]
    Unsupported(String),
}

/// Channel order of the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    #[default]
    Rgb,
    Bgr,
}

/// Value range of the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Normalise {
    /// Pixel / 255.
    #[serde(rename = "0..1")]
    Unit,
    /// Pixel values as they are.
    #[serde(rename = "0..255")]
    Byte,
}

/// Where the picture sits in the square input when it is letterboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Letterbox {
    /// Centred, padding on both sides (darknet).
    #[default]
    Centre,
    /// In the top-left corner, padding right and below (YOLOX).
    TopLeft,
}

/// Layout of the model's output rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OutputFormat {
    /// Rows of cx, cy, w, h (input pixels), objectness, class scores (sigmoided): the YOLO
    /// decode is in the graph (`scripts/darknet2onnx.py`).
    #[serde(rename = "yolo-cxcywh-obj-cls")]
    YoloCxcywhObjCls,
    /// YOLOX: one row per grid cell of each stride (row-major, strides in order), columns raw
    /// x, y offsets and log w, h in cells, then objectness and class scores (sigmoided).
    #[serde(rename = "yolox")]
    Yolox,
}

/// The model description (`models/<model>.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The `.onnx` file, relative to the description.
    pub file: PathBuf,
    pub input_name: String,
    /// Side of the square input, in pixels.
    pub input_size: usize,
    /// Only `nchw` is supported.
    pub layout: String,
    /// `rgb` (the default) or `bgr`.
    #[serde(default)]
    pub channels: Channels,
    /// `0..1` (pixel / 255) or `0..255`.
    pub normalise: Normalise,
    /// `centre` (the default) or `top-left`.
    #[serde(default)]
    pub letterbox: Letterbox,
    /// Value of letterbox padding, in the input's range (0.5 for `0..1`, 114 for YOLOX).
    pub letterbox_pad: f32,
    pub output_name: String,
    pub output_format: OutputFormat,
    /// Grid strides of a `yolox` output, in row order (e.g. `[8, 16, 32]`).
    #[serde(default)]
    pub strides: Vec<usize>,
    /// Label file, one class name per line, relative to the description.
    pub labels: PathBuf,
    pub num_classes: usize,
}

impl ModelSpec {
    pub fn load(path: &Path) -> Result<(ModelSpec, Vec<String>), DetectError> {
        let err = |message: String| DetectError::Spec {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut spec: ModelSpec = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        if spec.layout != "nchw" {
            return Err(err("supported: layout nchw".into()));
        }
        if spec.output_format == OutputFormat::Yolox
            && (spec.strides.is_empty()
                || spec
                    .strides
                    .iter()
                    .any(|s| *s == 0 || !spec.input_size.is_multiple_of(*s)))
        {
            return Err(err(format!(
                "a yolox output needs `strides` that divide the input size {} (e.g. [8, 16, 32])",
                spec.input_size
            )));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        spec.file = dir.join(&spec.file);
        spec.labels = dir.join(&spec.labels);
        let labels: Vec<String> = std::fs::read_to_string(&spec.labels)
            .map_err(|e| err(format!("{}: {e}", spec.labels.display())))?
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if labels.len() != spec.num_classes {
            return Err(err(format!(
                "{} labels for {} classes",
                labels.len(),
                spec.num_classes
            )));
        }
        Ok((spec, labels))
    }

    /// How pictures are written into the input tensor.
    pub fn input_format(&self) -> InputFormat {
        InputFormat {
            bgr: self.channels == Channels::Bgr,
            scale: match self.normalise {
                Normalise::Unit => 1.0 / 255.0,
                Normalise::Byte => 1.0,
            },
            pad: self.letterbox_pad,
        }
    }
}

/// An inference runtime with a model loaded. Each inference worker owns one.
pub trait Backend: Send {
    /// Short name for logs and `/system/health` (`onnxruntime-cpu`, `onnxruntime-cuda`, ...).
    fn name(&self) -> String;
    /// Runs the model on one NCHW input tensor of the model's input size and returns its raw
    /// output rows.
    fn infer(&mut self, input: &[f32]) -> Result<Vec<f32>, DetectError>;
}

/// Which runtime runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// ONNX Runtime, loaded from `runtime` at start-up.
    Onnxruntime,
    /// The pure-Rust fallback (tract), built on targets without ONNX Runtime.
    Tract,
}

/// ONNX Runtime execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionProvider {
    Cpu,
    Cuda,
    Tensorrt,
}

/// How to load a detector.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backend: BackendKind,
    /// The model description (`models/<model>.toml`).
    pub model: PathBuf,
    /// The ONNX Runtime shared library (onnxruntime backend only).
    pub runtime: PathBuf,
    pub execution_provider: ExecutionProvider,
    /// Intra-op threads per worker.
    pub threads: usize,
}

/// A model on a backend, with its input buffer.
pub struct Detector {
    backend: Box<dyn Backend>,
    pub spec: ModelSpec,
    pub labels: Vec<String>,
    input: Vec<f32>,
}

impl Detector {
    pub fn new(backend: Box<dyn Backend>, spec: ModelSpec, labels: Vec<String>) -> Detector {
        let input = vec![spec.letterbox_pad; 3 * spec.input_size * spec.input_size];
        Detector {
            backend,
            spec,
            labels,
            input,
        }
    }

    /// Loads the model description, the runtime (first call only) and the model.
    pub fn load(o: &LoadOptions) -> Result<Detector, DetectError> {
        let (spec, labels) = ModelSpec::load(&o.model)?;
        let backend: Box<dyn Backend> = match o.backend {
            BackendKind::Onnxruntime => Box::new(onnx::OnnxBackend::load(
                &o.runtime,
                &spec,
                o.threads,
                o.execution_provider,
            )?),
            BackendKind::Tract => tract_backend(&spec, o.threads)?,
        };
        Ok(Detector::new(backend, spec, labels))
    }

    pub fn backend_name(&self) -> String {
        self.backend.name()
    }

    /// Runs the model on a region of a picture; detections in frame-normalised coordinates.
    pub fn detect(
        &mut self,
        p: &Picture<'_>,
        region: Region,
        min_score: f32,
    ) -> Result<Vec<Detection>, DetectError> {
        let size = self.spec.input_size;
        let mut region = region;
        if self.spec.letterbox == Letterbox::TopLeft {
            // A letterboxed region overhangs the frame on both sides: put the frame at its
            // top-left corner instead. Crops inside the frame are unchanged.
            if region.side > p.width as f32 {
                region.x = 0.0;
            }
            if region.side > p.height as f32 {
                region.y = 0.0;
            }
        }
        let mut input = std::mem::take(&mut self.input);
        let place = fill_tensor_as(p, region, size, &mut input, &self.spec.input_format());
        let output = self.backend.infer(&input);
        self.input = input;
        let mut output = output?;
        if self.spec.output_format == OutputFormat::Yolox {
            yolox_to_pixels(&mut output, size, &self.spec.strides, self.spec.num_classes)?;
        }
        Ok(decode(
            &output,
            self.spec.num_classes,
            &place,
            min_score,
            NMS_IOU,
        ))
    }

    /// Bare inference on a prepared input tensor (for benchmarks).
    pub fn infer(&mut self, input: &[f32]) -> Result<Vec<f32>, DetectError> {
        self.backend.infer(input)
    }
}

#[cfg(any(feature = "tract", target_arch = "arm"))]
fn tract_backend(spec: &ModelSpec, threads: usize) -> Result<Box<dyn Backend>, DetectError> {
    Ok(Box::new(tract::TractBackend::load(spec, threads)?))
}

#[cfg(not(any(feature = "tract", target_arch = "arm")))]
fn tract_backend(_spec: &ModelSpec, _threads: usize) -> Result<Box<dyn Backend>, DetectError> {
    Err(DetectError::Unsupported(
        "this build has no tract backend (built for armv7, or with `--features tract`)".into(),
    ))
}

#[cfg(any(feature = "tract", target_arch = "arm"))]
pub mod tract;

/// The appliance's detection type for a COCO class name: `person`, `vehicle` or `animal`;
/// `None` for classes the appliance ignores (furniture, food, ...).
pub fn detection_type(coco_name: &str) -> Option<&'static str> {
    Some(match coco_name {
        "person" => "person",
        "bicycle" | "car" | "motorbike" | "motorcycle" | "bus" | "truck" | "train" | "boat"
        | "aeroplane" | "airplane" => "vehicle",
        "bird" | "cat" | "dog" | "horse" | "sheep" | "cow" | "elephant" | "bear" | "zebra"
        | "giraffe" => "animal",
        _ => return None,
    })
}

/// The detections of one frame as the appliance's detection types (best first), one per object:
/// COCO classes the appliance ignores are dropped, and of boxes of one type that overlap (IoU
/// above [`NMS_IOU`]) only the best is kept, since NMS runs per COCO class and a van seen as
/// both `car` and `truck`, or a horse as `horse` and `cow`, is one vehicle or one animal.
pub fn by_type(mut dets: Vec<Detection>, labels: &[String]) -> Vec<(&'static str, Detection)> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<(&'static str, Detection)> = Vec::with_capacity(dets.len());
    for d in dets {
        let Some(kind) = labels.get(d.class).and_then(|n| detection_type(n)) else {
            continue;
        };
        if out.iter().any(|(k, o)| *k == kind && o.iou(&d) > NMS_IOU) {
            continue;
        }
        out.push((kind, d));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_box_per_object_and_type() {
        use super::{by_type, Detection};
        let labels: Vec<String> = ["person", "car", "truck", "chair"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let d = |class, score, x| Detection {
            class,
            score,
            x,
            y: 0.2,
            width: 0.2,
            height: 0.2,
        };
        let out = by_type(
            vec![
                d(2, 0.6, 0.5),
                d(1, 0.8, 0.51),
                d(0, 0.7, 0.5),
                d(3, 0.9, 0.1),
                d(1, 0.55, 0.1),
            ],
            &labels,
        );
        let got: Vec<(&str, usize)> = out.iter().map(|(k, d)| (*k, d.class)).collect();
        // The van as car and truck is one vehicle (the better, car); the person at the same
        // place stays; the chair is ignored; the other car is another vehicle.
        assert_eq!(got, vec![("vehicle", 1), ("person", 0), ("vehicle", 1)]);
    }

    #[test]
    fn coco_classes_map_to_detection_types() {
        use super::detection_type as t;
        assert_eq!(t("person"), Some("person"));
        assert_eq!(t("truck"), Some("vehicle"));
        assert_eq!(t("motorbike"), Some("vehicle"));
        assert_eq!(t("bear"), Some("animal"));
        assert_eq!(t("toaster"), None);
    }
}
