"""Makes a "prior" of a study for the comparison tests: the same patient (unless --patient-id
says otherwise), another study (new Study, Series and SOP Instance UIDs and Frame of
Reference), an earlier date, and the table moved by DZ mm along z (so the same anatomy lies
DZ mm higher in patient coordinates, as when a patient lies differently on the table).

  python make_prior.py SOURCE_DIR OUT_DIR YYYYMMDD DZ [--patient-id ID]
"""

import argparse
import os

import pydicom
from pydicom.uid import generate_uid


def main():
    a = argparse.ArgumentParser()
    a.add_argument("source")
    a.add_argument("out")
    a.add_argument("date")
    a.add_argument("dz", type=float)
    a.add_argument("--patient-id")
    o = a.parse_args()
    os.makedirs(o.out, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    written = 0
    for name in sorted(os.listdir(o.source)):
        path = os.path.join(o.source, name)
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # not DICOM: not part of the prior
            continue
        sop = generate_uid()
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame
        ds.StudyDate = o.date
        ds.AccessionNumber = "PRIOR"
        if o.patient_id:
            ds.PatientID = o.patient_id
        if "ImagePositionPatient" in ds:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [x, y, z + o.dz]
        ds.save_as(os.path.join(o.out, name))
        written += 1
    print(written)


if __name__ == "__main__":
    main()
