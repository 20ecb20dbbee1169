//! The inference worker pool shared by all cameras: a few threads, each owning a loaded
//! [`Detector`], fed from one bounded queue.
//!
//! Fairness and overload: the queue holds at most one pending job per camera (a camera's newer
//! frame replaces its older pending one, which is dropped and counted) and at most `capacity`
//! jobs in all (beyond that the oldest pending job is dropped and counted). Jobs are served in
//! arrival order, so a busy camera can delay another by at most one job per other camera, never
//! starve it. Submitting never blocks the caller.

use super::postprocess::{merge, Detection};
use super::preprocess::Region;
use super::{DetectError, Detector, NMS_IOU};
use crate::video::jpeg::Frame420;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a finished job hands back.
pub struct Outcome {
    pub frame: Arc<Frame420>,
    pub regions: Vec<Region>,
    pub detections: Result<Vec<Detection>, DetectError>,
    /// Time spent in the detector (all regions).
    pub busy: Duration,
    /// Time from submission to completion.
    pub latency: Duration,
}

/// One frame of one camera to run the detector on.
pub struct Job {
    /// Jobs of the same camera replace each other in the queue.
    pub camera: Arc<str>,
    pub frame: Arc<Frame420>,
    /// Regions of the frame to run the model on; detections from all are merged.
    pub regions: Vec<Region>,
    /// Detections below this score are not reported.
    pub min_score: f32,
    /// Called on a worker thread when the job is done (not when it is dropped). Must not block.
    pub done: Box<dyn FnOnce(Outcome) + Send>,
}

struct Queued {
    job: Job,
    submitted: Instant,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Queued>,
    closed: bool,
}

/// Counters, read for `/system/health`.
#[derive(Default)]
pub struct PoolCounters {
    pub submitted: AtomicU64,
    pub completed: AtomicU64,
    /// Jobs dropped unrun because newer frames arrived first (overload).
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub regions: AtomicU64,
    pub busy_us: AtomicU64,
    pub latency_us: AtomicU64,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
    counters: PoolCounters,
}

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
    pub input_size: usize,
    pub backend: String,
    /// The model's class names, by class index.
    pub labels: Arc<Vec<String>>,
}

impl Pool {
    /// Starts one worker thread per detector.
    pub fn start(detectors: Vec<Detector>, capacity: usize) -> Pool {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            counters: PoolCounters::default(),
        });
        let input_size = detectors.first().map(|d| d.spec.input_size).unwrap_or(0);
        let backend = detectors
            .first()
            .map(|d| d.backend_name())
            .unwrap_or_default();
        let labels = Arc::new(
            detectors
                .first()
                .map(|d| d.labels.clone())
                .unwrap_or_default(),
        );
        let workers = detectors
            .into_iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("detect-{i}"))
                    .spawn(move || work(shared, d))
                    .map_err(|e| tracing::error!(error = %e, "cannot start a detector thread"))
                    .ok()
            })
            .collect();
        Pool {
            shared,
            workers,
            input_size,
            backend,
            labels,
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    pub fn counters(&self) -> &PoolCounters {
        &self.shared.counters
    }

    pub fn queued(&self) -> usize {
        self.lock().jobs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job without blocking, dropping an older one if needed (see the module docs).
    pub fn submit(&self, job: Job) {
        let c = &self.shared.counters;
        c.submitted.fetch_add(1, Ordering::Relaxed);
        let mut q = self.lock();
        if q.closed {
            return;
        }
        let queued = Queued {
            job,
            submitted: Instant::now(),
        };
        if let Some(slot) = q
            .jobs
            .iter_mut()
            .find(|x| x.job.camera == queued.job.camera)
        {
            *slot = queued;
            c.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            if q.jobs.len() >= self.shared.capacity {
                q.jobs.pop_front();
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.jobs.push_back(queued);
        }
        drop(q);
        self.shared.ready.notify_one();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut q = self.lock();
            q.closed = true;
            q.jobs.clear();
        }
        self.shared.ready.notify_all();
        let me = std::thread::current().id();
        for w in self.workers.drain(..) {
            // The last handle can be dropped by a worker itself (a job's callback held it at
            // shutdown): that worker ends on its own once this returns; joining it would be
            // joining oneself.
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
    }
}

fn work(shared: Arc<Shared>, mut detector: Detector) {
    loop {
        let next = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.closed {
                    return;
                }
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Queued { job, submitted } = next;
        let started = Instant::now();
        let picture = job.frame.picture();
        let mut all = Vec::new();
        let mut error = None;
        for r in &job.regions {
            match detector.detect(&picture, *r, job.min_score) {
                Ok(d) => all.extend(d),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let busy = started.elapsed();
        let c = &shared.counters;
        c.regions
            .fetch_add(job.regions.len() as u64, Ordering::Relaxed);
        c.busy_us
            .fetch_add(busy.as_micros() as u64, Ordering::Relaxed);
        let latency = submitted.elapsed();
        c.latency_us
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        let detections = match error {
            Some(e) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            None => {
                c.completed.fetch_add(1, Ordering::Relaxed);
                // Overlapping regions can see an object twice; parts of an object are not
                // objects.
                Ok(merge(all, NMS_IOU))
            }
        };
        (job.done)(Outcome {
            frame: job.frame,
            regions: job.regions,
            detections,
            busy,
            latency,
        });
    }
}
