//! On-device object detection (issue 4, in progress): the pure parts are here — preparing a
//! picture or a motion region for a square-input YOLO-family model (`preprocess`), turning the
//! model's output into frame-normalised detections with per-class NMS (`postprocess`), and
//! mapping COCO classes to the appliance's detection types. The inference runtime (ONNX Runtime
//! through `ort`, tract on armv7) and its wiring into the camera pipeline come next.

pub mod onnx;
pub mod postprocess;
pub mod preprocess;

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

#[cfg(test)]
mod tests {
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
