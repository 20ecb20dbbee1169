//! Detector benchmark: milliseconds per frame for the shipped model with ONNX Runtime on 1 and 2
//! threads, bare inference beside the whole detector step (pre-processing + inference +
//! post-processing).
//!
//!     ORT_DYLIB_PATH=$(scripts/fetch-onnxruntime.sh) cargo bench --bench detect
//!
//! (`scripts/bench-detect.sh` does that and runs the same model under the onnxruntime Python
//! package for comparison.) With `--features tract`, a last row `tract` measures the pure-Rust
//! backend (single-threaded) on the same frame.

use argus::detect::postprocess::decode;
use argus::detect::preprocess::{fill_tensor, whole_frame, Region};
use argus::detect::{BackendKind, Detector, ExecutionProvider, LoadOptions};
use argus::video::decode::Picture;
use argus::video::jpeg::Frame420;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn per_call_ms(min: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < min {
            f();
            n += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() * 1000.0 / n as f64);
    }
    best
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = PathBuf::from(
        std::env::var_os("ORT_DYLIB_PATH")
            .expect("set ORT_DYLIB_PATH (scripts/fetch-onnxruntime.sh)"),
    );
    let model = std::env::var_os("ARGUS_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            root.join("models")
                .join(argus::detect::service::DEFAULT_MODEL)
        });
    let frame =
        Frame420::from_jpeg(&std::fs::read(root.join("tests/data/images/person.jpg")).unwrap())
            .unwrap();
    let p = frame.picture();
    let region = whole_frame(p.width, p.height);
    let min = Duration::from_secs(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    println!(
        "{:<8} {:>14} {:>16} {:>12} {:>10}",
        "threads", "inference ms", "detector step ms", "pre+post ms", "overhead"
    );
    for threads in [1, 2] {
        let mut d = Detector::load(&LoadOptions {
            backend: BackendKind::Onnxruntime,
            model: model.clone(),
            runtime: lib.clone(),
            execution_provider: ExecutionProvider::Cpu,
            threads,
        })
        .unwrap();
        row(&threads.to_string(), &mut d, &p, region, min);
    }
    // The pure-Rust backend (single-threaded), with `--features tract`.
    #[cfg(feature = "tract")]
    {
        let mut d = Detector::load(&LoadOptions {
            backend: BackendKind::Tract,
            model,
            runtime: lib,
            execution_provider: ExecutionProvider::Cpu,
            threads: 1,
        })
        .unwrap();
        row("tract", &mut d, &p, region, min);
    }
}

/// Measures one detector and prints its row.
fn row(label: &str, d: &mut Detector, p: &Picture<'_>, region: Region, min: Duration) {
    let size = d.spec.input_size;
    let mut tensor = vec![0f32; 3 * size * size];
    let place = fill_tensor(p, region, size, &mut tensor);
    let infer = per_call_ms(min, || {
        std::hint::black_box(d.infer(&tensor).unwrap());
    });
    let step = per_call_ms(min, || {
        std::hint::black_box(d.detect(p, region, 0.25).unwrap());
    });
    let output = d.infer(&tensor).unwrap();
    let pre = per_call_ms(min / 3, || {
        std::hint::black_box(fill_tensor(p, region, size, &mut tensor));
    });
    let post = per_call_ms(min / 3, || {
        std::hint::black_box(decode(&output, d.spec.num_classes, &place, 0.25, 0.45));
    });
    println!(
        "{label:<8} {infer:>14.2} {step:>16.2} {:>12.2} {:>9.1}%",
        pre + post,
        (step / infer - 1.0) * 100.0
    );
}
