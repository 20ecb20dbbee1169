//! What an alert rule matches: the JSON shape of its conditions, their validation and
//! normalisation, and the matching of one event's facts against them ([`evaluate`]). Pure: no
//! I/O and no clock; the caller gives the event's local weekday and minute of day.

use crate::model::parse_hhmm;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The object types a rule can ask for.
pub const OBJECT_TYPES: [&str; 6] = ["person", "vehicle", "animal", "package", "motion", "ring"];
/// At most this many cameras in one rule.
pub const MAX_CAMERAS: usize = 100;
/// At most this many words or phrases in `description_contains`.
pub const MAX_DESCRIPTION_WORDS: usize = 10;
/// At most this many characters in one word or phrase.
pub const MAX_DESCRIPTION_WORD_CHARS: usize = 100;

/// A rule's conditions. All must hold (AND); within a list, any entry will do (OR). An empty
/// list or a missing field is no condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// Any of person, vehicle, animal, package, motion, ring.
    pub object_types: Vec<String>,
    /// Camera ids (UUIDs).
    pub cameras: Vec<String>,
    /// A daily window in local time.
    pub time_of_day: Option<TimeOfDay>,
    /// 1 = Monday .. 7 = Sunday.
    pub days_of_week: Vec<u8>,
    /// 0 to 100.
    pub min_confidence: Option<u8>,
    /// Words or phrases, any of which the description must contain (whole words, any case).
    pub description_contains: Vec<String>,
}

/// A daily window, `HH:MM` to `HH:MM` local time, start included and end excluded. An end
/// before the start runs overnight (22:00-06:00); start and end cannot be equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOfDay {
    pub start: String,
    pub end: String,
}

/// Checks conditions as a client sent them; the error starts with the field's path. Case and
/// surrounding spaces are forgiven here ([`normalise`] removes them), so indexes in messages
/// are those of the client's lists.
pub fn validate_conditions(c: &Conditions) -> Result<(), String> {
    for (i, t) in c.object_types.iter().enumerate() {
        if !OBJECT_TYPES.contains(&t.trim().to_lowercase().as_str()) {
            return Err(format!(
                "conditions.object_types[{i}]: one of {}",
                OBJECT_TYPES.join(", ")
            ));
        }
    }
    if c.cameras.len() > MAX_CAMERAS {
        return Err(format!("conditions.cameras: at most {MAX_CAMERAS} cameras"));
    }
    for (i, id) in c.cameras.iter().enumerate() {
        if uuid::Uuid::parse_str(id.trim()).is_err() {
            return Err(format!("conditions.cameras[{i}]: a camera id (UUID)"));
        }
    }
    if let Some(w) = &c.time_of_day {
        let start = parse_hhmm(w.start.trim())
            .ok_or("conditions.time_of_day.start: use HH:MM (00:00-23:59)")?;
        let end = parse_hhmm(w.end.trim())
            .ok_or("conditions.time_of_day.end: use HH:MM (00:00-23:59)")?;
        if start == end {
            return Err(
                "conditions.time_of_day: start and end must differ (leave time_of_day \
                        out to match at any time)"
                    .into(),
            );
        }
    }
    for (i, d) in c.days_of_week.iter().enumerate() {
        if !(1..=7).contains(d) {
            return Err(format!(
                "conditions.days_of_week[{i}]: 1 (Monday) to 7 (Sunday)"
            ));
        }
    }
    if c.min_confidence.is_some_and(|m| m > 100) {
        return Err("conditions.min_confidence: 0 to 100".into());
    }
    if c.description_contains.len() > MAX_DESCRIPTION_WORDS {
        return Err(format!(
            "conditions.description_contains: at most {MAX_DESCRIPTION_WORDS} words or phrases"
        ));
    }
    for (i, w) in c.description_contains.iter().enumerate() {
        let n = w.trim().chars().count();
        if n == 0 || n > MAX_DESCRIPTION_WORD_CHARS {
            return Err(format!(
                "conditions.description_contains[{i}]: 1 to {MAX_DESCRIPTION_WORD_CHARS} \
                 characters"
            ));
        }
        if words(w).is_empty() {
            return Err(format!(
                "conditions.description_contains[{i}]: needs a letter or a digit"
            ));
        }
    }
    Ok(())
}

