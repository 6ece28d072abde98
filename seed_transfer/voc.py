"""Pascal VOC's 20 object classes, in the order of the devkit (and of Detectron2, MMSegmentation and
the VOC2007 classification protocol): one definition for detection, segmentation and classification.
A plain module (no torch), so the detection records can import it cheaply."""

CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
SEGMENTATION_CLASSES = ("background", *CLASSES)  # label 0 is the background in VOC's masks
