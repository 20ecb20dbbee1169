//! Inference with ONNX Runtime through `ort`, loading the runtime library at start-up
//! (`load-dynamic`: the library is installed beside the binary, not linked into it; the
//! project's scripts take it from the onnxruntime wheel on PyPI). The model is described by a
//! small TOML file beside it, so an owner can drop in another YOLO-family model.

use super::postprocess::{decode, Detection};
use super::preprocess::{fill_tensor, Region};
use crate::video::decode::Picture;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    /// Only `0..1` (RGB scaled to 0..1) is supported.
    pub normalise: String,
    /// Grey level of letterbox padding (0..1).
    pub letterbox_pad: f32,
    pub output_name: String,
    /// Only `yolo-cxcywh-obj-cls`: rows of cx, cy, w, h (input pixels), objectness, class scores.
    pub output_format: String,
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
        if spec.layout != "nchw"
            || spec.normalise != "0..1"
            || spec.output_format != "yolo-cxcywh-obj-cls"
        {
            return Err(err(
                "supported: layout nchw, normalise 0..1, output_format yolo-cxcywh-obj-cls".into(),
            ));
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
}

/// Loads the ONNX Runtime library once per process.
fn init_runtime(lib: &Path) -> Result<&'static ort::environment::Environment, DetectError> {
    static ENV: std::sync::OnceLock<Result<ort::environment::Environment, String>> =
        std::sync::OnceLock::new();
    let r = ENV.get_or_init(|| {
        let builder = ort::init_from(lib).map_err(|e| e.to_string())?;
        builder
            .with_name("argus")
            .build()
            .map_err(|e| e.to_string())
    });
    r.as_ref().map_err(|message| DetectError::Runtime {
        path: lib.display().to_string(),
        message: message.clone(),
    })
}

/// A loaded detector. Not shareable between threads: each inference worker owns one.
pub struct OnnxDetector {
    session: ort::session::Session,
    pub spec: ModelSpec,
    pub labels: Vec<String>,
    input: Vec<f32>,
}

impl OnnxDetector {
    /// Loads the runtime library (first call only), the model description and the model.
    pub fn load(
        runtime_lib: &Path,
        model_toml: &Path,
        threads: usize,
    ) -> Result<OnnxDetector, DetectError> {
        let env = init_runtime(runtime_lib)?;
        let (spec, labels) = ModelSpec::load(model_toml)?;
        let merr = |e: ort::Error| DetectError::Model {
            path: spec.file.display().to_string(),
            message: e.to_string(),
        };
        let session = ort::session::Session::builder(env)
            .map_err(merr)?
            .with_intra_threads(threads.max(1))
            .map_err(|e| merr(e.into()))?
            .commit_from_file(&spec.file)
            .map_err(merr)?;
        let input = vec![spec.letterbox_pad; 3 * spec.input_size * spec.input_size];
        Ok(OnnxDetector {
            session,
            spec,
            labels,
            input,
        })
    }

    /// Runs the model on a region of a picture; detections in frame-normalised coordinates.
    pub fn detect(
        &mut self,
        p: &Picture<'_>,
        region: Region,
        min_score: f32,
    ) -> Result<Vec<Detection>, DetectError> {
        let size = self.spec.input_size;
        let mut input = std::mem::take(&mut self.input);
        let place = fill_tensor(p, region, size, &mut input);
        let output = self.infer(&input);
        self.input = input;
        Ok(decode(
            &output?,
            self.spec.num_classes,
            &place,
            min_score,
            0.45,
        ))
    }

    /// Bare inference on a prepared input tensor (NCHW, the model's input size): the model's raw
    /// output rows.
    pub fn infer(&mut self, input: &[f32]) -> Result<Vec<f32>, DetectError> {
        let size = self.spec.input_size;
        let err = |e: ort::Error| DetectError::Inference(e.to_string());
        let tensor = ort::value::TensorRef::from_array_view(([1usize, 3, size, size], input))
            .map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.spec.input_name.as_str() => tensor])
            .map_err(err)?;
        let (_, data) = outputs[self.spec.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        Ok(data.to_vec())
    }
}