/// Brings valid conditions to their stored form: object types lower case, camera ids in the
/// hyphenated lower-case form, words trimmed with single spaces, days sorted, and every list
/// without duplicates (words compared ignoring case; the first spelling stays).
pub fn normalise(c: &mut Conditions) {
    fn dedupe(v: &mut Vec<String>, key: impl Fn(&str) -> String) {
        let mut seen = std::collections::HashSet::new();
        v.retain(|s| seen.insert(key(s)));
    }
    for t in &mut c.object_types {
        *t = t.trim().to_lowercase();
    }
    dedupe(&mut c.object_types, str::to_owned);
    for id in &mut c.cameras {
        *id = match uuid::Uuid::parse_str(id.trim()) {
            Ok(u) => u.hyphenated().to_string(),
            Err(_) => id.trim().to_owned(),
        };
    }
    dedupe(&mut c.cameras, str::to_owned);
    if let Some(w) = &mut c.time_of_day {
        w.start = w.start.trim().to_owned();
        w.end = w.end.trim().to_owned();
    }
    c.days_of_week.sort_unstable();
    c.days_of_week.dedup();
    for w in &mut c.description_contains {
        *w = w.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    dedupe(&mut c.description_contains, str::to_lowercase);
}

/// Validates conditions as sent, then normalises them: what the API stores.
pub fn prepare(mut c: Conditions) -> Result<Conditions, String> {
    validate_conditions(&c)?;
    normalise(&mut c);
    Ok(c)
}

/// What a rule looks at in one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFacts {
    pub camera_id: String,
    pub detection_type: String,
    pub objects: Vec<String>,
    pub is_doorbell_ring: bool,
    pub confidence: u8,
    /// None while the cloud description is still to come.
    pub description: Option<String>,
    /// Local day of the event, 1 = Monday .. 7 = Sunday.
    pub weekday: u8,
    /// Local minutes after midnight, 0..1440.
    pub minute_of_day: u16,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    NoMatch,
    /// Everything but `description_contains` matches and the event has no description yet:
    /// evaluate again when it arrives.
    AwaitDescription,
}

/// Matches an event against a rule's conditions: all conditions must hold, any entry of a list
/// will do.
///
/// - `object_types`: a listed type is among `objects` or is the `detection_type` (ignoring
///   case); `ring` also matches a doorbell ring (`is_doorbell_ring`), `motion` a plain motion
///   event (`detection_type` "motion").
/// - `cameras`: the event's camera is listed.
/// - `time_of_day`: the minute is in `[start, end)`; an overnight window (end before start)
///   wraps midnight.
/// - `days_of_week`: the local day is listed. With an overnight window the day is that on
///   which the window *started*: at 02:00 on a Tuesday, a 22:00-06:00 window is Monday's, so a
///   rule for "Monday nights" fires then and one for "Tuesday nights" does not (as in
///   `model::Schedule`). Without a window, or within a same-day window, it is the event's day.
/// - `min_confidence`: the event's confidence is at least that.
/// - `description_contains`: a word or phrase occurs as whole words, ignoring case and
///   punctuation ("car" is not in "cardboard"; "red car" is in "A red car parks."). Checked
///   last: with every other condition met and no description yet the verdict is
///   [`Verdict::AwaitDescription`].
pub fn evaluate(c: &Conditions, f: &EventFacts) -> Verdict {
    let others = object_types_match(c, f)
        && (c.cameras.is_empty()
            || c.cameras
                .iter()
                .any(|id| id.trim().eq_ignore_ascii_case(&f.camera_id)))
        && in_window(c, f)
        && c.min_confidence.is_none_or(|m| f.confidence >= m);
    if !others {
        return Verdict::NoMatch;
    }
    if c.description_contains.is_empty() {
        return Verdict::Match;
    }
    let Some(description) = &f.description else {
        return Verdict::AwaitDescription;
    };
    let text = words(description);
    let found = c.description_contains.iter().any(|w| {
        let phrase = words(w);
        !phrase.is_empty()
            && text
                .windows(phrase.len())
                .any(|window| window == phrase.as_slice())
    });
    if found {
        Verdict::Match
    } else {
        Verdict::NoMatch
    }
}

