"""Reads a Key Object Selection document Dokuei wrote, with pydicom and highdicom, and prints
what they find as one JSON object: the title, the description, the observer, the referenced
images (SOP Instance UID and frame) from the content tree, and from highdicom's parse of the
document (KeyObjectSelectionDocument.from_dataset and its resolve_reference), and the
evidence's instances.

  python kos_check.py FILE
"""

import json
import sys

import highdicom as hd
import pydicom


def main(path):
    ds = pydicom.dcmread(path)
    out = {
        "sop_class": str(ds.SOPClassUID),
        "modality": str(ds.Modality),
        "title": [str(ds.ConceptNameCodeSequence[0].CodeValue), str(ds.ConceptNameCodeSequence[0].CodingSchemeDesignator)],
        "template": str(ds.ContentTemplateSequence[0].TemplateIdentifier),
        "description": None,
        "observer": None,
        "images": [],
        "evidence": [],
    }
    for item in ds.ContentSequence:
        name = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else None
        if item.ValueType == "TEXT" and name == "113012":
            out["description"] = str(item.TextValue)
        elif item.ValueType == "PNAME" and name == "121008":
            out["observer"] = str(item.PersonName)
        elif item.ValueType == "IMAGE":
            ref = item.ReferencedSOPSequence[0]
            frame = int(ref.ReferencedFrameNumber) if "ReferencedFrameNumber" in ref else None
            out["images"].append([str(ref.ReferencedSOPInstanceUID), frame])
    for study in ds.CurrentRequestedProcedureEvidenceSequence:
        for series in study.ReferencedSeriesSequence:
            for inst in series.ReferencedSOPSequence:
                out["evidence"].append([str(study.StudyInstanceUID), str(series.SeriesInstanceUID), str(inst.ReferencedSOPInstanceUID)])
    doc = hd.ko.KeyObjectSelectionDocument.from_dataset(ds)
    out["highdicom_title"] = str(doc.ConceptNameCodeSequence[0].CodeMeaning)
    kos = doc.content
    refs = kos.get_references(value_type=hd.sr.ValueTypeValues.IMAGE)
    out["highdicom_images"] = [str(r.referenced_sop_instance_uid) for r in refs]
    out["highdicom_resolved"] = [list(doc.resolve_reference(u)) for u in out["highdicom_images"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
