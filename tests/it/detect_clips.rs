//! The detector on clips of people the motion gate and the crops used to lose (made by
//! `scripts/make-media.sh`): a small person far away (1/6 of 720p high), a person close to the
//! camera (2/3 of the height), a group of three walking together, and the same at night, dark
//! and noisy, beside a night with nobody. Each is decoded and run through what a camera runs
//! (motion, crops, the real model, merging, the tracker) at 5 analysed frames a second, at
//! every phase of the 15 fps clip.

use crate::detect::{announced_in_clip, detector};

fn clip(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn expect_people(name: &str, people: usize) {
    let mut d = detector();
    for phase in 0..3 {
        let (started, motion, trace) = announced_in_clip(&mut d, &clip(name), 3, phase);
        assert!(motion >= 5, "{name}: {motion} motion frames\n{trace}");
        assert_eq!(
            started,
            vec!["person"; people],
            "{name}, phase {phase}: {people} people, one event each:\n{trace}"
        );
    }
}

#[test]
fn a_small_person_far_away_is_seen() {
    expect_people("far-walk-1280x720.h264", 1);
}

#[test]
fn a_person_close_to_the_camera_is_seen() {
    expect_people("close-walk-1280x720.h264", 1);
}

#[test]
fn a_group_of_three_is_about_three_people() {
    // Three people 56-64 px high walking 80 px apart: the model finds the smallest in only some
    // frames, so a track can lose it for more than two seconds; before this change such a group
    // made 5-7 events. About one each: 3 in every phase, or 4 in one of the three at most.
    let mut d = detector();
    let mut counts = Vec::new();
    for phase in 0..3 {
        let (started, _, trace) =
            announced_in_clip(&mut d, &clip("group-walk-640x360.h264"), 3, phase);
        assert!(started.iter().all(|k| *k == "person"), "{started:?}");
        assert!(
            (3..=4).contains(&started.len()),
            "phase {phase}: {} events\n{trace}",
            started.len()
        );
        counts.push(started.len());
    }
    assert!(counts.iter().sum::<usize>() <= 10, "{counts:?}");
}

#[test]
fn a_person_at_night_is_seen_and_a_noisy_empty_night_is_nobody() {
    expect_people("night-walk-640x360.h264", 1);
    let mut d = detector();
    for phase in 0..3 {
        let (started, _, trace) =
            announced_in_clip(&mut d, &clip("night-empty-640x360.h264"), 3, phase);
        assert!(started.is_empty(), "phase {phase}:\n{trace}");
    }
}

#[test]
fn a_person_who_appears_is_confirmed_on_the_next_frame_and_a_one_frame_flash_never() {
    use crate::detect::run_clip;
    let mut d = detector();
    // The person is there from frame 31 on (counting from 1). Whatever the phase of the
    // analysis, the run that sees her first is followed by a run on the very next frame, which
    // confirms her: announced one frame (67 ms at 15 fps) after the first sighting, not one
    // analysis interval (200 ms) later.
    for phase in 0..3 {
        let r = run_clip(&mut d, &clip("appear-640x360.h264"), 3, phase);
        assert_eq!(r.started, vec!["person"], "phase {phase}:\n{}", r.trace);
        let first = r.first_candidate_at.unwrap();
        assert!(
            (31..=33).contains(&first),
            "phase {phase}: {first}\n{}",
            r.trace
        );
        assert_eq!(
            r.announced_at,
            vec![first + 1],
            "phase {phase}:\n{}",
            r.trace
        );
    }
    // The person in frame 31 only, every frame analysed: the detector sees her (a candidate),
    // the next frame does not, and nothing is announced.
    let r = run_clip(&mut d, &clip("flash-640x360.h264"), 1, 0);
    assert!(
        r.candidates >= 1,
        "the detector saw the flash:\n{}",
        r.trace
    );
    assert!(r.started.is_empty(), "{}", r.trace);
}