fn object_types_match(c: &Conditions, f: &EventFacts) -> bool {
    c.object_types.is_empty()
        || c.object_types.iter().any(|t| {
            let t = t.trim();
            (t.eq_ignore_ascii_case("ring") && f.is_doorbell_ring)
                || f.detection_type.eq_ignore_ascii_case(t)
                || f.objects.iter().any(|o| o.eq_ignore_ascii_case(t))
        })
}

fn in_window(c: &Conditions, f: &EventFacts) -> bool {
    let day_ok = |d: u8| c.days_of_week.is_empty() || c.days_of_week.contains(&d);
    let Some(w) = &c.time_of_day else {
        return day_ok(f.weekday);
    };
    let (Some(start), Some(end)) = (parse_hhmm(w.start.trim()), parse_hhmm(w.end.trim())) else {
        return false; // refused by validation
    };
    let m = f.minute_of_day;
    if start < end {
        (start..end).contains(&m) && day_ok(f.weekday)
    } else if start > end {
        if m >= start {
            day_ok(f.weekday)
        } else if m < end {
            day_ok(if f.weekday <= 1 { 7 } else { f.weekday - 1 })
        } else {
            false
        }
    } else {
        false // refused by validation
    }
}

/// The words of a text, lower case: runs of letters and digits (so punctuation, apostrophes and
/// hyphens separate words).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAM_A: &str = "0b7d8f7e-2f6c-4a55-9d1c-3e0f4b6a9c21";
    const CAM_B: &str = "5a1e0c9d-7b3f-4e2a-8c6d-1f9e2b4a7d30";

    // Weekdays.
    const MON: u8 = 1;
    const TUE: u8 = 2;
    const SUN: u8 = 7;

    fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    fn facts() -> EventFacts {
        EventFacts {
            camera_id: CAM_A.into(),
            detection_type: "person".into(),
            objects: vec!["person".into()],
            is_doorbell_ring: false,
            confidence: 80,
            description: Some("A person walks up to the front door.".into()),
            weekday: MON,
            minute_of_day: hm(12, 0),
        }
    }

    fn window(start: &str, end: &str) -> Option<TimeOfDay> {
        Some(TimeOfDay {
            start: start.into(),
            end: end.into(),
        })
    }

    fn at(weekday: u8, minute_of_day: u16) -> EventFacts {
        EventFacts {
            weekday,
            minute_of_day,
            ..facts()
        }
    }

    fn matches(c: &Conditions, f: &EventFacts) -> bool {
        evaluate(c, f) == Verdict::Match
    }

    #[test]
    fn no_conditions_match_everything() {
        assert_eq!(evaluate(&Conditions::default(), &facts()), Verdict::Match);
        let bare = EventFacts::default();
        assert_eq!(evaluate(&Conditions::default(), &bare), Verdict::Match);
    }

    #[test]
    fn overnight_window_wraps_midnight() {
        let c = Conditions {
            time_of_day: window("22:00", "06:00"),
            ..Default::default()
        };
        assert!(matches(&c, &at(MON, hm(23, 30))));
        assert!(matches(&c, &at(TUE, hm(2, 0))));
        assert!(!matches(&c, &at(MON, hm(12, 0))));
        // Start included, end excluded.
        assert!(matches(&c, &at(MON, hm(22, 0))));
        assert!(matches(&c, &at(MON, hm(0, 0))));
        assert!(matches(&c, &at(MON, hm(5, 59))));
        assert!(!matches(&c, &at(MON, hm(6, 0))));
        assert!(!matches(&c, &at(MON, hm(21, 59))));
    }

    #[test]
    fn same_day_window_is_half_open() {
        let c = Conditions {
            time_of_day: window("08:00", "17:30"),
            ..Default::default()
        };
        assert!(!matches(&c, &at(MON, hm(7, 59))));
        assert!(matches(&c, &at(MON, hm(8, 0))));
        assert!(matches(&c, &at(MON, hm(17, 29))));
        assert!(!matches(&c, &at(MON, hm(17, 30))));
        assert!(!matches(&c, &at(MON, hm(23, 0))));
        // Up to the last minute of the day.
        let late = Conditions {
            time_of_day: window("23:00", "23:59"),
            ..Default::default()
        };
        assert!(matches(&late, &at(MON, hm(23, 58))));
        assert!(!matches(&late, &at(MON, hm(23, 59))));
        let from_midnight = Conditions {
            time_of_day: window("00:00", "06:00"),
            ..Default::default()
        };
        assert!(matches(&from_midnight, &at(MON, 0)));
        assert!(!matches(&from_midnight, &at(MON, hm(6, 0))));
    }

    #[test]
    fn days_of_week_alone_use_the_event_day() {
        let c = Conditions {
            days_of_week: vec![MON, 3],
            ..Default::default()
        };
        assert!(matches(&c, &at(MON, hm(2, 0))));
        assert!(matches(&c, &at(3, hm(23, 0))));
        assert!(!matches(&c, &at(TUE, hm(12, 0))));
        assert!(!matches(&c, &at(SUN, hm(12, 0))));
    }

    #[test]
    fn overnight_window_belongs_to_the_day_it_started() {
        let monday_nights = Conditions {
            time_of_day: window("22:00", "06:00"),
            days_of_week: vec![MON],
            ..Default::default()
        };
        assert!(matches(&monday_nights, &at(MON, hm(23, 30))));
        assert!(
            matches(&monday_nights, &at(TUE, hm(2, 0))),
            "Monday's night"
        );
        assert!(
            !matches(&monday_nights, &at(MON, hm(2, 0))),
            "Sunday's night"
        );
        assert!(!matches(&monday_nights, &at(TUE, hm(23, 30))));
        assert!(!matches(&monday_nights, &at(TUE, hm(12, 0))));

        // Sunday night runs into Monday morning (the week wraps).
        let sunday_nights = Conditions {
            time_of_day: window("22:00", "06:00"),
            days_of_week: vec![SUN],
            ..Default::default()
        };
        assert!(matches(&sunday_nights, &at(SUN, hm(22, 0))));
        assert!(matches(&sunday_nights, &at(MON, hm(3, 0))));
        assert!(!matches(&sunday_nights, &at(SUN, hm(3, 0))));

        // A same-day window uses the event's own day.
        let tuesday_mornings = Conditions {
            time_of_day: window("00:00", "06:00"),
            days_of_week: vec![TUE],
            ..Default::default()
        };
        assert!(matches(&tuesday_mornings, &at(TUE, hm(2, 0))));
        assert!(!matches(&tuesday_mornings, &at(MON, hm(2, 0))));
    }

    #[test]
    fn conditions_are_anded_and_lists_ored() {
        let c = Conditions {
            object_types: vec!["vehicle".into(), "person".into()],
            cameras: vec![CAM_B.into(), CAM_A.into()],
            min_confidence: Some(50),
            ..Default::default()
        };
        assert!(matches(&c, &facts()));
        let car = EventFacts {
            detection_type: "vehicle".into(),
            objects: vec![],
            camera_id: CAM_B.into(),
            ..facts()
        };
        assert!(matches(&c, &car));
        // Each failing condition alone is enough to refuse.
        let other_camera = EventFacts {
            camera_id: "9f9f9f9f-0000-4000-8000-000000000000".into(),
            ..facts()
        };
        assert!(!matches(&c, &other_camera));
        let animal = EventFacts {
            detection_type: "animal".into(),
            objects: vec!["animal".into()],
            ..facts()
        };
        assert!(!matches(&c, &animal));
        let unsure = EventFacts {
            confidence: 49,
            ..facts()
        };
        assert!(!matches(&c, &unsure));
        let c2 = Conditions {
            time_of_day: window("08:00", "09:00"),
            ..c.clone()
        };
        assert!(!matches(&c2, &facts()));
        assert!(matches(&c2, &at(MON, hm(8, 30))));
    }

    #[test]
    fn object_types_look_at_objects_and_the_detection_type() {
        let package = Conditions {
            object_types: vec!["package".into()],
            ..Default::default()
        };
        // A person event whose objects include a package.
        let courier = EventFacts {
            objects: vec!["Person".into(), "Package".into()],
            ..facts()
        };
        assert!(matches(&package, &courier));
        assert!(!matches(&package, &facts()));
        let by_type = EventFacts {
            detection_type: "package".into(),
            objects: vec![],
            ..facts()
        };
        assert!(matches(&package, &by_type));

        let motion = Conditions {
            object_types: vec!["motion".into()],
            ..Default::default()
        };
        let moved = EventFacts {
            detection_type: "motion".into(),
            objects: vec![],
            ..facts()
        };
        assert!(matches(&motion, &moved));
        assert!(!matches(&motion, &facts()));
    }

    #[test]
    fn ring_matches_doorbell_rings() {
        let c = Conditions {
            object_types: vec!["ring".into()],
            ..Default::default()
        };
        let ring = EventFacts {
            is_doorbell_ring: true,
            detection_type: "ring".into(),
            ..facts()
        };
        assert!(matches(&c, &ring));
        // A ring flagged on an event of another type.
        let flagged = EventFacts {
            is_doorbell_ring: true,
            ..facts()
        };
        assert!(matches(&c, &flagged));
        assert!(!matches(&c, &facts()));
        // "person or ring" matches either.
        let either = Conditions {
            object_types: vec!["ring".into(), "person".into()],
            ..Default::default()
        };
        assert!(matches(&either, &facts()));
        assert!(matches(&either, &ring));
    }

    #[test]
    fn min_confidence_is_inclusive() {
        let c = Conditions {
            min_confidence: Some(80),
            ..Default::default()
        };
        assert!(matches(&c, &facts()));
        assert!(!matches(
            &c,
            &EventFacts {
                confidence: 79,
                ..facts()
            }
        ));
        let zero = Conditions {
            min_confidence: Some(0),
            ..Default::default()
        };
        assert!(matches(
            &zero,
            &EventFacts {
                confidence: 0,
                ..facts()
            }
        ));
    }

    fn described(words: &[&str], text: Option<&str>) -> Verdict {
        let c = Conditions {
            description_contains: words.iter().map(|w| w.to_string()).collect(),
            ..Default::default()
        };
        let f = EventFacts {
            description: text.map(Into::into),
            ..facts()
        };
        evaluate(&c, &f)
    }

    #[test]
    fn description_words_are_whole_words_in_any_case() {
        use Verdict::*;
        assert_eq!(described(&["car"], Some("A car parks.")), Match);
        assert_eq!(described(&["car"], Some("A cardboard box")), NoMatch);
        assert_eq!(described(&["car"], Some("Scar on the wall")), NoMatch);
        assert_eq!(described(&["CAR"], Some("car, parked")), Match);
        assert_eq!(described(&["car"], Some("Red CAR!")), Match);
        assert_eq!(described(&["car"], Some("(car)")), Match);
        assert_eq!(described(&["car"], Some("the car's door")), Match);
        assert_eq!(described(&["red car"], Some("A red car parks")), Match);
        assert_eq!(described(&["red car"], Some("A Red  car parks")), Match);
        assert_eq!(described(&["red car"], Some("A red, car parks")), Match);
        assert_eq!(described(&["red car"], Some("A car, red")), NoMatch);
        assert_eq!(described(&["red car"], Some("A red carpet")), NoMatch);
        assert_eq!(described(&["  red   car "], Some("red car")), Match);
        assert_eq!(described(&["pick-up"], Some("a pick up truck")), Match);
        assert_eq!(described(&["café"], Some("Outside the CAFÉ.")), Match);
        // Any word will do.
        assert_eq!(
            described(&["van", "truck"], Some("A truck backs up")),
            Match
        );
        assert_eq!(
            described(&["van", "truck"], Some("A bicycle passes")),
            NoMatch
        );
        assert_eq!(described(&["car"], Some("")), NoMatch);
    }

    #[test]
    fn a_missing_description_is_awaited_only_when_the_rest_matches() {
        assert_eq!(described(&["car"], None), Verdict::AwaitDescription);
        // No description condition: the missing description does not matter.
        assert_eq!(
            evaluate(
                &Conditions::default(),
                &EventFacts {
                    description: None,
                    ..facts()
                }
            ),
            Verdict::Match
        );
        // Another condition already fails: nothing to wait for.
        let c = Conditions {
            object_types: vec!["vehicle".into()],
            description_contains: vec!["car".into()],
            ..Default::default()
        };
        let f = EventFacts {
            description: None,
            ..facts()
        };
        assert_eq!(evaluate(&c, &f), Verdict::NoMatch);
    }

    fn err(c: Conditions) -> String {
        validate_conditions(&c).unwrap_err()
    }

    #[test]
    fn validation_names_each_bad_field() {
        let e = err(Conditions {
            object_types: vec!["person".into(), "vehicle".into(), "robot".into()],
            ..Default::default()
        });
        assert_eq!(
            e,
            "conditions.object_types[2]: one of person, vehicle, animal, package, motion, ring"
        );
        let e = err(Conditions {
            cameras: vec![CAM_A.into(), "front-door".into()],
            ..Default::default()
        });
        assert!(e.starts_with("conditions.cameras[1]: "), "{e}");
        let e = err(Conditions {
            cameras: vec![CAM_A.into(); MAX_CAMERAS + 1],
            ..Default::default()
        });
        assert!(e.starts_with("conditions.cameras: "), "{e}");
        let e = err(Conditions {
            time_of_day: window("7:00", "08:00"),
            ..Default::default()
        });
        assert_eq!(e, "conditions.time_of_day.start: use HH:MM (00:00-23:59)");
        let e = err(Conditions {
            time_of_day: window("07:00", "24:00"),
            ..Default::default()
        });
        assert_eq!(e, "conditions.time_of_day.end: use HH:MM (00:00-23:59)");
        let e = err(Conditions {
            time_of_day: window("07:00", "07:00"),
            ..Default::default()
        });
        assert!(e.starts_with("conditions.time_of_day: "), "{e}");
        for bad in [0, 8] {
            let e = err(Conditions {
                days_of_week: vec![1, bad],
                ..Default::default()
            });
            assert_eq!(e, "conditions.days_of_week[1]: 1 (Monday) to 7 (Sunday)");
        }
        let e = err(Conditions {
            min_confidence: Some(101),
            ..Default::default()
        });
        assert_eq!(e, "conditions.min_confidence: 0 to 100");
        let e = err(Conditions {
            description_contains: (0..11).map(|i| format!("w{i}")).collect(),
            ..Default::default()
        });
        assert!(e.starts_with("conditions.description_contains: "), "{e}");
        let e = err(Conditions {
            description_contains: vec!["car".into(), "   ".into()],
            ..Default::default()
        });
        assert!(e.starts_with("conditions.description_contains[1]: "), "{e}");
        let e = err(Conditions {
            description_contains: vec!["x".repeat(101)],
            ..Default::default()
        });
        assert!(e.starts_with("conditions.description_contains[0]: "), "{e}");
        let e = err(Conditions {
            description_contains: vec!["?!".into()],
            ..Default::default()
        });
        assert!(e.starts_with("conditions.description_contains[0]: "), "{e}");
    }

    #[test]
    fn valid_conditions_pass_and_are_normalised() {
        let c = Conditions {
            object_types: vec![" Person".into(), "person".into(), "RING".into()],
            cameras: vec![CAM_A.to_uppercase(), CAM_A.into(), CAM_B.replace('-', "")],
            time_of_day: window(" 22:00", "06:00 "),
            days_of_week: vec![7, 1, 7, 3],
            min_confidence: Some(100),
            description_contains: vec!["  red   car ".into(), "Red Car".into(), "x".repeat(100)],
        };
        let p = prepare(c).unwrap();
        assert_eq!(p.object_types, ["person", "ring"]);
        assert_eq!(p.cameras, [CAM_A, CAM_B]);
        assert_eq!(p.time_of_day, window("22:00", "06:00"));
        assert_eq!(p.days_of_week, [1, 3, 7]);
        assert_eq!(
            p.description_contains,
            ["red car".to_string(), "x".repeat(100)]
        );
        // Normalising again changes nothing.
        let mut again = p.clone();
        normalise(&mut again);
        assert_eq!(again, p);
        assert!(validate_conditions(&Conditions::default()).is_ok());
    }

    #[test]
    fn json_shape() {
        let c: Conditions = serde_json::from_str(
            r#"{"object_types": ["person"], "time_of_day": {"start": "22:00", "end": "06:00"},
                "days_of_week": [1, 2], "min_confidence": 70}"#,
        )
        .unwrap();
        assert_eq!(c.object_types, ["person"]);
        assert!(c.cameras.is_empty() && c.description_contains.is_empty());
        assert_eq!(c.min_confidence, Some(70));
        let back: Conditions = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            serde_json::from_str::<Conditions>("{}").unwrap(),
            Conditions::default()
        );
        assert!(serde_json::from_str::<Conditions>(r#"{"objects": []}"#).is_err());
        assert!(serde_json::from_str::<Conditions>(
            r#"{"time_of_day": {"start": "22:00", "end": "06:00", "tz": "UTC"}}"#
        )
        .is_err());
    }
}
