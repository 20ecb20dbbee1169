//! The ONNX Runtime backend, through `ort`, loading the runtime library at start-up
//! (`load-dynamic`: the library is installed beside the binary, not linked into it; the
//! project's scripts take it from the onnxruntime wheel on PyPI). CPU by default; the CUDA or
//! TensorRT execution provider when configured and present in the loaded library (Jetson),
//! otherwise CPU with a warning.

use super::{Backend, DetectError, ExecutionProvider, ModelSpec};
use ort::ep::ExecutionProvider as _;
use std::path::Path;

/// Loads the ONNX Runtime library once per process.
fn init_runtime(lib: &Path) -> Result<&'static ort::environment::Environment, DetectError> {
    static ENV: std::sync::OnceLock<Result<ort::environment::Environment, String>> =
        std::sync::OnceLock::new();
    if !lib.is_file() {
        return Err(DetectError::Runtime {
            path: lib.display().to_string(),
            message: "no such file (scripts/fetch-onnxruntime.sh fetches it)".into(),
        });
    }
    // ONNX Runtime can be loaded once per process: the first library loaded serves all.
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

pub struct OnnxBackend {
    session: ort::session::Session,
    input_name: String,
    output_name: String,
    size: usize,
    name: String,
}

impl OnnxBackend {
    pub fn load(
        runtime_lib: &Path,
        spec: &ModelSpec,
        threads: usize,
        ep: ExecutionProvider,
    ) -> Result<OnnxBackend, DetectError> {
        let env = init_runtime(runtime_lib)?;
        if !spec.file.exists() {
            return Err(DetectError::Model {
                path: spec.file.display().to_string(),
                message: "no such file (scripts/make-model.sh makes it)".into(),
            });
        }
        let merr = |e: ort::Error| DetectError::Model {
            path: spec.file.display().to_string(),
            message: e.to_string(),
        };
        let mut builder = ort::session::Session::builder(env)
            .map_err(merr)?
            .with_intra_threads(threads.max(1))
            .map_err(|e| merr(e.into()))?
            // The memory pattern plans one block for all of a run's intermediate tensors, kept
            // in the arena between runs; without it the arena reuses freed tensors' chunks within
            // a run: about 3 MB less with four cameras (scripts/bench-memory.sh), inference time
            // within the noise of `cargo bench --bench detect`.
            .with_memory_pattern(false)
            .map_err(|e| merr(e.into()))?;
        let mut name = "onnxruntime-cpu".to_string();
        let accel = match ep {
            ExecutionProvider::Cpu => None,
            ExecutionProvider::Cuda => Some((
                "cuda",
                ort::ep::CUDA::is_available(),
                ort::ep::CUDA::default().register(&mut builder),
            )),
            ExecutionProvider::Tensorrt => Some((
                "tensorrt",
                ort::ep::TensorRT::is_available(),
                ort::ep::TensorRT::default().register(&mut builder),
            )),
        };
        if let Some((ep_name, available, registered)) = accel {
            match (available, registered) {
                (Ok(true), Ok(())) => name = format!("onnxruntime-{ep_name}"),
                (available, registered) => {
                    let why = match (available, registered) {
                        (Ok(false), _) => {
                            "the ONNX Runtime library was built without it".to_string()
                        }
                        (Err(e), _) | (_, Err(e)) => e.to_string(),
                        _ => String::new(),
                    };
                    tracing::warn!(
                        execution_provider = ep_name,
                        library = %runtime_lib.display(),
                        reason = %why,
                        "execution provider unavailable; running the detector on the CPU"
                    );
                }
            }
        }
        let session = builder.commit_from_file(&spec.file).map_err(merr)?;
        Ok(OnnxBackend {
            session,
            input_name: spec.input_name.clone(),
            output_name: spec.output_name.clone(),
            size: spec.input_size,
            name,
        })
    }
}

impl Backend for OnnxBackend {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn infer(&mut self, input: &[f32]) -> Result<Vec<f32>, DetectError> {
        let size = self.size;
        let err = |e: ort::Error| DetectError::Inference(e.to_string());
        let tensor = ort::value::TensorRef::from_array_view(([1usize, 3, size, size], input))
            .map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(err)?;
        let (_, data) = outputs[self.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        Ok(data.to_vec())
    }
}
