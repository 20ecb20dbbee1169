//! The pure-Rust detector backend, through `tract-onnx`: the fallback for targets without an
//! ONNX Runtime build (32-bit ARM, where it is always compiled in), and on other targets with
//! `--features tract` (tests comparing it with ONNX Runtime, benchmarks). It owns loading the
//! `.onnx` file of a [`ModelSpec`], fixing its input to f32 `[1, 3, S, S]` so that tract can
//! optimise the graph for that one shape, and running it on the NCHW tensors `preprocess`
//! prepares. The output is the same raw rows as ONNX Runtime's, so `postprocess` is shared.
//!
//! Single-threaded: tract's only intra-op parallelism (multi-threaded matrix products) sits
//! behind `tract-linalg`'s `multithread-mm` feature, which brings in rayon; the appliance
//! runs one detector per inference worker instead, so `threads` is ignored.

use super::{Backend, DetectError, ModelSpec};
use tract_onnx::prelude::*;

type Plan = Arc<TypedSimplePlan>;

pub struct TractBackend {
    plan: Plan,
    size: usize,
}

impl TractBackend {
    /// Loads and optimises the model. `threads` is ignored (see the module documentation).
    pub fn load(spec: &ModelSpec, _threads: usize) -> Result<TractBackend, DetectError> {
        let path = &spec.file;
        let err = |message: String| DetectError::Model {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() {
            return Err(err("no such file (scripts/make-model.sh makes it)".into()));
        }
        let size = spec.input_size;
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| err(format!("{e:#}")))?;
        // The spec names the tensors; a model with a single input, or a single output not
        // named as in the spec, is taken as is.
        if model.input_outlets().map_or(0, |o| o.len()) != 1 {
            model
                .set_input_names([spec.input_name.as_str()])
                .map_err(|e| err(format!("input {:?}: {e:#}", spec.input_name)))?;
        }
        if let Err(e) = model.select_outputs_by_name([spec.output_name.as_str()]) {
            if model.output_outlets().map_or(0, |o| o.len()) != 1 {
                return Err(err(format!("output {:?}: {e:#}", spec.output_name)));
            }
        }
        model
            .set_input_fact(0, f32::fact([1, 3, size, size]).into())
            .map_err(|e| err(format!("{e:#}")))?;
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| err(format!("{e:#}")))?;
        Ok(TractBackend { plan, size })
    }
}

impl Backend for TractBackend {
    fn name(&self) -> String {
        "tract".into()
    }

    fn infer(&mut self, input: &[f32]) -> Result<Vec<f32>, DetectError> {
        let err = |e: TractError| DetectError::Inference(format!("{e:#}"));
        let size = self.size;
        let tensor = Tensor::from_shape(&[1, 3, size, size], input).map_err(err)?;
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(err)?;
        let output = outputs[0]
            .try_as_plain_ram()
            .and_then(|t| t.as_slice::<f32>())
            .map_err(err)?;
        Ok(output.to_vec())
    }
}
